"""git through the runner: the version (GIT_CONFIG_COUNT needs git >= 2.31), clones that
may go through an untrusted mirror and are therefore checked against the commit they must
have, and the commit a checkout is at. URLs and paths always follow `--` (or -C), so a value
that starts with '-' can never be read by git as an option."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sdboot.errors import SdbootError
from sdboot.i18n import N_, t
from sdboot.io.runner import Runner, which

CLONE_TIMEOUT_S = 1800.0
QUICK_TIMEOUT_S = 15.0
GIT_CONFIG_ENV_MIN = (2, 31)  # first git that reads GIT_CONFIG_COUNT / _KEY_n / _VALUE_n


@dataclass(frozen=True)
class GitInfo:
    exe: str | None
    version: tuple[int, ...] | None

    @property
    def config_env(self) -> bool:
        return self.version is not None and self.version[:2] >= GIT_CONFIG_ENV_MIN


def parse_git_version(text: str) -> tuple[int, ...] | None:
    """'git version 2.39.2.windows.1' -> (2, 39, 2)."""
    match = re.search(r"git version (\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return tuple(int(g) for g in match.groups() if g is not None)


def detect_git(runner: Runner | None = None, exe: str | None = None) -> GitInfo:
    exe = exe or which("git")
    if not exe:
        return GitInfo(None, None)
    res = (runner or Runner()).run([exe, "--version"], timeout=QUICK_TIMEOUT_S)
    return GitInfo(exe, parse_git_version(res.stdout) if res.ok else None)


def reads_config_env(runner: Runner | None = None, exe: str | None = None) -> bool:
    """Whether git applies GIT_CONFIG_COUNT/KEY/VALUE (>= 2.31; assumed when its version
    cannot be read, or git is missing: nothing is cloned then)."""
    info = detect_git(runner, exe)
    return info.config_env or info.version is None


def head_commit(repo: Path, runner: Runner | None = None, git: str = "git") -> str | None:
    res = (runner or Runner()).run([git, "-C", str(repo), "rev-parse", "HEAD"],
                                   timeout=QUICK_TIMEOUT_S)
    return res.stdout.strip() if res.ok else None


def origin_url(repo: Path, runner: Runner | None = None, git: str = "git") -> str | None:
    res = (runner or Runner()).run([git, "-C", str(repo), "remote", "get-url", "origin"],
                                   timeout=QUICK_TIMEOUT_S)
    return res.stdout.strip() if res.ok else None


def stored_origin(repo: Path, runner: Runner | None = None, git: str = "git") -> str | None:
    """remote.origin.url as .git/config keeps it (`git remote get-url` would apply the
    insteadOf rules in force and show the mirror's URL, or hide it)."""
    res = (runner or Runner()).run([git, "-C", str(repo), "config", "--get",
                                    "remote.origin.url"], timeout=QUICK_TIMEOUT_S)
    return res.stdout.strip() if res.ok and res.stdout.strip() else None


def set_origin_argv(repo: Path, url: str, git: str = "git") -> tuple[str, ...]:
    """The command that makes url the checkout's origin."""
    return (git, "-C", str(repo), "remote", "set-url", "origin", "--", url)


def set_origin(repo: Path, url: str, runner: Runner, git: str = "git") -> bool:
    return runner.run(set_origin_argv(repo, url, git), timeout=QUICK_TIMEOUT_S).ok


def verify_commit(repo: Path, expected: str, url: str, runner: Runner | None = None,
                  git: str = "git") -> str:
    """The checkout must be at `expected` (a full or abbreviated hash): a mirror is
    untrusted, and a wrong commit through it is an error, not a warning."""
    actual = head_commit(repo, runner, git)
    if actual is None or not actual.startswith(expected.lower()):
        raise SdbootError(
            t("{name} from {url} is at {actual}, expected {expected}", name=repo.name, url=url,
              actual=actual or t("no commit"), expected=expected), t(_OTHER_CODE), exit_code=1)
    return actual


_OTHER_CODE = N_("the mirror served different code: use another mirror (sdboot mirror test) "
                 "or --mirror none")
_COMMIT = re.compile(r"[0-9a-fA-F]{4,64}")
# a branch or tag name as git allows it (git check-ref-format), never an option
_REF = re.compile(r"(?!-)(?!.*\.\.)(?!.*@\{)[\w./+@-]+(?<![./])")


def check_ref(ref: str) -> str:
    """A tag / branch / commit name, or SdbootError (exit 2): it goes to git's argv."""
    if not _REF.fullmatch(ref) or ref.endswith(".lock") or "//" in ref:
        raise SdbootError(t("'{ref}' is not a git tag, branch or commit name", ref=ref),
                          t("give a name such as v1.10.1, master or a commit hash"))
    return ref


def without_userinfo(url: str) -> str:
    """The URL without user:password@ (what is kept in .git/config)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc or not parts.scheme:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def clone(url: str, dest: Path, runner: Runner, *, ref: str | None = None,
          expected_commit: str | None = None, env: Mapping[str, str] | None = None,
          git: str = "git", on_line: Callable[[str], None] | None = None,
          origin: str | None = None) -> str:
    """Clone url into dest (optionally at ref) and return the checked-out commit; with
    expected_commit, a clone at another commit is removed and reported. A URL with a
    credential (https://user:pw@mirror/...) is used for the clone, then the checkout's
    origin is set to the URL without it, so no password stays in .git/config. `origin`
    (the upstream, when url is a mirror's) is what the origin is set to instead."""
    argv = [git, "clone", "--progress"]
    if ref:
        argv += ["--branch", check_ref(ref)]
    if expected_commit and not _COMMIT.fullmatch(expected_commit):
        raise SdbootError(t("'{commit}' is not a commit hash", commit=expected_commit),
                          t("a pinned commit is 4 to 64 hex digits"))
    argv += ["--", url, str(dest)]
    res = runner.stream(argv, timeout=CLONE_TIMEOUT_S, env=env,
                        on_line=on_line)
    if runner.dry_run:
        return expected_commit or ""
    if not res.ok:
        raise SdbootError(t("git clone {url} failed: {error}", url=url,
                            error=res.tail(3) or res.error),
                          t("check the URL and --ref, or try a mirror (sdboot mirror test)"),
                          exit_code=1)
    clean = without_userinfo(origin or url)
    if clean != url:
        runner.run(set_origin_argv(dest, clean, git), timeout=QUICK_TIMEOUT_S)
    if expected_commit:
        checkout = runner.run([git, "-C", str(dest), "checkout", "-q", expected_commit],
                              timeout=QUICK_TIMEOUT_S, env=env)
        if not checkout.ok:
            raise SdbootError(t("{url} has no commit {commit}", url=url, commit=expected_commit),
                              t(_OTHER_CODE), exit_code=1)
        return verify_commit(dest, expected_commit, url, runner, git)
    return head_commit(dest, runner, git) or ""


def refused_ownership(repo: Path, runner: Runner | None = None, git: str = "git") -> bool:
    """git refuses the repository: it belongs to another user and is not a safe.directory
    ("detected dubious ownership", git >= 2.35.2, CVE-2022-24765)."""
    res = (runner or Runner()).run([git, "-C", str(repo), "rev-parse", "--git-dir"],
                                   timeout=QUICK_TIMEOUT_S)
    return not res.ok and "dubious ownership" in (res.stderr + res.stdout)
