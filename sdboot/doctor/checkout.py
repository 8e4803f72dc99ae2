"""webui: the checkout itself: a launch file carrying mirror rewrites (blocks `git pull`),
and repositories it clones that are gone upstream without a substitute set."""

from __future__ import annotations

import os

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.gitops import origin_url
from sdboot.model import Finding, Fix, Severity


def _mirror_args(facts: DoctorFacts) -> list[str]:
    """The mirrors already in use, so that a fix keeps them."""
    from sdboot.mirror_apply import webui_selection

    assert facts.webui_dir is not None
    chosen = webui_selection(facts.webui_dir, facts.mirrors).chosen()
    return [arg for group in ("github", "pypi", "torch", "hf") if group in chosen
            for arg in (f"--{group}", chosen[group])]


def _rewrite_finding(facts: DoctorFacts) -> Finding | None:
    from sdboot.mirror_apply import status

    assert facts.webui_dir is not None
    doc = status(facts.webui_dir, facts.mirrors)
    rw = doc.get("rewrite")
    revert = (*facts.sdboot_argv, "mirror", "revert", str(facts.webui_dir))
    if rw and rw.get("state") != "undone (the file is the original again)":
        edited = rw.get("state") == "edited since"
        return Finding("launch-file-rewritten", Severity.WARNING,
                       f"{rw['file']} carries {rw.get('urls')} GitHub URL(s) rewritten to "
                       f"{rw.get('prefix')} by sdboot: `git pull` cannot update the WebUI",
                       Fix("restore the original file (env mode keeps the mirror without "
                           "editing it: sdboot mirror apply --mode env)",
                           ((*revert, "--force"),) if edited else (revert,),
                           automatic=not edited))
    if doc.get("hand_rewrites"):
        return Finding("launch-file-rewritten", Severity.WARNING,
                       f"{doc['launch_file']} has {len(doc['hand_rewrites'])} GitHub URL(s) "
                       f"behind a proxy, written by hand (e.g. {doc['hand_rewrites'][0]}): "
                       "`git pull` cannot update the WebUI, and the proxy may be dead",
                       Fix("remove the prefixes (then use sdboot mirror apply --mode env)",
                           (revert,), automatic=True))
    return None


def _dead_repo_findings(facts: DoctorFacts) -> list[Finding]:
    from sdboot.mirror_env import read_block
    from sdboot.mirrors import canonical_url, substitute
    from sdboot.webui import parse_env_defaults

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
        fix = Fix(f"set {var}={replacement} for the WebUI (a managed block in webui-user)",
                  ((*facts.sdboot_argv, "mirror", "apply", str(facts.webui_dir), "--mode",
                    "env", *_mirror_args(facts)),), automatic=True)
        if cloned:
            findings.append(Finding("upstream-repo-dead", Severity.WARNING,
                                    f"{url} is gone; the copy in repositories/ still works, "
                                    "but a fresh install or an update of it would fail", fix))
        else:
            findings.append(Finding("upstream-repo-dead", Severity.ERROR,
                                    f"the WebUI clones {url} ({var}), which is gone: its "
                                    f"first start fails; the same commits are at "
                                    f"{replacement}", fix))
    return findings


def run(facts: DoctorFacts) -> Outcome:
    if not facts.is_webui or facts.webui_dir is None:
        return Outcome("no WebUI folder", skipped=True)
    findings: list[Finding] = []
    rewrite = _rewrite_finding(facts)
    if rewrite is not None:
        findings.append(rewrite)
    findings += _dead_repo_findings(facts)
    webui = facts.webui
    what = f"{webui.flavor} {webui.version or '(version unknown)'}" if webui else "WebUI"
    launch = webui.launch_file if webui else "?"
    return Outcome(f"{what}, launch file {launch}", tuple(findings))


CHECK = Check("webui", "WebUI checkout", run, ("launch-file-rewritten", "upstream-repo-dead"))
