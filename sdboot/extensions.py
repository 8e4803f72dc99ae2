"""WebUI extensions: clone into extensions/ through the WebUI's mirror (the same insteadOf
rules env mode gives the WebUI), with a few well-known names. Their install.py runs at the
WebUI's next start, under sdboot launch's PIP_CONSTRAINT, so it cannot replace torch."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from sdboot import gitops
from sdboot.errors import SdbootError
from sdboot.runner import Runner

# Names people ask for, and the repositories the WebUI's extension index lists for them.
KNOWN = {
    "zh-cn": "https://github.com/dtlnor/stable-diffusion-webui-localization-zh_CN.git",
    "zh-hans": "https://github.com/dtlnor/stable-diffusion-webui-localization-zh_CN.git",
    "zh-tw": "https://github.com/benlisquare/stable-diffusion-webui-localization-zh_TW.git",
    "controlnet": "https://github.com/Mikubill/sd-webui-controlnet.git",
}


def resolve_extension(what: str) -> str:
    key = what.strip().lower().replace("_", "-")
    if key in KNOWN:
        return KNOWN[key]
    if re.match(r"^(https?://|git@|ssh://)", what):
        return what
    if re.fullmatch(r"[\w.-]+/[\w.-]+", what):  # OWNER/REPO on GitHub
        return f"https://github.com/{what.removesuffix('.git')}.git"
    raise SdbootError(f"'{what}' is not a git URL or a known extension name",
                      f"known names: {', '.join(sorted(KNOWN))}; or OWNER/REPO, or a URL")


def _git_env(root: Path) -> dict[str, str]:
    """The insteadOf rules of the WebUI's mirror (install record, or mirror apply)."""
    from sdboot.mirror_apply import webui_selection
    from sdboot.mirror_env import existing_git_count, plan_mirror_env
    from sdboot.mirrors import load_mirrors

    table = load_mirrors()
    selection = webui_selection(root, table)
    plan = plan_mirror_env(selection, table, None, None,
                           git_count_base=existing_git_count(os.environ))
    return {**os.environ, **{k: v for k, v in plan.vars.items() if k.startswith("GIT_CONFIG")}}


def add_extension(root: Path, what: str, runner: Runner | None = None) -> tuple[Path, str]:
    url = resolve_extension(what)
    name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    dest = root / "extensions" / name
    if dest.exists():
        raise SdbootError(f"extensions/{name} is already installed",
                          f"update it with: git -C {dest} pull")
    partial = dest.with_name(f".{name}.sdboot-partial")
    if partial.exists():
        shutil.rmtree(partial)
    git = shutil.which("git")
    if git is None:
        raise SdbootError("git is not installed", "install git, then run again", exit_code=1)
    gitops.clone(url, partial, runner or Runner(), env=_git_env(root), git=git)
    os.replace(partial, dest)
    return dest, url


def list_extensions(root: Path) -> list[tuple[str, str | None, str | None]]:
    folder = root / "extensions"
    if not folder.is_dir():
        return []
    runner = Runner()
    rows = []
    for ext in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        is_git = (ext / ".git").exists()
        rows.append((ext.name, gitops.head_commit(ext, runner) if is_git else None,
                     gitops.origin_url(ext, runner) if is_git else None))
    return rows
