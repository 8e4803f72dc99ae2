"""Do the WebUI's preparation first, fast: its requirements file and the launch file's extra
packages (CLIP, open_clip) in ONE resolution under the profile's constraints and the build
guard, while its repositories are cloned concurrently through the mirror at their pinned
commits (origins upstream). launch.py --exit, which runs next, then finds everything in place.

Why: the WebUI installs them with three pip runs one after another (CLIP, open_clip, then
`pip install -r requirements_versions.txt`): 140-157 s of the real v1.10.1's install on 2
cores, cold or warm; one uv resolution of the same set took 17 s cold, 12 s warm
(../shared/tools/real-webui/perf.sh, what-if route). pip stays the fallback, under the same
constraints and guard."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sdboot.errors import SdbootError
from sdboot.i18n import N_, Text, t
from sdboot.install.plan import fingerprint, sha_file
from sdboot.install.steps.base import Step
from sdboot.io import git as gitops
from sdboot.io.files import atomic_write, inside, remove_tree, safe_name
from sdboot.io.runner import quote, shown
from sdboot.stack.packages import (
    INSTALL_TIMEOUT_S,
    choose_installer,
    progress_line,
    render_webui_constraints,
)
from sdboot.webui.bootstrap import Bootstrap, Clone, plan_bootstrap
from sdboot.webui.folder import launch_file
from sdboot.webui.record import mark_step, step_done

CLONE_WORKERS = 4
REPOS = "repositories"


class RequirementsStep(Step):
    name = "requirements"
    title = N_("install the WebUI's requirements (one resolution) and clone its repositories")

    # -- the plan -------------------------------------------------------------------------
    def _bootstrap(self) -> Bootstrap | None:
        lf = launch_file(self.ctx.root)
        if lf is None:
            return None
        def read(name: str) -> str | None:
            path = self._requirements_path(name)
            return path.read_text(encoding="utf-8", errors="replace") if path else None

        return plan_bootstrap(lf.read_text(encoding="utf-8", errors="replace"), read,
                              self.ctx.webui_env())

    def _requirements_path(self, name: str) -> Path | None:
        """The requirements file inside the WebUI folder (REQS_FILE may be set by the
        user; a path outside the folder is not sdboot's to install)."""
        path = (self.ctx.root / name)
        try:
            inside(self.ctx.root, path, t("the requirements file"))
        except SdbootError:
            return None
        return path if path.is_file() else None

    def _constraints(self) -> list[Path]:
        """The profile's constraints (written by the torch step), then the lock's or the
        release's known-good set where there is one."""
        return [self.ctx.constraints, *self.ctx.extra_constraints()]

    def _fingerprint(self, boot: Bootstrap) -> str:
        reqs = self._requirements_path(boot.requirements_file)
        return fingerprint(sha_file(reqs) if reqs else "-", boot.packages,
                           [(c.folder, c.commit) for c in boot.clones],
                           [sha_file(p) for p in self._constraints()],
                           sha_file(self.ctx.build_constraints))

    def _argv(self, boot: Bootstrap) -> list[str] | None:
        reqs = self._requirements_path(boot.requirements_file)
        if reqs is None and not boot.packages:
            return None
        installer = choose_installer()
        argv = installer.base(self.ctx.python())
        if reqs is not None:
            argv += ["-r", str(reqs)]
        argv += list(boot.packages)
        for path in self._constraints():
            argv += ["-c", str(path)]
        if installer.kind == "uv":
            argv += ["--build-constraint", str(self.ctx.build_constraints)]
        return argv

    def _missing(self, boot: Bootstrap) -> list[Clone]:
        return [c for c in boot.clones
                if not (self.ctx.root / REPOS / safe_name(c.folder, t("repository folder"))
                        / ".git").exists()]

    # -- the step -------------------------------------------------------------------------
    def check(self) -> bool:
        done = step_done(self.ctx.record, "requirements") or {}
        if not done:
            return False
        boot = self._bootstrap()
        return boot is not None and done.get("fingerprint") == self._fingerprint(boot) \
            and not self._missing(boot)

    def describe(self) -> list[str]:
        boot = self._bootstrap()
        if boot is None:  # not cloned yet (a dry run): what the step will do
            return [t("(after the clone) the WebUI's requirements file and its extra packages "
                      "(CLIP, open_clip) in one install run under the constraints; its "
                      "repositories cloned concurrently at their pinned commits")]
        lines = []
        argv = self._argv(boot)
        if argv is not None:
            lines.append(quote(argv))
        for clone in self._missing(boot):
            plan = self.ctx.clone_plan(clone.url)
            lines.append(shown([self.ctx.git, *plan.config_args(), "clone", plan.url,
                                f"{REPOS}/{clone.folder}"]))
        return lines

    def do(self) -> str:
        boot = self._bootstrap()
        if boot is None:
            return t("no launch file: left to the WebUI")
        missing = self._missing(boot)
        self._repos().mkdir(exist_ok=True)
        with ThreadPoolExecutor(max_workers=CLONE_WORKERS) as pool:
            clones = [(c, pool.submit(self._clone, c)) for c in missing]
            try:
                installed = self._install(boot)
            finally:  # the clones finish (or fail) before the step ends, either way
                errors = self._collect(clones)
        if errors:
            raise errors[0]
        self._pin_webui(boot)
        mark_step(self.ctx.record, "requirements", fingerprint=self._fingerprint(boot))
        parts = []
        if installed:
            parts.append(t("requirements and {n} extra package(s) in one {installer} run",
                           n=len(boot.packages), installer=installed))
        if missing:
            parts.append(t("{n} repositories cloned", n=len(missing)))
        if not parts:
            return t("nothing to install")
        return Text("; ".join(parts), t("; ").localized.join(p.localized for p in parts))

    def _install(self, boot: Bootstrap) -> str | None:
        argv = self._argv(boot)
        if argv is None:
            return None
        kind = "uv" if argv[1:3] == ["pip", "install"] else "pip"
        res = self.ctx.runner.stream(argv, timeout=INSTALL_TIMEOUT_S, env=self.ctx.pip_env(),
                                     cwd=self.ctx.root, on_line=self._progress)
        if not res.ok:
            hint = t("check the package index and your network (--mirror auto picks one "
                     "that answers)")
            if self.ctx.runner.log_path:
                hint = t("check the package index and your network (--mirror auto picks one "
                         "that answers); full log: {log}", log=self.ctx.runner.log_path)
            raise SdbootError(t("{installer} could not install the WebUI's requirements "
                                "(exit {code}): {output}", installer=kind,
                                code=res.returncode, output=res.tail(3)), hint, exit_code=1)
        return kind

    def _pin_webui(self, boot: Bootstrap) -> None:
        """The WebUI's own exact pins join the constraints every later pip call obeys
        (PIP_CONSTRAINT of its processes): Forge's built-in extension installers upgraded
        numpy 1.26.2 to 2.2.6 under its `numpy==1.26.2` (seen on the real Forge)."""
        assert self.ctx.profile is not None
        text = render_webui_constraints(self.ctx.profile, self.ctx.build_caps(), boot.pins)
        if not self.ctx.constraints.is_file() or self.ctx.constraints.read_text() != text:
            atomic_write(self.ctx.constraints, text.encode(), self.ctx.root)

    def _progress(self, line: str) -> None:
        if progress_line(line):
            self.ctx.ui.detail(line.strip())

    def _clone(self, clone: Clone) -> str:
        """One repository into repositories/<folder>, through a partial folder so that an
        interrupted clone never looks like a complete one."""
        repos = self._repos()
        folder = safe_name(clone.folder, t("repository folder"))
        dest = inside(repos, repos / folder, t("a repository folder"))
        partial = inside(repos, repos / f".{folder}.sdboot-partial", t("a partial clone"))
        if os.path.lexists(partial):
            remove_tree(repos, partial, t("an earlier partial clone"))
        plan = self.ctx.clone_plan(clone.url)
        commit = gitops.clone(plan.url, partial, self.ctx.runner,
                              expected_commit=clone.commit,
                              env={**os.environ, **plan.env}, git=self.ctx.git,
                              origin=plan.origin)
        if os.path.lexists(dest):  # appeared meanwhile: never replaced
            remove_tree(repos, partial, t("the partial clone"))
            return commit
        os.replace(partial, dest)
        return commit

    def _repos(self) -> Path:
        """repositories/, proven inside the WebUI folder (a planted link out is refused)."""
        return inside(self.ctx.root, self.ctx.root / REPOS, t("the repositories folder"))

    @staticmethod
    def _collect(clones: list[tuple[Clone, Future[str]]]) -> list[SdbootError]:
        errors = []
        for clone, future in clones:
            try:
                future.result()
            except SdbootError as exc:
                errors.append(SdbootError(t("repositories/{folder}: {error}",
                                            folder=clone.folder, error=exc.message),
                                          exc.hint, exc.exit_code))
        return errors
