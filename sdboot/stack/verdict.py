"""`sdboot verify`: run the probe inside the environment, then judge it against the GPU
facts and the expected stack. assess_stack() is pure and shared with the doctor and the
launch guard (one verdict for all three); the probe runs through the runner, once, with
a timeout. Also here: why no NVIDIA GPU is usable (gpu-not-visible), numpy against the
torch build (numpy-abi), and an environment whose interpreter cannot start (env-broken)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from sdboot.errors import SdbootError
from sdboot.i18n import N_, Text, t
from sdboot.io.runner import Runner
from sdboot.stack import probe as probe_module
from sdboot.stack.fit import arch_supported
from sdboot.stack.gpu_visibility import _hidden, _not_visible, _usable, gpu_unusable_cause
from sdboot.stack.packages import NUMPY2_FIRST_TORCH, WheelSource, numpy_cap, profile_source
from sdboot.values import Finding, Fix, GpuInfo, Profile, Severity, Vendor

PROBE_TIMEOUT_S = 120.0  # a real torch import can take tens of seconds on a cold disk


def run_probe(python: Path, runner: Runner, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """One subprocess in the target interpreter. -I keeps our own paths out of it."""
    if not python.exists():
        raise SdbootError(t("{dir} does not exist", dir=python),
                          t("give the environment's python with --python PATH"), exit_code=2)
    res = runner.run([str(python), "-I", probe_module.__file__], timeout=timeout)
    text = res.stdout
    start = text.find(probe_module.MARK_START)
    end = text.find(probe_module.MARK_END, start)
    if start < 0 or end < 0:
        why = t("timed out") if res.timed_out else f"exit {res.returncode}: {res.tail(4)}"
        raise SdbootError(t("the probe could not run in {python} ({why})", python=python,
                            why=why),
                          t("is that a working Python? try: {command}",
                            command=f"{python} -c 'print(1)'"), exit_code=1)
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
                  why: str = N_("reinstall the pinned CUDA build")) -> Fix | None:
    if profile is None:
        return None
    src = source or profile_source(profile)
    argv = (python, "-m", "pip", "install", "--force-reinstall", "--no-deps",
            f"torch=={profile.torch}", f"torchvision=={profile.torchvision}", *src.args())
    return Fix(t("{why}: torch {torch} ({name})", why=_text(why), torch=profile.torch,
                 name=profile.name), (argv,), automatic=True)


def stack_install_fix(profile: Profile | None, python: str, constraints: Path | None = None,
                      why: str = N_("install the pinned stack")) -> Fix | None:
    """The pinned stack WITH its dependencies (an environment without torch lacks torch's
    own requirements too), under the constraints file when there is one; without it, the
    torch pin beside xformers keeps pip from replacing torch. numpy<2 goes along for a torch
    older than 2.3, also when the constraints file is missing or older than its numpy cap."""
    if profile is None:
        return None
    src = profile_source(profile)
    base = (python, "-m", "pip", "install")
    cons = ("-c", str(constraints)) if constraints is not None else ()
    commands = [(*base, f"torch=={profile.torch}", f"torchvision=={profile.torchvision}",
                 *numpy_cap(profile), *src.args(), *cons, *profile.pip_args)]
    if profile.xformers:
        extra = (["--extra-index-url", src.url] if src.url and src.mode in ("index", "extra")
                 else src.args())
        pin = () if cons else (f"torch=={profile.torch}",)
        commands.append((*base, f"xformers=={profile.xformers}", *pin, *extra, *cons,
                         *profile.pip_args))
    return Fix(t("{why}: torch {torch} ({name}) with its dependencies", why=_text(why),
                 torch=profile.torch, name=profile.name), tuple(commands), automatic=True)


def _text(why: str) -> Text:
    """A reason given as an N_() id (or already a t() text), translated."""
    return why if isinstance(why, Text) else t(why)




# -- numpy-abi ----------------------------------------------------------------------------

# NUMPY2_FIRST_TORCH (stack/packages.py): the one boundary, shared with the constraints' cap
NUMPY_ABI_MARKERS = ("compiled using NumPy 1.x cannot be run in", "_ARRAY_API not found")


def _numpy_abi(probe: Mapping[str, Any], torch: Mapping[str, Any], python: str,
               numpy_pin: str | None, constraints: Path | None) -> Finding | None:
    numpy_version = (probe.get("numpy") or {}).get("version")
    text = "\n".join([*(str(w) for w in torch.get("warnings") or []),
                      str(torch.get("output") or ""), str(torch.get("import_error") or "")])
    seen = next((m for m in NUMPY_ABI_MARKERS if m in text), None)
    torch_version = str(torch.get("version") or torch.get("dist_version") or "")
    try:
        old_torch = Version(_base(torch_version) or "0") < NUMPY2_FIRST_TORCH
        numpy2 = numpy_version is not None and Version(numpy_version).major >= 2
    except InvalidVersion:
        old_torch = numpy2 = False
    if seen is None and not (old_torch and numpy2):
        return None
    spec = numpy_pin or "numpy<2"
    cons = ("-c", str(constraints)) if constraints is not None else ()
    why = t("torch {torch} was built against NumPy 1.x, but numpy {numpy} is installed",
            torch=torch_version, numpy=numpy_version) if old_torch and numpy2 else \
        t("numpy {numpy} does not match the torch build", numpy=numpy_version)
    message = t("{why} ('{seen}'): tensors cannot pass to or from numpy, and the WebUI fails "
                "on its first image", why=why, seen=seen) if seen else \
        t("{why}: tensors cannot pass to or from numpy, and the WebUI fails on its first "
          "image", why=why)
    return Finding("numpy-abi", Severity.ERROR, message,
                   Fix(t("install {spec} (the WebUI's pin)", spec=spec) if numpy_pin
                       else t("install {spec}", spec=spec),
                       ((python, "-m", "pip", "install", spec, *cons),), automatic=True))


def webui_numpy_pin(webui_dir: Path | None) -> str | None:
    """numpy==X from the WebUI's requirements_versions.txt."""
    if webui_dir is None:
        return None
    try:
        text = (webui_dir / "requirements_versions.txt").read_text(errors="replace")
    except OSError:
        return None
    match = re.search(r"^\s*(numpy\s*==\s*[\w.]+)", text, re.MULTILINE | re.IGNORECASE)
    return match.group(1).replace(" ", "") if match else None



