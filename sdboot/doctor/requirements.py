"""requirements: what the WebUI's next start would still install or build, read from the
environment's site-packages folders (dist-info and egg-info names: no Python process). Packages its
requirements file pins that are missing or at other versions (it installs them at start,
over the network), and source packages (CLIP, open_clip) it must build with a setuptools
that no longer has pkg_resources."""

from __future__ import annotations

import os
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.i18n import N_, t
from sdboot.values import Finding, Fix, Severity

STACK = frozenset({"torch", "torchvision", "xformers"})  # the torch check's business
# (variable, module the WebUI looks for with is_installed(), distribution names)
SOURCE_PACKAGES = (("CLIP_PACKAGE", "clip", ("clip", "openai-clip")),
                   ("OPENCLIP_PACKAGE", "open_clip", ("open-clip-torch",)))
# setuptools 82.0.0 removed pkg_resources (setuptools NEWS.rst, v82.0.0, "pkg_resources has
# been removed from Setuptools", 2026-02); CLIP's setup.py at d50d76d imports it and fails
# with "No module named 'pkg_resources'" (openai/CLIP#528, A1111#17284).
NO_PKG_RESOURCES = Version("82")
# bdist_wheel is part of setuptools from 70.1 (no `wheel` needed without build isolation)
BUILD_SETUPTOOLS = "setuptools>=70.1,<82"
# pip 25.3 removed the setup.py bdist_wheel route (PEP 517 always, so an isolated build env
# with the newest setuptools) and made PIP_BUILD_CONSTRAINT the way to pin it (pip 25.3
# changelog, #13534). pip < 23.1 without `wheel` ran `setup.py install` with the env's own
# setuptools (FACTS.md 6, tested with pip 23.0.1).
PIP_PEP517_ONLY = Version("25.3")
PIP_NEEDS_WHEEL = Version("23.1")


def site_packages(python: Path) -> list[Path]:
    prefix = python.parent.parent if python.parent.name in ("bin", "Scripts") else python.parent
    return [*prefix.glob("lib/python3*/site-packages"), *prefix.glob("Lib/site-packages")]


def parse_info_name(name: str) -> tuple[str, str | None] | None:
    """(distribution, version or None) from a metadata entry's name in site-packages:
    NAME-VERSION.dist-info, NAME-VERSION-pyX.Y.egg-info (setup.py install), NAME-VERSION.egg-info
    and NAME.egg-info (a develop install: the version is only inside). Both escape "-" in
    the name and version to "_", so the first "-" ends the name; None for anything else."""
    for suffix in (".dist-info", ".egg-info"):
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = name[:-len(suffix)]
            break
    else:
        return None
    dist, sep, rest = stem.partition("-")
    if not dist:
        return None
    if not sep:
        return (dist, None) if suffix == ".egg-info" else None
    version = rest.split("-", 1)[0]  # "1.8.0-py3.10" -> "1.8.0"
    return (dist, version) if version else None


def _pkg_info_version(info: Path) -> str | None:
    """Version: from an egg-info file, or an egg-info folder's PKG-INFO (headers only)."""
    path = info if info.is_file() else info / "PKG-INFO"
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for _, line in zip(range(200), fh, strict=False):
                if line.lower().startswith("version:"):
                    return line.split(":", 1)[1].strip() or None
                if not line.strip():
                    break
    except OSError:
        return None
    return None


def installed_distributions(python: Path) -> tuple[dict[str, str], set[str]]:
    """(canonical name -> version, top-level names in site-packages), from folder names."""
    dists: dict[str, str] = {}
    tops: set[str] = set()
    for site in site_packages(python):
        try:
            entries = list(os.scandir(site))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            parsed = parse_info_name(name)
            if parsed is not None:
                if parsed[1] is not None:
                    dists.setdefault(str(canonicalize_name(parsed[0])), parsed[1])
                elif entry.is_file() or (Path(entry.path) / "PKG-INFO").is_file():
                    version = _pkg_info_version(Path(entry.path))
                    if version:
                        dists.setdefault(str(canonicalize_name(parsed[0])), version)
            elif not name.endswith((".dist-info", ".egg-info")):
                tops.add(name.removesuffix(".py"))
    return dists, tops


