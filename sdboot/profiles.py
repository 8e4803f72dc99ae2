"""Profiles: loading and validating profiles/*.yaml (shipped, then the user overlay), and
resolve_profile(), a pure function of GPU facts, host, Python version and WebUI facts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from sdboot.datafile import bad_data, config_dir, data_dir, line_of, load_yaml
from sdboot.errors import SdbootError
from sdboot.model import GpuInfo, HostFacts, Profile, Rejection, Resolution, Vendor, WebuiFacts

BACKENDS = ("cuda", "rocm", "cpu", "mps")
INDEX_MODES = ("index", "extra", "default")
PLATFORMS = ("linux", "windows", "darwin")
REQUIRED = ("name", "backend", "torch", "torchvision", "python", "platforms")
OPTIONAL = ("description", "xformers", "variant", "cuda", "index_url", "index_mode", "pip_args",
            "arch", "ptx", "webui", "min_driver", "notes")
DEFAULT_PYTHON = "3.10"  # the WebUI's tested Python (webui.sh prefers python3.10)


# -- loading ------------------------------------------------------------------------------

def _str_list(doc: Any, key: str, path: Path) -> tuple[str, ...]:
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise bad_data(path, line_of(doc, key), f"'{key}' must be a list of strings")
    return tuple(str(v) for v in value)


def _opt_str(doc: Any, key: str, path: Path) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise bad_data(path, line_of(doc, key), f"'{key}' must be a string")
    return str(value)


# Extra pip arguments a profile may carry. They go to pip as argv (no shell), but an
# arbitrary option (--target, --config-settings, --trusted-host ...) is not data, so only
# these: the URL-taking ones with a URL that passes the same check as index_url.
PIP_URL_FLAGS = ("--index-url", "--extra-index-url", "--find-links")
PIP_PLAIN_FLAGS = ("--pre", "--prefer-binary", "--no-cache-dir")


def _index_url_problem(url: str) -> str | None:
    from sdboot.mirrors import local_http_problem, url_problem

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
                    return f"{flag} needs a URL after it"
                value = args[i + 1]
                i += 1
            problem = _index_url_problem(value)
            if problem:
                return f"{flag} {problem}"
        elif arg not in PIP_PLAIN_FLAGS:
            allowed = ", ".join((*PIP_URL_FLAGS, *PIP_PLAIN_FLAGS))
            from sdboot.mirrors import shown_value

            return f"'{shown_value(arg)}' is not allowed (only: {allowed})"
        i += 1
    return None


def parse_profile(doc: Any, path: Path, source: str) -> Profile:
    """Validate one profile document; every error names the file and line."""
    if not isinstance(doc, dict):
        raise bad_data(path, line_of(doc), "a profile must be a mapping of keys")
    for key in REQUIRED:
        if doc.get(key) in (None, ""):
            raise bad_data(path, line_of(doc), f"missing required key '{key}'")
    for key in doc:
        if key not in REQUIRED and key not in OPTIONAL:
            raise bad_data(path, line_of(doc, key), f"unknown key '{key}'")

    def check(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise bad_data(path, line_of(doc, key), what)

    name = str(doc["name"])
    backend = str(doc["backend"])
    check(backend in BACKENDS, "backend", f"backend must be one of {', '.join(BACKENDS)}")
    versions = {k: _opt_str(doc, k, path) for k in ("torch", "torchvision", "xformers", "cuda")}
    for key, value in versions.items():
        if value is None:
            continue
        try:
            Version(value)
        except InvalidVersion:
            check(False, key, f"'{key}' is not a valid version: {value!r}")
    check(backend != "cuda" or versions["cuda"] is not None, "backend",
          "a cuda profile needs 'cuda' (the CUDA version of the build, e.g. \"12.1\")")
    index_mode = str(doc.get("index_mode") or ("default" if not doc.get("index_url") else "index"))
    check(index_mode in INDEX_MODES, "index_mode", f"index_mode must be one of {INDEX_MODES}")
    check(index_mode == "default" or bool(doc.get("index_url")), "index_mode",
          "index_mode needs index_url")
    index_url = _opt_str(doc, "index_url", path)
    if index_url is not None:
        check(not (problem := _index_url_problem(index_url)), "index_url",
              f"index_{problem}")
    pip_args = _str_list(doc, "pip_args", path)
    check(not (problem := pip_args_problem(pip_args)), "pip_args", f"pip_args: {problem}")
    python = str(doc["python"])
    try:
        SpecifierSet(python)
    except InvalidSpecifier:
        check(False, "python", f"'python' is not a version specifier: {python!r}")
    arch = _str_list(doc, "arch", path)
    for cap in arch:
        check(_parse_cap(cap) is not None, "arch", f"bad compute capability {cap!r} (use \"8.6\")")
    platforms = _str_list(doc, "platforms", path)
    for plat in platforms:
        check(plat in PLATFORMS, "platforms", f"unknown platform {plat!r}")
    ptx = _str_list(doc, "ptx", path)
    for plat in ptx:
        check(plat in PLATFORMS, "ptx", f"unknown platform {plat!r} in 'ptx'")
    webui = _str_list(doc, "webui", path)
    for spec in webui:
        try:
            Requirement(spec)
        except InvalidRequirement:
            check(False, "webui", f"bad WebUI range {spec!r} (e.g. \"a1111>=1.8,<1.11\")")
    min_driver_doc = doc.get("min_driver") or {}
    check(isinstance(min_driver_doc, dict), "min_driver", "'min_driver' must map os to version")
    min_driver = {str(k): str(v) for k, v in min_driver_doc.items()}
    for plat, ver in min_driver.items():
        check(plat in PLATFORMS and _driver_key(ver) is not None, "min_driver",
              f"bad minimum driver {plat}: {ver!r}")
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
                               f"profile name '{profile.name}' is already used by {previous.path}")
            found[profile.name] = profile
    return found


def get_profile(profiles: dict[str, Profile], name: str) -> Profile:
    try:
        return profiles[name]
    except KeyError:
        raise SdbootError(f"unknown profile '{name}'",
                          "known profiles: " + ", ".join(sorted(profiles)), exit_code=2) from None


# -- pure rules ---------------------------------------------------------------------------

def _parse_cap(text: str) -> tuple[int, int] | None:
    try:
        major, minor = text.strip().split(".", 1)
        return int(major), int(minor)
    except ValueError:
        return None


def _driver_key(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in text.strip().split("."))
    except ValueError:
        return None


def arch_supported(capability: str, arch: Iterable[str], ptx: bool) -> bool:
    """sm_X.y code runs on X.z for z >= y; a newer major needs PTX (JIT) from the build."""
    cap = _parse_cap(capability)
    caps = [c for c in (_parse_cap(a) for a in arch) if c is not None]
    if cap is None or not caps:
        return False
    if any(c[0] == cap[0] and c[1] <= cap[1] for c in caps):
        return True
    return ptx and max(caps) < cap


def driver_gap(profile: Profile, gpu: GpuInfo, driver_os: str) -> str | None:
    """Why the driver cannot run this build, or None when it can (or cannot be told)."""
    if profile.cuda is None:
        return None
    if gpu.cuda_driver_version:
        if Version(gpu.cuda_driver_version) < Version(profile.cuda):
            return (f"driver {gpu.driver_version or '?'} supports CUDA {gpu.cuda_driver_version}; "
                    f"this build needs CUDA {profile.cuda}")
        return None
    minimum = profile.min_driver.get(driver_os)
    have = _driver_key(gpu.driver_version or "")
    need = _driver_key(minimum or "")
    if have and need and have < need:
        return f"driver {gpu.driver_version} is older than {minimum}, the minimum for CUDA " \
               f"{profile.cuda} on {driver_os}"
    return None


def webui_match(profile: Profile, webui: WebuiFacts | None) -> tuple[int, str] | None:
    """Whether this profile is the one made for that WebUI: (strength, why) or None. The
    launch file's own pins (strength 2) outrank the version ranges in profiles (1)."""
    if webui is None:
        return None
    pins = webui.pins
    if pins.torch and pins.torch.split("+")[0] == profile.torch_base and (
        profile.variant is None
        or profile.variant in (pins.torch + " " + (pins.index_url or profile.variant))
    ):
        return 2, f"the WebUI's launch file pins torch {pins.torch}" + (
            f" from {pins.index_url}" if pins.index_url else "")
    for spec in profile.webui:
        req = Requirement(spec)
        if req.name != webui.flavor:
            continue
        if not req.specifier:
            return 1, f"the profile made for {webui.flavor}"
        if webui.version:
            try:
                if req.specifier.contains(Version(webui.version), prereleases=True):
                    return 1, f"the profile made for {webui.flavor} {webui.version}"
            except InvalidVersion:
                continue
    return None


