"""webui: the checkout itself: a launch file carrying mirror rewrites (blocks `git pull`),
repositories it clones that are gone upstream without a substitute set, folders git refuses
(another owner), folders in repositories/ or extensions/ that are no complete checkout
(read from their .git files: no git process on a healthy install), and checkouts whose
stored origin is a mirror's URL instead of the upstream (origin-proxy)."""

from __future__ import annotations

import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.i18n import N_, t
from sdboot.io.git import origin_url, refused_ownership
from sdboot.io.runner import which
from sdboot.values import Finding, Fix, Severity

_HEX = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_REMOVE = ("import sys; from pathlib import Path; from sdboot.io.files import remove_tree; "
           "remove_tree(Path(sys.argv[1]), Path(sys.argv[2]), 'checkout')")


def _mirror_args(facts: DoctorFacts) -> list[str]:
    """The mirrors already in use, so that a fix keeps them."""
    from sdboot.mirrors.status import webui_selection

    assert facts.webui_dir is not None
    chosen = webui_selection(facts.webui_dir, facts.mirrors).chosen()
    return [arg for group in ("github", "pypi", "torch", "hf") if group in chosen
            for arg in (f"--{group}", chosen[group])] or ["--mirror", "none"]


def _rewrite_finding(facts: DoctorFacts) -> Finding | None:
    from sdboot.mirrors.status import status

    assert facts.webui_dir is not None
    doc = status(facts.webui_dir, facts.mirrors)
    rw = doc.get("rewrite")
    revert = (*facts.sdboot_argv, "mirror", "revert", str(facts.webui_dir))
    if rw and rw.get("state") != "undone (the file is the original again)":
        edited = rw.get("state") == "edited since"
        return Finding("launch-file-rewritten", Severity.WARNING,
                       t("{file} carries {urls} GitHub URL(s) rewritten to {prefix} by "
                         "sdboot: `git pull` cannot update the WebUI", file=rw["file"],
                         urls=rw.get("urls"), prefix=rw.get("prefix")),
                       Fix(t("restore the original file (env mode keeps the mirror without "
                             "editing it: sdboot mirror apply --mode env)"),
                           ((*revert, "--force"),) if edited else (revert,),
                           automatic=not edited))
    if doc.get("hand_rewrites"):
        return Finding("launch-file-rewritten", Severity.WARNING,
                       t("{file} has {count} GitHub URL(s) behind a proxy, written by hand "
                         "(e.g. {example}): `git pull` cannot update the WebUI, and the proxy "
                         "may be dead", file=doc["launch_file"],
                         count=len(doc["hand_rewrites"]), example=doc["hand_rewrites"][0]),
                       Fix(t("remove the prefixes (then use sdboot mirror apply --mode env)"),
                           (revert,), automatic=True))
    return None


def _dead_repo_findings(facts: DoctorFacts) -> list[Finding]:
    from sdboot.mirrors.env import read_block
    from sdboot.mirrors.table import canonical_url, substitute
    from sdboot.webui.folder import parse_env_defaults

    assert facts.webui_dir is not None
    subs = facts.mirrors.substitutions
    defaults = parse_env_defaults(facts.launch_text or "")
    user_vars: dict[str, str] = {}
    for name in ("webui-user.sh", "webui-user.bat"):
        path = facts.webui_dir / name
        if path.is_file():
            user_vars.update(read_block(path.read_text(encoding="utf-8", errors="replace")))
    findings = []
    for var, url in defaults.items():
        if not var.endswith("_REPO") or substitute(url, subs) == url:
            continue
        current = os.environ.get(var) or user_vars.get(var)
        if current and canonical_url(current, facts.mirrors) != url:
            continue  # substituted (by sdboot's env block, or by hand)
        replacement = substitute(url, subs)
        repos = facts.webui_dir / "repositories"
        cloned = any(origin_url(p, facts.runner) == url for p in repos.iterdir()
                     if (p / ".git").exists()) if repos.is_dir() else False
        fix = Fix(t("set {var}={url} for the WebUI (a managed block in webui-user)",
                    var=var, url=replacement),
                  ((*facts.sdboot_argv, "mirror", "apply", str(facts.webui_dir), "--mode",
                    "env", *_mirror_args(facts)),), automatic=True)
        if cloned:
            findings.append(Finding("upstream-repo-dead", Severity.WARNING,
                                    t("{url} is gone; the copy in repositories/ still works, "
                                      "but a fresh install or an update of it would fail",
                                      url=url), fix))
        else:
            findings.append(Finding("upstream-repo-dead", Severity.ERROR,
                                    t("the WebUI clones {url} ({var}), which is gone: its "
                                      "first start fails; the same commits are at "
                                      "{replacement}", url=url, var=var,
                                      replacement=replacement), fix))
    return findings


