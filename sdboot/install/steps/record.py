"""Mark the install complete in the install record, with the versions it ended with, and
write the lock (.sdboot/lock.txt): every distribution in the environment at its exact
version, the WebUI's and each repository's commit, the profile and the index. A direct-URL
distribution keeps its URL in upstream form. With --lock the environment must be the lock:
any difference fails the install (exit 1) and names it; a repository at another commit
than the lock's is reported."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sdboot.errors import SdbootError
from sdboot.i18n import N_, t
from sdboot.install.lockfile import (
    check_against_lock,
    refuse_differences,
    repository_differences,
    upstream_urls,
)
from sdboot.install.registry import remember_install
from sdboot.install.steps.base import Step
from sdboot.io import git as gitops
from sdboot.io.files import atomic_write
from sdboot.stack.lock import LOCK_FILE, Lock, freeze_full, render_lock

_WHERE = ("import json, sys, platform\n"
          "print(json.dumps([platform.python_version(), sys.platform + '-' + "
          "(platform.machine() or 'unknown')]))\n")


class RecordStep(Step):
    name = "record"
    title = N_("record the install")

    def check(self) -> bool:
        return bool(self.ctx.record.get("complete")) and (self.ctx.root / LOCK_FILE).is_file()

    def describe(self) -> list[str]:
        return [t("write {record} and {lock}", record=self.ctx.root / ".sdboot/install.json",
                  lock=self.ctx.root / LOCK_FILE)]

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
        packages, hashes, urls = freeze_full(ctx.python(), ctx.runner)
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
                    created=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
                    urls=upstream_urls(urls, ctx))

    def _compare(self, made: Lock) -> None:
        """The install that followed a lock must have ended as that lock."""
        wanted = self.ctx.lock
        assert wanted is not None
        refuse_differences(check_against_lock(wanted, made.packages, made.webui_commit),
                           self.ctx.opts.lock)
        self.ctx.notes.extend(repository_differences(wanted, made.repositories))

    def do(self) -> str:
        assert self.ctx.profile is not None
        lock = self._lock()
        if self.ctx.lock is not None:
            self._compare(lock)
        atomic_write(self.ctx.root / LOCK_FILE, render_lock(lock).encode(), root=self.ctx.root)
        self.ctx.record["complete"] = True
        self.ctx.record["versions"] = self.ctx.installed()
        self.ctx.notes.extend(remember_install(self.ctx.root, self.ctx.record))  # sdboot list
        return t("{record} and the lock ({n} packages)",
                 record=self.ctx.root / ".sdboot" / "install.json", n=len(lock.packages))
