"""Put an install back as a snapshot (snapshot.py) has it: the commits of the WebUI, of each
repository and extension (fetched through the mirror when a commit is missing), the
environment from the snapshot's lock (only when it differs: exactly the lock's
distributions, no resolution, the extras removed), then the files byte for byte and the
record. Each part is idempotent: a rollback that was interrupted converges when run again.
Used by `sdboot rollback` and by `sdboot update` when a step fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import local, local_or_lookup, t
from sdboot.install.context import InstallContext
from sdboot.install.plan import StepResult, StepUI
from sdboot.install.snapshot import copy_of, restore_files
from sdboot.install.update_git import Git
from sdboot.install.update_plan import ROLLBACK_STEPS, UPDATE_STATE
from sdboot.io import git as gitops
from sdboot.io.files import inside, remove_tree
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
