"""The install's plan and outcome: options, the step UI protocol, step results, the report,
and the pure helpers (disk space, the webui-user install block, fingerprints, the target)."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.files import exclusive_lock
from sdboot.io.runner import quote
from sdboot.mirrors.blocks import BlockKind
from sdboot.mirrors.env import MirrorEnv
from sdboot.values import Profile
from sdboot.webui.folder import is_webui

PREPARE_TIMEOUT_S = 3600.0
STATE = ".sdboot"
INSTALL_MARKERS = (">>> sdboot install (managed: sdboot install) >>>", "<<< sdboot install <<<")
INSTALL_BLOCK = BlockKind(INSTALL_MARKERS, re.compile(
    "python_cmd|PYTHON|venv_dir|VENV_DIR|COMMANDLINE_ARGS|PIP_CONSTRAINT|PIP_BUILD_CONSTRAINT"
    "|UV_BUILD_CONSTRAINT"))
# Free disk: below NEED_GB the profile cannot install; below RECOMMENDED_GB warn (the
# full install is about 12 GB before any model).
NEED_GB = {"cuda": 8.0, "rocm": 12.0, "cpu": 3.0, "mps": 3.0}
RECOMMENDED_GB = 12.0


class StepUI(Protocol):
    def note(self, text: str, style: str = "") -> None: ...

    def begin(self, index: int, total: int, title: str) -> None: ...

    def detail(self, text: str) -> None: ...

    def end(self, status: str, elapsed_s: float, note: str = "") -> None: ...


@dataclass
class InstallOptions:
    webui_dir: Path
    profile: str | None = None
    mirror: str | None = None  # preset / mirror name, auto, none; None: the record's or none
    env_kind: str | None = None  # venv | conda; None: the record's or venv
    webui_repo: str | None = None
    ref: str | None = None
    dry_run: bool = False
    yes: bool = False
    insecure: bool = False
    lock: Path | None = None  # --lock FILE: reproduce that lock exactly


@dataclass
class StepResult:
    name: str
    title: str
    status: str  # done | skipped | planned | failed
    elapsed_s: float = 0.0
    note: str = ""
    commands: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": self.status,
                "elapsed_s": round(self.elapsed_s, 3), "note": self.note,
                "commands": self.commands}


@dataclass
class InstallReport:
    webui: Path
    steps: list[StepResult]
    profile: str | None
    env_python: str | None
    selection: dict[str, Any]
    complete: bool
    nothing_to_do: bool
    log: Path | None
    notes: list[str] = field(default_factory=list)
    webui_args: list[str] = field(default_factory=list)

    def next_command(self) -> str:
        return f"sdboot launch {quote([str(self.webui)])}"

    def webui_script(self) -> str:
        """The WebUI's own way, which the webui-user blocks keep working."""
        root = quote([str(self.webui)])
        return f"cd {root} && " + ("webui-user.bat" if sys.platform == "win32" else "./webui.sh")

    def to_json(self) -> dict[str, Any]:
        return {"schema": "sdboot.install/1", "webui": str(self.webui), "profile": self.profile,
                "python": self.env_python, "mirror": self.selection,
                "complete": self.complete, "nothing_to_do": self.nothing_to_do,
                "steps": [s.to_json() for s in self.steps], "notes": self.notes,
                "webui_args": self.webui_args, "log": str(self.log) if self.log else None,
                "next": self.next_command() if self.complete else None}


# --- pure helpers --------------------------------------------------------------------------


def disk_verdict(free_bytes: int, backend: str) -> tuple[str, str]:
    """('ok'|'warn'|'stop', message) for the free space at the install location."""
    free_gb = free_bytes / 1024**3
    need = NEED_GB.get(backend, 8.0)
    if free_gb < need:
        return "stop", t("only {free} GB free; the {backend} stack needs about {need} GB (the "
                         "full install about {full} GB plus models)", free=f"{free_gb:.1f}",
                         backend=backend, need=f"{need:g}", full=f"{RECOMMENDED_GB:g}")
    if free_gb < RECOMMENDED_GB:
        return "warn", t("{free} GB free: enough for the install, tight for models (about "
                         "{full} GB plus 2-7 GB per checkpoint)", free=f"{free_gb:.1f}",
                         full=f"{RECOMMENDED_GB:g}")
    return "ok", t("{free} GB free", free=f"{free_gb:.0f}")


def install_block(python_cmd: str, venv_dir: str, args: list[str], constraints: Path,
                  build_constraints: Path | None = None) -> MirrorEnv:
    """What webui-user.sh / .bat need so that the WebUI's own scripts use sdboot's
    environment, flags and pins (and the build guard: PIP_BUILD_CONSTRAINT for pip >= 25.3,
    UV_BUILD_CONSTRAINT for uv; an older pip builds under PIP_CONSTRAINT)."""
    names = {"python_cmd": python_cmd, "PYTHON": python_cmd, "venv_dir": venv_dir,
             "VENV_DIR": venv_dir, "COMMANDLINE_ARGS": " ".join(args),
             "PIP_CONSTRAINT": str(constraints)}
    if build_constraints is not None:
        names.update(PIP_BUILD_CONSTRAINT=str(build_constraints),
                     UV_BUILD_CONSTRAINT=str(build_constraints))
    return MirrorEnv(names)


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def sha_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "-"


def python_for(profile: Profile | None, preferred: str | None = None) -> str:
    """The WebUI's tested Python (its catalog entry's, else 3.10) unless the profile
    cannot use it."""
    from packaging.specifiers import SpecifierSet

    if preferred and (profile is None or not profile.python
                      or preferred in SpecifierSet(profile.python)):
        return preferred
    if profile is not None and profile.python and "3.10" not in SpecifierSet(profile.python):
        for candidate in ("3.11", "3.12", "3.9"):
            if candidate in SpecifierSet(profile.python):
                return candidate
    return "3.10"


def target(path: Path) -> Path:
    path = path.expanduser()
    return (path if path.is_absolute() else Path.cwd() / path).resolve()


def existing_parent(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def check_target(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise SdbootError(t("{dir} is a file, not a folder", dir=root),
                          t("give a folder for the WebUI"))
    if root.is_dir() and not is_webui(root) and any(root.iterdir()):
        raise SdbootError(t("{dir} is not empty and holds no WebUI", dir=root),
                          t("give a new or empty folder, or an existing WebUI checkout"))


@contextmanager
def webui_lock(root: Path) -> Iterator[None]:
    """One sdboot at a time changes a WebUI (install, update, rollback, uninstall): the lock
    beside the folder, removed again when done (a killed holder's lock is released by the
    OS). Another holder: exit 1 before anything changes."""
    lock = root.parent / f".{root.name}.sdboot.lock"
    with exclusive_lock(lock) as held:
        if not held:
            raise SdbootError(t("another sdboot install is running for {dir}", dir=root),
                              t("wait for it to finish (or stop it), then run again"),
                              exit_code=1)
        try:
            yield
        finally:  # no clutter beside the WebUI (removed while held)
            lock.unlink(missing_ok=True)