@dataclass(frozen=True)
class Verdict:
    ok: bool
    findings: tuple[Finding, ...]
    summary: str


def assess_stack(probe: dict[str, Any], gpu: GpuInfo, expected: Profile | None,
                 python: str, pinned: bool = True, *,
                 webui_env: Mapping[str, str] | None = None, constraints: Path | None = None,
                 numpy_pin: str | None = None, chosen: bool | None = None) -> Verdict:
    """Can this environment run the WebUI on this machine's GPU? Pure. `expected` gives the
    fix commands; only a pinned expectation (install record, --profile, the WebUI's own
    pins) can make installed versions "drift" -- the resolver's pick is a suggestion.
    `webui_env`: webui-user's exports (CUDA_VISIBLE_DEVICES); `constraints`: the pins file
    that exists for the fixes; `numpy_pin`: the WebUI's numpy==X; `chosen`: `expected` is
    the user's choice (default: `pinned`), so that a cpu profile's backend counts."""
    findings: list[Finding] = []
    torch = probe.get("torch") or {}
    nvidia = gpu.vendor == Vendor.NVIDIA and bool(gpu.gpus)
    fix = reinstall_fix(expected, python)
    # the user chose to run on the CPU (a cpu profile, recorded or given; never the
    # resolver's guess): a CUDA build that reaches no GPU then runs the WebUI on the CPU
    chosen = pinned if chosen is None else chosen
    on_cpu = expected.name if chosen and expected is not None and expected.backend == "cpu" \
        else None

    if not probe.get("pip"):
        findings.append(Finding("pip-missing", Severity.ERROR,
                                t("the environment's Python has no pip, so the WebUI cannot "
                                  "install its requirements"),
                                Fix(t("bootstrap pip"),
                                    ((python, "-m", "ensurepip", "--upgrade"),), automatic=True)))
    if not torch.get("installed"):
        findings.append(Finding("torch-missing", Severity.ERROR,
                                t("torch is not installed in this environment"),
                                stack_install_fix(expected, python, constraints)))
        return make_verdict(findings, t("torch is not installed"))
    numpy_abi = _numpy_abi(probe, torch, python, numpy_pin, constraints)
    if numpy_abi is not None:
        findings.append(numpy_abi)
        if torch.get("import_error") and any(m in str(torch["import_error"])
                                             for m in NUMPY_ABI_MARKERS):
            return make_verdict(findings, t("torch does not import beside this numpy"))
    if torch.get("import_error"):
        findings.append(Finding("torch-import-error", Severity.ERROR,
                                t("torch {version} is installed but fails to import: {error}",
                                  version=torch.get("dist_version"),
                                  error=torch["import_error"]), fix))
        return make_verdict(findings, t("torch does not import"))

    version = torch.get("version") or ""
    build_cuda = torch.get("cuda")
    cpu_build = build_cuda is None or version.endswith("+cpu")
    if cpu_build:
        if nvidia:
            findings.append(Finding(
                "cpu-torch", Severity.ERROR,
                t("torch {version} is a CPU-only build, but this machine has {gpu}: the WebUI "
                  "would stop with 'Torch is not able to use GPU'", version=version,
                  gpu=gpu.gpus[0].name),
                fix))
        elif gpu.vendor in (Vendor.NONE, Vendor.INTEL):
            findings.append(Finding("cpu-torch-no-gpu", Severity.INFO,
                                    t("torch {version} is a CPU build and this machine has no "
                                      "supported GPU: fine (the WebUI needs "
                                      "--skip-torch-cuda-test --no-half --precision full)",
                                      version=version)))
    elif not _usable(gpu) or _hidden(gpu, webui_env):
        why, gpu_fix = gpu_unusable_cause(gpu, torch, webui_env) or (
            t("no NVIDIA driver answers"), Fix(t("check nvidia-smi")))
        findings.append(_not_visible(version, why, gpu_fix, on_cpu, gpu))
    elif nvidia:
        driver_cuda = _cuda_tuple(gpu.cuda_driver_version)
        wanted = _cuda_tuple(build_cuda)
        if driver_cuda and wanted and wanted > driver_cuda:
            findings.append(Finding(
                "driver-too-old", Severity.ERROR,
                t("torch {version} is built for CUDA {cuda}, but driver {driver} supports CUDA "
                  "{driver_cuda} at most", version=version, cuda=build_cuda,
                  driver=gpu.driver_version, driver_cuda=gpu.cuda_driver_version),
                Fix(t("update the NVIDIA driver (CUDA {cuda} needs a newer one), or install "
                      "a build for CUDA <= {driver_cuda}: sdboot resolve --explain",
                      cuda=build_cuda, driver_cuda=gpu.cuda_driver_version))))
        arch_list = [str(a) for a in torch.get("arch_list") or []]
        arch = [a[3:-1] + "." + a[-1] for a in arch_list if a.startswith("sm_")]
        ptx = any(a.startswith("compute_") for a in arch_list)
        for dev in gpu.gpus if arch else ():
            if dev.compute_capability and not arch_supported(dev.compute_capability, arch, ptx):
                findings.append(Finding(
                    "gpu-arch-unsupported", Severity.ERROR,
                    t("torch {version} has no kernels for {gpu} (compute capability {cap}); "
                      "it has {arch}", version=version, gpu=dev.name,
                      cap=dev.compute_capability, arch=", ".join(arch)),
                    Fix(t("install a build with kernels for this GPU: sdboot resolve "
                          "--explain (RTX 50 needs torch >= 2.7 with cu128)"))))
        cause = None if torch.get("cuda_available") else gpu_unusable_cause(gpu, torch,
                                                                             webui_env)
        if cause is not None and not findings_of(findings, "driver-too-old"):
            findings.append(_not_visible(version, *cause, on_cpu, gpu))
        elif not torch.get("cuda_available") and not findings_of(findings, "driver-too-old"):
            warn = "; ".join(torch.get("warnings") or []) or torch.get("kernel_error") or ""
            findings.append(Finding("cuda-unavailable", Severity.ERROR,
                                    t("torch.cuda.is_available() is False with torch "
                                      "{version}: {warning}", version=version, warning=warn)
                                    if warn else
                                    t("torch.cuda.is_available() is False with torch "
                                      "{version}", version=version), fix))
        elif torch.get("cuda_available") and torch.get("kernel_ok") is False:
            error = torch.get("kernel_error") or t("wrong result")
            if "no kernel image" in error and not findings_of(findings, "gpu-arch-unsupported"):
                findings.append(Finding("gpu-arch-unsupported", Severity.ERROR,
                                        t("the kernel check failed: {error}", error=error),
                                        Fix(t("install a build with kernels for this GPU: "
                                              "sdboot resolve --explain"))))
            elif "no kernel image" not in error:
                findings.append(Finding("cuda-kernel-failed", Severity.ERROR,
                                        t("the kernel check {check} failed: {error}",
                                          check=probe_module.KERNEL_CHECK, error=error), fix))

    if pinned and expected is not None and _base(version) != expected.torch_base and not (
            cpu_build and nvidia):
        findings.append(Finding("torch-drift", Severity.WARNING,
                                t("torch {version} is installed; the expected stack ({name}) "
                                  "pins {torch}", version=version, name=expected.name,
                                  torch=expected.torch),
                                reinstall_fix(expected, python,
                                              why=t("restore the pinned stack"))))
    xformers = probe.get("xformers") or {}
    built_for = xformers.get("built_for_torch")
    if xformers.get("installed") and built_for and _base(built_for) != _base(version):
        findings.append(Finding(
            "xformers-mismatch", Severity.ERROR,
            t("xformers {xformers} was built for torch {built_for}, but torch {version} is "
              "installed: its CUDA ops will not load", xformers=xformers.get("version"),
              built_for=built_for, version=version),
            _xformers_fix(expected, version, python)))
    if cpu_build and not nvidia:
        summary = t("CPU torch {version} on a machine without a supported GPU",
                    version=version)
    elif on_cpu and any(f.code == "gpu-not-visible" and f.severity == Severity.INFO
                        for f in findings):
        summary = t("CUDA torch {version} on the CPU ({profile}: no usable NVIDIA GPU)",
                    version=version, profile=on_cpu)
    elif findings_of(findings, "gpu-not-visible"):
        summary = t("CUDA torch {version}, but no usable NVIDIA GPU", version=version)
    elif nvidia and torch.get("kernel_ok"):
        devices = ", ".join(d["name"] for d in torch.get("devices") or [])
        summary = t("CUDA torch {version} runs on {devices} (kernel check passed)",
                    version=version, devices=devices)
    else:
        summary = t("torch {version}", version=version)
    return make_verdict(findings, summary)


def _xformers_fix(expected: Profile | None, torch_version: str, python: str) -> Fix:
    """The pinned xformers when the installed torch is the expected one; else advice."""
    if expected and expected.xformers and _base(torch_version) == expected.torch_base:
        return Fix(t("install the xformers built for the installed torch"),
                   ((python, "-m", "pip", "install", "--no-deps",
                     f"xformers=={expected.xformers}"),), automatic=True)
    return Fix(t("install the xformers release built for the installed torch "
                 "(FACTS: each xformers up to 0.0.34 pins one exact torch), or uninstall it"))


def findings_of(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def make_verdict(findings: list[Finding], summary: str) -> Verdict:
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
