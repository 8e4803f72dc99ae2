"""WebUI extensions: clone into extensions/ through the WebUI's mirror (the same insteadOf
rules env mode gives the WebUI), with a few well-known names. Their install.py runs at the
WebUI's next start, under sdboot launch's PIP_CONSTRAINT, so it cannot replace torch."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sdboot.addons.ext_git import Updated
from sdboot.errors import SdbootError, keep_on_interrupt
from sdboot.i18n import N_, t
from sdboot.io import git as gitops
from sdboot.io.files import inside, remove_tree, safe_name
from sdboot.io.mask import mask
from sdboot.io.runner import Runner
from sdboot.mirrors.origins import ClonePlan, plan_clone

# Names people ask for, and the repositories the WebUI's extension index lists for them.
KNOWN = {
    "zh-cn": "https://github.com/dtlnor/stable-diffusion-webui-localization-zh_CN.git",
    "zh-hans": "https://github.com/dtlnor/stable-diffusion-webui-localization-zh_CN.git",
    "zh-tw": "https://github.com/benlisquare/stable-diffusion-webui-localization-zh_TW.git",
    "controlnet": "https://github.com/Mikubill/sd-webui-controlnet.git",
}
# what a Ctrl-C leaves (sdboot.errors.keep_on_interrupt)
UPDATE_KEPT = N_("each extension is either updated or still at its old commit (git moves a "
                 "branch in one step); 'sdboot ext list' shows where each one is")
REMOVE_RESUME = N_("the extension's folder may be partly deleted; run the same command again "
                   "to finish removing it")


def resolve_extension(what: str) -> str:
    key = what.strip().lower().replace("_", "-")
    if key in KNOWN:
        return KNOWN[key]
    if re.match(r"^(https?://|git@|ssh://)", what):
        host = (what[4:] if what.startswith("git@") else
                re.sub(r"^\w+://", "", what)).rpartition("@")[2]
        if host.startswith("-") or any(ch.isspace() or ord(ch) < 32 for ch in what):
            raise SdbootError(t("'{url}' is not a usable git URL", url=mask(what)),
                              t("give https://HOST/OWNER/REPO(.git)"))
        return what
    match = re.fullmatch(r"([\w.-]+)/([\w.-]+)", what)  # OWNER/REPO on GitHub
    if match and not any(p in (".", "..") or p.startswith(("-", ".."))
                         for p in match.groups()):
        return f"https://github.com/{what.removesuffix('.git')}.git"
    raise SdbootError(t("'{what}' is not a git URL or a known extension name", what=mask(what)),
                      t("known names: {names}; or OWNER/REPO, or a URL",
                        names=", ".join(sorted(KNOWN))))


def extension_name(url: str) -> str:
    """The folder name for a clone of url: its last path segment without .git, percent-
    decoded once and then proven a plain name (io.files.safe_name), or SdbootError."""
    tail = url.rstrip("/")
    if "://" not in tail and ":" in tail:  # scp-like git@host:owner/repo.git
        tail = tail.split(":", 1)[1]
    segment = re.split(r"[/:]", urlsplit(tail).path if "://" in tail else tail)[-1]
    return safe_name(unquote(segment).removesuffix(".git"), t("extension name"))


def _clone_plan(root: Path, url: str, config_env: bool) -> ClonePlan:
    """The upstream URL (a proxy prefix given with it taken off) through the insteadOf rules
    of the WebUI's mirror (install record, or mirror apply): origin stays the upstream."""
    from sdboot.mirrors.env import existing_git_count
    from sdboot.mirrors.loading import load_mirrors
    from sdboot.mirrors.status import webui_selection

    table = load_mirrors()
    selection = webui_selection(root, table)
    return plan_clone(url, selection.github, table, config_env=config_env,
                      git_count_base=existing_git_count(os.environ))


