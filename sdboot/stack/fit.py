"""The pure fit rules: does a profile fit this GPU (arch, driver), host, Python and WebUI, and
resolve_profile(), which picks the best one with its reasons and rejections."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from sdboot.stack.profiles import DEFAULT_PYTHON, driver_key, get_profile, parse_cap
from sdboot.values import GpuInfo, HostFacts, Profile, Rejection, Resolution, Vendor, WebuiFacts

# -- pure rules ---------------------------------------------------------------------------





def arch_supported(capability: str, arch: Iterable[str], ptx: bool) -> bool:
    """sm_X.y code runs on X.z for z >= y; a newer major needs PTX (JIT) from the build."""
    cap = parse_cap(capability)
    caps = [c for c in (parse_cap(a) for a in arch) if c is not None]
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
    have = driver_key(gpu.driver_version or "")
    need = driver_key(minimum or "")
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
                      f"with a build that does (see docs/gpu-and-profiles.md) or use --profile cpu")
    if any((parse_cap(d.compute_capability or "") or (9, 9))[0] <= 3 for d in gpu.gpus):
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
