"""An install that follows a lock (`sdboot install --lock FILE`), and the constraints files
the WebUI's requirements install gets besides the profile's: the lock's, or the known-good
set shipped for a catalogued release.

With --lock the lock is read and checked when the install starts, before anything changes
(a malformed lock, or one made for another Python or platform, is exit 2); the WebUI is
cloned at the lock's commit, the environment gets exactly the lock's distributions in one
installer call without dependency resolution, and the record step compares the
environment with the lock (exit 1 naming each difference)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.install.catalog import known_for
from sdboot.install.plan import InstallOptions, python_for
from sdboot.io.datafile import data_dir
from sdboot.io.files import atomic_write
from sdboot.mirrors.table import canonical_url, map_url
from sdboot.stack.lock import (
    Lock,
    check_lock_fits,
    freeze,
    here_platform,
    lock_differences,
    read_lock,
    render_lock_constraints,
)
from sdboot.stack.packages import (
    INSTALL_TIMEOUT_S,
    Installer,
    WheelSource,
    constraint_env,
    render_constraints,
    write_constraints,
)
from sdboot.stack.release_constraints import (
    fit_to_profile,
    parse_conflicts,
    read_release_constraints,
    render,
)
from sdboot.stack.release_constraints import shipped_path as release_file

if TYPE_CHECKING:
    from sdboot.install.context import InstallContext

# what `uv venv --seed` / ensurepip put in a fresh environment
_SEEDS = frozenset({"pip", "setuptools", "wheel"})
LOCK_CONSTRAINTS = "lock-constraints.txt"
LOCK_REQUIREMENTS = "lock-requirements.txt"
RELEASE_CONSTRAINTS = "release-constraints.txt"


def open_lock(opts: InstallOptions) -> tuple[InstallOptions, Lock | None]:
    """The options with the lock's profile, and the lock (None without --lock). Every
    refusal is exit 2 and comes before anything is created."""
    if opts.lock is None:
        return opts, None
    from sdboot.stack.profiles import get_profile, load_profiles

    lock = read_lock(opts.lock.expanduser())
    hint = t("leave out --profile and --ref: the lock decides them")
    if opts.profile is not None and opts.profile != lock.profile:
        raise SdbootError(t("--profile {profile} differs from the lock's profile {locked}",
                            profile=opts.profile, locked=lock.profile), hint)
    if opts.ref is not None and opts.ref != lock.webui_commit:
        raise SdbootError(t("--ref {ref} differs from the lock's WebUI commit {commit}",
                            ref=opts.ref, commit=lock.webui_commit), hint)
    profile = get_profile(load_profiles(), lock.profile)
    check_lock_fits(lock, python_for(profile), here_platform())
    return replace(opts, profile=lock.profile), lock


def _write(ctx: InstallContext, name: str, text: str) -> Path:
    path = ctx.state / name
    if not ctx.opts.dry_run and ctx.root.is_dir() and (
            not path.is_file() or path.read_text(encoding="utf-8") != text):
        atomic_write(path, text.encode(), root=ctx.root)
    return path


def write_extra_constraints(ctx: InstallContext) -> list[Path]:
    """InstallContext.extra_constraints (see there)."""
    if ctx.lock is not None:
        return [_write(ctx, LOCK_CONSTRAINTS, render_lock_constraints(ctx.lock))]
    known = known_for(ctx.catalog, ctx.repo) if ctx.repo else None
    source = release_file(data_dir(), known.name, ctx.ref, known.commits) if known else None
    if source is None or ctx.profile is None:
        return []
    entries = read_release_constraints(source)
    if ctx.profile.name in parse_conflicts(source.read_text(encoding="utf-8")):
        return []  # the profile's torch needs newer packages than the release had
    entries = fit_to_profile(entries,
                             render_constraints(ctx.profile, ctx.build_caps()).splitlines())
    header = [f"Written by sdboot from {source.name} ({known.name if known else ''}), the "
              "known-good set of this release,", f"less what profile {ctx.profile.name} pins "
              "otherwise. Change it with sdboot, not by hand."]
    return [_write(ctx, RELEASE_CONSTRAINTS, render(entries, header))]


def lock_lines(lock: Lock, ctx: InstallContext) -> list[str]:
    """What the lock install asks for: name==version, or name @ URL with the URL through
    this install's GitHub mirror."""
    mirror = ctx.selection.github
    return [f"{name} @ {map_url(lock.urls[name], mirror, ctx.table)}" if name in lock.urls
            else f"{name}=={version}" for name, version in sorted(lock.packages.items())]


