"""Clone the WebUI (through the GitHub mirror) into a partial folder, prove the pinned
commit, then move it into place."""

from __future__ import annotations

import os
import re

from sdboot.errors import SdbootError
from sdboot.i18n import N_, t
from sdboot.install.catalog import pinned_commit
from sdboot.install.steps.base import Step
from sdboot.io import git as gitops
from sdboot.io.files import remove_tree
from sdboot.io.runner import shown
from sdboot.mirrors.origins import ClonePlan
from sdboot.webui.folder import is_webui

_HEX_REF = re.compile(r"[0-9a-f]{7,40}")


class CloneStep(Step):
    name = "clone"
    title = N_("get the WebUI")

    def _plan(self) -> ClonePlan:
        """The upstream URL, through the mirror's insteadOf rules: origin stays upstream."""
        assert self.ctx.repo is not None
        return self.ctx.clone_plan(self.ctx.repo)

    def check(self) -> bool:
        if not is_webui(self.ctx.root):
            return False
        want = self.ctx.record.get("commit")
        if want and (self.ctx.root / ".git").exists():
            return bool(gitops.head_commit(self.ctx.root, self.ctx.runner, self.ctx.git) == want)
        return True

    def describe(self) -> list[str]:
        plan = self._plan()
        argv = [self.ctx.git, *plan.config_args(), "clone"]
        if self.ctx.ref and not _HEX_REF.fullmatch(self.ctx.ref):
            argv += ["--branch", self.ctx.ref]
        return [shown([*argv, plan.url, str(self.ctx.root)])]

    def do(self) -> str:
        assert self.ctx.repo is not None
        partial = self.ctx.root.parent / f".{self.ctx.root.name}.sdboot-partial"
        if partial.is_symlink() or (os.path.lexists(partial) and not partial.is_dir()):
            raise SdbootError(t("{path} (the folder sdboot clones into) is a symbolic link "
                                "or a file", path=partial),
                              t("remove it (sdboot never follows a link there) and run the "
                                "command again"), exit_code=2)
        if partial.exists():  # a half-made clone of an interrupted run
            remove_tree(self.ctx.root.parent, partial, t("the partial clone"))
        ctx = self.ctx
        assert ctx.repo is not None
        expected = pinned_commit(ctx.catalog, ctx.repo, ctx.ref) if ctx.ref else None
        hex_ref = bool(self.ctx.ref and _HEX_REF.fullmatch(self.ctx.ref))
        plan = self._plan()
        commit = gitops.clone(plan.url, partial, self.ctx.runner,
                              ref=None if hex_ref else self.ctx.ref,
                              expected_commit=expected or (self.ctx.ref if hex_ref else None),
                              env={**os.environ, **plan.env}, git=self.ctx.git,
                              on_line=self.ctx.ui.detail, origin=plan.origin)
        if not is_webui(partial):  # a catalogued repository, served wrong by a mirror
            remove_tree(self.ctx.root.parent, partial, t("the partial clone"))
            raise SdbootError(t("{repo} is not a Stable Diffusion WebUI repository (no "
                                "launch.py): the clone was removed", repo=self.ctx.repo),
                              t("check --webui-repo and the mirror (sdboot mirror test)"))
        if self.ctx.root.exists():
            self.ctx.root.rmdir()  # empty: checked before
        os.replace(partial, self.ctx.root)
        self.ctx.record.update({"repo": self.ctx.repo, "ref": self.ctx.ref, "commit": commit,
                            "clone_url": plan.fetched})
        ref = self.ctx.ref or t("default branch")
        if hex_ref:  # a commit (e.g. a lock's): said once, not as "<commit> at <commit>"
            return t("commit {commit} (verified)", commit=commit[:10])
        if expected:
            return t("{ref} at {commit} (pinned commit verified)", ref=ref, commit=commit[:10])
        return t("{ref} at {commit}", ref=ref, commit=commit[:10])
