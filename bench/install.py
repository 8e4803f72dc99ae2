"""The full `sdboot install` on the local world (tests/world/local.py), with uv and with
pip, and the no-op second run; against a baseline that does what the WebUI's own scripts
do (git clone, python3.10 -m venv, pip install torch torchvision from the torch index,
then launch.py --exit --xformers) on the same world, in the same run. The baseline gets
the dead-upstream override it needs to finish at all (STABLE_DIFFUSION_REPO), which
sdboot supplies by itself.

    python bench/install.py [-n 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.world.local import LocalWorld, build_local_world, sdboot_argv  # noqa: E402


def timed(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> float:
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.monotonic() - started


def baseline(world: LocalWorld, target: Path, python310: str) -> float:
    """What webui.sh does, by hand, on the same world."""
    env = world.env(STABLE_DIFFUSION_REPO="https://github.com/w-e-w/stablediffusion.git",
                    TORCH_COMMAND="pip install torch==2.1.2 torchvision==0.16.2 "
                    f"--extra-index-url {world.index.url}/whl/cu121/")
    started = time.monotonic()
    timed(["git", "clone", "-q", "--branch", "v1.10.1",
           world.github_url + "AUTOMATIC1111/stable-diffusion-webui.git", str(target)], env)
    timed([python310, "-m", "venv", str(target / "venv")], env)
    py = str(target / "venv" / "bin" / "python")
    timed([py, "-m", "pip", "install", "-q", "torch==2.1.2", "torchvision==0.16.2",
           "--extra-index-url", f"{world.index.url}/whl/cu121/"], env)
    timed([py, "launch.py", "--exit", "--xformers"], env, cwd=target)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="sdboot-bench-"))
    world = build_local_world(base / "world")
    from sdboot.io.runner import Runner
    from sdboot.machine.envs.venv import find_python

    python310 = str(find_python("3.10", Runner()))  # the one sdboot uses too
    results: dict[str, list[float]] = {"baseline": [], "uv": [], "pip": [], "noop": []}
    try:
        for i in range(args.n):
            results["baseline"].append(baseline(world, base / f"base{i}", python310))
            for installer in ("uv", "pip"):
                target = base / f"{installer}{i}"
                env = world.env(SDBOOT_INSTALLER=installer)
                results[installer].append(timed(sdboot_argv("install", str(target), "--mirror",
                                                             "world"), env))
                if installer == "uv":
                    results["noop"].append(timed(sdboot_argv("install", str(target)), env))
    finally:
        world.stop()
        shutil.rmtree(base, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"full install on the local world, median of {args.n} (cold target, warm caches):")
    print(f"  baseline (WebUI's own steps: clone, venv, pip torch, launch.py --exit): "
          f"{med['baseline']:.2f} s")
    for installer in ("uv", "pip"):
        print(f"  sdboot install ({installer}): {med[installer]:.2f} s = "
              f"{med[installer] / med['baseline']:.2f}x the baseline's time "
              "(sdboot also verifies, and writes webui-user and the lock)")
    print(f"  sdboot install, second run (nothing to do): {med['noop']:.2f} s "
          f"(target < 1 s); {med['baseline'] / med['noop']:.0f}x faster than the baseline's "
          "first run")
    if os.environ.get("CI"):
        print(results)


if __name__ == "__main__":
    main()