@dataclass(frozen=True)
class _Check:
    kind: str  # platform | backend | python | driver | arch
    why: str


def fit_problems(profile: Profile, gpu: GpuInfo, host: HostFacts, python: str) -> list[_Check]:
    problems: list[_Check] = []
    if host.system not in profile.platforms:
        problems.append(_Check("platform", f"built for {', '.join(profile.platforms)} only"))
    nvidia = gpu.vendor == Vendor.NVIDIA and bool(gpu.gpus)
    # ROCm wheels exist for Linux only; an AMD or Intel GPU elsewhere runs the CPU build.
    rocm = "rocm" if host.system == "linux" else "cpu"
    wanted = {Vendor.NVIDIA: "cuda", Vendor.AMD: rocm, Vendor.APPLE: "mps"}.get(gpu.vendor, "cpu")
    if gpu.vendor == Vendor.NVIDIA and not gpu.gpus:
        wanted = "cpu"
    if profile.backend != wanted:
        if profile.backend == "cpu" and nvidia:
            why = "an NVIDIA GPU is present; a CPU build would leave it unused"
        else:
            why = f"a {profile.backend} build; this machine needs {wanted}"
        problems.append(_Check("backend", why))
    try:
        if not SpecifierSet(profile.python).contains(Version(python), prereleases=True):
            problems.append(_Check("python", f"needs Python {profile.python}, not {python}"))
    except InvalidVersion:
        problems.append(_Check("python", f"cannot read the Python version {python!r}"))
    if profile.backend == "cuda" and nvidia:
        gap = driver_gap(profile, gpu, host.driver_os)
        if gap:
            problems.append(_Check("driver", gap))
        ptx = host.system in profile.ptx
        for dev in gpu.gpus:
            if dev.compute_capability and not arch_supported(dev.compute_capability,
                                                             profile.arch, ptx):
                problems.append(_Check(
                    "arch", f"no kernels for {dev.name} (compute capability "
                            f"{dev.compute_capability}); the build has {', '.join(profile.arch)}"
                            + (" with PTX" if ptx else "")))
    return problems


