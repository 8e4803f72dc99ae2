"""`sdboot update` and `sdboot rollback`: move an install that sdboot made to another ref of
its WebUI, safely.

    snapshot -> fetch (through the mirror; origin stays upstream) -> checkout (sdboot's
    managed blocks and launch-file rewrite taken out, the user's changes stop it unless
    --force stashes them; then the rewrite put back) -> the install's plan again with the
    profile re-resolved for the new version (clone ... record: what still holds is skipped)

Progress is kept in WEBUI/.sdboot/update.json (update_plan.py): an update that was killed is
finished by the next `sdboot update`, and one whose step failed is rolled back to its
snapshot (rollback.py) on the spot, so the install ends at the old state or the new one,
never between. Takes the same lock as `sdboot install`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError, keep_on_interrupt
from sdboot.i18n import N_, _, local, local_or_lookup, t
from sdboot.install.catalog import pinned_commit
from sdboot.install.context import InstallContext
from sdboot.install.plan import InstallOptions, StepResult, StepUI, target
from sdboot.install.rollback import rollback
from sdboot.install.snapshot import list_snapshots, read_snapshot, take_snapshot
from sdboot.install.update_git import Git
from sdboot.install.update_plan import (
    COMMIT,
    LATEST,
    UPDATE_STATE,
    UPDATE_STEPS,
    UpdateFailed,
    UpdateReport,
    is_branch,
    is_hex_ref,
    latest_release,
    read_update_state,
    resolve_ref,
)
from sdboot.io import git as gitops
from sdboot.io.files import atomic_write, exclusive_lock
from sdboot.io.runner import Runner
from sdboot.webui.folder import is_webui

KEPT_UPDATE = N_("the update stopped part-way: run `sdboot update` again to finish it, or "
                 "`sdboot rollback` to go back to the snapshot it took")
Extensions = Callable[[Path], dict[str, Any]]


@dataclass
class UpdateOptions:
    webui_dir: Path
    ref: str | None = None
    force: bool = False
    dry_run: bool = False
    yes: bool = False
    profile: str | None = None  # --profile: this one instead of the resolver's choice


class _Offset:
    """The install's step UI, numbered after the update's own steps."""

    def __init__(self, ui: StepUI, offset: int) -> None:
        self.ui, self.offset = ui, offset
        self.last = ""  # the title of the step begun last (the one that failed, if any)

    def note(self, text: str, style: str = "") -> None:
        self.ui.note(text, style)

    def begin(self, index: int, total: int, title: str) -> None:
        self.last = title
        self.ui.begin(index + self.offset, total + self.offset, title)

    def detail(self, text: str) -> None:
        self.ui.detail(text)

    def end(self, status: str, elapsed_s: float, note: str = "") -> None:
        self.ui.end(status, elapsed_s, note)


def open_install(webui_dir: Path, ui: StepUI, runner: Runner) -> tuple[InstallContext, Git]:
    """The install at webui_dir (a git checkout sdboot installed) and git on it."""
    from sdboot.mirrors.status import webui_selection

    root = target(webui_dir)
    if not is_webui(root) or not (root / ".git").exists():
        raise SdbootError(t("{dir} is not a WebUI git checkout", dir=root),
                          t("give the folder of a WebUI that `sdboot install` made"))
    ctx = InstallContext(InstallOptions(root, yes=True), ui, runner)
    if not ctx.record:
        raise SdbootError(t("{dir} has no install record: sdboot did not install it", dir=root),
                          t("run `sdboot install {dir}` first (it completes an existing "
                            "checkout)", dir=root))
    info = gitops.detect_git(runner)
    if info.exe is None:
        raise SdbootError(t("git is not installed (or not on PATH)"),
                          t("install git and run the command again"), exit_code=1)
    ctx.git = info.exe
    ctx.git_config_env = info.config_env or info.version is None
    ctx.selection = webui_selection(root, ctx.table)
    return ctx, Git(info.exe, runner, ctx.selection, ctx.table, ctx.git_config_env)


@contextmanager
def install_lock(root: Path, dry_run: bool) -> Iterator[None]:
    """The lock `sdboot install` takes: one sdboot at a time changes a WebUI."""
    if dry_run:
        yield
        return
    lock = root.parent / f".{root.name}.sdboot.lock"
    with exclusive_lock(lock) as held:
        if not held:
            raise SdbootError(t("another sdboot install is running for {dir}", dir=root),
                              t("wait for it to finish (or stop it), then run again"),
                              exit_code=1)
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)


def save_state(root: Path, state: dict[str, Any]) -> None:
    state["schema"] = "sdboot.update-state/1"
    atomic_write(root / UPDATE_STATE, (json.dumps(state, indent=2) + "\n").encode(), root=root)


def refuse_changes(git: Git, root: Path, force: bool) -> list[str]:
    changes = git.user_changes(root)
    if changes and not force:
        raise SdbootError(t("your own changes in {dir} are in the way: {files}", dir=root,
                            files=", ".join(changes[:10])),
                          t("commit or undo them, or run again with --force (sdboot keeps "
                            "them in a git stash and names it)"), exit_code=1)
    return changes


class UpdateRun:
    """One `sdboot update` invocation."""

    def __init__(self, opts: UpdateOptions, ui: StepUI, runner: Runner,
                 extensions: Extensions | None = None) -> None:
        self.opts, self.ui, self.runner = opts, ui, runner
        self.ctx, self.git = open_install(opts.webui_dir, ui, runner)
        self.root = self.ctx.root
        self.extensions = extensions
        self.confirm: Callable[[str], bool] | None = None
        record = self.ctx.record
        self.report = UpdateReport(self.root, opts.ref, {
            "commit": self.git.head(self.root), "ref": record.get("ref"),
            "profile": record.get("profile")}, {}, dry_run=opts.dry_run, log=runner.log_path)

    def run(self) -> UpdateReport:
        with install_lock(self.root, self.opts.dry_run):
            if not self.opts.dry_run:
                keep_on_interrupt(KEPT_UPDATE)
            return self._run()

    def _run(self) -> UpdateReport:
        state = read_update_state(self.root)
        if state.get("phase") == "rollback":  # an interrupted rollback: finish it
            self.ui.note(local(t("finishing the rollback to snapshot {id} that was "
                                 "interrupted", id=state["snapshot"])), "yellow")
            self._rollback(state["snapshot"])
            raise UpdateFailed(SdbootError(
                t("the update was rolled back: {dir} is as snapshot {id} has it",
                  dir=self.root, id=state["snapshot"]),
                t("run `sdboot update` again to try once more"), exit_code=1), self.report)
        if state:
            if self.opts.ref and self.opts.ref != state["ref"]:
                raise SdbootError(t("an interrupted update to {ref} is not finished",
                                    ref=state["ref"]),
                                  t("run `sdboot update {dir}` to finish it, or `sdboot "
                                    "rollback {dir}` to go back", dir=self.root))
            self.ui.note(local(t("finishing the interrupted update to {ref}",
                                 ref=state["ref"])), "yellow")
        else:
            state = self._plan()
            if state.get("nothing"):
                return self.report
        self.report.ref = state["ref"]
        return self._steps(state)

    def _plan(self) -> dict[str, Any]:
        """What to move to (the remote's refs, read through the mirror; nothing changes)."""
        record = self.ctx.record
        if not record.get("complete"):
            raise SdbootError(t("the install in {dir} is not complete", dir=self.root),
                              t("finish it first: sdboot install {dir}", dir=self.root))
        refs = self.git.remote_refs(self.root)
        ref = str(self.opts.ref or (record.get("ref") if is_branch(refs, record.get("ref"))
                                    else LATEST))
        if ref == LATEST:
            ref = latest_release(refs) or ""
            if not ref:
                raise SdbootError(t("the WebUI's origin has no release tag (vX.Y.Z)"),
                                  t("give --ref BRANCH, TAG or COMMIT"), exit_code=1)
        gitops.check_ref(ref)
        commit = resolve_ref(refs, ref)
        pinned = pinned_commit(self.ctx.catalog, self.ctx.repo, ref) if self.ctx.repo else None
        if pinned and is_branch(refs, ref) and COMMIT.fullmatch(pinned):
            commit = pinned  # a branch the catalog knows: its known-good commit, as install
            self.ui.note(local(t("{ref}: the catalog's known-good commit {commit}", ref=ref,
                                 commit=pinned[:10])))
        if commit is None and not is_hex_ref(ref):
            raise SdbootError(t("the WebUI's origin has no branch or tag {ref}", ref=ref),
                              t("give --ref BRANCH, TAG or COMMIT (`latest`: the newest "
                                "release)"))
        self.report.ref = ref
        head = self.report.before["commit"] or ""
        changes = refuse_changes(self.git, self.root, self.opts.force)
        if (commit or "") == head or (commit is None and head.startswith(ref.lower())):
            self.report.nothing_to_do = self.report.complete = True
            self.report.after = dict(self.report.before)
            return {"nothing": True}
        from sdboot.mirrors.apply import read_state

        mirror = read_state(self.root)
        env = (mirror.get("env") or {}).get("selection")
        state = {"phase": "checkout", "ref": ref, "commit": commit,
                 "from_commit": head or None, "started": int(time.time()),
                 "rewrite": (mirror.get("rewrite") or {}).get("mirror"),
                 "env_mirror": {g: n for g, n in env.items() if g != "label"} if env else None,
                 "stash": None, "changes": changes, "profile": self.opts.profile}
        if self.opts.dry_run:
            return state
        question = _("Update {dir} from {old} to {ref} ({commit})? A snapshot is taken first.")
        if self.confirm is not None and not self.confirm(question.format(
                dir=self.root, old=record.get("ref") or head[:10], ref=ref,
                commit=(commit or ref)[:10])):
            raise SdbootError(t("update cancelled; nothing was changed"),
                              t("run it again (add --yes to skip this question)"), exit_code=1)
        return state

    # -- the steps ------------------------------------------------------------------------
    def _steps(self, state: dict[str, Any]) -> UpdateReport:
        from sdboot.install.update_steps import UpdateSteps

        steps = UpdateSteps(self, state)
        if self.opts.dry_run:
            self.report.steps = steps.planned()
            return self.report
        try:
            steps.run()
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            if not state.get("snapshot"):
                raise
            error = exc if isinstance(exc, SdbootError) else SdbootError(
                t("unexpected error: {error}", error=f"{type(exc).__name__}: {exc}"),
                t("the full log says more"), 1)
            self._fail(state, steps.current, error)
        self.report.complete = True
        self.report.after = {"commit": self.git.head(self.root), "ref": state["ref"],
                             "profile": steps.profile}
        return self.report

    def _fail(self, state: dict[str, Any], step: str, error: SdbootError) -> None:
        snap_id = state["snapshot"]
        self.ui.note(local(t("the step {step} failed: {error}", step=step,
                             error=error.message)), "red")
        self.ui.note(local(t("rolling back to snapshot {id} ...", id=snap_id)), "yellow")
        state["phase"] = "rollback"
        save_state(self.root, state)
        try:
            self._rollback(snap_id)
        except SdbootError as again:
            raise UpdateFailed(SdbootError(
                t("the update failed at {step} ({error}), and so did the rollback: {again}",
                  step=step, error=error.message, again=again.message),
                t("run `sdboot rollback {dir}` (the update state is kept)", dir=self.root),
                exit_code=1), self.report) from error
        raise UpdateFailed(SdbootError(
            t("the update to {ref} failed at {step}: {error}; rolled back to snapshot {id}",
              ref=state["ref"], step=step, error=error.message, id=snap_id),
            t("{dir} is as it was before the update; what the failed step advised, for "
              "another try: {hint}", dir=self.root, hint=error.hint or "the full log says more"),
            exit_code=error.exit_code or 1),
            self.report) from error

    def _rollback(self, snap_id: str) -> None:
        snap = read_snapshot(self.root, snap_id)
        ctx, _git = open_install(self.root, self.ui, self.runner)
        self.report.steps += rollback(ctx, self.git, snap, self.ui)
        self.report.rolled_back = True
        self.report.snapshot = snap_id
        self.report.notes += [str(n) for n in ctx.notes]


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
    root = target(webui_dir)
    rows = [{"id": s["id"], "created": s.get("created"), "ref": s.get("webui", {}).get("ref"),
             "commit": s["webui"]["commit"], "profile": s.get("profile"),
             "reason": s.get("reason")} for s in list_snapshots(root)]
    return {"schema": "sdboot.snapshots/1", "webui": str(root), "snapshots": rows}


def step_title(title: str) -> str:
    return local_or_lookup(title)


__all__ = ["UPDATE_STEPS", "RollbackReport", "UpdateOptions", "UpdateRun", "run_rollback",
           "snapshots_doc", "step_title", "take_snapshot"]
