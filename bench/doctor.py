"""`sdboot doctor --offline` on a healthy install: with the stub stack (target < 1.5 s on
this machine) and with a real torch wheel (target < 1 s plus one torch import, measured
here as the time of `python -c "import torch"` in the same environment).

    python bench/doctor.py [-n 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.world.local import build_local_world, sdboot_argv  # noqa: E402


def median_time(cmd: list[str], env: dict[str, str], runs: int, ok: tuple[int, ...] = (0,),
                ) -> float:
    times = []
    for _ in range(runs):
        started = time.monotonic()
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
        times.append(time.monotonic() - started)
        if proc.returncode not in ok:
            raise SystemExit(f"{cmd} exited {proc.returncode}: {proc.stderr[-800:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="sdboot-bench-doctor-"))
    world = build_local_world(base / "world")
    try:
        env = world.env()
        webui = base / "webui"
        subprocess.run(sdboot_argv("install", str(webui), "--mirror", "world"), env=env,
                       cwd=ROOT, check=True, capture_output=True)
        stub = median_time(sdboot_argv("doctor", str(webui), "--offline"), env, args.n)
        print(f"doctor --offline, healthy install, stub torch: median {stub:.2f} s "
              f"(target < 1.5 s)")
        wheel = next(Path("/opt/wheels").glob("torch-2.13.0+cpu-*.whl"), None)
        uv = shutil.which("uv")
        if wheel is None or uv is None or sys.version_info[:2] != (3, 11):
            print("real torch: skipped (needs Python 3.11, uv and the local CPU torch wheel)")
            return
        venv = base / "real"
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        py = venv / "bin" / "python"
        pip = next((Path(sys.base_prefix) / "lib").glob("python3*/ensurepip/_bundled/pip-*.whl"))
        subprocess.run([uv, "pip", "install", "-q", "--python", str(py), str(pip), str(wheel),
                        "numpy"], check=True)
        median_time([str(py), "-I", "-c", "import torch"], env, 2)  # warm the file cache
        imp = median_time([str(py), "-I", "-c", "import torch"], env, args.n)
        # a CPU build on the simulated NVIDIA GPU: doctor finds cpu-torch (exit 1)
        real = median_time(sdboot_argv("doctor", "--python", str(py), "--offline"), env,
                           args.n, ok=(0, 1))
        print(f"doctor --offline --python <real CPU torch 2.13.0>: median {real:.2f} s; "
              f"`import torch` alone: {imp:.2f} s; doctor's own share {real - imp:.2f} s "
              f"(target < 1 s + one import)")
    finally:
        world.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