def _newest_key(profile: Profile) -> tuple[Version, Version]:
    return Version(profile.torch_base), Version(profile.cuda or "0")


def _advice(rejected: dict[str, list[_Check]], profiles: dict[str, Profile], gpu: GpuInfo,
            host: HostFacts, python: str) -> list[str]:
    """When nothing fits: what to change, from the rejections that had a single cause."""
    advice: list[str] = []
    only: dict[str, list[Profile]] = {}
    for name, checks in rejected.items():
        kinds = {c.kind for c in checks}
        if len(kinds) == 1:
            only.setdefault(kinds.pop(), []).append(profiles[name])
    if "driver" in only:
        oldest = min(only["driver"], key=lambda p: Version(p.cuda or "0"))
        minimum = oldest.min_driver.get(host.driver_os)
        have = (f"driver {gpu.driver_version} supports CUDA {gpu.cuda_driver_version}"
                if gpu.cuda_driver_version else f"driver {gpu.driver_version}")
        advice.append(f"{have}; the oldest CUDA profile that fits this GPU ({oldest.name}) needs "
                      f"{oldest.cuda}: update the driver to >= {minimum or '?'} "
                      f"or use --profile cpu")
    if "python" in only:
        ranges = sorted({p.python for p in only["python"]})
        advice.append(f"Python {python} fits no profile for this machine; use a Python in "
                      f"{' or '.join(ranges)} (e.g. --python-version {DEFAULT_PYTHON})")
    if "arch" in only and "driver" not in only:
        caps = ", ".join(sorted({d.compute_capability or "?" for d in gpu.gpus}))
        advice.append(f"no profile has kernels for compute capability {caps}; add a profile "
                      f"with a build that does (see docs/profiles.md) or use --profile cpu")
    if any((_parse_cap(d.compute_capability or "") or (9, 9))[0] <= 3 for d in gpu.gpus):
        advice.append("Kepler GPUs (compute capability 3.x) get no driver newer than the 470 "
                      "series, so on this card the CPU profile (--profile cpu) is the way")
    if not advice:
        advice.append("no profile fits this machine; use --profile NAME to force one "
                      "(sdboot profiles list) or add your own profile")
    return advice


