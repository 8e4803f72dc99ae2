"""The real WebUI's requirement set, installed the WebUI's way and sdboot's way, cold and warm
caches, on the same machine in the same run (issue 14's benchmark).

    WebUI route: python3.10 -m venv; then launch.py's three pip runs one after another:
                 pip install CLIP_PACKAGE, pip install OPENCLIP_PACKAGE,
                 pip install -r requirements_versions.txt   (pip compiles bytecode)
    sdboot:      uv venv --seed; then sdboot's requirements step: ONE uv run of the
                 requirements file and CLIP under the same constraints and build guard
Like with like: --bytecode both (pip's default; uv with UV_COMPILE_BYTECODE=1) or neither
(pip --no-compile; uv's default, which is what sdboot does: the WebUI compiles on its first
start).

Both venvs get the torch stack first (torch 2.1.2 / torchvision 0.16.2 from a separate,
always-warm uv cache; untimed), as the WebUI's route has it before its preparation. Cold: each
route gets fresh pip and uv caches; warm: the same caches again. Needs network access to the
package index (the default one, or PIP_INDEX_URL) and the WebUI's CLIP archive: pass a
checkout of the real WebUI and, where GitHub is not reachable, the archive through a proxy
(the real-webui recipe's loopback proxy: ../shared/tools/real-webui/).

    python bench/requirements.py WEBUI_CHECKOUT [--proxy http://127.0.0.1:8870/] [-n 1]
                                 [--bytecode both|neither]
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

from sdboot.stack.packages import find_uv  # noqa: E402
from sdboot.webui.bootstrap import plan_bootstrap  # noqa: E402
from sdboot.webui.folder import launch_file  # noqa: E402

TORCH = ["torch==2.1.2", "torchvision==0.16.2"]


def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.monotonic() - started


def python310() -> str:
    for cand in sorted(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"),
                            "versions").glob("3.10.*/bin/python3")):
        return str(cand)
    found = shutil.which("python3.10")
    if not found:
        raise SystemExit("no Python 3.10")
    return found


def proxied(url: str, proxy: str | None) -> str:
    return f"{proxy.rstrip('/')}/{url}" if proxy and url.startswith("https://github.com/") \
        else url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("webui", type=Path, help="a checkout of the real WebUI (e.g. v1.10.1)")
    ap.add_argument("--proxy", help="a GitHub prefix proxy for the CLIP/open_clip archives")
    ap.add_argument("-n", type=int, default=1, help="rounds (cold + warm each)")
    ap.add_argument("--bytecode", choices=("both", "neither"), default="both",
                    help="compile bytecode in both routes or in neither")
    args = ap.parse_args()
    uv = find_uv()
    if uv is None:
        raise SystemExit("uv is needed")
    lf = launch_file(args.webui)
    if lf is None:
        raise SystemExit(f"{args.webui}: no launch file")
    reqs = args.webui / "requirements_versions.txt"
    text = lf.read_text(encoding="utf-8")
    # the WebUI's own route installs CLIP and open_clip from their archives, whatever the
    # requirements hold; sdboot's plan leaves open_clip to the requirements where they name it
    from sdboot.webui.folder import parse_env_defaults

    defaults = parse_env_defaults(text)
    webui_pkgs = [proxied(defaults[v], args.proxy) for v in ("CLIP_PACKAGE", "OPENCLIP_PACKAGE")
                  if v in defaults]
    boot = plan_bootstrap(text, reqs.read_text(encoding="utf-8"), {})
    sdboot_pkgs = [proxied(p, args.proxy) for p in boot.packages]
    py310 = python310()
    work = Path(tempfile.mkdtemp(prefix="sdboot-bench-reqs-"))
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("PIP_", "UV_")) or k in ("PIP_INDEX_URL", "UV_INDEX_URL")}
    base_env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
                    UV_NO_CONFIG="1")
    constraints = work / "constraints.txt"  # what sdboot writes for torch 2.1.2
    constraints.write_text("\n".join([*TORCH, "numpy<2", "setuptools<82"]) + "\n")
    build = work / "build-constraints.txt"
    build.write_text("setuptools<82\n")
    torch_cache = work / "torch-cache"  # warm for both routes: torch is not what is measured
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for _ in range(args.n):
            for route in ("webui", "sdboot"):
                caches = work / f"cache-{route}"
                shutil.rmtree(caches, ignore_errors=True)
                for state in ("cold", "warm"):
                    env = {**base_env, "PIP_CACHE_DIR": str(caches / "pip"),
                           "UV_CACHE_DIR": str(caches / "uv")}
                    venv = work / f"venv-{route}"
                    shutil.rmtree(venv, ignore_errors=True)
                    py = str(venv / "bin/python")
                    if route == "webui":
                        t_venv = run([py310, "-m", "venv", str(venv)], env)
                    else:
                        t_venv = run([uv, "venv", "-q", "--seed", "--python", py310, str(venv)],
                                     env)
                    run([uv, "pip", "install", "-q", "--python", py, *TORCH, "setuptools<82"],
                        {**env, "UV_CACHE_DIR": str(torch_cache)})
                    if route == "webui":
                        pip_env = {**env, "PIP_CONSTRAINT": str(constraints)}
                        if args.bytecode == "neither":
                            pip_env["PIP_NO_COMPILE"] = "1"
                        t = sum(run([py, "-m", "pip", "install", pkg, "--prefer-binary"],
                                    pip_env, cwd=args.webui) for pkg in webui_pkgs)
                        t += run([py, "-m", "pip", "install", "-r", str(reqs),
                                  "--prefer-binary"], pip_env, cwd=args.webui)
                    else:
                        t = run([uv, "pip", "install", "--python", py, "-r", str(reqs),
                                 *sdboot_pkgs, "-c", str(constraints),
                                 "--build-constraint", str(build)],
                                {**env, **({"UV_COMPILE_BYTECODE": "1"}
                                           if args.bytecode == "both" else {})},
                                cwd=args.webui)
                    results.setdefault((route, state), []).append(t_venv + t)
                    print(f"{route:7} {state}: venv {t_venv:6.1f} s + requirements {t:6.1f} s",
                          flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmedian seconds (venv + requirement set; torch untimed; bytecode compiled in "
          f"{args.bytecode})")
    for state in ("cold", "warm"):
        base = statistics.median(results[("webui", state)])
        ours = statistics.median(results[("sdboot", state)])
        print(f"{state}: WebUI route {base:7.1f}   sdboot {ours:7.1f}   "
              f"{base / ours:5.1f}x faster")


if __name__ == "__main__":
    main()
