"""`sdboot verify`: run the probe inside the environment, then judge it against the GPU
facts and the expected stack. assess_stack() is pure and shared with the doctor; the
probe runs through the runner, once, with a timeout."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from sdboot import probe as probe_module
from sdboot.errors import SdbootError
from sdboot.model import Finding, Fix, GpuInfo, Profile, Severity, Vendor
from sdboot.packages import WheelSource, profile_source
from sdboot.profiles import arch_supported
from sdboot.runner import Runner

PROBE_TIMEOUT_S = 120.0  # a real torch import can take tens of seconds on a cold disk


def run_probe(python: Path, runner: Runner, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """One subprocess in the target interpreter. -I keeps our own paths out of it."""
    if not python.exists():
        raise SdbootError(f"{python} does not exist", "give the environment's python with "
                          "--python PATH", exit_code=2)
    res = runner.run([str(python), "-I", probe_module.__file__], timeout=timeout)
    text = res.stdout
    start = text.find(probe_module.MARK_START)
    end = text.find(probe_module.MARK_END, start)
    if start < 0 or end < 0:
        why = "timed out" if res.timed_out else f"exit {res.returncode}: {res.tail(4)}"
        raise SdbootError(f"the probe could not run in {python} ({why})",
                          "is that a working Python? try: " + f"{python} -c 'print(1)'",
                          exit_code=1)
    doc: dict[str, Any] = json.loads(text[start + len(probe_module.MARK_START):end])
    return doc


def _base(version: str | None) -> str | None:
    return version.split("+", 1)[0] if version else None


def _cuda_tuple(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def reinstall_fix(profile: Profile | None, python: str, source: WheelSource | None = None,
                  why: str = "reinstall the pinned CUDA build") -> Fix | None:
    if profile is None:
        return None
    src = source or profile_source(profile)
    argv = (python, "-m", "pip", "install", "--force-reinstall", "--no-deps",
            f"torch=={profile.torch}", f"torchvision=={profile.torchvision}", *src.args())
    return Fix(f"{why}: torch {profile.torch} ({profile.name})", (argv,), automatic=True)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    findings: tuple[Finding, ...]
    summary: str


def assess_stack(probe: dict[str, Any], gpu: GpuInfo, expected: Profile | None,
                 python: str, pinned: bool = True) -> Verdict:
    """Can this environment run the WebUI on this machine's GPU? Pure. `expected` gives the
    fix commands; only a pinned expectation (install record, --profile, the WebUI's own
    pins) can make installed versions "drift" -- the resolver's pick is a suggestion."""
    findings: list[Finding] = []
    torch = probe.get("torch") or {}
    nvidia = gpu.vendor == Vendor.NVIDIA and bool(gpu.gpus)
    fix = reinstall_fix(expected, python)

    if not probe.get("pip"):
        findings.append(Finding("pip-missing", Severity.ERROR,
                                "the environment's Python has no pip, so the WebUI cannot "
                                "install its requirements",
                                Fix("bootstrap pip", ((python, "-m", "ensurepip", "--upgrade"),),
                                    automatic=True)))
    if not torch.get("installed"):
        findings.append(Finding("torch-missing", Severity.ERROR,
                                "torch is not installed in this environment", fix))
        return _verdict(findings, "torch is not installed")
    if torch.get("import_error"):
        findings.append(Finding("torch-import-error", Severity.ERROR,
                                f"torch {torch.get('dist_version')} is installed but fails to "
                                f"import: {torch['import_error']}", fix))
        return _verdict(findings, "torch does not import")

    version = torch.get("version") or ""
    build_cuda = torch.get("cuda")
    cpu_build = build_cuda is None or version.endswith("+cpu")
    if cpu_build:
        if nvidia:
            findings.append(Finding(
                "cpu-torch", Severity.ERROR,
                f"torch {version} is a CPU-only build, but this machine has "
                f"{gpu.gpus[0].name}: the WebUI would stop with 'Torch is not able to use GPU'",
                fix))
        elif gpu.vendor in (Vendor.NONE, Vendor.INTEL):
            findings.append(Finding("cpu-torch-no-gpu", Severity.INFO,
                                    f"torch {version} is a CPU build and this machine has no "
                                    "supported GPU: fine (the WebUI needs --skip-torch-cuda-test "
                                    "--no-half --precision full)"))
    elif nvidia:
        driver_cuda = _cuda_tuple(gpu.cuda_driver_version)
        wanted = _cuda_tuple(build_cuda)
        if driver_cuda and wanted and wanted > driver_cuda:
            findings.append(Finding(
                "driver-too-old", Severity.ERROR,
                f"torch {version} is built for CUDA {build_cuda}, but driver "
                f"{gpu.driver_version} supports CUDA {gpu.cuda_driver_version} at most",
                Fix(f"update the NVIDIA driver (CUDA {build_cuda} needs a newer one), or "
                    f"install a build for CUDA <= {gpu.cuda_driver_version}: "
                    f"sdboot resolve --explain")))
        arch_list = [str(a) for a in torch.get("arch_list") or []]
        arch = [a[3:-1] + "." + a[-1] for a in arch_list if a.startswith("sm_")]
        ptx = any(a.startswith("compute_") for a in arch_list)
        for dev in gpu.gpus if arch else ():
            if dev.compute_capability and not arch_supported(dev.compute_capability, arch, ptx):
                findings.append(Finding(
                    "gpu-arch-unsupported", Severity.ERROR,
                    f"torch {version} has no kernels for {dev.name} (compute capability "
                    f"{dev.compute_capability}); it has {', '.join(arch)}",
                    Fix("install a build with kernels for this GPU: sdboot resolve "
                        "--explain (RTX 50 needs torch >= 2.7 with cu128)")))
        if not torch.get("cuda_available") and not findings_of(findings, "driver-too-old"):
            warn = "; ".join(torch.get("warnings") or []) or torch.get("kernel_error") or ""
            findings.append(Finding("cuda-unavailable", Severity.ERROR,
                                    f"torch.cuda.is_available() is False with torch {version}"
                                    + (f": {warn}" if warn else ""), fix))
        elif torch.get("cuda_available") and torch.get("kernel_ok") is False:
            error = torch.get("kernel_error") or "wrong result"
            if "no kernel image" in error and not findings_of(findings, "gpu-arch-unsupported"):
                findings.append(Finding("gpu-arch-unsupported", Severity.ERROR,
                                        f"the kernel check failed: {error}",
                                        Fix("install a build with kernels for this GPU: "
                                            "sdboot resolve --explain")))
            elif "no kernel image" not in error:
                findings.append(Finding("cuda-kernel-failed", Severity.ERROR,
                                        f"the kernel check {probe_module.KERNEL_CHECK} failed: "
                                        f"{error}", fix))

    if pinned and expected is not None and _base(version) != expected.torch_base and not (
            cpu_build and nvidia):
        findings.append(Finding("torch-drift", Severity.WARNING,
                                f"torch {version} is installed; the expected stack "
                                f"({expected.name}) pins {expected.torch}",
                                reinstall_fix(expected, python, why="restore the pinned stack")))
    xformers = probe.get("xformers") or {}
    built_for = xformers.get("built_for_torch")
    if xformers.get("installed") and built_for and _base(built_for) != _base(version):
        findings.append(Finding(
            "xformers-mismatch", Severity.ERROR,
            f"xformers {xformers.get('version')} was built for torch {built_for}, "
            f"but torch {version} is installed: its CUDA ops will not load",
            _xformers_fix(expected, version, python)))
    if cpu_build and not nvidia:
        summary = f"CPU torch {version} on a machine without a supported GPU"
    elif nvidia and torch.get("kernel_ok"):
        devices = ", ".join(d["name"] for d in torch.get("devices") or [])
        summary = f"CUDA torch {version} runs on {devices} (kernel check passed)"
    else:
        summary = f"torch {version}"
    return _verdict(findings, summary)


