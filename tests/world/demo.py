"""Try sdboot with no GPU and no internet: build the local world (a simulated RTX 3060,
a loopback "GitHub" and prefix proxy, a package index with stub torch wheels), then run
the real `sdboot install` against it, `sdboot verify`, and the no-op second install.

    python -m tests.world.demo [--dir DIR] [--mirror world|none] [--installer uv|pip]

Needs the test extras (pip install -e ".[test]"), git and a C compiler. Everything is
written under DIR (default: a new temporary folder) and nothing leaves this machine."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.world.local import ROOT, build_local_world, sdboot_argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="where to build (kept)")
    parser.add_argument("--mirror", default="world", help="world (loopback proxy) or none")
    parser.add_argument("--installer", choices=("uv", "pip"), default=None)
    args = parser.parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="sdboot-demo-"))
    print(f"Building the local world in {base} ...", flush=True)
    started = time.monotonic()
    world = build_local_world(base / "world")
    print(f"  done in {time.monotonic() - started:.1f} s: GitHub and proxy at "
          f"{world.github.url}, package index at {world.index.url}", flush=True)
    extra = {"SDBOOT_INSTALLER": args.installer} if args.installer else {}
    env = world.env(**extra)
    env.pop("NO_COLOR", None)
    env.pop("COLUMNS", None)
    webui = base / "stable-diffusion-webui"
    try:
        for title, cmd in (
            ("sdboot gpu", sdboot_argv("gpu")),
            ("sdboot install", sdboot_argv("install", str(webui), "--mirror", args.mirror)),
            ("sdboot verify", sdboot_argv("verify", str(webui))),
            ("sdboot install (again: a no-op)", sdboot_argv("install", str(webui))),
        ):
            print(f"\n$ {title}", flush=True)
            t = time.monotonic()
            rc = subprocess.run(cmd, env=env, cwd=ROOT, check=False).returncode
            print(f"  (exit {rc}, {time.monotonic() - t:.2f} s)", flush=True)
            if rc != 0:
                return rc
    finally:
        world.stop()
    print(f"\nThe installed WebUI is in {webui}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
