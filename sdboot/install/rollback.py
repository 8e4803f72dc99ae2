"""Put an install back as a snapshot (snapshot.py) has it: the commits of the WebUI, of each
repository and extension (fetched through the mirror when a commit is missing), the
environment from the snapshot's lock (only when it differs: exactly the lock's
distributions, no resolution, the extras removed), then the files byte for byte and the
record. Each part is idempotent: a rollback that was interrupted converges when run again.
Used by `sdboot rollback` and by `sdboot update` when a step fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError, keep_on_interrupt
from sdboot.i18n import N_, _, local, local_or_lookup, t
from sdboot.install.context import InstallContext
from sdboot.install.plan import StepResult, StepUI, target
from sdboot.install.snapshot import copy_of, list_snapshots, read_snapshot, restore_files
from sdboot.install.update_git import Git
from sdboot.install.update_io import install_lock, open_install, refuse_changes, save_state
from sdboot.install.update_plan import ROLLBACK_STEPS, UPDATE_STATE, read_update_state
from sdboot.io import git as gitops
from sdboot.io.files import inside, remove_tree
from sdboot.io.runner import Runner
from sdboot.stack.lock import freeze, lock_differences, parse_lock
from sdboot.stack.packages import INSTALL_TIMEOUT_S, choose_installer


def restore_commits(ctx: InstallContext, git: Git, snap: dict[str, Any]) -> str:
    root = ctx.root
    webui = snap["webui"]
    git.ensure_commit(root, webui["commit"])
    git.checkout(root, webui["commit"], webui.get("branch"), force=True)
    moved = []
    for name, entry in sorted(snap.get("repositories", {}).items()):
        repo = inside(root, root / "repositories" / name, t("a repository folder"))
        if (repo / ".git").exists():
            if git.head(repo) != entry["commit"]:
                git.ensure_commit(repo, entry["commit"])
                git.checkout(repo, entry["commit"], force=True)
                moved.append(name)
        elif entry.get("origin"):
            plan = ctx.clone_plan(entry["origin"])
            gitops.clone(plan.url, repo, ctx.runner, expected_commit=entry["commit"],
                         env={**git.env, **plan.env}, git=git.exe, origin=plan.origin)
            moved.append(name)
        origin = entry.get("origin")
        if origin and gitops.stored_origin(repo, ctx.runner, git.exe) != origin:
            gitops.set_origin(repo, origin, ctx.runner, git.exe)
    for name, entry in sorted(snap.get("extensions", {}).items()):
        ext = inside(root, root / "extensions" / name, t("an extension folder"))
        commit = entry.get("commit")
        if commit is None or not (ext / ".git").exists() or git.head(ext) == commit:
            continue
        try:  # never forced: an extension's own edits stay (a note says so)
            git.ensure_commit(ext, commit)
            git.checkout(ext, commit, entry.get("branch"))
            moved.append(f"extensions/{name}")
        except SdbootError as exc:
            ctx.notes.append(t("extensions/{name} stays where it is: {error}", name=name,
                               error=exc.message))
    head = snap["webui"]["commit"][:10]
    return t("WebUI at {commit}; moved: {moved}", commit=head,
             moved=", ".join(moved) or t("no repository or extension"))


def restore_environment(ctx: InstallContext, snap: dict[str, Any]) -> str:
    """The environment as the snapshot's lock has it, when it differs."""
    from sdboot.install.lockfile import install_lock
    from sdboot.mirrors.status import webui_selection
    from sdboot.stack.profiles import get_profile, load_profiles

    data = copy_of(ctx.root, snap, ".sdboot/lock.txt")
    if data is None:
        return t("the snapshot has no lock: the environment was left as it is")
    lock = parse_lock(data.decode("utf-8", "replace"), "snapshot lock.txt")
    python = ctx.python()
    if not python.exists():
        raise SdbootError(t("the environment {path} is missing", path=python),
                          t("run `sdboot install {dir} --lock {lock}`", dir=ctx.root,
                            lock=ctx.root / ".sdboot/lock.txt"), exit_code=1)
    if not lock_differences(lock, freeze(python, ctx.runner)):
        return t("unchanged: already the snapshot's lock")
    ctx.profile = get_profile(load_profiles(), lock.profile)
    ctx.selection = webui_selection(ctx.root, ctx.table)
    installer = choose_installer()
    install_lock(ctx, lock, installer)
    extra = sorted(n for n in freeze(python, ctx.runner) if n not in lock.packages)
    if extra:
        argv = [str(installer.exe), "pip", "uninstall", "--python", str(python), *extra] \
            if installer.kind == "uv" else [str(python), "-m", "pip", "uninstall", "-y", *extra]
        res = ctx.runner.stream(argv, timeout=INSTALL_TIMEOUT_S, env=ctx.pip_env(),
                                on_line=ctx.ui.detail)
        if not res.ok:
            raise SdbootError(t("could not remove {names}: {error}", names=", ".join(extra),
                                error=res.tail(2)), t("the full log says more"), exit_code=1)
    left = lock_differences(lock, freeze(python, ctx.runner))
    if left:
        raise SdbootError(t("the environment still differs from the snapshot's lock: {diff}",
                            diff="; ".join(left[:5])),
                          t("run `sdboot rollback` again; see the log"), exit_code=1)
    return t("the snapshot's lock again ({n} distributions; {extra} removed)",
             n=len(lock.packages), extra=len(extra))


