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

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError, keep_on_interrupt
from sdboot.i18n import N_, _, local, t
from sdboot.install.catalog import pinned_commit
from sdboot.install.plan import StepUI
from sdboot.install.rollback import rollback
from sdboot.install.snapshot import read_snapshot
from sdboot.install.update_io import AsNotes, install_lock, open_install, refuse_changes, save_state
from sdboot.install.update_plan import (
    COMMIT,
    LATEST,
    UpdateFailed,
    UpdateReport,
    is_branch,
    is_hex_ref,
    latest_release,
    read_update_state,
    resolve_ref,
)
from sdboot.io import git as gitops
from sdboot.io.runner import Runner

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
            if self.opts.ref and self.opts.ref not in (state["ref"], LATEST):
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
        if (commit or "") == head or (commit is None and head.startswith(ref.lower())):
            self.report.nothing_to_do = self.report.complete = True
            self.report.after = dict(self.report.before)
            return {"nothing": True}
        changes = refuse_changes(self.git, self.root, self.opts.force)
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
        ui = AsNotes(self.ui)
        ctx, _git = open_install(self.root, ui, self.runner)
        self.report.steps += rollback(ctx, self.git, snap, ui)
        self.report.rolled_back = True
        self.report.snapshot = snap_id
        self.report.notes += [str(n) for n in ctx.notes]
