"""Snapshots of an install, taken by `sdboot update` before it changes anything and restored
by `sdboot rollback`: WEBUI/.sdboot/snapshots/<id>.json holds the WebUI's commit (and
branch), every repository's and extension's commit and origin, the profile and the mirror
selection; WEBUI/.sdboot/snapshots/<id>/ holds byte copies (named by their sha256) of the
files a rollback puts back exactly: the environment's lock, the install record, the mirror
state and the launch file's saved original, the launch file, webui-user.sh / .bat.

A snapshot is a state file: validated before anything acts on it (io/statefile.py). Its
commits are hex, its folder names plain names, its files come from a fixed list inside the
WebUI folder and every copy must still have its recorded sha256; anything else is an exit-2
error before a file is touched."""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import N_, t
from sdboot.install.update_plan import COMMIT
from sdboot.io.files import atomic_write, inside, remove_tree
from sdboot.io.statefile import (
    bad_state,
    check_fields,
    is_str,
    load_state,
    opt_str,
    str_map,
)

SCHEMA = "sdboot.snapshot/1"
FOLDER = ".sdboot/snapshots"
# what a rollback restores byte for byte (None in a snapshot: the file was not there)
FILES = (".sdboot/install.json", ".sdboot/lock.txt", ".sdboot/mirror.json",
         ".sdboot/constraints.txt", ".sdboot/build-constraints.txt",
         ".sdboot/release-constraints.txt", ".sdboot/lock-constraints.txt",
         ".sdboot/backup/modules/launch_utils.py.orig", ".sdboot/backup/launch.py.orig",
         "webui-user.sh", "webui-user.bat", "launch.py", "modules/launch_utils.py")
_ID = re.compile(r"\d{8}T\d{6}Z(?:-\d{1,3})?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ +-]{0,99}")
_SHA = re.compile(r"[0-9a-f]{64}")
FIX = N_("move that snapshot (its .json and its folder) out of .sdboot/snapshots/ and use "
         "another one (sdboot snapshots lists them)")


def check_snapshot_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_ID.fullmatch(value))


def _commit(value: Any) -> bool:
    return isinstance(value, str) and bool(COMMIT.fullmatch(value))


def _origin(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.startswith("-") and
                             len(value) < 2000 and value.isprintable() and " " not in value)


def _clones(value: Any, extension: bool) -> bool:
    if not isinstance(value, dict):
        return False
    for name, entry in value.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name \
                or not isinstance(entry, dict):
            return False
        commit = entry.get("commit")
        if not (_commit(commit) or (extension and commit is None)) \
                or not _origin(entry.get("origin")):
            return False
        branch = entry.get("branch")
        if branch is not None and not (isinstance(branch, str) and re.fullmatch(
                r"(?!-)[\w./+@-]{1,200}", branch)):
            return False
    return True


_FIELDS = {
    "id": check_snapshot_id, "created": is_str, "reason": opt_str, "ref": opt_str,
    "profile": opt_str, "mirror": lambda v: v is None or str_map(v),
    "webui": lambda v: isinstance(v, dict) and _commit(v.get("commit")) and _origin(
        v.get("origin")) and (v.get("branch") is None or _clones(
            {"w": {"commit": v["commit"], "branch": v["branch"]}}, False)),
    "repositories": lambda v: _clones(v, False),
    "extensions": lambda v: _clones(v, True),
    "files": lambda v: isinstance(v, dict) and all(
        k in FILES and (s is None or (isinstance(s, str) and bool(_SHA.fullmatch(s))))
        for k, s in v.items()),
}


def folder(root: Path) -> Path:
    return root / FOLDER


def _copy_path(root: Path, snap_id: str, digest: str) -> Path:
    return root / FOLDER / snap_id / digest


def new_id(root: Path) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    snap_id, n = stamp, 1
    while (folder(root) / f"{snap_id}.json").exists() or (folder(root) / snap_id).exists():
        n += 1
        snap_id = f"{stamp}-{n}"
    return snap_id


def take_snapshot(root: Path, facts: dict[str, Any]) -> str:
    """Write a snapshot of root: `facts` holds webui, repositories, extensions, profile,
    mirror, ref, reason (read by the caller); the files are copied here. The copies come
    first and the .json last, so an interrupted snapshot is no snapshot."""
    snap_id = new_id(root)
    files: dict[str, str | None] = {}
    for rel in FILES:
        path = root / rel
        if path.is_symlink() or not path.is_file():
            files[rel] = None
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        copy = _copy_path(root, snap_id, digest)
        if not copy.is_file():
            atomic_write(copy, data, root=root)
        files[rel] = digest
    doc = {"schema": SCHEMA, "id": snap_id,
           "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
           **facts, "files": files}
    atomic_write(folder(root) / f"{snap_id}.json",
                 (json.dumps(doc, indent=2) + "\n").encode(), root=root)
    return snap_id


def read_snapshot(root: Path, snap_id: str) -> dict[str, Any]:
    """The validated snapshot, its copies proven intact (SdbootError exit 2 otherwise)."""
    if not check_snapshot_id(snap_id):
        raise SdbootError(t("'{name}' is not a snapshot name", name=snap_id[:80]),
                          t("give one that `sdboot snapshots` lists (e.g. 20261207T120000Z)"))
    rel = f"{FOLDER}/{snap_id}.json"
    doc = load_state(root, rel, SCHEMA, FIX)
    path = root / rel
    if doc is None:
        raise SdbootError(t("there is no snapshot {name} in {dir}", name=snap_id, dir=root),
                          t("`sdboot snapshots {dir}` lists them", dir=root))
    check_fields(path, doc, _FIELDS, FIX)
    for key in ("id", "webui", "files"):
        if key not in doc:
            raise bad_state(path, t("lacks the field '{field}'", field=key), FIX)
    if doc["id"] != snap_id:
        raise bad_state(path, t("has an invalid field {field}", field="'id'"), FIX)
    for name, digest in doc["files"].items():
        if digest is None:
            continue
        copy = _copy_path(root, snap_id, digest)
        inside(root, copy, t("a snapshot copy"))
        data = copy.read_bytes() if copy.is_file() and not copy.is_symlink() else None
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            raise bad_state(path, t("keeps {file}, but its copy is missing or damaged",
                                    file=name), FIX)
    return doc


def list_snapshots(root: Path) -> list[dict[str, Any]]:
    """Every snapshot of root, oldest first (each validated)."""
    base = folder(root)
    if base.is_symlink() or not base.is_dir():
        return []
    inside(root, base, t("the snapshots folder"))
    ids = sorted(p.name[:-5] for p in base.iterdir()
                 if p.name.endswith(".json") and check_snapshot_id(p.name[:-5]))
    return [read_snapshot(root, i) for i in ids]


def restore_files(root: Path, snap: dict[str, Any]) -> list[str]:
    """Put every file of the snapshot back byte for byte; sdboot's own state files that the
    snapshot did not have are removed (a tracked file it did not have was left to git).
    Returns the files that changed."""
    changed = []
    for rel, digest in snap["files"].items():
        path = root / rel
        inside(root, path.parent, rel)
        if digest is None:
            if rel.startswith(".sdboot/") and os.path.lexists(path):
                remove_tree(root, path, rel)
                changed.append(rel)
            continue
        data = _copy_path(root, snap["id"], digest).read_bytes()
        current = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        if current != data:
            atomic_write(path, data, root=root)
            changed.append(rel)
    return changed


def copy_of(root: Path, snap: dict[str, Any], rel: str) -> bytes | None:
    digest = snap["files"].get(rel)
    return _copy_path(root, snap["id"], digest).read_bytes() if digest else None