# --- git-unsafe-directory ---------------------------------------------------------------------


def _checkouts(root: Path) -> list[Path]:
    """The WebUI and every git checkout in repositories/ and extensions/."""
    found = [root] if (root / ".git").exists() else []
    for sub in ("repositories", "extensions"):
        folder = root / sub
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.is_dir() and (p / ".git").exists())
    return found


def _foreign(path: Path) -> bool:
    """Owned by another user, as git sees it (POSIX: uid; as root, sudo's user counts)."""
    mine = {os.geteuid()}
    if os.geteuid() == 0 and os.environ.get("SUDO_UID", "").isdigit():
        mine.add(int(os.environ["SUDO_UID"]))
    try:
        return any(p.stat().st_uid not in mine for p in (path, path / ".git"))
    except OSError:
        return False


def unsafe_findings(facts: DoctorFacts) -> list[Finding]:
    return [f for _, f in _unsafe(facts)]


def _unsafe(facts: DoctorFacts) -> list[tuple[Path, Finding]]:
    """git asked only about folders owned by someone else (POSIX), all at once; on Windows
    ownership is not a uid, so git is asked about every checkout."""
    assert facts.webui_dir is not None
    git = which("git")
    if git is None:
        return []  # git-missing says so
    checkouts = _checkouts(facts.webui_dir)
    suspects = [p for p in checkouts if _foreign(p)] if os.name == "posix" else checkouts
    if not suspects:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(suspects))) as pool:
        refused = list(pool.map(lambda p: refused_ownership(p, facts.runner, git), suspects))
    findings = []
    for path, no in zip(suspects, refused, strict=True):
        if not no:
            continue
        if path == facts.webui_dir:
            message = t("git refuses the WebUI folder ({path}): it belongs to another user "
                        "(\"detected dubious ownership\"), so the WebUI cannot read its "
                        "version, update, or install and update extensions", path=path)
        elif path.parent.name == "repositories":
            message = t("git refuses {what} ({path}): it belongs to another user (\"detected "
                        "dubious ownership\"), so the WebUI cannot read its version, update, "
                        "or install and update extensions, and its start stops at this "
                        "repository", what=path.relative_to(facts.webui_dir), path=path)
        else:
            message = t("git refuses {what} ({path}): it belongs to another user (\"detected "
                        "dubious ownership\"), so the WebUI cannot read its version, update, "
                        "or install and update extensions",
                        what=path.relative_to(facts.webui_dir), path=path)
        findings.append((path, Finding(
            "git-unsafe-directory", Severity.ERROR, message,
            Fix(t("trust it in your git config (or give it back to your user: chown -R "
                  "$(id -un) {path})", path=path),
                ((git, "config", "--global", "--add", "safe.directory", path.as_posix()),),
                automatic=True))))
    return findings


def start_findings(facts: DoctorFacts) -> tuple[list[Finding], list[Finding]]:
    """For the launch guard: (the checkout findings that stop the WebUI at start, those it
    only warns about). The WebUI's git_clone runs `git rev-parse HEAD` in every pinned
    folder of repositories/ at each start and raises when git fails, so a broken one
    (repo-incomplete) or one git refuses (git-unsafe-directory; the real v1.10.1 stops
    with "Couldn't fetch BLIP.") blocks the start. The WebUI folder itself, refused by
    git, only loses its version ("<none>") and its updates, and an extension git refuses
    loses its update check (read errors are caught): the start goes on, so those two
    warn and do not refuse."""
    assert facts.webui_dir is not None
    stop = [f for f in incomplete_findings(facts) if f.severity == Severity.ERROR]
    warn: list[Finding] = []
    for path, finding in _unsafe(facts):
        (stop if path.parent.name == "repositories" and path.parent.parent ==
         facts.webui_dir else warn).append(finding)
    return stop, warn


# --- origin-proxy ------------------------------------------------------------------------------


