"""Time to install a pinned stub torch stack (torch, torchvision, xformers) into a fresh
venv from the loopback index: pip versus uv, cold and warm cache; sdboot's install_stack()
versus the same installer commands run directly (target: sdboot's overhead < 10 %); and
the probe's wall time.

    python bench/install_stack.py [-n 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sdboot.io.runner import Runner  # noqa: E402
from sdboot.stack.packages import (  # noqa: E402
    choose_installer,
    install_stack,
    plan_stack_install,
    write_constraints,
)
from sdboot.stack.profiles import load_profiles  # noqa: E402
from sdboot.stack.verdict import run_probe  # noqa: E402
from tests.world.index import build_world_index, overlay_profiles  # noqa: E402


def fresh_venv(root: Path) -> Path:
    path = Path(tempfile.mkdtemp(dir=root)) / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sdboot-bench-"))
    index = build_world_index(work / "index")
    index.start()
    overlay_profiles(work / "config", index, ROOT / "profiles")
    saved = dict(os.environ)
    os.environ.update({"SDBOOT_CONFIG_DIR": str(work / "config"), "PIP_CONFIG_FILE": os.devnull,
                       "PIP_INDEX_URL": index.index_url("simple"),
                       "UV_INDEX_URL": index.index_url("simple"), "UV_NO_CONFIG": "1"})
    for key in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        os.environ.pop(key, None)
    profile = load_profiles()["torch2.1.2-cu121"]
    results: dict[str, list[float]] = {}
    try:
        for kind in ("pip", "uv"):
            installer = choose_installer(kind)
            for cache in ("cold", "warm"):
                for way in ("direct", "sdboot"):
                    for _ in range(args.n):
                        py = fresh_venv(work)
                        cdir = Path(tempfile.mkdtemp(dir=work)) if cache == "cold" else \
                            work / f"cache-{kind}"
                        os.environ["PIP_CACHE_DIR"] = os.environ["UV_CACHE_DIR"] = str(cdir)
                        constraints = py.parent.parent / "constraints.txt"
                        start = time.perf_counter()
                        if way == "sdboot":
                            install_stack(profile, py, constraints, Runner(), installer)
                        else:
                            write_constraints(profile, constraints)
                            for argv in plan_stack_install(profile, py, installer, constraints):
                                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL)
                        results.setdefault(f"{kind} {cache} {way}", []).append(
                            time.perf_counter() - start)
        py = fresh_venv(work)
        install_stack(profile, py, py.parent.parent / "c.txt", Runner(), choose_installer("uv"))
        probe_times = []
        for _ in range(max(args.n, 5)):
            start = time.perf_counter()
            run_probe(py, Runner())
            probe_times.append(time.perf_counter() - start)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        index.stop()
    print(f"{'install of torch+torchvision+xformers':40} {'median':>8}   (n={args.n})")
    for key, times in results.items():
        print(f"{key:40} {statistics.median(times) * 1000:6.0f}ms")
    for kind in ("pip", "uv"):
        for cache in ("cold", "warm"):
            direct = statistics.median(results[f"{kind} {cache} direct"])
            ours = statistics.median(results[f"{kind} {cache} sdboot"])
            print(f"sdboot overhead, {kind} {cache}: {100 * (ours - direct) / direct:+.1f} %")
    pip_cold = statistics.median(results["pip cold sdboot"])
    uv_cold = statistics.median(results["uv cold sdboot"])
    print(f"uv vs pip (cold, via sdboot): {pip_cold / uv_cold:.1f}x faster")
    print(f"probe wall time (stub torch): median {statistics.median(probe_times) * 1000:.0f}ms")


if __name__ == "__main__":
    main()
