"""What is in extensions/: each folder's commit, branch, stored origin and whether the WebUI
loads it (config.json), read without the network; with `check`, also whether its upstream
has newer commits (a fetch through the mirror each). `extension_snapshot` is the record of
commits and origins that a snapshot of the install keeps (the seam for `sdboot update`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sdboot.addons.ext_config import read_config
from sdboot.addons.ext_git import (
    Waiting,
    branch_of,
    check_update,
    need_git,
    plan_fetcher,
)
from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io import git as gitops
from sdboot.io.files import inside
from sdboot.io.runner import Runner

SNAPSHOT_SCHEMA = "sdboot.extensions-snapshot/1"
FETCHES_AT_ONCE = 6


@dataclass(frozen=True)
class ExtInfo:
    name: str
    path: Path
    is_git: bool
    commit: str | None
    branch: str | None
    origin: str | None  # remote.origin.url as stored (the upstream)
    enabled: bool | None  # None: config.json cannot be read
    check: Waiting | None = None  # None: not checked

    def to_json(self) -> dict[str, Any]:
        check = self.check
        return {"name": self.name, "path": str(self.path), "git": self.is_git,
                "commit": self.commit, "branch": self.branch, "origin": self.origin,
                "enabled": self.enabled, "checked": check is not None,
                "update_waiting": check.waiting if check else None,
                "behind": check.behind if check else None,
                "ahead": check.ahead if check else None,
                "check_error": check.error if check else None}


def extension_folders(root: Path) -> list[Path]:
    """extensions/* folders (hidden ones, such as a partial clone, left out), sorted; a link
    in extensions/ is listed as it is, never followed out of the WebUI folder."""
    folder = root / "extensions"
    if folder.is_symlink() or not folder.is_dir():
        return []
    inside(root, folder, t("the extensions/ folder"))
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name.lower())


def find_extension(root: Path, name: str) -> Path:
    """extensions/NAME, proven a folder directly inside extensions/, or SdbootError (exit 2)
    naming what is there."""
    found = {p.name: p for p in extension_folders(root)}
    if name not in found or "/" in name or "\\" in name:
        known = ", ".join(sorted(found)) or t("none yet")
        raise SdbootError(t("no extension {name} in {folder}", name=name,
                            folder=root / "extensions"),
                          t("installed: {names} (see sdboot ext list)", names=known))
    return found[name]


def describe_extensions(root: Path, runner: Runner | None = None, *,
                        check: bool = False) -> list[ExtInfo]:
    """The rows of `ext list`. check: fetch each git clone's origin (network) first."""
    runner = runner or Runner()
    folders = extension_folders(root)
    try:
        disabled: set[str] | None = set(read_config(root).disabled)
    except SdbootError:
        disabled = None  # a list still lists; disable/enable name the broken file
    git = need_git() if folders else "git"
    fetcher = plan_fetcher(root, runner, prompt=False) if check and folders else None
    rows = []
    for ext in folders:
        is_git = (ext / ".git").exists() and not ext.is_symlink()
        rows.append(ExtInfo(
            ext.name, ext, is_git,
            gitops.head_commit(ext, runner, git) if is_git else None,
            branch_of(ext, runner, git) if is_git else None,
            gitops.stored_origin(ext, runner, git) if is_git else None,
            None if disabled is None else ext.name not in disabled))
    if fetcher is not None:  # the fetches wait on the network: a few at a time
        from concurrent.futures import ThreadPoolExecutor

        clones = [r for r in rows if r.is_git]
        with ThreadPoolExecutor(max_workers=FETCHES_AT_ONCE) as pool:
            checks = list(pool.map(lambda r: check_update(r.path, fetcher, runner), clones))
        found = dict(zip((r.name for r in clones), checks, strict=True))
        rows = [replace(r, check=found.get(r.name)) for r in rows]
    return rows


def extension_snapshot(root: Path, runner: Runner | None = None) -> dict[str, Any]:
    """The extensions as a snapshot keeps them: name -> commit, branch, upstream origin,
    enabled. Read-only and offline; what `sdboot update` will store before it changes
    anything, and what a rollback will return each clone to."""
    rows = describe_extensions(root, runner)
    return {"schema": SNAPSHOT_SCHEMA,
            "extensions": {r.name: {"commit": r.commit, "branch": r.branch,
                                    "origin": r.origin, "enabled": r.enabled}
                           for r in rows}}
