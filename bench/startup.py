"""How fast `sdboot --help` and `sdboot gpu` answer (target: well under 0.5 s each).

Runs each command N times in a fresh process and prints the median and the worst wall
time, next to a bare `python -c pass` as the floor. With --fake-gpu it also times
`sdboot gpu` against the fake NVML from the test world (needs a C compiler).

    python bench/startup.py [-n 15] [--fake-gpu]
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


def timed(argv: list[str], env: dict[str, str], n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("--fake-gpu", action="store_true")
    args = ap.parse_args()
    env = dict(os.environ, NO_COLOR="1")
    py = sys.executable
    cases = [
        ("python -c pass (floor)", [py, "-c", "pass"], env),
        ("sdboot --help", [py, "-m", "sdboot", "--help"], env),
        ("sdboot gpu (this machine)", [py, "-m", "sdboot", "gpu"], env),
        ("sdboot gpu --json", [py, "-m", "sdboot", "gpu", "--json"], env),
    ]
    if args.fake_gpu:
        from tests.world.gpu import RTX_3060, Scenario, build_gpu_libs

        libs = build_gpu_libs(Path(tempfile.mkdtemp(prefix="sdboot-bench-")))
        fake = dict(env, **libs.env(Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))))
        cases.append(("sdboot gpu (fake NVML, 1 GPU)", [py, "-m", "sdboot", "gpu"], fake))
        cases.append(("sdboot resolve (fake NVML)", [py, "-m", "sdboot", "resolve"], fake))
    print(f"{'command':34} {'median':>9} {'worst':>9}   (n={args.n})")
    for label, argv, e in cases:
        med, worst = timed(argv, e, args.n)
        print(f"{label:34} {med * 1000:7.0f}ms {worst * 1000:7.0f}ms")


if __name__ == "__main__":
    main()
