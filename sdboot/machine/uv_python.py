"""Getting the WebUI's Python with uv where the machine has none (Debian 12 and Ubuntu 24.04
package no 3.10; a Windows with only 3.12): `uv python install X.Y` downloads a
python-build-standalone build into uv's own Python folder, and `uv python find X.Y` names the
interpreter afterwards. plan_python_install() and render_command() are pure;
run_python_install() runs the plan through the runner.

The download can go through a mirror: UV_PYTHON_INSTALL_MIRROR replaces
`https://github.com/astral-sh/python-build-standalone/releases/download` in the URL uv
would fetch, i.e. a mirror serves `<base>/<release tag>/<asset>` (uv's environment
reference, https://docs.astral.sh/uv/reference/environment/#uv_python_install_mirror, and
the request that added it, https://github.com/astral-sh/uv/issues/5224). uv drops a
trailing '/' of the base itself; sdboot does too, so the shown command is the one run."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.mask import mask, mask_env
from sdboot.io.runner import Runner, quote, which

MIRROR_VAR = "UV_PYTHON_INSTALL_MIRROR"
INSTALL_TIMEOUT_S = 1800.0  # a 20-40 MB archive on a slow line


def find_uv() -> str | None:
    """uv on PATH, else the binary of the `uv` Python package (sdboot's optional
    dependency sdboot[uv] ships it inside a wheel)."""
    exe = which("uv")
    if exe:
        return exe
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return None


@dataclass(frozen=True)
class PythonInstallPlan:
    """What getting Python X.Y with uv runs: the install, then the question where it is."""

    version: str
    argv: tuple[str, ...]
    find_argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)  # added to the environment


def plan_python_install(version: str, uv: str | None,
                        mirror_url: str | None) -> PythonInstallPlan | None:
    """Pure: the plan for `uv python install <version>` with the python mirror (None: uv's
    own default source; an UV_PYTHON_INSTALL_MIRROR the user set stays in force then).
    UV_PYTHON_INSTALL_DIR is left to uv (and to the user). None without uv."""
    if uv is None:
        return None
    return PythonInstallPlan(version, (uv, "python", "install", version),
                             (uv, "python", "find", version), mirror_env(mirror_url))


def mirror_env(mirror_url: str | None) -> dict[str, str]:
    """UV_PYTHON_INSTALL_MIRROR for a python mirror's URL; nothing for None."""
    return {MIRROR_VAR: mirror_url.rstrip("/")} if mirror_url else {}


def render_command(argv: tuple[str, ...] | list[str], env: Mapping[str, str],
                   windows: bool | None = None) -> str:
    """Pure: the command as a user would type it, credentials masked. POSIX shells take
    `VAR=value cmd`; PowerShell (Windows) `$env:VAR="value"; cmd`."""
    windows = sys.platform == "win32" if windows is None else windows
    shown_env = mask_env(env)  # secret-named variables as ***
    if windows:
        sets = "".join(f'$env:{k}="{v}"; ' for k, v in shown_env.items())
    else:
        sets = "".join(f"{k}={quote([env[k]]) if v == env[k] else v} "
                       for k, v in shown_env.items())
    return mask(sets + quote(list(argv)))


def install_hint(version: str, mirror_url: str | None, uv: str | None = None,
                 windows: bool | None = None) -> str:
    """Pure: the hint of "Python X.Y was not found", naming the uv command (with the
    mirror) first, then the other ways."""
    windows = sys.platform == "win32" if windows is None else windows
    command = render_command(["uv", "python", "install", version], mirror_env(mirror_url),
                             windows)
    get_uv = "" if uv else t(" (uv first: pip install uv)")
    if windows:
        return t("run {command}{get_uv}, or winget install Python.Python.{version} "
                 "(or python.org); then run again", command=command, get_uv=get_uv,
                 version=version)
    return t("run {command}{get_uv}, or pyenv install {version}, or your package manager "
             "(e.g. apt install python{version}-venv); or use --env conda",
             command=command, get_uv=get_uv, version=version)


def uv_find_python(uv: str, version: str, runner: Runner) -> Path | None:
    """The interpreter `uv python find X.Y` reports (None: uv knows none). Never raises."""
    res = runner.run([uv, "python", "find", version], timeout=30)
    lines = res.stdout.strip().splitlines()
    if res.ok and lines and Path(lines[-1].strip()).exists():
        return Path(lines[-1].strip())
    return None


def run_python_install(plan: PythonInstallPlan, runner: Runner,
                       timeout: float = INSTALL_TIMEOUT_S) -> Path:
    """Run `uv python install`, then return what `uv python find` reports; SdbootError
    (exit 1) when either fails."""
    shown = render_command(plan.argv, plan.env)
    res = runner.run(list(plan.argv), timeout=timeout, env=dict(plan.env))
    if not res.ok:
        raise SdbootError(
            t("`{command}` failed: {tail}", command=shown, tail=mask(res.tail(3))),
            t("check the network; in mainland China use a python mirror (--mirror cn, or "
              "see sdboot mirror test --kind python)"), exit_code=1)
    found = uv_find_python(plan.find_argv[0], plan.version, runner)
    if found is None:
        raise SdbootError(
            t("uv installed Python {version} but `uv python find {version}` does not "
              "report it", version=plan.version),
            t("run uv python find {version} to see why, then run again",
              version=plan.version), exit_code=1)
    return found