def plan_lock_install(ctx: InstallContext, installer: Installer, source: WheelSource,
                      requirements: Path) -> list[str]:
    """One call, no resolution: `--no-deps -r lock-requirements.txt`, the profile's wheel
    source as an extra index (torch+cuXXX lives there), the build caps for any sdist.
    uv looks for each exact version on every index (the versions are exact, so the best
    match is the one wanted)."""
    argv = [*installer.base(ctx.python()), "--no-deps", "-r", str(requirements)]
    if source.url and source.mode in ("index", "extra"):
        argv += ["--extra-index-url", source.url]
    elif source.url:
        argv += source.args()
    if installer.kind == "uv":
        argv += ["--index-strategy", "unsafe-best-match",
                 "--build-constraint", str(ctx.build_constraints)]
    return argv


def install_lock(ctx: InstallContext, lock: Lock, installer: Installer) -> int:
    """The lock-mode torch step: the profile's constraints files as usually, then every
    distribution of the lock in one call, then the installer's seeds the lock does not
    have (pip, setuptools, wheel) removed. Returns the number of distributions."""
    assert ctx.profile is not None
    write_constraints(ctx.profile, ctx.constraints, ctx.build_caps(), ctx.build_constraints)
    requirements = write_lock_requirements(ctx, lock)
    argv = plan_lock_install(ctx, installer, ctx.wheel_source(), requirements)
    env = {**ctx.pip_env(), **constraint_env(None, ctx.build_constraints)}
    _run(ctx, argv, env, installer)
    extra = sorted(n for n in freeze(ctx.python(), ctx.runner)
                   if n in _SEEDS and n not in lock.packages)
    if extra:
        base = installer.base(ctx.python())
        uninstall = ([*base[:2], "uninstall", *base[3:], *extra] if installer.kind == "uv"
                     else [str(ctx.python()), "-m", "pip", "uninstall", "-y", *extra])
        _run(ctx, uninstall, env, installer)
    return len(lock.packages)


def _run(ctx: InstallContext, argv: list[str], env: dict[str, str],
         installer: Installer) -> None:
    res = ctx.runner.stream(argv, timeout=INSTALL_TIMEOUT_S, env=env, on_line=ctx.ui.detail)
    if not res.ok:
        raise SdbootError(t("{installer} could not install the lock (exit {code}): {tail}",
                            installer=installer.kind, code=res.returncode, tail=res.tail(3)),
                          t("a version of the lock may be gone from the index or its mirror; "
                            "full log: {log}", log=ctx.runner.log_path or "-"), exit_code=1)


def write_lock_requirements(ctx: InstallContext, lock: Lock) -> Path:
    return _write(ctx, LOCK_REQUIREMENTS, "# Written by sdboot: the lock, through this "
                  "install's mirrors.\n" + "\n".join(lock_lines(lock, ctx)) + "\n")


def upstream_urls(urls: dict[str, str], ctx: InstallContext) -> dict[str, str]:
    """The recorded direct URLs in upstream form (a mirror's prefix taken off), only those
    a lock may hold."""
    from sdboot.stack.lock import direct_url_problem

    out = {}
    for name, url in urls.items():
        upstream = canonical_url(url, ctx.table)
        if direct_url_problem(upstream) is None:
            out[name] = upstream
    return out


def check_against_lock(lock: Lock, installed: dict[str, str],
                       webui_commit: str | None) -> list[str]:
    """What makes the install another than the lock: distributions (lock_differences) and
    the WebUI's commit."""
    out = lock_differences(lock, installed)
    if webui_commit != lock.webui_commit:
        out.append(t("WebUI commit {have} (the lock has {want})", have=webui_commit or "-",
                     want=lock.webui_commit))
    return out


def repository_differences(lock: Lock, repositories: dict[str, str]) -> list[str]:
    """The repositories (cloned by the WebUI's own launch file) at other commits than the
    lock's: reported, not fatal (the WebUI's commit pins them; a gone upstream's copy may
    differ)."""
    return [t("repositories/{name} at {have} (the lock has {want})", name=name,
              have=repositories.get(name) or "-", want=commit)
            for name, commit in sorted(lock.repositories.items())
            if repositories.get(name) != commit]


def refuse_differences(differences: list[str], source: Path | None) -> None:
    if differences:
        shown = "; ".join(differences[:12]) + ("; ..." if len(differences) > 12 else "")
        raise SdbootError(
            t("the install differs from the lock {path}: {differences}",
              path=source or "-", differences=shown),
            t("the lock cannot be reproduced here as it is (a version gone from the index, "
              "or the WebUI installed something else); see the log, or install without "
              "--lock"), exit_code=1)

