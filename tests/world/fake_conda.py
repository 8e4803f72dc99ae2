"""A fake `conda` (and `micromamba`) executable: it checks its arguments against the real
command lines (conda env create -f FILE -n NAME|-p PREFIX; conda env list --json;
micromamba create -y -f FILE -p PREFIX) and builds the environment with venv, recording
the environment file it was given. conda is not installable here."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

SCRIPT = r'''#!{python}
import json, os, subprocess, sys
from pathlib import Path

import yaml

ROOT = Path({root!r})
args = sys.argv[1:]
flavour = Path(sys.argv[0]).name
log = ROOT / "calls.jsonl"
with log.open("a") as fh:
    fh.write(json.dumps([flavour] + args) + "\n")


def fail(msg):
    sys.stderr.write(f"{{flavour}}: error: {{msg}}\n")
    sys.exit(2)


def take(flag, alias=None):
    for f in (flag, alias):
        if f and f in args:
            i = args.index(f)
            if i + 1 >= len(args):
                fail(f"argument {{f}}: expected one argument")
            value = args[i + 1]
            del args[i:i + 2]
            return value
    return None


if args[:2] == ["env", "list"]:
    if args[2:] != ["--json"]:
        fail("unrecognized arguments: " + " ".join(args[2:]))
    envs = sorted(str(p) for p in (ROOT / "envs").glob("*"))
    print(json.dumps({{"envs": envs}}))
    sys.exit(0)

if flavour == "micromamba":
    if not args or args[0] != "create":
        fail("micromamba creates environments with `create`")
    args.pop(0)
    if "-y" in args:
        args.remove("-y")
else:
    if args[:2] != ["env", "create"]:
        fail("expected `env create`")
    del args[:2]
env_file = take("-f", "--file")
name = take("-n", "--name")
prefix = take("-p", "--prefix")
if args:
    fail("unrecognized arguments: " + " ".join(args))
if env_file is None:
    fail("the environment file is required (-f)")
if (name is None) == (prefix is None):
    fail("give exactly one of -n NAME / -p PREFIX")
doc = yaml.safe_load(Path(env_file).read_text())
if not isinstance(doc, dict) or "dependencies" not in doc:
    fail("not an environment file")
target = Path(prefix) if prefix else ROOT / "envs" / name
if target.exists() and any(target.iterdir()):
    fail(f"prefix already exists: {{target}}")
subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
(target / "conda-meta").mkdir()
(target / "conda-meta" / "environment.yaml").write_text(Path(env_file).read_text())
print(f"Preparing transaction: done\nExecuting transaction: done\n# To activate this "
      f"environment, use\n#     $ conda activate {{name or target}}")
'''


def install_fake_conda(root: Path) -> Path:
    """Write `conda` and `micromamba` into root/bin; envs by name go to root/envs."""
    (root / "bin").mkdir(parents=True, exist_ok=True)
    (root / "envs").mkdir(exist_ok=True)
    for flavour in ("conda", "micromamba"):
        exe = root / "bin" / flavour
        exe.write_text(SCRIPT.format(python=sys.executable, root=str(root)))
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return root / "bin"
