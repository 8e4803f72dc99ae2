"""Value types shared by every module: plain frozen dataclasses, no behaviour beyond views."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class StrEnum(str, enum.Enum):
    """enum.StrEnum for Python 3.10 as well: members are strings and print as their value."""

    def __str__(self) -> str:
        return str(self.value)


class Vendor(StrEnum):
    NVIDIA = "nvidia"
    AMD = "amd"
    APPLE = "apple"
    INTEL = "intel"
    NONE = "none"


class GpuSource(StrEnum):
    NVML = "nvml"
    NVIDIA_SMI = "nvidia-smi"
    ROCM = "rocm"
    SYSFS = "sysfs"
    PLATFORM = "platform"
    NONE = "none"


@dataclass(frozen=True)
class GpuDevice:
    index: int
    name: str
    memory_total_mib: int | None
    compute_capability: str | None  # "8.6"; None where the vendor has no such notion

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "memory_total_mib": self.memory_total_mib,
            "compute_capability": self.compute_capability,
        }


@dataclass(frozen=True)
class GpuAccess:
    """What decides whether a process can reach an NVIDIA GPU, beside the driver's own
    answer: gathered by gpu.detect_gpu() for the "gpu-not-visible" verdict."""

    cuda_visible_devices: str | None = None  # this process's value; None when unset
    dev_nodes: tuple[str, ...] | None = None  # /dev/nvidia* present; None off Linux
    wsl: bool = False
    wsl_lib_dir: str | None = None  # the WSL2 driver folder when it holds libnvidia-ml

    def to_json(self) -> dict[str, Any]:
        return {
            "cuda_visible_devices": self.cuda_visible_devices,
            "dev_nodes": list(self.dev_nodes) if self.dev_nodes is not None else None,
            "wsl": self.wsl,
            "wsl_lib_dir": self.wsl_lib_dir,
        }


@dataclass(frozen=True)
class GpuInfo:
    vendor: Vendor
    source: GpuSource
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # "12.1": the highest CUDA the driver supports
    gpus: tuple[GpuDevice, ...] = ()
    notes: tuple[str, ...] = ()
    # NVML through the loader path failed: nvmlInit's return code (9 driver not loaded,
    # 18 driver/library version mismatch; 12 = the library was not found) and its string
    nvml_error_code: int | None = None
    nvml_error: str | None = None
    access: GpuAccess = GpuAccess()

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "sdboot.gpu/1",
            "vendor": str(self.vendor),
            "source": str(self.source),
            "driver_version": self.driver_version,
            "cuda_driver_version": self.cuda_driver_version,
            "gpus": [g.to_json() for g in self.gpus],
            "notes": list(self.notes),
            "nvml_error": ({"code": self.nvml_error_code, "message": self.nvml_error}
                           if self.nvml_error_code is not None else None),
            "access": self.access.to_json(),
        }


@dataclass(frozen=True)
class HostFacts:
    system: str  # "linux" | "windows" | "darwin"
    machine: str  # "x86_64", "arm64", ...
    wsl: bool = False

    @property
    def driver_os(self) -> str:
        """Whose driver numbering applies: WSL2 runs the Windows driver."""
        return "windows" if self.system == "windows" or self.wsl else self.system


@dataclass(frozen=True)
class Profile:
    """A pinned torch stack, loaded from profiles/*.yaml."""

    name: str
    description: str
    backend: str  # cuda | rocm | cpu | mps
    torch: str  # exact installed version, local label included: "2.1.2+cu121"
    torchvision: str
    xformers: str | None
    variant: str | None  # wheel-index variant: "cu121", "rocm6.0", "cpu"; None = default index
    cuda: str | None  # "12.1" for CUDA builds
    index_url: str | None  # None: the default package index
    index_mode: str  # "index" (--index-url) | "extra" (--extra-index-url) | "default"
    pip_args: tuple[str, ...]
    arch: tuple[str, ...]  # compute capabilities with kernels: ("7.5", "8.6")
    ptx: tuple[str, ...]  # platforms whose build also carries PTX for the newest arch
    python: str  # PEP 440 specifier for the Python version: ">=3.8,<3.12"
    webui: tuple[str, ...]  # "a1111>=1.8,<1.11", "forge", "a1111-dev"
    platforms: tuple[str, ...]  # linux / windows / darwin
    min_driver: dict[str, str] = field(default_factory=dict)  # os -> minimum driver version
    notes: tuple[str, ...] = ()
    source: str = "shipped"  # shipped | user
    path: str = ""
    # extra constraints of build environments (the setuptools cap always applies)
    build_constraints: tuple[str, ...] = ()

    @property
    def torch_base(self) -> str:
        return self.torch.split("+", 1)[0]

    def pins(self) -> TorchPins:
        """The stack as the WebUI's own variables describe one (TORCH_COMMAND and friends)."""
        return TorchPins(self.torch, self.torchvision, self.xformers, self.index_url)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "backend": self.backend,
            "torch": self.torch,
            "torchvision": self.torchvision,
            "xformers": self.xformers,
            "variant": self.variant,
            "cuda": self.cuda,
            "index_url": self.index_url,
            "index_mode": self.index_mode,
            "pip_args": list(self.pip_args),
            "arch": list(self.arch),
            "ptx": list(self.ptx),
            "python": self.python,
            "webui": list(self.webui),
            "platforms": list(self.platforms),
            "min_driver": dict(self.min_driver),
            "notes": list(self.notes),
            "source": self.source,
        }


@dataclass(frozen=True)
class TorchPins:
    """What a WebUI's launch file installs by default (its TORCH_COMMAND and friends)."""

    torch: str | None = None
    torchvision: str | None = None
    xformers: str | None = None
    index_url: str | None = None


@dataclass(frozen=True)
class WebuiFacts:
    path: str | None
    flavor: str  # a1111 | a1111-dev | forge | unknown
    version: str | None  # "1.10.1", "1.0.0-pre"; None when unknown
    version_source: str  # git-tag | changelog | given | none
    pins: TorchPins = TorchPins()
    launch_file: str | None = None


@dataclass(frozen=True)
class Rejection:
    profile: str
    why: str


@dataclass(frozen=True)
class Resolution:
    profile: Profile | None
    reasons: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    advice: tuple[str, ...] = ()  # when nothing fits: what to change


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Fix:
    summary: str
    commands: tuple[tuple[str, ...], ...] = ()
    automatic: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "commands": [list(c) for c in self.commands],
                "automatic": self.automatic}


@dataclass(frozen=True)
class Finding:
    code: str  # stable name, see CONTRACT.md
    severity: Severity
    message: str
    fix: Fix | None = None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": str(self.severity), "message": self.message,
                "fix": self.fix.to_json() if self.fix else None}