def _xformers_fix(expected: Profile | None, torch_version: str, python: str) -> Fix:
    """The pinned xformers when the installed torch is the expected one; else advice."""
    if expected and expected.xformers and _base(torch_version) == expected.torch_base:
        return Fix("install the xformers built for the installed torch",
                   ((python, "-m", "pip", "install", "--no-deps",
                     f"xformers=={expected.xformers}"),), automatic=True)
    return Fix("install the xformers release built for the installed torch "
               "(FACTS: each xformers up to 0.0.34 pins one exact torch), or uninstall it")


def findings_of(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def _verdict(findings: list[Finding], summary: str) -> Verdict:
    ok = not any(f.severity == Severity.ERROR for f in findings)
    return Verdict(ok, tuple(findings), summary)


def expected_profile(profiles: dict[str, Profile], webui_pins_torch: str | None,
                     resolved: Profile | None) -> tuple[Profile | None, str]:
    """CONTRACT order, without an install record yet: the WebUI launch file's pins (when a
    profile carries them), else the resolver's choice. Returns (profile, source)."""
    if webui_pins_torch:
        base = _base(webui_pins_torch)
        for p in sorted(profiles.values(), key=lambda p: p.name):
            if p.torch_base == base and p.backend == "cuda":
                return p, "webui-pins"
    return resolved, "resolver"


def verdict_to_json(verdict: Verdict, python: Path, probe: dict[str, Any], gpu: GpuInfo,
                    expected: Profile | None, expected_source: str) -> dict[str, Any]:
    return {
        "schema": "sdboot.verify/1",
        "ok": verdict.ok,
        "summary": verdict.summary,
        "python": str(python),
        "expected_profile": expected.name if expected else None,
        "expected_source": expected_source,
        "findings": [f.to_json() for f in verdict.findings],
        "probe": probe,
        "gpu": gpu.to_json(),
    }
