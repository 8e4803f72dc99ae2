"""Profiles: loading and validating profiles/*.yaml (shipped, then the user overlay), and
looking one up by name; the fit rules and resolve_profile() are in fit.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from sdboot.errors import SdbootError
from sdboot.i18n import N_, t
from sdboot.io.datafile import bad_data, config_dir, data_dir, line_of, load_yaml
from sdboot.stack.packages import is_requirement
from sdboot.values import Profile

BACKENDS = ("cuda", "rocm", "cpu", "mps")
INDEX_MODES = ("index", "extra", "default")
PLATFORMS = ("linux", "windows", "darwin")
REQUIRED = ("name", "backend", "torch", "torchvision", "python", "platforms")
OPTIONAL = ("description", "xformers", "variant", "cuda", "index_url", "index_mode", "pip_args",
            "arch", "ptx", "webui", "min_driver", "notes", "build_constraints")
DEFAULT_PYTHON = "3.10"  # the WebUI's tested Python (webui.sh prefers python3.10)


# -- loading ------------------------------------------------------------------------------

def _str_list(doc: Any, key: str, path: Path) -> tuple[str, ...]:
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise bad_data(path, line_of(doc, key), t("'{key}' must be a list of strings", key=key))
    return tuple(str(v) for v in value)


def _opt_str(doc: Any, key: str, path: Path) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise bad_data(path, line_of(doc, key), t("'{key}' must be a string", key=key))
    return str(value)


# Extra pip arguments a profile may carry. They go to pip as argv (no shell), but an
# arbitrary option (--target, --config-settings, --trusted-host ...) is not data, so only
# these: the URL-taking ones with a URL that passes the same check as index_url.
PIP_URL_FLAGS = ("--index-url", "--extra-index-url", "--find-links")
PIP_PLAIN_FLAGS = ("--pre", "--prefer-binary", "--no-cache-dir")


def _index_url_problem(url: str) -> str | None:
    from sdboot.mirrors.loading import local_http_problem, url_problem

    return url_problem(url) or local_http_problem(url)


def pip_args_problem(args: Sequence[str]) -> str | None:
    """Why a profile's pip_args are refused (None: they are fine)."""
    i = 0
    while i < len(args):
        arg = args[i]
        flag, eq, value = arg.partition("=")
        if flag in PIP_URL_FLAGS:
            if not eq:
                if i + 1 >= len(args):
                    return t("{flag} needs a URL after it", flag=flag)
                value = args[i + 1]
                i += 1
            problem = _index_url_problem(value)
            if problem:
                return t("{flag} {problem}", flag=flag, problem=problem)
        elif arg not in PIP_PLAIN_FLAGS:
            allowed = ", ".join((*PIP_URL_FLAGS, *PIP_PLAIN_FLAGS))
            from sdboot.mirrors.loading import shown_value

            return t("'{arg}' is not allowed (only: {allowed})", arg=shown_value(arg),
                     allowed=allowed)
        i += 1
    return None