def resolve_profile(
    profiles: dict[str, Profile],
    gpu: GpuInfo,
    host: HostFacts,
    python: str = DEFAULT_PYTHON,
    webui: WebuiFacts | None = None,
    override: str | None = None,
) -> Resolution:
    """Choose the pinned stack. Pure: the same facts always give the same answer."""
    checks = {name: fit_problems(p, gpu, host, python) for name, p in profiles.items()}
    rejected = {n: c for n, c in checks.items() if c}
    rejections = tuple(Rejection(n, "; ".join(c.why for c in rejected[n])) for n in
                       sorted(rejected))
    if override is not None:
        chosen = get_profile(profiles, override)
        warned = [f"chosen with --profile {override}"]
        warned += [f"warning: {c.why}" for c in checks[override]]
        return Resolution(chosen, tuple(warned),
                          tuple(r for r in rejections if r.profile != override))

    fitting = [p for n, p in profiles.items() if n not in rejected]
    reasons: list[str] = []
    made_for = [(p, m) for p in profiles.values() if (m := webui_match(p, webui))]
    fitting_made_for = [(p, m) for p, m in made_for if p.name not in rejected]
    if fitting_made_for:
        chosen, (_rank, why) = max(fitting_made_for,
                                   key=lambda pm: (pm[1][0], _newest_key(pm[0])))
        reasons.append(f"{chosen.name}: {why}")
    elif fitting:
        for p, _why in made_for:
            reasons.append(f"{p.name} is made for this WebUI but does not fit: "
                           + "; ".join(c.why for c in rejected[p.name]))
        # Next best: a profile made for another line of the same WebUI (A1111 release ->
        # A1111 dev, which moved to cu128 for RTX 50), else the newest that fits.
        family = webui.flavor.split("-")[0] if webui else None
        kin = [p for p in fitting
               if family and any(Requirement(w).name.split("-")[0] == family for w in p.webui)]
        if kin:
            chosen = max(kin, key=_newest_key)
            reasons.append(f"{chosen.name}: made for {', '.join(chosen.webui)}, the nearest "
                           f"line of this WebUI that fits this machine")
        else:
            chosen = max(fitting, key=_newest_key)
            reasons.append(f"{chosen.name}: the newest profile that fits this machine")
    else:
        return Resolution(None, (), rejections,
                          tuple(_advice(rejected, profiles, gpu, host, python)))
    if chosen.backend == "cuda" and gpu.gpus:
        names = ", ".join(sorted({d.name for d in gpu.gpus}))
        caps = ", ".join(sorted({d.compute_capability or "?" for d in gpu.gpus}))
        reasons.append(f"has kernels for {names} (compute capability {caps})")
        if gpu.cuda_driver_version:
            reasons.append(f"CUDA {chosen.cuda} <= {gpu.cuda_driver_version}, "
                           f"the driver's CUDA version")
        else:
            reasons.append("the driver's CUDA version is unknown: the driver check was skipped")
    elif chosen.backend == "cpu" and not gpu.gpus:
        reasons.append("no GPU was found")
    reasons.append(f"Python {python} fits {chosen.python}")
    passed_over = tuple(Rejection(p.name, f"fits too, but {chosen.name} is preferred")
                        for p in sorted(fitting, key=lambda p: p.name) if p is not chosen)
    return Resolution(chosen, tuple(reasons), rejections + passed_over)
