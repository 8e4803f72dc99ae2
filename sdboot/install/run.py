"""`sdboot install`: a fresh machine to a verified WebUI, as a plan of steps. Each step
knows how to check that it is already done and how to do it; the install record
(webui/record.py) is written after every step, so a run that was interrupted (Ctrl-C, a kill,
a cut network) resumes where it stopped, and a run on a complete install only checks.

    clone -> env -> torch -> verify -> requirements (the WebUI's requirements in one
          resolution, its repositories cloned concurrently) -> prepare (the WebUI's own
          launch.py --exit, which finds them in place) -> reverify -> webui-user -> record

Effects go through the runner (git, pip/uv, the WebUI), the file funnel and the health
check; the step UI only reports."""

from __future__ import annotations

import time

from sdboot.errors import KEPT_RESUME, SdbootError, keep_on_interrupt
from sdboot.i18n import _, local, t
from sdboot.install.context import InstallContext
from sdboot.install.plan import (
    INSTALL_BLOCK,
    InstallOptions,
    InstallReport,
    StepResult,
    StepUI,
    check_target,
    disk_verdict,
    install_block,
    webui_lock,
)
from sdboot.install.preflight import choose_mirrors, choose_profile, ensure_python, preflight
from sdboot.install.steps import Step, plan_steps
from sdboot.mirrors.loading import select
from sdboot.mirrors.status import webui_selection
from sdboot.webui.record import mark_step

__all__ = ["INSTALL_BLOCK", "InstallOptions", "InstallReport", "InstallRun", "StepResult",
           "StepUI", "disk_verdict", "install_block"]


class InstallRun(InstallContext):
    """One `sdboot install` invocation: the context, the plan of steps, and the record."""

    def steps(self) -> list[Step]:
        return plan_steps(self)

    def run(self) -> InstallReport:
        check_target(self.root)
        if self.opts.dry_run:
            return self._run_locked()
        with webui_lock(self.root):
            keep_on_interrupt(KEPT_RESUME)  # Ctrl-C from here: the hint says what is kept
            return self._run_locked()

    def _run_locked(self) -> InstallReport:
        steps = self.steps()
        if self.record.get("complete") and self._quick_check(steps):
            return self._report([StepResult(s.name, s.title, "skipped") for s in steps],
                                nothing_to_do=True)
        choose_profile(self)
        steps = self.steps()  # the titles know the profile now
        pending = [s.name for s in steps if not self._done(s)]
        preflight(self)
        choose_mirrors(self, pending)
        ensure_python(self, pending)  # the venv's Python: offers `uv python install`
        assert self.profile is not None
        self.ui.note(_("WebUI: {dir}  ({source})").format(
            dir=self.root, source=f"{self.repo} {self.ref or ''}".rstrip()))
        self.ui.note(_("profile: {name} (torch {torch})").format(name=self.profile.name,
                                                                 torch=self.profile.torch))
        chosen = self.selection.chosen()
        self.ui.note(_("mirrors: {mirrors}").format(
            mirrors=", ".join(f"{g}={n}" for g, n in chosen.items()) or _("none (upstreams)")))
        for note in self.notes:
            self.ui.note(local(note), "yellow")
        self.notes.clear()
        todo = [s.name for s in steps if not self._done(s)] \
            if self.confirm is not None and not self.opts.dry_run else []
        if todo and self.confirm is not None and \
                not self.confirm(_("Run {count} step(s) ({steps})?").format(
                    count=len(todo), steps=", ".join(todo))):
            raise SdbootError(t("install cancelled; nothing was changed"),
                              t("run it again (add --yes to skip this question)"), exit_code=1)
        self.record.update({"profile": self.profile.name, "mirror": self.selection.to_json()})
        # remembered while incomplete, so that a resumed run follows the same lock
        self.record["lock"] = str(self.opts.lock.expanduser().resolve()) \
            if self.opts.lock is not None else None
        results: list[StepResult] = []
        for i, step in enumerate(steps, start=1):
            self.ui.begin(i, len(steps), local(step.title))
            started = time.monotonic()
            if self._done(step):
                done = t("already done")
                self.ui.end("skipped", 0.0, local(done))
                results.append(StepResult(step.name, step.title, "skipped", note=done))
                continue
            if self.opts.dry_run:
                commands = step.describe()
                self.ui.end("planned", 0.0, "; ".join(local(c) for c in commands))
                results.append(StepResult(step.name, step.title, "planned", commands=commands))
                continue
            try:
                note = step.do()
                if step.name in ("env", "torch", "requirements", "prepare"):
                    self._installed = None  # the environment changed: ask again
            except BaseException:
                self.ui.end("failed", time.monotonic() - started)
                self.save()
                raise
            if step.name not in ("verify", "reverify", "requirements", "prepare"):
                mark_step(self.record, step.name)
            self.save()
            elapsed = time.monotonic() - started
            self.ui.end("done", elapsed, local(note) if note else note)
            results.append(StepResult(step.name, step.title, "done", elapsed, note))
        return self._report(results, nothing_to_do=False)

    def _done(self, step: Step) -> bool:
        """A step is done when its check holds; the checks of steps that leave partial
        state behind (env, verify, prepare, ...) also need the record's word for it."""
        if step.name != "clone" and not self.root.is_dir():
            return False
        try:
            return step.check()
        except SdbootError:
            return False

    def _quick_check(self, steps: list[Step]) -> bool:
        """A complete install: every step still holds, without the network."""
        from sdboot.stack.profiles import get_profile, load_profiles

        if self.opts.profile and self.opts.profile != self.record.get("profile"):
            return False
        if self.opts.env_kind and self.opts.env_kind != (self.record.get("env") or {}).get(
                "kind"):
            return False
        if self.opts.mirror is not None and self.opts.mirror != "auto":
            try:
                wanted = select(self.table, self.opts.mirror, self.opts.insecure).chosen()
            except SdbootError:
                return False
            recorded = {g: n for g, n in (self.record.get("mirror") or {}).items()
                        if g != "label" and n}
            if wanted != recorded:
                return False
        try:
            self.profile = get_profile(load_profiles(), str(self.record.get("profile")))
        except SdbootError:
            return False
        self.selection = webui_selection(self.root, self.table)
        return all(self._done(s) for s in steps)

    def _report(self, results: list[StepResult], nothing_to_do: bool) -> InstallReport:
        complete = bool(self.record.get("complete")) and not self.opts.dry_run
        return InstallReport(
            self.root, results, self.profile.name if self.profile else None,
            str(self.python()) if complete else None, self.selection.to_json(), complete,
            nothing_to_do, self.runner.log_path, list(self.notes),
            [str(a) for a in self.record.get("webui_args") or []])
