"""The installs sdboot knows: $SDBOOT_CONFIG_DIR/installs.json, one entry per WebUI folder,
written when `sdboot install` completes and dropped by `sdboot uninstall`. The file is a
convenience, never an authority: it is read tolerantly (a damaged file or a hand-edited
entry is skipped with a note, never a crash), and nothing is deleted because of what it
says (uninstall works from the folder's own install record). Also the figures `sdboot
list` shows: folder sizes (an os.scandir walk that never follows a link) and the last
verify verdict (the launch guard's cached one, else the install's verify step)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.datafile import config_dir
from sdboot.io.files import atomic_write, exclusive_lock

SCHEMA = "sdboot.installs/1"
FILE = "installs.json"
# the launch guard's cache (sdboot/launch/guard.py GUARD_FILE; launch is a higher wing, so
# the name is repeated here and a test holds the two together)
GUARD_FILE = ".sdboot/guard.json"
MODEL_DIRS = ("models", "embeddings")
_FIELDS = ("webui", "version", "profile", "env")
UNKNOWN = {"verdict": "unknown", "source": None, "at": None}


def registry_path() -> Path:
    return config_dir() / FILE


def _entry(raw: Any) -> dict[str, Any] | None:
    """An entry as it may be trusted for showing: an absolute path and plain fields."""
    if not isinstance(raw, dict) or not isinstance(raw.get("path"), str):
        return None
    if not os.path.isabs(raw["path"]) or "\0" in raw["path"]:
        return None
    entry: dict[str, Any] = {"path": raw["path"]}
    for key in _FIELDS:
        entry[key] = raw[key] if isinstance(raw.get(key), str) else None
    at = raw.get("installed_at")
    entry["installed_at"] = at if isinstance(at, int) and not isinstance(at, bool) else None
    return entry


def read_registry() -> tuple[list[dict[str, Any]], list[str]]:
    """(entries, notes). Never raises for what is in the file."""
    try:
        path = registry_path()
        if not os.path.lexists(path):
            return [], []
        if path.is_symlink() or not path.is_file():
            return [], [t("{path} is not a plain file: ignored", path=path)]
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except SdbootError as exc:
        return [], [exc.message]
    except (OSError, ValueError) as exc:
        return [], [t("{path} cannot be read ({error}): ignored; the next install writes it "
                      "again", path=registry_path(), error=str(exc)[:120])]
    raw = doc.get("installs") if isinstance(doc, dict) and doc.get("schema") == SCHEMA else None
    if not isinstance(raw, list):
        return [], [t("{path} is not an sdboot list of installs: ignored", path=path)]
    entries, seen = [], set()
    for item in raw:
        entry = _entry(item)
        if entry is not None and entry["path"] not in seen:
            seen.add(entry["path"])
            entries.append(entry)
    notes: list[str] = [] if len(entries) == len(raw) else [
        t("{path}: {n} damaged or repeated entries skipped", path=path,
          n=len(raw) - len(entries))]
    return entries, notes


def _write(entries: list[dict[str, Any]]) -> None:
    path = registry_path()
    doc = {"schema": SCHEMA, "installs": entries}
    atomic_write(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())


def _change(edit: Any) -> list[str]:
    """Read, edit (a function of the entries), write, under a lock; notes instead of errors:
    the list is never a reason for an install or an uninstall to fail."""
    try:
        path = registry_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(50):
            with exclusive_lock(path.with_name(FILE + ".lock")) as held:
                if held:
                    entries, _notes = read_registry()
                    _write(edit(entries))
                    return []
            time.sleep(0.1)
        return [t("{path} is locked by another sdboot: the list of installs was not "
                  "updated", path=path)]
    except (OSError, SdbootError) as exc:
        reason = exc.message if isinstance(exc, SdbootError) else (exc.strerror or str(exc))
        return [t("the list of installs was not updated: {reason}", reason=reason)]


def remember_install(root: Path, record: dict[str, Any]) -> list[str]:
    """Add (or refresh) the WebUI at root, from its install record; returns notes."""
    entry = {"path": str(root.resolve()),
             "webui": "forge" if (root / "modules_forge").is_dir() else "a1111",
             "version": record.get("webui_version"), "profile": record.get("profile"),
             "env": (record.get("env") or {}).get("prefix"), "installed_at": int(time.time())}
    return _change(lambda entries: [e for e in entries if e["path"] != entry["path"]]
                   + [entry])


def forget_install(root: Path) -> list[str]:
    where = str(root.resolve())
    return _change(lambda entries: [e for e in entries if e["path"] != where])


def default_install() -> Path | None:
    """The newest install whose folder is still there (the contract's default WEBUI_DIR)."""
    entries, _notes = read_registry()
    for entry in sorted(entries, key=lambda e: e["installed_at"] or 0, reverse=True):
        if Path(entry["path"], "launch.py").is_file():
            return Path(entry["path"])
    return None


# --- sizes and the last verdict ----------------------------------------------------------------


def tree_size(path: Path) -> int:
    """Bytes held by the files under path (a file: its size), links never followed, a hard-
    linked file counted once; what cannot be read counts as nothing."""
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [path]
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            return st.st_size if stat.S_ISREG(st.st_mode) else 0
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            st = entry.stat(follow_symlinks=False)
                            if (st.st_dev, st.st_ino) not in seen:
                                seen.add((st.st_dev, st.st_ino))
                                total += st.st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).replace(microsecond=0).isoformat()


