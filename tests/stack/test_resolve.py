"""Profile resolution: a pure function, tested with real GPUs, drivers and WebUI versions."""

from __future__ import annotations

import pytest

from sdboot.stack.fit import arch_supported, resolve_profile
from sdboot.stack.profiles import load_profiles
from sdboot.values import GpuDevice, GpuInfo, GpuSource, HostFacts, TorchPins, Vendor, WebuiFacts
from sdboot.webui.folder import parse_webui_version

PROFILES = load_profiles()
LINUX = HostFacts("linux", "x86_64")
WINDOWS = HostFacts("windows", "amd64")
WSL = HostFacts("linux", "x86_64", wsl=True)

GPUS = {
    "GTX 1060": ("NVIDIA GeForce GTX 1060 6GB", 6144, "6.1"),
    "RTX 2060": ("NVIDIA GeForce RTX 2060", 6144, "7.5"),
    "RTX 3060": ("NVIDIA GeForce RTX 3060", 12288, "8.6"),
    "RTX 4090": ("NVIDIA GeForce RTX 4090", 24564, "8.9"),
    "H100": ("NVIDIA H100 80GB HBM3", 81559, "9.0"),
    "RTX 5090": ("NVIDIA GeForce RTX 5090", 32607, "12.0"),
    "K80": ("Tesla K80", 11441, "3.7"),
}
# driver -> CUDA version it supports (what NVML reports)
DRIVERS = {"470.57.02": "11.4", "516.94": "11.7", "531.18": "12.1", "551.86": "12.4",
           "572.16": "12.8", "580.95.05": "13.0"}


def nvidia(gpu: str, driver: str, cuda: str | None = "auto") -> GpuInfo:
    name, mem, cap = GPUS[gpu]
    return GpuInfo(Vendor.NVIDIA, GpuSource.NVML, driver,
                   DRIVERS[driver] if cuda == "auto" else cuda,
                   (GpuDevice(0, name, mem, cap),))


NO_GPU = GpuInfo(Vendor.NONE, GpuSource.NONE)


def pick(gpu: GpuInfo, webui: str | None = None, python: str = "3.10",
         host: HostFacts = LINUX) -> str | None:
    facts = parse_webui_version(webui) if webui else None
    res = resolve_profile(PROFILES, gpu, host, python, facts)
    return res.profile.name if res.profile else None


@pytest.mark.parametrize(("gpu", "driver", "webui", "python", "expected"), [
    # The profile made for the WebUI version wins when it fits.
    ("RTX 3060", "531.18", "1.10.1", "3.10", "torch2.1.2-cu121"),
    ("RTX 3060", "531.18", "1.6.0", "3.10", "torch2.0.1-cu118"),
    ("RTX 3060", "531.18", "1.0.0-pre", "3.10", "torch1.13.1-cu117"),
    ("RTX 3060", "531.18", "forge", "3.10", "torch2.3.1-cu121"),
    ("RTX 4090", "551.86", "1.10.1", "3.10", "torch2.1.2-cu121"),
    ("RTX 2060", "516.94", "1.0.0-pre", "3.10", "torch1.13.1-cu117"),
    ("GTX 1060", "531.18", "1.10.1", "3.10", "torch2.1.2-cu121"),
    ("H100", "551.86", "1.10.1", "3.10", "torch2.1.2-cu121"),
    # An older driver pushes back to a build whose CUDA it supports.
    ("RTX 3060", "516.94", "1.10.1", "3.10", "torch1.13.1-cu117"),
    ("RTX 3060", "516.94", None, "3.10", "torch1.13.1-cu117"),
    # H100 (9.0) is not in the cu117 build and 1.13 has no PTX: needs cu118.
    ("H100", "516.94", "1.0.0-pre", "3.10", None),
    # RTX 50 needs cu128: the v1.10.1 profile has no sm_120, so A1111 dev's line is used.
    ("RTX 5090", "572.16", "1.10.1", "3.10", "torch2.7.0-cu128"),
    ("RTX 5090", "572.16", "dev", "3.10", "torch2.7.0-cu128"),
    ("RTX 5090", "580.95.05", None, "3.12", "torch2.10.0-cu130"),
    ("RTX 5090", "551.86", None, "3.10", None),
    # No WebUI given: the newest that fits.
    ("RTX 4090", "572.16", None, "3.10", "torch2.10.0-cu128"),
    ("RTX 4090", "580.95.05", None, "3.11", "torch2.10.0-cu130"),
    # Pascal: cu128/cu130 lost sm_61; cu126 is the newest line for it.
    ("GTX 1060", "580.95.05", None, "3.10", "torch2.6.0-cu126"),
    ("GTX 1060", "572.16", None, "3.12", "torch2.6.0-cu126"),
    # Kepler with its last driver: nothing fits.
    ("K80", "470.57.02", None, "3.10", None),
    # Python 3.12 rules out the 2.1.2 stack even for the WebUI that wants it.
    ("RTX 3060", "572.16", "1.10.1", "3.12", "torch2.7.0-cu128"),
    ("RTX 3060", "551.86", "1.10.1", "3.12", None),
])
def test_resolution_table(gpu, driver, webui, python, expected):
    assert pick(nvidia(gpu, driver), webui, python) == expected


