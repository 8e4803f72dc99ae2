"""The WebUI's own command-line flags that sdboot chooses (pure): memory flags from VRAM,
--xformers when the profile ships a matching xformers, and the CPU flags. Only flags the
WebUI knows: since v1.1 an unknown flag stops it at start."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from sdboot.values import GpuInfo, Profile

CPU_FLAGS = ("--skip-torch-cuda-test", "--no-half", "--precision", "full")


def _has_medvram_sdxl(webui_version: str | None) -> bool:
    """--medvram-sdxl exists from v1.6.0 (and in Forge and the dev branch)."""
    if webui_version is None:
        return True
    try:
        return Version(webui_version.split("-")[0]) >= Version("1.6.0")
    except InvalidVersion:
        return True


def vram_flags(gpu: GpuInfo, webui_version: str | None = None) -> list[str]:
    """<= 4 GiB: --lowvram; <= 8 GiB: --medvram; <= 12 GiB: --medvram-sdxl (full speed for
    SD 1.5, offloading only for SDXL); more: nothing. The smallest GPU decides."""
    sizes = [d.memory_total_mib for d in gpu.gpus if d.memory_total_mib]
    if not sizes:
        return []
    mib = min(sizes)
    if mib <= 4.5 * 1024:
        return ["--lowvram"]
    if mib <= 8.5 * 1024:
        return ["--medvram"]
    if mib <= 12.5 * 1024:
        return ["--medvram-sdxl"] if _has_medvram_sdxl(webui_version) else ["--medvram"]
    return []


def webui_args(gpu: GpuInfo, profile: Profile, webui_version: str | None = None) -> list[str]:
    if profile.backend == "cpu":
        return list(CPU_FLAGS)
    args = vram_flags(gpu, webui_version) if profile.backend in ("cuda", "rocm") else []
    if profile.xformers:
        args.append("--xformers")
    return args