def origin_findings(facts: DoctorFacts) -> list[Finding]:
    """Checkouts (the WebUI, repositories/*, extensions/*) whose stored remote.origin.url is
    behind a proxy or on a mirror's host: `git pull` then goes through that mirror, and
    fails when it is gone. Origins stay upstream; mirrors apply through insteadOf."""
    from sdboot.io.git import set_origin_argv, stored_origin
    from sdboot.io.mask import mask
    from sdboot.mirrors.origins import proxied_origin

    assert facts.webui_dir is not None
    root = facts.webui_dir
    git = which("git")
    checkouts = _checkouts(root)
    if git is None or not checkouts:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(checkouts))) as pool:
        stored = list(pool.map(lambda p: stored_origin(p, facts.runner, git), checkouts))
    findings = []
    for path, url in zip(checkouts, stored, strict=True):
        upstream = proxied_origin(url, facts.mirrors)
        if upstream is None or url is None:
            continue
        what = path.relative_to(root).as_posix() if path != root else "."
        message = (t("the WebUI's origin is a mirror's URL ({url}), not the upstream "
                     "{upstream}: `git pull` goes through that mirror and fails once it is "
                     "gone", url=mask(url), upstream=upstream) if path == root
                   else t("the origin of {what} is a mirror's URL ({url}), not the upstream "
                          "{upstream}: `git pull` goes through that mirror and fails once it "
                          "is gone", what=what, url=mask(url), upstream=upstream))
        findings.append(Finding(
            "origin-proxy", Severity.WARNING, message,
            Fix(t("set the origin back to {upstream} (a mirror applies through "
                  "url.<mirror>.insteadOf, never in .git/config)", upstream=upstream),
                (set_origin_argv(path, upstream, git),), automatic=True)))
    return findings


# --- repo-incomplete ---------------------------------------------------------------------------


def read_head(repo: Path) -> str | None:
    """The commit a checkout is at, read from its .git files (no git process); None when
    it has none (an interrupted clone, an unborn branch, a broken ref)."""
    gitdir = repo / ".git"
    try:
        if gitdir.is_file():  # "gitdir: PATH" (a worktree or a submodule)
            text = gitdir.read_text(encoding="utf-8", errors="replace").strip()
            if not text.startswith("gitdir:"):
                return None
            gitdir = repo / text[len("gitdir:"):].strip()
        head = (gitdir / "HEAD").read_text(encoding="utf-8", errors="replace").strip()
        if _HEX.fullmatch(head):
            return head
        if not head.startswith("ref:"):
            return None
        ref = head[4:].strip()
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()
        for base in (gitdir, common):
            loose = base / ref
            if loose.is_file():
                value = loose.read_text(encoding="utf-8", errors="replace").strip()
                return value if _HEX.fullmatch(value) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8", errors="replace").splitlines():
                sha, _, name = line.partition(" ")
                if name.strip() == ref and _HEX.fullmatch(sha):
                    return sha
    except OSError:
        return None
    return None


def _setting(facts: DoctorFacts, name: str, defaults: dict[str, str]) -> str | None:
    """What the WebUI will use: the environment, webui-user, then the launch file."""
    from sdboot.webui.folder import read_user_vars

    assert facts.webui_dir is not None
    return os.environ.get(name) or read_user_vars(facts.webui_dir).get(name) \
        or defaults.get(name)


def _clone_argv(facts: DoctorFacts, url: str, dest: Path) -> tuple[str, ...]:
    """git clone of the upstream URL through the WebUI's GitHub mirror, process-scoped
    (url.<mirror>.insteadOf), so that `origin` stays the upstream URL."""
    from sdboot.mirrors.status import webui_selection
    from sdboot.mirrors.table import git_rewrites

    assert facts.webui_dir is not None
    sel = webui_selection(facts.webui_dir, facts.mirrors)
    rules = git_rewrites(sel.github, facts.mirrors.substitutions)
    config = [arg for new, old in rules for arg in ("-c", f"url.{new}.insteadOf={old}")]
    return (which("git") or "git", *config, "clone", "--", url, str(dest))


