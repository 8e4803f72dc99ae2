"""Python environments for the WebUI behind one small interface (create, locate its
interpreter, exists, remove): venv.py and conda.py. locate_env() finds the environment of
an existing WebUI folder."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Protocol

from sdboot.i18n import t
from sdboot.io.runner import Runner


class Env(Protocol):
    kind: str
    prefix: Path

    def python(self) -> Path: ...

    def exists(self) -> bool: ...

    def create(self, runner: Runner) -> None: ...

    def remove(self, root: Path | None = None) -> None: ...


def env_python(prefix: Path) -> Path:
    """The interpreter inside a venv or conda prefix."""
    if sys.platform == "win32":
        for rel in ("Scripts/python.exe", "python.exe"):
            if (prefix / rel).exists():
                return prefix / rel
        return prefix / "Scripts" / "python.exe"
    return prefix / "bin" / "python"


def parse_webui_user_sh(text: str) -> dict[str, str]:
    """Uncommented `name=value` / `export name=value` lines of webui-user.sh."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"""\s*(?:export\s+)?(\w+)=["']?([^"'#\n]*)["']?""", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def parse_webui_user_bat(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        match = re.match(r"\s*set\s+(\w+)=(.*)$", line, re.IGNORECASE)
        if match:
            found[match.group(1).upper()] = match.group(2).strip().strip('"')
    return found


def locate_env(webui: Path) -> tuple[Path | None, str]:
    """The WebUI's interpreter: webui-user.sh / .bat (PYTHON, venv_dir / VENV_DIR), else
    venv/ inside the folder. Returns (python or None, how it was found)."""
    sh = webui / "webui-user.sh"
    bat = webui / "webui-user.bat"
    settings: dict[str, str] = {}
    if sys.platform == "win32" and bat.is_file():
        settings = parse_webui_user_bat(bat.read_text(errors="replace"))
        venv_dir = settings.get("VENV_DIR")
    elif sh.is_file():
        settings = parse_webui_user_sh(sh.read_text(errors="replace"))
        venv_dir = settings.get("venv_dir")
    else:
        venv_dir = None
    if venv_dir == "-":  # the WebUI's way of saying "no venv, use PYTHON as it is"
        python = settings.get("PYTHON") or settings.get("python_cmd")
        if python and Path(python).is_file():
            return Path(python), t("webui-user (PYTHON, no venv)")
        return None, t("webui-user says no venv, and PYTHON is not a file")
    if venv_dir:
        prefix = Path(venv_dir) if Path(venv_dir).is_absolute() else webui / venv_dir
        if env_python(prefix).exists():
            return env_python(prefix), t("webui-user ({prefix})", prefix=prefix)
    if env_python(webui / "venv").exists():
        return env_python(webui / "venv"), t("venv/ in the WebUI folder")
    return None, t("no venv/ in the WebUI folder and no venv_dir in webui-user")
