"""Before any step runs: choose the profile for this machine, the mirrors, and check git,
the target folder, the disk, that the upstreams answer, and that the Python the venv needs is
there (else offer `uv python install`, through the python mirror)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence

from sdboot.errors import SdbootError
from sdboot.i18n import Text, _, local, t
from sdboot.install.context import InstallContext
from sdboot.install.plan import disk_verdict, existing_parent, python_for
from sdboot.io import git as gitops
from sdboot.mirrors.loading import select
from sdboot.mirrors.status import webui_selection
from sdboot.values import WebuiFacts
from sdboot.webui.folder import is_webui, parse_webui_version


def choose_profile(ctx: InstallContext) -> None:
    from sdboot.machine.gpu import detect_gpu, detect_host
    from sdboot.stack.fit import resolve_profile
    from sdboot.stack.profiles import get_profile, load_profiles
    from sdboot.webui.folder import detect_webui

    profiles = load_profiles()
    wanted = ctx.opts.profile or ctx.record.get("profile")
    if wanted:
        ctx.profile = get_profile(profiles, wanted)
        if ctx.opts.profile is None:
            return
    ctx.host = ctx.host or detect_host()
    ctx.gpu = ctx.gpu or detect_gpu(ctx.runner, ctx.host)
    webui: WebuiFacts | None = None
    if is_webui(ctx.root):
        webui = detect_webui(ctx.root, ctx.runner)
    elif ctx.known is not None and ctx.known.flavor != "a1111":  # the catalog's Forge kin
        webui = WebuiFacts(None, ctx.known.flavor, None, "catalog")
    else:
        flavor = "forge" if "forge" in (ctx.repo or "").lower() else None
        # a commit (a lock's) of a catalogued release counts as that release
        ref = (ctx.known.tag_of(ctx.ref) if ctx.known is not None else None) or ctx.ref
        webui = parse_webui_version(flavor or (ref or "1.10.1")) if (
            flavor or (ref and re.fullmatch(r"v?\d+\.\d+\.\d+(-\w+)?", ref))) \
            else None
    if webui is not None:
        ctx.record["webui_version"] = webui.version
    # the profiles that fit this WebUI (its catalog entry), unless --profile chose one
    fits = ctx.known.profiles if ctx.known is not None else ()
    pool = profiles if ctx.opts.profile else \
        ({n: p for n, p in profiles.items() if n in fits} or profiles)
    if ctx.opts.profile and fits and ctx.opts.profile not in fits and ctx.known is not None:
        ctx.notes.append(t("--profile {name} is not one the catalog lists for {webui} ({fits})",
                           name=ctx.opts.profile, webui=ctx.known.name, fits=", ".join(fits)))
    res = resolve_profile(pool, ctx.gpu, ctx.host,
                          python_for(None, ctx.known.python if ctx.known else None), webui,
                          ctx.opts.profile)
    if res.profile is None and pool is not profiles and ctx.known is not None:
        raise SdbootError(
            t("no torch profile for {webui} fits this machine: {why}", webui=ctx.known.name,
              why=_joined([t("{name}: {why}", name=r.profile, why=r.why)
                           for r in res.rejected])),
            t("{advice}; or another WebUI (docs/webuis.md)", advice=_joined(res.advice)),
            exit_code=1)
    if res.profile is None:
        raise SdbootError(t("no torch profile fits this machine"), _joined(res.advice),
                          exit_code=1)
    ctx.profile = res.profile
    for reason in res.reasons[:2]:
        ctx.notes.append(reason)


def _joined(texts: Sequence[str]) -> Text:
    """'; '-joined, in English and translated."""
    return Text("; ".join(texts), t("; ").localized.join(local(x) for x in texts))


def choose_mirrors(ctx: InstallContext, pending: list[str]) -> None:
    spec = ctx.opts.mirror
    saved = ctx.record.get("mirror") or {}
    if spec is None and saved:
        ctx.selection = webui_selection(ctx.root, ctx.table)
        return
    if spec == "auto":
        from sdboot.mirrors.health import auto_select

        ctx.ui.note(_("checking GitHub, the package index and the torch index ..."))
        ctx.selection, reasons, _results = auto_select(
            ctx.table, variant=ctx.profile.variant if ctx.profile else None)
        for reason in reasons:
            ctx.ui.note(_("mirror: {reason}").format(reason=local(reason)))
        return
    ctx.selection = select(ctx.table, spec, ctx.opts.insecure)
    if ctx.opts.dry_run:  # a dry run plans without the network, and says so
        ctx.notes.append(t("dry run: GitHub, the package index and the torch index were not "
                           "checked (the real run checks them first)"))
    elif "clone" in pending or "prepare" in pending:
        _reachability(ctx)


def _reachability(ctx: InstallContext) -> None:
    """Warn early when an upstream without a mirror cannot be reached; stop when GitHub
    is unreachable, since nothing else can work then."""
    from sdboot.mirrors.health import plan_candidates, run_health

    groups = tuple(g for g in ("github", "pypi", "torch")
                   if ctx.selection.get(g) is None)
    if not groups:
        return
    variant = ctx.profile.variant if ctx.profile else None
    cands = plan_candidates(ctx.table, groups, variant=variant)
    cands = [c for c in cands if c.kind == "upstream"]
    for health in run_health(cands, 4.0, ctx.runner):
        if health.alive:
            continue
        group = health.candidate.group
        if group == "github":
            raise SdbootError(t("GitHub cannot be reached ({error})", error=health.error),
                              t("use a mirror: --mirror auto (or --mirror cn in mainland "
                                "China); see sdboot mirror test"), exit_code=1)
        ctx.notes.append(t("{group}: the upstream did not answer ({error}); if the install "
                           "fails there, try --mirror auto", group=group, error=health.error))


def preflight(ctx: InstallContext) -> None:
    git = gitops.detect_git(ctx.runner)
    if git.exe is None:
        raise SdbootError(t("git is not installed (or not on PATH)"),
                          t("install git (Windows: winget install Git.Git) and run again"),
                          exit_code=1)
    ctx.git = git.exe
    ctx.git_config_env = git.config_env or git.version is None
    if git.version and not git.config_env:
        ctx.notes.append(t("git {version} is older than 2.31: mirrors reach the WebUI's own "
                           "clones, not extension clones",
                           version=".".join(map(str, git.version))))
    where = existing_parent(ctx.root)
    if not os.access(where, os.W_OK):
        raise SdbootError(t("cannot write to {dir}", dir=where),
                          t("choose a folder you own, e.g. under your home folder"))
    assert ctx.profile is not None
    verdict, message = disk_verdict(shutil.disk_usage(where).free, ctx.profile.backend)
    if verdict == "stop":
        raise SdbootError(t("not enough disk space at {dir}: {why}", dir=where, why=message),
                          t("free some space or install elsewhere"), exit_code=1)
    if verdict == "warn":
        ctx.notes.append(message)


def ensure_python(ctx: InstallContext, pending: list[str]) -> None:
    """The venv's base Python (3.10 for the WebUIs sdboot knows). Where the machine has
    none and uv is there, offer `uv python install X.Y` with UV_PYTHON_INSTALL_MIRROR from
    the chosen mirrors: asked on a terminal (not with --yes), only shown in a dry run. The
    env step then finds what `uv python find X.Y` reports. Without uv, or declined: the
    error that names the command."""
    if ctx.env_kind != "venv" or "env" not in pending:
        return
    from sdboot.machine.envs.venv import locate_python
    from sdboot.machine.uv_python import (
        find_uv,
        install_hint,
        plan_python_install,
        render_command,
        run_python_install,
    )
    from sdboot.mirrors.table import python_install_mirror

    version = ctx.venv_python_version()
    if locate_python(version, ctx.runner) is not None:
        return
    mirror_url = python_install_mirror(ctx.selection)
    uv = find_uv()
    plan = plan_python_install(version, uv, mirror_url)
    missing = t("Python {version} was not found (tried py, python{version}, pyenv, uv)",
                version=version)
    if plan is None:
        raise SdbootError(missing, install_hint(version, mirror_url, uv), exit_code=1)
    command = render_command(plan.argv, plan.env)
    if ctx.opts.dry_run:
        ctx.notes.append(t("Python {version} was not found: the real run offers to get it "
                           "with uv: {command}", version=version, command=command))
        return
    question = _("Python {version} was not found. Download it with uv ({command})?")
    if ctx.confirm is not None and not ctx.confirm(question.format(version=version,
                                                                   command=command)):
        raise SdbootError(missing, install_hint(version, mirror_url, uv), exit_code=1)
    ctx.ui.note(t("getting Python {version}: {command}", version=version, command=command))
    found = run_python_install(plan, ctx.runner)
    ctx.notes.append(t("Python {version} installed by uv: {path}", version=version,
                       path=found))