def add_extension(root: Path, what: str, runner: Runner | None = None) -> tuple[Path, str]:
    """Clone an extension into extensions/NAME (through a .NAME.sdboot-partial folder that is
    renamed when the clone is complete). The name is proven plain and both paths are
    proven inside extensions/; a partial clone or link left from before is removed inside
    it only. Returns the clone's path and the URL (may hold a credential: mask it)."""
    url = resolve_extension(what)
    name = extension_name(url)
    folder = root / "extensions"
    inside(root, folder, t("the extensions folder"))  # before mkdir: never a folder outside
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SdbootError(t("cannot create {folder}: {error}", folder=folder,
                            error=exc.strerror or exc),
                          t("make the WebUI folder writable for this user"),
                          exit_code=1) from None
    base = inside(root, folder, t("the extensions folder"))
    if (base / name).is_symlink():
        raise SdbootError(t("extensions/{name} is a symbolic link", name=name),
                          t("sdboot does not clone through a link: remove it or choose "
                            "another extension"), exit_code=1)
    dest = inside(base, base / name, t("the extension's folder"))
    if os.path.lexists(dest):
        raise SdbootError(t("extensions/{name} is already installed", name=name),
                          t("update it with: git -C {path} pull", path=dest))
    partial = base / f".{name}.sdboot-partial"
    if os.path.lexists(partial):
        try:
            remove_tree(base, partial, t("partial clone"))  # a link: only the link goes
        except OSError as exc:
            raise SdbootError(t("cannot remove the partial clone {path}: {error}",
                                path=partial, error=exc.strerror or exc),
                              t("remove it yourself, then run the command again"),
                              exit_code=1) from None
    git = shutil.which("git")
    if git is None:
        raise SdbootError(t("git is not installed"), t("install git, then run again"),
                          exit_code=1)
    runner = runner or Runner()
    plan = _clone_plan(root, url, gitops.reads_config_env(runner, git))
    try:
        gitops.clone(plan.url, partial, runner, env={**os.environ, **plan.env}, git=git,
                     origin=plan.origin)
    except SdbootError as exc:  # ext add has no --ref: the hint names what it takes
        raise SdbootError(mask(exc.message), t(
            "check the URL (a git URL, or a known name: {names}); behind a slow or blocked "
            "GitHub set a mirror first: sdboot mirror test, then sdboot mirror apply DIR "
            "--mirror NAME", names=", ".join(sorted(KNOWN))), exc.exit_code) from None
    if os.path.lexists(dest):  # appeared meanwhile: never replaced
        raise SdbootError(t("extensions/{name} appeared while cloning: not replacing it",
                            name=name),
                          t("the new clone is kept in {path}", path=partial), exit_code=1)
    os.replace(partial, dest)
    return dest, url


def remove_extension(root: Path, name: str) -> Path:
    """Delete extensions/NAME (proven a folder directly inside extensions/; a link goes as a
    link). config.json is left as it is: a disabled name stays disabled if it comes back."""
    from sdboot.addons.ext_state import find_extension

    path = find_extension(root, name)
    keep_on_interrupt(REMOVE_RESUME)
    remove_tree(root / "extensions", path, t("extension folder"))
    return path


def set_enabled(root: Path, name: str, enabled: bool) -> tuple[bool, Path | None, str]:
    """Add NAME to (or take it out of) the WebUI's disabled list in config.json.
    (changed?, the backup written, the WebUI's disable_all_extensions setting)."""
    from sdboot.addons.ext_config import plan_disabled, read_config, write_disabled
    from sdboot.addons.ext_state import find_extension

    config = read_config(root)
    shipped = root / "extensions-builtin"  # the WebUI's own (Lora, LDSR...): listed too
    builtins = {p.name for p in shipped.iterdir() if p.is_dir()} if shipped.is_dir() else set()
    # a name that is listed may always be enabled again (its folder may be gone)
    if not (enabled and name in config.disabled) and name not in builtins:
        find_extension(root, name)  # an extension the WebUI has, or exit 2
    names = plan_disabled(config.disabled, name, not enabled)
    if names == config.disabled:
        return False, None, config.disable_all
    return True, write_disabled(root, config, names), config.disable_all


def update_extensions(root: Path, names: list[str] | None,
                      runner: Runner | None = None) -> list[Updated]:
    """Fast-forward the named clones (all git clones when names is None) through the mirror;
    one result each, in order. A folder that is not a git clone is skipped."""
    from sdboot.addons.ext_git import plan_fetcher, update_clone
    from sdboot.addons.ext_state import extension_folders, find_extension

    runner = runner or Runner()
    folders = [find_extension(root, n) for n in names] if names else extension_folders(root)
    fetcher = plan_fetcher(root, runner)
    keep_on_interrupt(UPDATE_KEPT)
    results = []
    for ext in folders:
        if ext.is_symlink() or not (ext / ".git").exists():
            results.append(Updated(ext.name, None, None, "skipped",
                                   t("not a git clone: not updated")))
            continue
        results.append(update_clone(ext, fetcher, runner))
    return results
