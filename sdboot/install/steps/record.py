"""Mark the install complete in the install record, with the versions it ended with, and
write the lock (.sdboot/lock.txt): every distribution in the environment at its exact
version, the WebUI's and each repository's commit, the profile and the index."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.install.steps.base import Step
from sdboot.io import git as gitops
from sdboot.io.files import atomic_write
from sdboot.stack.lock import LOCK_FILE, Lock, freeze_hashes, render_lock

_WHERE = ("import json, sys, platform\n"
          "print(json.dumps([platform.python_version(), sys.platform + '-' + "
          "(platform.machine() or 'unknown')]))\n")


class RecordStep(Step):
    name = "record"
    title = "record the install"

    def check(self) -> bool:
        return bool(self.ctx.record.get("complete")) and (self.ctx.root / LOCK_FILE).is_file()

    def describe(self) -> list[str]:
        return [f"write {self.ctx.root / '.sdboot/install.json'} and {self.ctx.root / LOCK_FILE}"]

    def _lock(self) -> Lock:
        ctx = self.ctx
        assert ctx.profile is not None
        res = ctx.runner.run([str(ctx.python()), "-I", "-c", _WHERE], timeout=60)
        try:
            python, platform = json.loads(res.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError) as exc:
            raise SdbootError(t("cannot ask {python} for its version", python=ctx.python()),
                              t("run sdboot verify to see what is wrong with the environment"),
                              exit_code=1) from exc
        packages, hashes = freeze_hashes(ctx.python(), ctx.runner)
        repos = {}
        folder = ctx.root / "repositories"
        if folder.is_dir():
            for repo in sorted(p for p in folder.iterdir() if (p / ".git").exists()):
                head = gitops.head_commit(repo, ctx.runner, ctx.git)
                if head:
                    repos[repo.name] = head
        commit = str(ctx.record.get("commit") or
                     gitops.head_commit(ctx.root, ctx.runner, ctx.git) or "")
        index = ctx.selection.pypi.url if ctx.selection.pypi is not None else None
        return Lock(python=str(python), platform=str(platform), profile=ctx.profile.name,
                    index=index, webui_repo=str(ctx.repo), webui_commit=commit,
                    repositories=repos, packages=packages, hashes=hashes,
                    created=datetime.now(timezone.utc).replace(microsecond=0).isoformat())

    def do(self) -> str:
        assert self.ctx.profile is not None
        lock = self._lock()
        atomic_write(self.ctx.root / LOCK_FILE, render_lock(lock).encode(), root=self.ctx.root)
        self.ctx.record["complete"] = True
        self.ctx.record["versions"] = self.ctx.installed()
        return t("{record} and the lock ({n} packages)",
                 record=self.ctx.root / ".sdboot" / "install.json", n=len(lock.packages))
