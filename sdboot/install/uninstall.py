"""`sdboot uninstall`: take away what sdboot made in a WebUI folder, and nothing else.

What goes: the environment the install record says sdboot created (venv/ or conda-env/,
proven by webui.record.env_prefix; a folder sdboot did not make is kept and named), the
launch file's mirror rewrite (restored byte for byte, as `mirror revert` does), sdboot's
managed blocks in webui-user.sh / .bat (the file given back as it was before sdboot, its
.sdboot-backup removed when it matches; a file sdboot created and that is empty without the
blocks is removed), config.json.sdboot-backup, .sdboot/, and the entry in the list of
installs. Models, outputs, extensions and the checkout stay, unless `everything`: then the
whole WebUI folder goes. The plan is made first (`--dry-run` shows it); every deletion goes
through io.files.remove_tree (proven inside its folder, no link followed)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError, keep_on_interrupt
from sdboot.i18n import N_, t
from sdboot.install.plan import INSTALL_BLOCK, webui_lock
from sdboot.install.registry import forget_install, read_registry, tree_size
from sdboot.io.files import atomic_write, remove_tree
from sdboot.io.statefile import STATE_DIR, state_dir
from sdboot.mirrors.blocks import (
    BACKUP_SUFFIX,
    MIRROR_BLOCK,
    UserFile,
    plan_user_file,
    read_user_file,
)
from sdboot.webui.folder import is_webui
from sdboot.webui.record import FIX, env_prefix, read_record

USER_FILES = (("webui-user.sh", "sh"), ("webui-user.bat", "bat"))
CONFIG_BACKUP = "config.json.sdboot-backup"  # addons/ext_config.py (same wing rank: no import)
KEPT_DIRS = ("models", "embeddings", "outputs", "extensions")
RESUME = N_("what was removed is gone, the rest is still there; run the same command again "
            "to finish")


@dataclass(frozen=True)
class Removal:
    path: Path
    what: str  # environment | state | backup | webui
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "what": self.what, "bytes": self.bytes}


@dataclass
class UninstallPlan:
    root: Path
    everything: bool
    removals: list[Removal] = field(default_factory=list)
    files: list[UserFile] = field(default_factory=list)  # webui-user files to give back
    restore_launch: str | None = None  # the launch file rewritten by mirror apply
    registered: bool = False
    kept: dict[str, int] = field(default_factory=dict)  # folder -> bytes it holds
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.removals)

    def to_json(self) -> dict[str, Any]:
        return {"webui": str(self.root), "all": self.everything,
                "remove": [r.to_json() for r in self.removals],
                "restore": ([self.restore_launch] if self.restore_launch else [])
                + [uf.name for uf in self.files],
                "registry_entry": self.registered, "bytes": self.bytes,
                "kept": self.kept, "notes": list(self.notes)}


def _target(webui_dir: Path) -> Path:
    root = webui_dir.expanduser().resolve()
    if not root.is_dir():
        raise SdbootError(t("{dir} is not a folder", dir=webui_dir),
                          t("give the WebUI folder sdboot installed (see: sdboot list)"))
    if not is_webui(root) and not (root / STATE_DIR).is_dir():
        raise SdbootError(t("{dir} is neither a WebUI checkout nor a folder sdboot installed "
                            "into", dir=root),
                          t("give the WebUI folder sdboot installed (see: sdboot list)"))
    return root


def _user_file(root: Path, name: str, shell: str) -> UserFile | None:
    """webui-user.* without sdboot's blocks, when that changes anything."""
    uf = plan_user_file(root, name, shell, [(INSTALL_BLOCK, None), (MIRROR_BLOCK, None)])
    return uf if uf.changed else None


def plan_uninstall(webui_dir: Path, everything: bool = False) -> UninstallPlan:
    """What uninstall would do; changes nothing. The install record and the mirror state
    are validated first (an untrusted one is an exit-2 error, nothing changed)."""
    from sdboot.mirrors.apply import read_state

    root = _target(webui_dir)
    plan = UninstallPlan(root, everything)
    plan.registered = any(e["path"] == str(root) for e in read_registry()[0])
    if everything:
        if not plan.registered and not (root / STATE_DIR).is_dir():
            raise SdbootError(t("sdboot did not install {dir} (no .sdboot/ folder, not in "
                                "sdboot list): not deleting it", dir=root),
                              t("delete a folder sdboot did not make yourself"))
        plan.removals.append(Removal(root, "webui", tree_size(root)))
        return plan
    state_dir(root, FIX)
    record = read_record(root)
    envs = {env_prefix(root, record[k]) for k in ("env", "env_pending")
            if (record.get(k) or {}).get("prefix")}
    for prefix in sorted(envs):
        if os.path.lexists(prefix):
            plan.removals.append(Removal(prefix, "environment", tree_size(prefix)))
    for name in ("venv", "conda-env"):
        if (root / name).is_dir() and root / name not in envs:
            plan.notes.append(t("{name}/ is kept: sdboot did not create it", name=name))
    rewrite = read_state(root).get("rewrite")
    if rewrite:
        plan.restore_launch = str(rewrite["file"])
    plan.files = [uf for name, shell in USER_FILES if (uf := _user_file(root, name, shell))]
    for name, _shell in USER_FILES:
        backup = root / (name + BACKUP_SUFFIX)
        if backup.is_file() and not backup.is_symlink():
            uf = next((f for f in plan.files if f.name == name), None)
            now = uf.new if uf else read_user_file(root, name)[0]
            if backup.read_bytes().decode("utf-8", "surrogateescape") == now:
                plan.removals.append(Removal(backup, "backup", tree_size(backup)))
            else:
                plan.notes.append(t("{backup} is kept: {name} was changed after sdboot "
                                    "saved it (compare the two)", backup=backup.name,
                                    name=name))
    for rel, what in ((CONFIG_BACKUP, "backup"), (STATE_DIR, "state")):
        if os.path.lexists(root / rel):
            plan.removals.append(Removal(root / rel, what, tree_size(root / rel)))
    plan.kept = {d: tree_size(root / d) for d in KEPT_DIRS if (root / d).is_dir()}
    return plan


def run_uninstall(plan: UninstallPlan) -> list[str]:
    """Carry the plan out; returns notes. Holds the install lock (an install running for
    this folder makes this exit 1 before anything changes)."""
    root = plan.root
    notes = list(plan.notes)
    with webui_lock(root):  # the one install holds
        keep_on_interrupt(RESUME)
        if plan.everything:
            remove_tree(root.parent, root, "the WebUI folder")
        else:
            notes += _give_back_files(plan)
            for removal in plan.removals:
                remove_tree(root, removal.path, removal.what)
    if plan.registered:
        notes += forget_install(root)
    return notes


def _give_back_files(plan: UninstallPlan) -> list[str]:
    """The launch file (mirror revert, which also takes the mirror block out) first, then
    sdboot's install block; a webui-user file that only sdboot's blocks made goes."""
    from sdboot.mirrors.apply import revert
    from sdboot.mirrors.loading import load_mirrors

    root, notes = plan.root, []
    if plan.restore_launch:
        notes += revert(root, load_mirrors()).notes
    for name, shell in USER_FILES:
        uf = _user_file(root, name, shell)
        if uf is None:
            continue
        if not uf.new.strip() and not os.path.lexists(root / (name + BACKUP_SUFFIX)):
            remove_tree(root, root / name, name)
        else:
            atomic_write(root / name, uf.new.encode("utf-8", "surrogateescape"), root=root)
    return notes
