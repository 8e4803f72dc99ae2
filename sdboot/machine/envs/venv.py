"""venv environments, built by the Python the WebUI wants (3.10 for A1111 and Forge).
find_python() looks for it the ways users have it: the Windows launcher (`py -3.10`),
`python3.10` on PATH, pyenv, and uv-managed Pythons (install's preflight offers
`uv python install` where none is found: machine/uv_python.py)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.files import remove_tree
from sdboot.io.runner import Runner, which
from sdboot.machine.envs import env_python
from sdboot.machine.uv_python import find_uv, install_hint, uv_find_python

VERSION_CHECK = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)"


def _ask(runner: Runner, argv: list[str], version: str) -> Path | None:
    res = runner.run([*argv, "-c", VERSION_CHECK], timeout=15)
    lines = res.stdout.split()
    if res.ok and len(lines) >= 2 and lines[0] == version:
        return Path(lines[1])
    return None


def python_candidates(version: str) -> list[list[str]]:
    found: list[list[str]] = []
    if sys.platform == "win32" and which("py"):
        found.append(["py", f"-{version}"])
    for name in (f"python{version}", "python3", "python"):
        exe = which(name)
        if exe:
            found.append([exe])
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for folder in sorted((pyenv_root / "versions").glob(f"{version}.*"), reverse=True):
        candidate = folder / ("python.exe" if sys.platform == "win32" else "bin/python3")
        if candidate.exists():
            found.append([str(candidate)])
    return found


def locate_python(version: str, runner: Runner) -> Path | None:
    """An interpreter of exactly this X.Y, or None. Never raises."""
    if sys.version_info[:2] == tuple(int(p) for p in version.split(".")):
        return Path(sys.executable)
    for argv in python_candidates(version):
        path = _ask(runner, argv, version)
        if path:
            return path
    uv = find_uv()
    return uv_find_python(uv, version, runner) if uv else None


def find_python(version: str, runner: Runner) -> Path:
    """An interpreter of exactly this X.Y, or SdbootError saying how to get one."""
    found = locate_python(version, runner)
    if found is not None:
        return found
    raise SdbootError(t("Python {version} was not found (tried py, python{version}, pyenv, "
                        "uv)", version=version),
                      install_hint(version, None, find_uv()), exit_code=1)


@dataclass
class VenvEnv:
    prefix: Path
    base_python: Path | None = None
    kind: str = "venv"

    def python(self) -> Path:
        return env_python(self.prefix)

    def exists(self) -> bool:
        return self.python().exists() and (self.prefix / "pyvenv.cfg").exists()

    def create(self, runner: Runner, uv: str | None = None,
               env: dict[str, str] | None = None, seed_caps: tuple[str, ...] = ()) -> str:
        """Make the venv; with uv (`uv venv --seed`: pip seeded, since the WebUI runs
        `python -m pip`) in a fraction of `python -m venv`'s 6-7 s, which stays the fallback.
        uv seeds the newest setuptools, so `seed_caps` (e.g. "setuptools<82": old WebUIs and
        extensions import pkg_resources at run time) are applied to the seeds right away, as
        `python -m venv` would have given an older bundled one. Returns "uv" or "venv"."""
        base = self.base_python or Path(sys.executable)
        if uv is not None:
            made = runner.run([uv, "venv", "--seed", "--python", str(base), str(self.prefix)],
                              timeout=300, env=env)
            ok = made.ok and self.exists() and runner.run(
                [str(self.python()), "-I", "-m", "pip", "--version"], timeout=60).ok
            if ok and seed_caps:
                ok = runner.run([uv, "pip", "install", "--python", str(self.python()),
                                 *seed_caps], timeout=300, env=env).ok
            if ok:
                return "uv"
            if self.prefix.exists():  # a half-made one: start again the standard way
                remove_tree(self.prefix.parent, self.prefix, t("the environment folder"))
        res = runner.run([str(base), "-m", "venv", str(self.prefix)], timeout=300)
        if not res.ok:
            raise SdbootError(t("could not create the venv {path}: {error}", path=self.prefix,
                                error=res.tail(3)),
                              t("on Debian/Ubuntu install python3.X-venv; or use --env conda"),
                              exit_code=1)
        return "venv"

    def remove(self, root: Path | None = None) -> None:
        """Delete the environment; only inside `root` (default: the folder holding it)."""
        if self.prefix.exists():
            remove_tree(root or self.prefix.parent, self.prefix, t("the environment folder"))