def parse_profile(doc: Any, path: Path, source: str) -> Profile:
    """Validate one profile document; every error names the file and line."""
    if not isinstance(doc, dict):
        raise bad_data(path, line_of(doc), t("a profile must be a mapping of keys"))
    for key in REQUIRED:
        if doc.get(key) in (None, ""):
            raise bad_data(path, line_of(doc), t("missing required key '{key}'", key=key))
    for key in doc:
        if key not in REQUIRED and key not in OPTIONAL:
            raise bad_data(path, line_of(doc, key), t("unknown key '{key}'", key=key))

    def check(ok: bool, key: str, what: str, **values: Any) -> None:
        """`what`: a message id, formatted (and translated) only when the check fails."""
        if not ok:
            raise bad_data(path, line_of(doc, key), t(what, **values))

    name = str(doc["name"])
    backend = str(doc["backend"])
    check(backend in BACKENDS, "backend", N_("backend must be one of {choices}"),
          choices=", ".join(BACKENDS))
    versions = {k: _opt_str(doc, k, path) for k in ("torch", "torchvision", "xformers", "cuda")}
    for key, value in versions.items():
        if value is None:
            continue
        try:
            Version(value)
        except InvalidVersion:
            check(False, key, N_("'{field}' is not a valid version: {value}"), field=key,
                  value=repr(value))
    check(backend != "cuda" or versions["cuda"] is not None, "backend",
          N_("a cuda profile needs 'cuda' (the CUDA version of the build, e.g. \"12.1\")"))
    index_mode = str(doc.get("index_mode") or ("default" if not doc.get("index_url") else "index"))
    check(index_mode in INDEX_MODES, "index_mode", N_("index_mode must be one of {choices}"),
          choices=str(INDEX_MODES))
    check(index_mode == "default" or bool(doc.get("index_url")), "index_mode",
          N_("index_mode needs index_url"))
    index_url = _opt_str(doc, "index_url", path)
    if index_url is not None:
        check(not (problem := _index_url_problem(index_url)), "index_url",
              N_("index_{problem}"), problem=problem)
    pip_args = _str_list(doc, "pip_args", path)
    check(not (problem := pip_args_problem(pip_args)), "pip_args", N_("pip_args: {problem}"),
          problem=problem)
    python = str(doc["python"])
    try:
        SpecifierSet(python)
    except InvalidSpecifier:
        check(False, "python", N_("'python' is not a version specifier: {value}"),
              value=repr(python))
    arch = _str_list(doc, "arch", path)
    for cap in arch:
        check(parse_cap(cap) is not None, "arch",
              N_("bad compute capability {cap} (use \"8.6\")"), cap=repr(cap))
    platforms = _str_list(doc, "platforms", path)
    for plat in platforms:
        check(plat in PLATFORMS, "platforms", N_("unknown platform {name}"), name=repr(plat))
    ptx = _str_list(doc, "ptx", path)
    for plat in ptx:
        check(plat in PLATFORMS, "ptx", N_("unknown platform {name} in 'ptx'"),
              name=repr(plat))
    webui = _str_list(doc, "webui", path)
    for spec in webui:
        check(is_requirement(spec), "webui",
              N_("bad WebUI range {spec} (e.g. \"a1111>=1.8,<1.11\")"), spec=repr(spec))
    build_constraints = _str_list(doc, "build_constraints", path)
    for spec in build_constraints:
        check(is_requirement(spec), "build_constraints",
              N_("bad build constraint {spec} (e.g. \"setuptools<82\")"), spec=repr(spec))
    min_driver_doc = doc.get("min_driver") or {}
    check(isinstance(min_driver_doc, dict), "min_driver",
          N_("'min_driver' must map os to version"))
    min_driver = {str(k): str(v) for k, v in min_driver_doc.items()}
    for plat, ver in min_driver.items():
        check(plat in PLATFORMS and driver_key(ver) is not None, "min_driver",
              N_("bad minimum driver {os}: {version}"), os=plat, version=repr(ver))
    return Profile(
        name=name,
        description=str(doc.get("description") or ""),
        backend=backend,
        torch=str(versions["torch"]),
        torchvision=str(versions["torchvision"]),
        xformers=versions["xformers"],
        variant=_opt_str(doc, "variant", path),
        cuda=versions["cuda"],
        index_url=index_url,
        index_mode=index_mode,
        pip_args=pip_args,
        arch=arch,
        ptx=ptx,
        python=python,
        webui=webui,
        platforms=platforms,
        min_driver=min_driver,
        notes=_str_list(doc, "notes", path),
        build_constraints=build_constraints,
        source=source,
        path=str(path),
    )


def _profile_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")) if folder.is_dir() else []


def load_profiles(extra_dirs: Sequence[Path] = ()) -> dict[str, Profile]:
    """Shipped profiles, then the overlay's: an overlay profile replaces one of the same name."""
    found: dict[str, Profile] = {}
    layers = [(data_dir() / "profiles", "shipped"), (config_dir() / "profiles", "user")]
    layers += [(d, "user") for d in extra_dirs]
    for folder, source in layers:
        for path in _profile_files(folder):
            doc = load_yaml(path)
            profile = parse_profile(doc, path, source)
            previous = found.get(profile.name)
            if previous is not None and previous.source == source:
                raise bad_data(path, line_of(doc, "name"),
                               t("profile name '{name}' is already used by {path}",
                                 name=profile.name, path=previous.path))
            found[profile.name] = profile
    return found


def get_profile(profiles: dict[str, Profile], name: str) -> Profile:
    try:
        return profiles[name]
    except KeyError:
        raise SdbootError(t(UNKNOWN_PROFILE, name=name),
                          t(KNOWN_PROFILES, names=", ".join(sorted(profiles))),
                          exit_code=2) from None


UNKNOWN_PROFILE = N_("unknown profile '{name}'")
KNOWN_PROFILES = N_("known profiles: {names}")


def parse_cap(text: str) -> tuple[int, int] | None:
    try:
        major, minor = text.strip().split(".", 1)
        return int(major), int(minor)
    except ValueError:
        return None


def driver_key(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in text.strip().split("."))
    except ValueError:
        return None
