"""The steps of `sdboot update` (update.py runs them): snapshot, fetch, checkout, then the
install's own plan for the new version. Each of the update's steps checks the update state
first, so a rerun after a kill skips what was done; the install's steps check themselves."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from sdboot.errors import SdbootError
from sdboot.i18n import Text, local, local_or_lookup, t
from sdboot.install.catalog import pinned_commit
from sdboot.install.plan import INSTALL_BLOCK, InstallOptions, StepResult
from sdboot.install.snapshot import take_snapshot
from sdboot.install.update_plan import UPDATE_STATE, UPDATE_STEPS
from sdboot.io import git as gitops
from sdboot.io.files import remove_tree
from sdboot.webui.record import read_record, write_record

if TYPE_CHECKING:
    from sdboot.install.update import UpdateRun

_NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ +-]{0,99}")


class UpdateSteps:
    def __init__(self, run: UpdateRun, state: dict[str, Any]) -> None:
        self.run_ = run
        self.state = state
        self.root = run.root
        self.git = run.git
        self.current = "snapshot"
        self.profile: str | None = None

    def planned(self) -> list[StepResult]:
        """--dry-run: the plan, nothing run."""
        ref, commit = self.state["ref"], self.state.get("commit") or self.state["ref"]
        commands = {
            "snapshot": [f"write {self.root / '.sdboot/snapshots'}/<time>.json (commits, "
                         "origins, lock, webui-user files, launch file, mirror state)"],
            "fetch": [f"git -C {self.root} fetch --tags --force origin (through the mirror)"],
            "checkout": [f"git -C {self.root} checkout --detach {commit[:10]}  ({ref})"],
        }
        rows = [StepResult(name, title, "planned", commands=commands[name])
                for name, title in UPDATE_STEPS]
        rows.append(StepResult("install", "the install's plan for the new version", "planned",
                               commands=["the profile re-resolved for the new version; "
                                         "torch, requirements, prepare, verify, webui-user "
                                         "and record again where they changed"]))
        ui = self.run_.ui
        for i, row in enumerate(rows, start=1):
            ui.begin(i, len(rows), local_or_lookup(row.title))
            ui.end("planned", 0.0, "; ".join(row.commands))
        return rows

    def run(self) -> None:
        from sdboot.install.run import InstallRun
        from sdboot.install.steps import ORDER
        from sdboot.install.update_io import Offset

        ui, report = self.run_.ui, self.run_.report
        total = len(UPDATE_STEPS) + len(ORDER)
        for i, (name, title) in enumerate(UPDATE_STEPS, start=1):
            self.current = name
            ui.begin(i, total, local_or_lookup(title))
            started = time.monotonic()
            try:
                done, note = getattr(self, f"_{name}")()
            except BaseException:
                ui.end("failed", time.monotonic() - started)
                raise
            elapsed = time.monotonic() - started
            ui.end("done" if done else "skipped", elapsed, local(note))
            report.steps.append(StepResult(name, title, "done" if done else "skipped",
                                           elapsed, str(note)))
        offset = Offset(ui, len(UPDATE_STEPS))
        install = InstallRun(InstallOptions(self.root, ref=self.state["ref"], yes=True,
                                            profile=self.state.get("profile")), offset,
                             self.run_.runner)
        install.confirm = None
        self.current = "install"
        try:
            result = install._run_locked()
        finally:
            self.current = offset.last or self.current
        report.steps += result.steps
        report.notes += [str(n) for n in result.notes]
        self.profile = result.profile
        remove_tree(self.root, self.root / UPDATE_STATE, t("the update state"))

    def _save(self) -> None:
        from sdboot.install.update_io import save_state

        save_state(self.root, self.state)

    # -- the update's own steps: (done, note) ------------------------------------------------
    def _snapshot(self) -> tuple[bool, str]:
        if self.state.get("snapshot"):
            self.run_.report.snapshot = self.state["snapshot"]
            return False, t("already taken: {id}", id=self.state["snapshot"])
        ctx, git, root = self.run_.ctx, self.git, self.root
        record = ctx.record
        repos = {}
        folder = root / "repositories"
        for repo in sorted(folder.iterdir()) if folder.is_dir() else []:
            if (repo / ".git").exists() and _NAME_OK.fullmatch(repo.name):
                head = git.head(repo)
                if head:
                    repos[repo.name] = {"commit": head, "origin": gitops.stored_origin(
                        repo, ctx.runner, git.exe)}
        exts = {}
        if self.run_.extensions is not None:
            for name, e in (self.run_.extensions(root).get("extensions") or {}).items():
                if e.get("commit") and _NAME_OK.fullmatch(name):
                    exts[name] = {"commit": e["commit"], "branch": e.get("branch"),
                                  "origin": e.get("origin")}
        facts = {"reason": f"before `sdboot update --ref {self.state['ref']}`",
                 "ref": self.state["ref"], "profile": record.get("profile"),
                 "mirror": {g: n for g, n in (record.get("mirror") or {}).items()
                            if isinstance(n, str) or n is None},
                 "webui": {"commit": git.head(root), "branch": git.branch(root),
                           "ref": record.get("ref"),
                           "origin": gitops.stored_origin(root, ctx.runner, git.exe)},
                 "repositories": repos, "extensions": exts}
        snap_id = take_snapshot(root, facts)
        self.state["snapshot"] = snap_id
        self.run_.report.snapshot = snap_id
        self._save()
        return True, t("{id} ({n} repositories, {e} extensions)", id=snap_id, n=len(repos),
                       e=len(exts))

    def _fetch(self) -> tuple[bool, str]:
        commit, ref = self.state.get("commit"), self.state["ref"]
        if commit and self.git.has(self.root, commit) and self.state["phase"] == "install":
            return False, t("already fetched")
        self.git.fetch(self.root)
        commit = commit or self.git.commit_of(self.root, ref)
        if not commit or not self.git.has(self.root, commit):
            raise SdbootError(t("the WebUI's origin has no {ref}", ref=ref),
                              t("give --ref BRANCH, TAG or COMMIT"), exit_code=1)
        ctx = self.run_.ctx
        pinned = pinned_commit(ctx.catalog, ctx.repo, ref) if ctx.repo else None
        if pinned and not commit.startswith(pinned.lower()):
            raise SdbootError(t("{ref} is {commit} through the mirror, but the catalog pins "
                                "{pinned}", ref=ref, commit=commit[:10], pinned=pinned[:10]),
                              t("the mirror served other code: use another mirror (sdboot "
                                "mirror test) or --mirror none"), exit_code=1)
        self.state["commit"] = commit
        self._save()
        return True, t("{ref} is {commit}", ref=ref, commit=commit[:10])

    def _checkout(self) -> tuple[bool, str]:
        from sdboot.mirrors.apply import USER_FILES, apply_env, apply_rewrite, revert
        from sdboot.mirrors.apply import read_state as mirror_state
        from sdboot.mirrors.blocks import MIRROR_BLOCK, plan_user_file, write_user_files
        from sdboot.mirrors.loading import select

        state, root, ctx = self.state, self.root, self.run_.ctx
        if state["phase"] == "install":
            return False, t("already at {commit}", commit=str(state["commit"])[:10])
        # sdboot's own edits out of the way: the managed blocks, the launch-file rewrite
        files = [plan_user_file(root, name, shell, [(INSTALL_BLOCK, None), (MIRROR_BLOCK, None)])
                 for name, shell in USER_FILES]
        write_user_files(root, [f for f in files if f.changed], backup=False)
        found = mirror_state(root)
        if found.get("rewrite") or found.get("env"):
            revert(root, ctx.table, force=True)
        notes = []
        if self.run_.opts.force and not state.get("stash"):
            left = self.git.user_changes(root)
            if left:
                state["stash"] = self.git.stash(root, left, f"sdboot update {state['snapshot']}")
                self._save()
        if state.get("stash"):
            self.run_.report.stash = state["stash"]
            notes.append(t("your changes are kept in the stash {stash} (git stash list)",
                           stash=state["stash"][:10]))
        self.git.checkout(root, state["commit"])
        record = read_record(root)
        record.update({"ref": state["ref"], "commit": state["commit"], "complete": False})
        for key in ("profile", "webui_version", "webui_args"):  # chosen again for this version
            record.pop(key, None)
        write_record(root, record)
        if state.get("rewrite"):
            apply_rewrite(root, select(ctx.table, None, True, github=state["rewrite"]),
                          ctx.table)
            notes.append(t("launch file rewritten again for {mirror}", mirror=state["rewrite"]))
        if state.get("env_mirror"):
            apply_env(root, select(ctx.table, None, True, **state["env_mirror"]), ctx.table)
        state["phase"] = "install"
        self._save()
        head = t("{ref} at {commit}", ref=state["ref"], commit=str(state["commit"])[:10])
        return True, Text("; ".join([head, *notes]), "; ".join(local(n) for n in [head, *notes]))
