"""Extensions and git: what each clone is (commit, branch, stored origin), whether its
upstream has newer commits, and fast-forward updates. Every fetch goes through the WebUI's
GitHub mirror the way `ext add` clones do: process-scoped `url.<mirror>.insteadOf` rules
(GIT_CONFIG_COUNT / _KEY_n / _VALUE_n; `-c` arguments for git older than 2.31), so the
origin in .git/config stays the upstream and no proxy URL is ever written there."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io import git as gitops
from sdboot.io.mask import mask
from sdboot.io.runner import Runner

FETCH_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Fetcher:
    """How sdboot's git reaches the upstreams of one WebUI: the mirror's rules as
    environment (git >= 2.31) or as `-c` arguments (older git)."""

    git: str
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    fetch_args: tuple[str, ...] = ()

    def argv(self, repo: Path, *rest: str) -> list[str]:
        return [self.git, "-C", str(repo), *self.args, *rest]


def need_git() -> str:
    git = shutil.which("git")
    if git is None:
        raise SdbootError(t("git is not installed: sdboot needs it to fetch and update "
                            "extensions"),
                          t("install git (your system's package manager, or git-scm.com), then "
                            "run the command again"), exit_code=1)
    return git


def plan_fetcher(root: Path, runner: Runner, *, prompt: bool = True) -> Fetcher:
    """The fetcher for the WebUI at root: its mirror selection (install record, overridden
    by `mirror apply`), continuing a GIT_CONFIG_COUNT the user set. prompt=False: git never
    asks for a password (a check must not hang on a private repository)."""
    from sdboot.mirrors.env import existing_git_count
    from sdboot.mirrors.loading import load_mirrors
    from sdboot.mirrors.origins import rules_as_args, rules_env
    from sdboot.mirrors.status import webui_selection

    git = need_git()
    table = load_mirrors()
    mirror = webui_selection(root, table).github
    env = dict(os.environ)
    if not prompt:
        env["GIT_TERMINAL_PROMPT"] = "0"
    info = gitops.detect_git(runner, git)
    # git >= 2.29 can leave FETCH_HEAD alone: then no file of the clone names the mirror
    quiet = ("--no-write-fetch-head",) if info.version and info.version[:2] >= (2, 29) else ()
    if info.config_env or info.version is None:
        env.update(rules_env(mirror, table, existing_git_count(os.environ)))
        return Fetcher(git, env, fetch_args=quiet)
    return Fetcher(git, env, tuple(rules_as_args(rules_env(mirror, table))), quiet)


def _out(runner: Runner, argv: list[str], env: Mapping[str, str] | None = None) -> str | None:
    res = runner.run(argv, timeout=gitops.QUICK_TIMEOUT_S, env=env)
    return res.stdout.strip() if res.ok and res.stdout.strip() else None


def branch_of(repo: Path, runner: Runner, git: str) -> str | None:
    """The checked-out branch; None for a detached HEAD (an extension pinned at a commit)."""
    return _out(runner, [git, "-C", str(repo), "symbolic-ref", "-q", "--short", "HEAD"])


def fetch(repo: Path, fetcher: Fetcher, runner: Runner) -> str | None:
    """`git fetch origin` through the mirror; None when it worked, else git's last line."""
    res = runner.run(fetcher.argv(repo, "fetch", "--quiet", *fetcher.fetch_args, "origin"),
                     timeout=FETCH_TIMEOUT_S, env=fetcher.env)
    if res.ok:
        return None
    return mask(res.tail(1) or res.error or "git fetch failed")


@dataclass(frozen=True)
class Waiting:
    """What the upstream has that the clone has not (after a fetch)."""

    upstream: str | None  # origin/master; None: the branch tracks nothing (or detached)
    behind: int | None = None
    ahead: int | None = None
    error: str | None = None

    @property
    def waiting(self) -> bool | None:
        return None if self.behind is None else self.behind > 0


def compare_upstream(repo: Path, runner: Runner, git: str) -> Waiting:
    """HEAD against its upstream tracking ref (no network)."""
    upstream = _out(runner, [git, "-C", str(repo), "rev-parse", "--abbrev-ref",
                             "--symbolic-full-name", "@{upstream}"])
    if upstream is None:
        return Waiting(None, error=t("no upstream branch (a detached HEAD, or a branch that "
                                     "tracks nothing)"))
    counts = _out(runner, [git, "-C", str(repo), "rev-list", "--left-right", "--count",
                           "HEAD...@{upstream}"])
    try:
        ahead, behind = (int(x) for x in (counts or "").split())
    except ValueError:
        return Waiting(upstream, error=t("git could not compare HEAD with {upstream}",
                                         upstream=upstream))
    return Waiting(upstream, behind, ahead)


def check_update(repo: Path, fetcher: Fetcher, runner: Runner) -> Waiting:
    failed = fetch(repo, fetcher, runner)
    if failed:
        return Waiting(None, error=failed)
    return compare_upstream(repo, runner, fetcher.git)


@dataclass(frozen=True)
class Updated:
    name: str
    before: str | None
    after: str | None
    status: str  # updated | current | failed | skipped
    message: str = ""


def update_clone(repo: Path, fetcher: Fetcher, runner: Runner) -> Updated:
    """Fetch through the mirror, then fast-forward to the upstream branch. Never merges,
    rebases or discards anything: a clone with its own commits, local edits in the way or
    no upstream branch is reported and left as it was."""
    before = gitops.head_commit(repo, runner, fetcher.git)
    if branch_of(repo, runner, fetcher.git) is None:
        return Updated(repo.name, before, before, "skipped",
                       t("pinned at a commit (detached HEAD): not updated"))
    failed = fetch(repo, fetcher, runner)
    if failed:
        return Updated(repo.name, before, before, "failed",
                       t("fetch failed: {error}", error=failed))
    state = compare_upstream(repo, runner, fetcher.git)
    if state.error or state.behind is None:
        return Updated(repo.name, before, before, "skipped", state.error or "")
    if state.behind == 0:
        return Updated(repo.name, before, before, "current")
    if state.ahead:
        return Updated(repo.name, before, before, "failed", t(
            "it has {ahead} commit(s) of its own and {upstream} has {behind} new: not a "
            "fast-forward; merge it yourself (git -C {repo} pull)", ahead=state.ahead,
            behind=state.behind, upstream=state.upstream, repo=repo))
    res = runner.run([fetcher.git, "-C", str(repo), "merge", "--ff-only", "--quiet",
                      "@{upstream}"], timeout=gitops.CLONE_TIMEOUT_S)
    after = gitops.head_commit(repo, runner, fetcher.git)
    if not res.ok:
        return Updated(repo.name, before, after, "failed", t(
            "git could not fast-forward ({error}); your local changes are kept",
            error=mask(res.tail(1) or res.error or "")))
    return Updated(repo.name, before, after, "updated")