def incomplete_findings(facts: DoctorFacts) -> list[Finding]:
    """Folders of repositories/ that are empty, have no .git, no commit, or another commit
    than the one the launch file pins; empty or commit-less extensions/ folders. The
    WebUI's git_clone skips an existing folder (or runs git in it, which then climbs up
    to the WebUI's own repository), so it never repairs one."""
    from sdboot.mirrors.table import substitute
    from sdboot.webui.folder import parse_clone_pins, parse_env_defaults

    assert facts.webui_dir is not None
    root = facts.webui_dir
    findings: list[Finding] = []
    repos = root / "repositories"
    if repos.is_dir():
        text = facts.launch_text or ""
        defaults = parse_env_defaults(text)
        pins = {p.folder: p for p in parse_clone_pins(text)}
        for path in sorted(p for p in repos.iterdir() if p.is_dir()):
            pin = pins.get(path.name)
            url = _setting(facts, pin.repo_var, defaults) if pin else None
            commit = _setting(facts, pin.commit_var, defaults) if pin and pin.commit_var \
                else None
            head = None
            if not any(path.iterdir()):
                why = N_("{rel} is empty (an interrupted clone): the WebUI does not repair it, "
                         "and its start fails there")
            elif not (path / ".git").exists():
                why = N_("{rel} has no .git (an interrupted clone, or files copied in): the "
                         "WebUI does not repair it, and its start fails there")
            else:
                head = read_head(path)
                if head is None:
                    why = N_("{rel} has no commit checked out (an interrupted clone): the "
                             "WebUI does not repair it, and its start fails there")
                elif commit and not head.startswith(commit.lower()):
                    why = N_("{rel} is at {head}, not at {commit} that the WebUI pins: the "
                             "WebUI does not repair it, and its start fails there")
                else:
                    continue
            rel = f"repositories/{path.name}"
            remove = (sys.executable, "-c", _REMOVE, str(repos), str(path))
            if url:
                url = substitute(url, facts.mirrors.substitutions)
                commands: tuple[tuple[str, ...], ...] = (remove, _clone_argv(facts, url, path))
                if commit:
                    commands += ((which("git") or "git", "-C", str(path), "checkout", "-q",
                                  commit),)
                fix = Fix(t("remove it and clone {url} again at {commit}", url=url,
                            commit=commit[:12]) if commit
                          else t("remove it and clone {url} again", url=url),
                          commands, automatic=True)
            else:
                fix = Fix(t("remove it: the WebUI clones it again at its next start"),
                          (remove,), automatic=True)
            findings.append(Finding(
                "repo-incomplete", Severity.ERROR,
                t(why, rel=rel, head=(head or "")[:12], commit=(commit or "")[:12]), fix))
    extensions = root / "extensions"
    if extensions.is_dir():
        for path in sorted(p for p in extensions.iterdir() if p.is_dir()):
            if any(path.iterdir()):
                if not (path / ".git").exists() or read_head(path) is not None:
                    continue  # a copied-in extension (no .git) is fine
                why = N_("extensions/{name} has a .git without a commit (an interrupted "
                         "clone): the WebUI lists it but cannot load it")
            else:
                why = N_("extensions/{name} is empty (an interrupted clone): the WebUI lists "
                         "it but cannot load it")
            findings.append(Finding(
                "repo-incomplete", Severity.WARNING, t(why, name=path.name),
                Fix(t("remove it and install the extension again (sdboot ext add URL)"),
                    ((sys.executable, "-c", _REMOVE, str(extensions), str(path)),),
                    automatic=True)))
    return findings


def run(facts: DoctorFacts) -> Outcome:
    if not facts.is_webui or facts.webui_dir is None:
        return Outcome(t("no WebUI folder"), skipped=True)
    findings: list[Finding] = []
    rewrite = _rewrite_finding(facts)
    if rewrite is not None:
        findings.append(rewrite)
    findings += _dead_repo_findings(facts)
    findings += unsafe_findings(facts)
    findings += incomplete_findings(facts)
    findings += origin_findings(facts)
    webui = facts.webui
    if webui is None:
        return Outcome(t("WebUI, launch file ?"), tuple(findings))
    if webui.version:
        return Outcome(t("{flavor} {version}, launch file {launch}", flavor=webui.flavor,
                         version=webui.version, launch=webui.launch_file), tuple(findings))
    return Outcome(t("{flavor} (version unknown), launch file {launch}", flavor=webui.flavor,
                     launch=webui.launch_file), tuple(findings))


CHECK = Check("webui", N_("WebUI checkout"), run, ("launch-file-rewritten", "upstream-repo-dead",
                                               "git-unsafe-directory", "repo-incomplete",
                                               "origin-proxy"))
