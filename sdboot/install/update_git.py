"""git for `sdboot update` and `rollback`, through the runner: the remote's refs and fetches
through the WebUI's GitHub mirror (process-scoped insteadOf rules: origin stays upstream),
moving a checkout to a commit, and the user's own changes in the WebUI checkout (what is
sdboot's - .sdboot/, the managed blocks in webui-user files, a launch file sdboot rewrote -
is told apart from the user's edits)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.install.plan import INSTALL_BLOCK
from sdboot.install.update_plan import parse_ls_remote
from sdboot.io.runner import Runner
from sdboot.mirrors.apply import USER_FILES, read_state, sha256
from sdboot.mirrors.blocks import MIRROR_BLOCK, take_block
from sdboot.mirrors.env import existing_git_count
from sdboot.mirrors.origins import rules_as_args, rules_env
from sdboot.mirrors.table import MirrorTable, Selection

FETCH_TIMEOUT_S = 1800.0
QUICK_TIMEOUT_S = 60.0


class Git:
    """git on one WebUI, with its mirror's rules for whatever reaches the network."""

    def __init__(self, exe: str, runner: Runner, selection: Selection, table: MirrorTable,
                 config_env: bool = True) -> None:
        self.exe = exe
        self.runner = runner
        rules = rules_env(selection.github, table, existing_git_count(os.environ))
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        self.args: list[str] = []
        if config_env:
            self.env.update(rules)
        else:  # git < 2.31 ignores GIT_CONFIG_*: the same rules as -c arguments
            self.args = rules_as_args(rules_env(selection.github, table))

    def out(self, repo: Path, *args: str) -> str | None:
        res = self.runner.run([self.exe, "-C", str(repo), *args], timeout=QUICK_TIMEOUT_S)
        return res.stdout.strip() if res.ok else None

    def ok(self, repo: Path, *args: str) -> bool:
        return self.runner.run([self.exe, "-C", str(repo), *args], timeout=QUICK_TIMEOUT_S,
                               env=self.env).ok

    def remote_refs(self, repo: Path) -> dict[str, str]:
        """The remote's branches and tags (git ls-remote origin, through the mirror)."""
        res = self.runner.run([self.exe, "-C", str(repo), *self.args, "ls-remote", "--heads",
                               "--tags", "origin"], timeout=FETCH_TIMEOUT_S, env=self.env)
        if not res.ok:
            raise SdbootError(t("cannot list the refs of {repo}'s origin: {error}",
                                repo=repo.name, error=res.tail(2) or res.error),
                              t("check the network and the mirror (sdboot mirror test)"),
                              exit_code=1)
        return parse_ls_remote(res.stdout)

    def fetch(self, repo: Path) -> None:
        res = self.runner.stream([self.exe, "-C", str(repo), *self.args, "fetch", "--tags",
                                  "--force", "origin"], timeout=FETCH_TIMEOUT_S, env=self.env)
        if not res.ok:
            raise SdbootError(t("git fetch in {repo} failed: {error}", repo=repo.name,
                                error=res.tail(2) or res.error),
                              t("check the network and the mirror (sdboot mirror test)"),
                              exit_code=1)

    def commit_of(self, repo: Path, ref: str) -> str | None:
        """The commit a local name (commit, tag, origin/branch) resolves to."""
        for name in (f"refs/remotes/origin/{ref}", f"refs/tags/{ref}", ref):
            found = self.out(repo, "rev-parse", "-q", "--verify", "--end-of-options",
                             f"{name}^{{commit}}")
            if found:
                return found
        return None

    def has(self, repo: Path, commit: str) -> bool:
        return self.out(repo, "cat-file", "-e", f"{commit}^{{commit}}") is not None

    def head(self, repo: Path) -> str | None:
        return self.out(repo, "rev-parse", "HEAD")

    def branch(self, repo: Path) -> str | None:
        return self.out(repo, "symbolic-ref", "-q", "--short", "HEAD") or None

    def checkout(self, repo: Path, commit: str, branch: str | None = None,
                 force: bool = False) -> None:
        """HEAD to commit: the branch when it still points there, else detached."""
        if branch and self.out(repo, "rev-parse", "-q", "--verify",
                               f"refs/heads/{branch}") == commit:
            target = [branch]
        else:
            target = ["--detach", commit]
        argv = [self.exe, "-C", str(repo), "checkout", "-q", *(["-f"] if force else []),
                *target, "--"]
        res = self.runner.run(argv, timeout=QUICK_TIMEOUT_S, env=self.env)
        if not res.ok:
            raise SdbootError(t("git checkout {commit} in {repo} failed: {error}",
                                commit=commit[:10], repo=repo.name,
                                error=res.tail(2) or res.error),
                              t("see `git status` there"), exit_code=1)

    def ensure_commit(self, repo: Path, commit: str) -> None:
        if not self.has(repo, commit):
            self.fetch(repo)
        if not self.has(repo, commit):
            raise SdbootError(t("{repo} has no commit {commit}, not even after a fetch",
                                repo=repo.name, commit=commit[:10]),
                              t("the mirror may serve other code: try --mirror none or "
                                "another mirror"), exit_code=1)

    # -- the user's changes ------------------------------------------------------------------
    def changed_files(self, root: Path) -> list[str]:
        """Tracked files that differ from HEAD (untracked files never stand in the way)."""
        res = self.runner.run([self.exe, "-C", str(root), "status", "--porcelain=v1", "-z",
                               "--untracked-files=no"], timeout=QUICK_TIMEOUT_S)
        if not res.ok:
            raise SdbootError(t("git status failed in {dir}: {error}", dir=root,
                                error=res.tail(2) or res.error),
                              t("run sdboot doctor {dir}", dir=root), exit_code=1)
        files = []
        entries = res.stdout.split("\0")
        i = 0
        while i < len(entries):
            entry = entries[i]
            i += 1
            if len(entry) < 4:
                continue
            if entry[0] in "RC":  # a rename: the old name follows
                i += 1
            files.append(entry[3:])
        return files

    def head_blob(self, root: Path, rel: str) -> str | None:
        return self.out(root, "rev-parse", "-q", "--verify", f"HEAD:{rel}")

    def user_changes(self, root: Path) -> list[str]:
        """The changed tracked files that are the user's: a webui-user file that differs
        only by sdboot's managed blocks, and the launch file sdboot rewrote (its saved
        original is HEAD's), are sdboot's. Compared as git blobs, byte for byte."""
        rewrite = read_state(root).get("rewrite") or {}
        shells = dict(USER_FILES)
        mine = []
        for rel in self.changed_files(root):
            path = root / rel
            head = self.head_blob(root, rel)
            if rel in shells and path.is_file() and not path.is_symlink():
                text = path.read_bytes().decode("utf-8", "surrogateescape")
                for kind in (INSTALL_BLOCK, MIRROR_BLOCK):
                    text, _ = take_block(text, kind)
                if head == blob_id(text.encode("utf-8", "surrogateescape")):
                    continue
            if rewrite and rel == rewrite.get("file") and path.is_file():
                backup = root / str(rewrite.get("backup"))
                if backup.is_file() and not backup.is_symlink() \
                        and head == blob_id(backup.read_bytes()) \
                        and sha256(path.read_bytes()) == rewrite.get("rewritten_sha256"):
                    continue
            mine.append(rel)
        return mine

    def stash(self, root: Path, files: list[str], message: str) -> str:
        """`git stash push` of those files; returns the stash's commit (kept in the list)."""
        ident = [] if self.out(root, "config", "user.email") else [
            "-c", "user.name=sdboot", "-c", "user.email=sdboot@localhost"]
        res = self.runner.run([self.exe, "-C", str(root), *ident, "stash", "push", "-m",
                               message, "--", *files], timeout=QUICK_TIMEOUT_S)
        commit = self.out(root, "rev-parse", "-q", "--verify", "refs/stash")
        if not res.ok or not commit:
            raise SdbootError(t("git stash failed in {dir}: {error}", dir=root,
                                error=res.tail(2) or res.error),
                              t("commit or move your changes yourself, then run the command "
                                "again"), exit_code=1)
        return commit


def blob_id(data: bytes) -> str:
    """The id git gives a file with these bytes (what `git rev-parse HEAD:FILE` shows)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