def last_verdict(root: Path, record: dict[str, Any]) -> dict[str, Any]:
    """The newest verdict known without running anything: the launch guard's cache (pass or
    fail, at the file's time), else the install's verify step (an install completes only
    when verify passed)."""
    guard = root / GUARD_FILE
    with contextlib.suppress(OSError, ValueError):
        if guard.is_file() and not guard.is_symlink() and not guard.parent.is_symlink():
            doc = json.loads(guard.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and isinstance(doc.get("ok"), bool):
                return {"verdict": "pass" if doc["ok"] else "fail", "source": "launch-guard",
                        "at": _iso(guard.stat().st_mtime)}
    steps = record.get("steps") or {}
    for name in ("reverify", "verify"):
        at = (steps.get(name) or {}).get("at")
        if isinstance(at, int) and record.get("complete"):
            return {"verdict": "pass", "source": "install", "at": _iso(at)}
    return dict(UNKNOWN)


@dataclass
class InstallRow:
    path: Path
    exists: bool
    webui: str | None = None
    version: str | None = None
    profile: str | None = None
    env: str | None = None
    verify: dict[str, Any] = field(default_factory=lambda: dict(UNKNOWN))
    size: dict[str, int | None] = field(default_factory=dict)
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "exists": self.exists, "webui": self.webui,
                "version": self.version, "profile": self.profile, "env": self.env,
                "verify": self.verify, "size": self.size, "problem": self.problem}


def describe_install(entry: dict[str, Any], sizes: bool = True) -> InstallRow:
    """One row of `sdboot list`: the registry's entry refreshed from the folder's own
    install record where it can be read."""
    from sdboot.webui.record import env_prefix, read_record

    root = Path(entry["path"])
    row = InstallRow(root, root.is_dir() and not root.is_symlink(), entry["webui"],
                     entry["version"], entry["profile"], entry["env"])
    if not row.exists:
        row.problem = t("the folder is gone")
        return row
    record: dict[str, Any] = {}
    try:
        record = read_record(root)
    except SdbootError as exc:
        row.problem = exc.message
    row.version = record.get("webui_version") or row.version
    row.profile = record.get("profile") or row.profile
    env = record.get("env") or {}
    with contextlib.suppress(SdbootError):
        row.env = str(env_prefix(root, env)) if env.get("prefix") else row.env
    row.verify = last_verdict(root, record)
    if sizes:
        env_path = Path(row.env) if row.env else None
        row.size = {"total": tree_size(root),
                    "env": tree_size(env_path) if env_path and env_path.is_dir() else None,
                    "models": sum(tree_size(root / d) for d in MODEL_DIRS)}
    return row


def list_installs(sizes: bool = True) -> tuple[list[InstallRow], list[str]]:
    entries, notes = read_registry()
    return [describe_install(e, sizes) for e in entries], notes
