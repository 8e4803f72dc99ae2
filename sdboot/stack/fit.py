"""The pure fit rules: does a profile fit this GPU (arch, driver), host, Python and WebUI, and
resolve_profile(), which picks the best one with its reasons and rejections."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from sdboot.i18n import Text, local, t
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
            return t("driver {driver} supports CUDA {cuda}; this build needs CUDA {need}",
                     driver=gpu.driver_version or "?", cuda=gpu.cuda_driver_version,
                     need=profile.cuda)
        return None
    minimum = profile.min_driver.get(driver_os)
    have = driver_key(gpu.driver_version or "")
    need = driver_key(minimum or "")
    if have and need and have < need:
        return t("driver {driver} is older than {minimum}, the minimum for CUDA {cuda} on "
                 "{os}", driver=gpu.driver_version, minimum=minimum, cuda=profile.cuda,
                 os=driver_os)
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
        return 2, t("the WebUI's launch file pins torch {torch} from {index}",
                    torch=pins.torch, index=pins.index_url) if pins.index_url else \
            t("the WebUI's launch file pins torch {torch}", torch=pins.torch)
    for spec in profile.webui:
        req = Requirement(spec)
        if req.name != webui.flavor:
            continue
        if not req.specifier:
            return 1, t("the profile made for {flavor}", flavor=webui.flavor)
        if webui.version:
            try:
                if req.specifier.contains(Version(webui.version), prereleases=True):
                    return 1, t("the profile made for {flavor}", flavor=f"{webui.flavor} "
                                f"{webui.version}")
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
        problems.append(_Check("platform", t("built for {platforms} only",
                                             platforms=", ".join(profile.platforms))))
    nvidia = gpu.vendor == Vendor.NVIDIA and bool(gpu.gpus)
    # ROCm wheels exist for Linux only; an AMD or Intel GPU elsewhere runs the CPU build.
    rocm = "rocm" if host.system == "linux" else "cpu"
    wanted = {Vendor.NVIDIA: "cuda", Vendor.AMD: rocm, Vendor.APPLE: "mps"}.get(gpu.vendor, "cpu")
    if gpu.vendor == Vendor.NVIDIA and not gpu.gpus:
        wanted = "cpu"
    if profile.backend != wanted:
        if profile.backend == "cpu" and nvidia:
            why = t("an NVIDIA GPU is present; a CPU build would leave it unused")
        else:
            why = t("a {backend} build; this machine needs {wanted}", backend=profile.backend,
                    wanted=wanted)
        problems.append(_Check("backend", why))
    try:
        if not SpecifierSet(profile.python).contains(Version(python), prereleases=True):
            problems.append(_Check("python", t("needs Python {need}, not {python}",
                                               need=profile.python, python=python)))
    except InvalidVersion:
        problems.append(_Check("python", t("cannot read the Python version {python}",
                                           python=repr(python))))
    if profile.backend == "cuda" and nvidia:
        gap = driver_gap(profile, gpu, host.driver_os)
        if gap:
            problems.append(_Check("driver", gap))
        ptx = host.system in profile.ptx
        for dev in gpu.gpus:
            if dev.compute_capability and not arch_supported(dev.compute_capability,
                                                             profile.arch, ptx):
                facts = {"gpu": dev.name, "cap": dev.compute_capability,
                         "arch": ", ".join(profile.arch)}
                problems.append(_Check("arch", t(
                    "no kernels for {gpu} (compute capability {cap}); the build has {arch} "
                    "with PTX", **facts) if ptx else t(
                    "no kernels for {gpu} (compute capability {cap}); the build has {arch}",
                    **facts)))
    return problems


def _joined(texts: Iterable[str]) -> Text:
    """'; '-joined, in English and translated."""
    items = list(texts)
    return Text("; ".join(items), "；".join(local(x) for x in items))


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
        have = (t("driver {driver} supports CUDA {cuda}", driver=gpu.driver_version,
                  cuda=gpu.cuda_driver_version)
                if gpu.cuda_driver_version else t("driver {driver}", driver=gpu.driver_version))
        advice.append(t("{have}; the oldest CUDA profile that fits this GPU ({name}) needs "
                        "{cuda}: update the driver to >= {minimum} or use --profile cpu",
                        have=have, name=oldest.name, cuda=oldest.cuda,
                        minimum=minimum or "?"))
    if "python" in only:
        ranges = sorted({p.python for p in only["python"]})
        advice.append(t("Python {python} fits no profile for this machine; use a Python in "
                        "{ranges} (e.g. --python-version {default})", python=python,
                        ranges=" or ".join(ranges), default=DEFAULT_PYTHON))
    if "arch" in only and "driver" not in only:
        caps = ", ".join(sorted({d.compute_capability or "?" for d in gpu.gpus}))
        advice.append(t("no profile has kernels for compute capability {caps}; add a profile "
                        "with a build that does (see docs/gpu-and-profiles.md) or use --profile "
                        "cpu", caps=caps))
    if any((parse_cap(d.compute_capability or "") or (9, 9))[0] <= 3 for d in gpu.gpus):
        advice.append(t("Kepler GPUs (compute capability 3.x) get no driver newer than the 470 "
                        "series, so on this card the CPU profile (--profile cpu) is the way"))
    if not advice:
        advice.append(t("no profile fits this machine; use --profile NAME to force one "
                        "(sdboot profiles list) or add your own profile"))
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
    rejections = tuple(Rejection(n, _joined(c.why for c in rejected[n])) for n in
                       sorted(rejected))
    if override is not None:
        chosen = get_profile(profiles, override)
        warned = [t("chosen with --profile {name}", name=override)]
        warned += [t("warning: {text}", text=c.why) for c in checks[override]]
        return Resolution(chosen, tuple(warned),
                          tuple(r for r in rejections if r.profile != override))

    fitting = [p for n, p in profiles.items() if n not in rejected]
    reasons: list[str] = []
    made_for = [(p, m) for p in profiles.values() if (m := webui_match(p, webui))]
    fitting_made_for = [(p, m) for p, m in made_for if p.name not in rejected]
    if fitting_made_for:
        chosen, (_rank, why) = max(fitting_made_for,
                                   key=lambda pm: (pm[1][0], _newest_key(pm[0])))
        reasons.append(t("{name}: {why}", name=chosen.name, why=why))
    elif fitting:
        for p, _why in made_for:
            reasons.append(t("{name} is made for this WebUI but does not fit: {why}",
                             name=p.name, why=_joined(c.why for c in rejected[p.name])))
        # Next best: a profile made for another line of the same WebUI (A1111 release ->
        # A1111 dev, which moved to cu128 for RTX 50), else the newest that fits.
        family = webui.flavor.split("-")[0] if webui else None
        kin = [p for p in fitting
               if family and any(Requirement(w).name.split("-")[0] == family for w in p.webui)]
        if kin:
            chosen = max(kin, key=_newest_key)
            reasons.append(t("{name}: made for {webuis}, the nearest line of this WebUI that "
                             "fits this machine", name=chosen.name,
                             webuis=", ".join(chosen.webui)))
        else:
            chosen = max(fitting, key=_newest_key)
            reasons.append(t("{name}: the newest profile that fits this machine",
                             name=chosen.name))
    else:
        return Resolution(None, (), rejections,
                          tuple(_advice(rejected, profiles, gpu, host, python)))
    if chosen.backend == "cuda" and gpu.gpus:
        names = ", ".join(sorted({d.name for d in gpu.gpus}))
        caps = ", ".join(sorted({d.compute_capability or "?" for d in gpu.gpus}))
        reasons.append(t("has kernels for {gpus} (compute capability {caps})", gpus=names,
                         caps=caps))
        if gpu.cuda_driver_version:
            reasons.append(t("CUDA {cuda} <= {driver}, the driver's CUDA version",
                             cuda=chosen.cuda, driver=gpu.cuda_driver_version))
        else:
            reasons.append(t("the driver's CUDA version is unknown: the driver check was "
                             "skipped"))
    elif chosen.backend == "cpu" and not gpu.gpus:
        reasons.append(t("no GPU was found"))
    reasons.append(t("Python {python} fits {spec}", python=python, spec=chosen.python))
    passed_over = tuple(Rejection(p.name, t("fits too, but {name} is preferred",
                                            name=chosen.name))
                        for p in sorted(fitting, key=lambda p: p.name) if p is not chosen)
    return Resolution(chosen, tuple(reasons), rejections + passed_over)