def _version(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def _setting(facts: DoctorFacts, name: str, defaults: dict[str, str]) -> str | None:
    from sdboot.doctor.checkout import _setting as setting

    return setting(facts, name, defaults)


def _pip_tail(facts: DoctorFacts) -> list[str]:
    """sdboot's constraints (the pinned torch stays) and the WebUI's package mirror."""
    from sdboot.mirrors.status import webui_selection

    assert facts.webui_dir is not None
    tail = ["--prefer-binary"]
    constraints = facts.webui_dir / ".sdboot" / "constraints.txt"
    if constraints.is_file():
        tail += ["-c", str(constraints)]
    sel = webui_selection(facts.webui_dir, facts.mirrors)
    if sel.pypi is not None:
        tail += ["--index-url", sel.pypi.url]
    return tail


def requirements_file(facts: DoctorFacts, defaults: dict[str, str]) -> Path | None:
    assert facts.webui_dir is not None
    name = _setting(facts, "REQS_FILE", defaults) or "requirements_versions.txt"
    path = Path(name) if Path(name).is_absolute() else facts.webui_dir / name
    return path if path.is_file() else None


def unmet_findings(facts: DoctorFacts, python: Path, dists: dict[str, str],
                   defaults: dict[str, str]) -> list[Finding]:
    from sdboot.webui.folder import parse_requirements

    path = requirements_file(facts, defaults)
    if path is None:
        return []
    unmet: list[tuple[str, str]] = []
    for name, spec, line in parse_requirements(path.read_text(encoding="utf-8",
                                                              errors="replace")):
        if name in STACK:
            continue
        have = dists.get(name)
        try:
            wanted = SpecifierSet(spec)
        except InvalidSpecifier:
            continue
        version = _version(have)
        if have is None:
            unmet.append((line, f"{name} missing"))
        elif spec and (version is None or not wanted.contains(version, prereleases=True)):
            unmet.append((line, f"{name} {have}"))
    if not unmet:
        return []
    shown = ", ".join(f"{line} ({why})" for line, why in unmet[:6])
    message = t("{count} package(s) of {file} are not installed as pinned: {shown} and "
                "{more} more; the WebUI installs them at its next start, over the network",
                count=len(unmet), file=path.name, shown=shown, more=len(unmet) - 6) \
        if len(unmet) > 6 else \
        t("{count} package(s) of {file} are not installed as pinned: {shown}; the WebUI "
          "installs them at its next start, over the network", count=len(unmet),
          file=path.name, shown=shown)
    return [Finding(
        "requirements-unmet", Severity.WARNING, message,
        Fix(t("install them now (under sdboot's constraints, through the package mirror)"),
            ((str(python), "-m", "pip", "install", *(line for line, _ in unmet),
              *_pip_tail(facts)),), automatic="pip" in dists))]


def _is_source(spec: str) -> bool:
    spec = spec.strip()
    return spec.startswith("git+") or "/archive/" in spec or \
        spec.endswith((".zip", ".tar.gz", ".tgz"))


def _build_constraint_ok(facts: DoctorFacts) -> tuple[bool, str | None]:
    """(a build constraint keeps setuptools below 82, the variable that sets one)."""
    from sdboot.webui.folder import parse_requirements

    assert facts.webui_dir is not None
    for var in ("PIP_BUILD_CONSTRAINT", "UV_BUILD_CONSTRAINT"):
        value = _setting(facts, var, {})
        if not value:
            continue
        path = Path(value.removeprefix("file://"))
        if not path.is_absolute():
            path = facts.webui_dir / path
        try:
            entries = parse_requirements(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return False, var
        for name, spec, _ in entries:
            if name == "setuptools" and spec and not SpecifierSet(spec).contains(
                    NO_PKG_RESOURCES, prereleases=True):
                return True, var
        return False, var
    return False, None


def build_findings(facts: DoctorFacts, python: Path, dists: dict[str, str], tops: set[str],
                   defaults: dict[str, str]) -> list[Finding]:
    pending = []
    for var, module, dist_names in SOURCE_PACKAGES:
        spec = _setting(facts, var, defaults)
        if not spec or not _is_source(spec):
            continue
        if module in tops or any(n in dists for n in dist_names):
            continue
        pending.append((var, spec))
    if not pending or "pip" not in dists:  # without pip, pip-missing is the finding
        return []
    pip = _version(dists.get("pip"))
    setuptools = _version(dists.get("setuptools"))
    legacy = (pip is not None and pip < PIP_PEP517_ONLY and setuptools is not None
              and (pip < PIP_NEEDS_WHEEL or "wheel" in dists))
    if legacy:
        assert setuptools is not None
        if setuptools < NO_PKG_RESOURCES:
            return []
        why = t("pip {pip} builds it with the environment's setuptools {setuptools}",
                pip=pip, setuptools=setuptools)
    else:
        ok, setter = _build_constraint_ok(facts)
        if ok:
            return []
        why = t("pip {pip} builds it in an isolated environment with the newest setuptools "
                "(82 or later since 2026-02), and {setter} does not keep setuptools below 82",
                pip=pip or "?", setter=setter) if setter else \
            t("pip {pip} builds it in an isolated environment with the newest setuptools "
              "(82 or later since 2026-02), and no PIP_BUILD_CONSTRAINT is set", pip=pip or "?")
    from sdboot.mirrors.env import plan_mirror_env
    from sdboot.mirrors.status import webui_selection

    assert facts.webui_dir is not None
    mirrored = plan_mirror_env(webui_selection(facts.webui_dir, facts.mirrors), facts.mirrors,
                               facts.launch_text).vars
    tail = _pip_tail(facts)
    commands: list[tuple[str, ...]] = [(str(python), "-m", "pip", "install", BUILD_SETUPTOOLS,
                                        *tail)]
    for var, spec in pending:
        url = mirrored.get(var, spec) if spec == defaults.get(var) else spec
        commands.append((str(python), "-m", "pip", "install", "--no-build-isolation", url,
                         *tail))
    what = " and ".join(f"{spec.strip()} ({var})" for var, spec in pending)
    return [Finding(
        "build-tools", Severity.ERROR,
        t("the WebUI still has to build {what}: {why}, which has no pkg_resources, so its "
          "start stops at \"Couldn't install clip\" (No module named 'pkg_resources')",
          what=what, why=why),
        Fix(t("build it now with {setuptools} in the environment (for later builds: "
              "PIP_BUILD_CONSTRAINT=<file with setuptools<82>)", setuptools=BUILD_SETUPTOOLS),
            tuple(commands),
            automatic="pip" in dists))]


def run(facts: DoctorFacts) -> Outcome:
    from sdboot.webui.folder import parse_env_defaults

    if not facts.is_webui or facts.webui_dir is None:
        return Outcome(t("no WebUI folder"), skipped=True)
    python, _ = facts.python
    if python is None or not python.exists():
        return Outcome(t("no environment to look into"), skipped=True)
    dists, tops = installed_distributions(python)
    defaults = parse_env_defaults(facts.launch_text or "")
    findings = build_findings(facts, python, dists, tops, defaults)
    findings += unmet_findings(facts, python, dists, defaults)
    req = requirements_file(facts, defaults)
    if req is None:
        return Outcome(t("{count} distributions installed; no requirements file",
                         count=len(dists)), tuple(findings))
    return Outcome(t("{count} distributions installed; {file} checked", count=len(dists),
                     file=req.name), tuple(findings))


CHECK = Check("requirements", N_("WebUI requirements"), run, ("build-tools", "requirements-unmet"))
