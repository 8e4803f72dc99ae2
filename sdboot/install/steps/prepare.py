"""Let the WebUI prepare the rest itself (launch.py --exit) under sdboot's environment,
then prove every repository it cloned is at a pinned commit."""

from __future__ import annotations

from sdboot.errors import SdbootError
from sdboot.i18n import N_, t
from sdboot.install.plan import PREPARE_TIMEOUT_S, fingerprint, sha_file
from sdboot.install.steps.base import Step
from sdboot.io import git as gitops
from sdboot.io.runner import quote
from sdboot.webui.folder import launch_file, parse_env_defaults
from sdboot.webui.record import mark_step, step_done


class PrepareStep(Step):
    name = "prepare"
    title = N_("let the WebUI prepare the rest (launch.py --exit)")

    def _prepare_fingerprint(self) -> str:
        lf = launch_file(self.ctx.root)
        return fingerprint(sha_file(lf) if lf else "-",
                            sha_file(self.ctx.root / "requirements_versions.txt"),
                            self.ctx.selection.chosen())

    def check(self) -> bool:
        done = step_done(self.ctx.record, "prepare") or {}
        return bool(done) and done.get("fingerprint") == self._prepare_fingerprint()

    def _prepare_argv(self) -> list[str]:
        assert self.ctx.profile is not None
        argv = [str(self.ctx.python()), "launch.py", "--exit"]
        if self.ctx.profile.backend != "cuda":  # the WebUI's own CUDA test would stop it
            argv.append("--skip-torch-cuda-test")
        return argv

    def describe(self) -> list[str]:
        return [f"(cd {quote([str(self.ctx.root)])} && {quote(self._prepare_argv())})"]

    def do(self) -> str:
        ctx = self.ctx
        res = ctx.runner.stream(self._prepare_argv(), timeout=PREPARE_TIMEOUT_S,
                                env=ctx.webui_env(), cwd=ctx.root, on_line=ctx.ui.detail)
        if not res.ok:
            raise SdbootError(t("the WebUI's preparation (launch.py --exit) failed: {output}",
                                output=res.tail(4)),
                              t("see the log; network errors: try --mirror auto"), exit_code=1)
        self._check_repositories()
        self._reset_origins()
        mark_step(self.ctx.record, "prepare", fingerprint=self._prepare_fingerprint())
        return t("repositories and requirements in place")

    def _reset_origins(self) -> None:
        """A clone the WebUI made through a mirror's URL (git < 2.31 ignores the insteadOf
        rules, so its *_REPO URLs carry the mirror there) gets its upstream origin back."""
        from sdboot.mirrors.origins import proxied_origin

        repos = self.ctx.root / "repositories"
        if not repos.is_dir():
            return
        for repo in sorted(p for p in repos.iterdir() if (p / ".git").exists()):
            stored = gitops.stored_origin(repo, self.ctx.runner, self.ctx.git)
            upstream = proxied_origin(stored, self.ctx.table)
            if upstream is not None:
                gitops.set_origin(repo, upstream, self.ctx.runner, self.ctx.git)

    def _check_repositories(self) -> None:
        """Every repository the WebUI cloned must be at one of its pinned commits: a clone
        through a mirror that served other code is an error."""
        lf = launch_file(self.ctx.root)
        if lf is None:
            return
        pinned = {v.lower() for k, v in parse_env_defaults(
            lf.read_text(encoding="utf-8", errors="replace")).items()
            if k.endswith(("_COMMIT_HASH", "_HASH")) and v}
        repos = self.ctx.root / "repositories"
        if not pinned or not repos.is_dir():
            return
        for repo in sorted(p for p in repos.iterdir() if (p / ".git").exists()):
            head = gitops.head_commit(repo, self.ctx.runner, self.ctx.git)
            if head is not None and head.lower() not in pinned:
                raise SdbootError(t("repositories/{name} is at {commit}, not at a commit the "
                                    "WebUI pins", name=repo.name, commit=head),
                                  t("a mirror served other code: delete that folder and "
                                    "install again with another mirror"), exit_code=1)