def rollback(ctx: InstallContext, git: Git, snap: dict[str, Any],
             ui: StepUI) -> list[StepResult]:
    """Restore the snapshot, step by step on the UI; the update state goes last."""
    root: Path = ctx.root
    results = []
    parts: dict[str, Callable[[], str]] = {
             "commits": lambda: restore_commits(ctx, git, snap),
             "environment": lambda: restore_environment(ctx, snap),
             "files": lambda: t("restored: {files}", files=", ".join(
                 restore_files(root, snap)) or t("nothing (all as they were)"))}
    for i, (name, title) in enumerate(ROLLBACK_STEPS, start=1):
        ui.begin(i, len(ROLLBACK_STEPS), local_or_lookup(title))
        started = time.monotonic()
        try:
            note = parts[name]()
        except BaseException:
            ui.end("failed", time.monotonic() - started)
            raise
        elapsed = time.monotonic() - started
        ui.end("done", elapsed, local(note))
        results.append(StepResult(name, title, "done", elapsed, str(note)))
    from sdboot.install.registry import remember_install
    from sdboot.webui.record import read_record

    ctx.notes.extend(remember_install(root, read_record(root)))  # `sdboot list` follows
    state = root / UPDATE_STATE
    if state.exists():
        remove_tree(root, state, t("the update state"))
    return results


@dataclass
class RollbackReport:
    webui: Path
    snapshot: str
    steps: list[StepResult]
    stash: str | None
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"schema": "sdboot.rollback/1", "webui": str(self.webui),
                "snapshot": self.snapshot, "steps": [s.to_json() for s in self.steps],
                "stash": self.stash, "notes": self.notes}


def run_rollback(webui_dir: Path, snap_id: str | None, ui: StepUI, runner: Runner,
                 force: bool = False,
                 confirm: Callable[[str], bool] | None = None) -> RollbackReport:
    """`sdboot rollback`: the named snapshot, else the interrupted update's, else the
    newest."""
    ctx, git = open_install(webui_dir, ui, runner)
    root = ctx.root
    with install_lock(root, False):
        state = read_update_state(root)
        if snap_id is None:
            snaps = list_snapshots(root)
            snap_id = state.get("snapshot") or (snaps[-1]["id"] if snaps else None)
            if snap_id is None:
                raise SdbootError(t("{dir} has no snapshot", dir=root),
                                  t("`sdboot update` takes one before it changes anything"))
        snap = read_snapshot(root, snap_id)  # validated, copies intact: before any change
        stash = None
        if state.get("phase") != "rollback":
            changes = refuse_changes(git, root, force)
            if confirm is not None and not confirm(_("Roll {dir} back to snapshot {id} "
                                                    "({commit})?").format(
                    dir=root, id=snap_id, commit=snap["webui"]["commit"][:10])):
                raise SdbootError(t("rollback cancelled; nothing was changed"),
                                  t("run it again (add --yes to skip this question)"),
                                  exit_code=1)
            if changes:
                stash = git.stash(root, changes, f"sdboot rollback {snap_id}")
        keep_on_interrupt(KEPT_ROLLBACK)
        save_state(root, {**state, "phase": "rollback", "snapshot": snap_id})
        steps = rollback(ctx, git, snap, ui)
    notes = [str(n) for n in ctx.notes]
    if stash:
        notes.append(str(t("your changes are kept in the stash {stash} (git stash list)",
                           stash=stash[:10])))
    return RollbackReport(root, snap_id, steps, stash, notes)


KEPT_ROLLBACK = N_("the rollback stopped part-way: run `sdboot rollback` again to finish it")


def snapshots_doc(webui_dir: Path) -> dict[str, Any]:
    """`sdboot snapshots --json`."""
    from sdboot.webui.folder import is_webui

    root = target(webui_dir)
    if not is_webui(root):
        raise SdbootError(t("{dir} is not a WebUI git checkout", dir=root),
                          t("give the folder of a WebUI that `sdboot install` made"))
    rows = [{"id": s["id"], "created": s.get("created"), "ref": s.get("webui", {}).get("ref"),
             "commit": s["webui"]["commit"], "profile": s.get("profile"),
             "reason": s.get("reason")} for s in list_snapshots(root)]
    return {"schema": "sdboot.snapshots/1", "webui": str(root), "snapshots": rows}