@pytest.mark.parametrize("host", [LINUX, WINDOWS, WSL])
def test_windows_and_wsl_use_driver_minimums_when_cuda_version_unknown(host):
    # Without the driver's CUDA version, the per-OS minimum driver decides. Windows 531.14
    # is the minimum for CUDA 12.1; Linux needs 530.30.02.
    gpu = nvidia("RTX 3060", "531.18", cuda=None)
    res = resolve_profile(PROFILES, gpu, host, "3.10", parse_webui_version("1.10.1"))
    assert res.profile is not None and res.profile.name == "torch2.1.2-cu121"
    old = nvidia("RTX 3060", "516.94", cuda=None)
    res = resolve_profile(PROFILES, old, host, "3.10", parse_webui_version("1.10.1"))
    assert res.profile is not None and res.profile.name == "torch1.13.1-cu117"


def test_no_gpu_resolves_to_cpu():
    res = resolve_profile(PROFILES, NO_GPU, LINUX, "3.10")
    assert res.profile is not None and res.profile.name == "cpu"
    assert "no GPU was found" in res.reasons


def test_apple_silicon_resolves_to_mps():
    gpu = GpuInfo(Vendor.APPLE, GpuSource.PLATFORM, gpus=(GpuDevice(0, "Apple", None, None),))
    res = resolve_profile(PROFILES, gpu, HostFacts("darwin", "arm64"), "3.10")
    assert res.profile is not None and res.profile.name == "mps"


def test_amd_on_linux_resolves_to_rocm():
    gpu = GpuInfo(Vendor.AMD, GpuSource.SYSFS, gpus=(GpuDevice(0, "AMD", 24560, None),))
    res = resolve_profile(PROFILES, gpu, LINUX, "3.10")
    assert res.profile is not None and res.profile.name == "rocm"
    res = resolve_profile(PROFILES, gpu, WINDOWS, "3.10")
    assert res.profile is not None and res.profile.name == "cpu"


def test_old_driver_advice_says_what_to_change():
    res = resolve_profile(PROFILES, nvidia("K80", "470.57.02"), WINDOWS, "3.10")
    assert res.profile is None
    text = " ".join(res.advice)
    assert "driver 470.57.02 supports CUDA 11.4" in text
    assert "needs 11.7" in text and ">= 516.01" in text and "--profile cpu" in text
    assert "Kepler" in text


def test_python_advice():
    res = resolve_profile(PROFILES, NO_GPU, LINUX, "3.13")
    assert res.profile is None
    assert any("Python 3.13 fits no profile" in a for a in res.advice)


def test_rejections_explain_every_other_profile():
    res = resolve_profile(PROFILES, nvidia("RTX 5090", "572.16"), LINUX, "3.10")
    why = {r.profile: r.why for r in res.rejected}
    assert "no kernels for NVIDIA GeForce RTX 5090 (compute capability 12.0)" in \
        why["torch2.1.2-cu121"]
    assert "needs CUDA 13.0" in why["torch2.10.0-cu130"]
    assert "CPU build would leave it unused" in why["cpu"]
    assert len(res.rejected) + 1 == len(PROFILES)


def test_override_keeps_the_profile_and_warns():
    res = resolve_profile(PROFILES, nvidia("RTX 5090", "572.16"), LINUX, "3.10",
                          override="torch2.1.2-cu121")
    assert res.profile is not None and res.profile.name == "torch2.1.2-cu121"
    assert any(r.startswith("warning: no kernels") for r in res.reasons)


def test_launch_file_pins_outrank_version_ranges():
    # A dev checkout described as v1.10.1-N-g... but pinning torch 2.7.0 from cu128.
    facts = WebuiFacts(None, "a1111", "1.10.1", "git-describe",
                       TorchPins("2.7.0", "0.22.0", "0.0.30",
                                 "https://download.pytorch.org/whl/cu128"))
    res = resolve_profile(PROFILES, nvidia("RTX 4090", "572.16"), LINUX, "3.10", facts)
    assert res.profile is not None and res.profile.name == "torch2.7.0-cu128"
    assert "launch file pins torch 2.7.0" in res.reasons[0]


@pytest.mark.parametrize(("cap", "arch", "ptx", "ok"), [
    ("8.9", ["8.6"], False, True),     # same major, newer minor: binary compatible
    ("8.6", ["8.9"], False, False),    # older minor cannot run newer code
    ("9.0", ["8.6"], False, False),    # newer major without PTX
    ("9.0", ["8.6"], True, True),      # ... with PTX it JIT-compiles
    ("12.0", ["9.0", "10.0"], False, False),
    ("6.1", ["6.0"], False, True),
    ("3.7", ["5.0", "6.0"], True, False),  # PTX never runs on an older GPU
])
def test_arch_rule(cap, arch, ptx, ok):
    assert arch_supported(cap, arch, ptx) is ok


def test_every_profile_has_the_facts_md_minimum_driver_for_its_cuda():
    minimums = {"11.7": ("515.43.04", "516.01"), "11.8": ("520.61.05", "520.06"),
                "12.1": ("530.30.02", "531.14"), "12.6": ("560.28.03", "560.76"),
                "12.8": ("570.26", "570.65"), "13.0": ("580.65.06", "580.88")}
    for p in PROFILES.values():
        if p.cuda:
            assert (p.min_driver["linux"], p.min_driver["windows"]) == minimums[p.cuda], p.name
