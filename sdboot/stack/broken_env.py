"""Whether the Python environment itself is broken (env-broken): a missing interpreter, a
half-made venv, the webui-user exports that pick it."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from sdboot.i18n import N_, t
from sdboot.io.runner import Runner
from sdboot.values import Finding, Fix, Severity

# -- env-broken ---------------------------------------------------------------------------

def env_prefix(python: Path) -> Path:
    return python.parent.parent if python.parent.name in ("bin", "Scripts") else python.parent


def _dangling(python: Path) -> str:
    """The link of a chain that points at nothing (venv: bin/python -> python3 ->
    /base/bin/python3.10): the one named is the one that dangles, with its target."""
    link = python
    for _ in range(40):  # the kernel's own limit on a chain of links
        try:
            target = os.readlink(link)
        except OSError:
            break
        nxt = link.parent / target
        if not nxt.is_symlink():
            if link != python:
                return t("{link} points at {target}, which is gone (reached from {python})",
                         link=link, target=target, python=python)
            return t(_GONE, link=link, target=target)
        link = nxt
    return t(_GONE, link=python, target=os.readlink(python))


_GONE = N_("{link} points at {target}, which is gone")


def env_broken_reason(prefix: Path) -> str | None:
    """Why an environment that exists cannot start its interpreter: its base Python is
    gone or moved (pyvenv.cfg `home`; a dangling bin/python; Windows' "No Python at"), or a
    conda env without its python. None when nothing here says so."""
    from sdboot.machine.envs import env_python

    cfg = prefix / "pyvenv.cfg"
    python = env_python(prefix)
    if cfg.is_file():
        try:
            text = cfg.read_text(errors="replace")
        except OSError:
            text = ""
        match = re.search(r"^\s*home\s*=\s*(.+?)\s*$", text, re.MULTILINE)
        if match and not Path(match.group(1)).is_dir():
            facts = {"cfg": cfg, "home": match.group(1)}
            reason = t("its base Python is gone or moved: {cfg} says home = {home}, which "
                       "does not exist; {dangling}", dangling=_dangling(python), **facts) \
                if python.is_symlink() and not python.exists() else \
                t("its base Python is gone or moved: {cfg} says home = {home}, which does "
                  "not exist", **facts)
            if sys.platform == "win32":
                return t("{reason} (Windows: \"No Python at ...\")", reason=reason)
            return reason
        if python.is_symlink() and not python.exists():
            return _dangling(python)
        if not python.exists():
            return t("{python} is missing", python=python)
        return None
    if (prefix / "conda-meta").is_dir() and not python.exists():
        return t("a conda env whose python is missing ({python})", python=python)
    if python.is_symlink() and not python.exists():
        return _dangling(python)
    return None


def interpreter_fails(python: Path, runner: Runner) -> str | None:
    """None when `python -I -c pass` starts; else why not (its output's tail)."""
    res = runner.run([str(python), "-I", "-c", "pass"], timeout=60)
    if res.ok:
        return None
    return res.tail(2) or f"exit {res.returncode}"


def webui_user_exports(webui_dir: Path | None) -> dict[str, str]:
    """The variables webui-user.sh (webui-user.bat on Windows) sets for the WebUI."""
    from sdboot.machine.envs import parse_webui_user_bat, parse_webui_user_sh

    if webui_dir is None:
        return {}
    name, parse = (("webui-user.bat", parse_webui_user_bat) if sys.platform == "win32"
                   else ("webui-user.sh", parse_webui_user_sh))
    try:
        return parse((webui_dir / name).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {}


def find_broken_env(webui_dir: Path | None, python: Path | None,
                    recorded_prefix: str | None = None) -> tuple[Path, str] | None:
    """(prefix, why) for the first environment of this WebUI (or of `python`) that exists
    but whose interpreter cannot start: --python's, the install record's, webui-user's
    venv_dir, venv/."""
    candidates: list[Path] = []
    if python is not None:
        candidates.append(env_prefix(python))
    if recorded_prefix:
        candidates.append(Path(recorded_prefix))
    if webui_dir is not None:
        settings = webui_user_exports(webui_dir)
        venv_dir = settings.get("venv_dir") or settings.get("VENV_DIR")
        if venv_dir and venv_dir != "-":
            candidates.append(Path(venv_dir) if Path(venv_dir).is_absolute()
                              else webui_dir / venv_dir)
        candidates.append(webui_dir / "venv")
    for prefix in dict.fromkeys(candidates):
        if prefix.is_dir():
            reason = env_broken_reason(prefix)
            if reason:
                return prefix, reason
    return None


def env_broken_finding(prefix: Path, reason: str, fix: Fix | None = None) -> Finding:
    return Finding("env-broken", Severity.ERROR,
                   f"the environment {prefix} exists but its Python cannot start: {reason}",
                   fix or Fix("recreate it: sdboot doctor --fix --yes (a new environment with "
                              "the recorded profile's stack; packages sdboot did not put "
                              "there are lost)"))
