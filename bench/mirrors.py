"""Mirror figures:

1. `mirror test` over 20 loopback candidates of which 5 are dead (2 closed ports, 3 servers
   that never answer in time): wall time against the deadline (target: under deadline +
   10 %), and against probing them one after another with the same per-probe timeout (the
   naive loop the deadline design replaces).
2. The cost of a launch-file rewrite (apply + idempotent re-apply + revert, all pure) on
   the largest launch file: SDBOOT_BENCH_LAUNCH_FILE if set (e.g. a real
   modules/launch_utils.py), else the test fixture grown to the same size (~25 KB).

    python bench/mirrors.py [--deadline 2] [-n 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sdboot.mirrors.health import Candidate, run_health  # noqa: E402
from sdboot.mirrors.rewrite import rewrite_text  # noqa: E402
from tests.world.githost import GitHost, closed_port, make_bare_repo  # noqa: E402
from tests.world.launchfiles import POST_V13_UTILS  # noqa: E402

REFS = "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git/info/refs?service=git-upload-pack"


def bench_health(deadline: float, runs: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    make_bare_repo(tmp / "repos", "AUTOMATIC1111/stable-diffusion-webui", {"a": "b\n"})
    live = [GitHost({"/https://github.com/": tmp / "repos"}).start() for _ in range(15)]
    hung = [GitHost({"/https://github.com/": tmp / "repos"}, delay_s=deadline * 4).start()
            for _ in range(3)]
    urls = [h.url for h in live + hung] + [f"http://127.0.0.1:{closed_port()}/"
                                           for _ in range(2)]
    cands = [Candidate(f"m{i}", "github", "github-prefix", u, u + REFS, "git-refs")
             for i, u in enumerate(urls)]
    walls = []
    for _ in range(runs):
        started = time.monotonic()
        results = run_health(cands, deadline)
        walls.append(time.monotonic() - started)
        alive = sum(r.alive for r in results)
    wall = statistics.median(walls)
    print(f"mirror test: {len(cands)} candidates, {len(cands) - alive} dead, deadline "
          f"{deadline:g} s")
    print(f"  concurrent (sdboot): median {wall:.3f} s = {wall / deadline:.1%} of the deadline "
          f"(target < 110 %)")
    sequential = 3 * deadline + sum(
        (r.latency_ms or 0) / 1000 for r in results if r.alive)
    print(f"  one after another, same timeout: at least {sequential:.2f} s "
          f"({sequential / wall:.1f}x slower)")
    for h in live + hung:
        h.stop()


def bench_rewrite(runs: int) -> None:
    path = os.environ.get("SDBOOT_BENCH_LAUNCH_FILE")
    if path:
        text = Path(path).read_bytes().decode("utf-8")
        label = path
    else:
        text = POST_V13_UTILS
        while len(text) < 25_000:  # the size of v1.10.1's modules/launch_utils.py
            text += POST_V13_UTILS.replace("def ", "def x_")
        label = "fixture grown to ~25 KB"
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        once = rewrite_text(text, "https://ghfast.top/")
        rewrite_text(once.text, "https://ghfast.top/")
        back = rewrite_text(once.text, None)
        times.append(time.perf_counter() - started)
    assert back.text == text
    print(f"rewrite ({label}, {len(text)} chars, {len(once.changes)} literals changed): "
          f"apply + re-apply + revert median {statistics.median(times) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deadline", type=float, default=2.0)
    parser.add_argument("-n", type=int, default=5)
    args = parser.parse_args()
    bench_health(args.deadline, args.n)
    bench_rewrite(args.n)


if __name__ == "__main__":
    main()
