"""GPU detection. detect_gpu() never raises and never hangs: NVML first (the standard
loader path, so LD_LIBRARY_PATH is honoured), then the WSL2 driver folder, then
nvidia-smi on PATH, then AMD (ROCm tools, sysfs), Intel (sysfs) and Apple Silicon.
Every source that is skipped leaves a note saying why. Only this module talks to NVML.

Beside the devices it keeps what decides whether a process can use them: NVML's error
code when it fails, CUDA_VISIBLE_DEVICES, the /dev/nvidia* nodes and WSL2's driver
folder (GpuAccess). The paths are injectable for tests: SDBOOT_DEV_DIR (/dev),
SDBOOT_PROC_VERSION (/proc/version), SDBOOT_WSL_LIB_DIR (/usr/lib/wsl/lib)."""

from __future__ import annotations

import ctypes
import os
import platform
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from sdboot.i18n import t
from sdboot.io.runner import Runner, which
from sdboot.values import GpuAccess, GpuDevice, GpuInfo, GpuSource, HostFacts, Vendor

T = TypeVar("T")

NVML_TIMEOUT_S = 5.0
SMI_TIMEOUT_S = 10.0
WSL_LIB_DIR = "/usr/lib/wsl/lib"  # injected by the Windows driver into every WSL2 distro
DEV_DIR = "/dev"
PROC_VERSION = "/proc/version"
NVML_LIBRARY_NOT_FOUND = 12
PCI_VENDORS = {"0x10de": Vendor.NVIDIA, "0x1002": Vendor.AMD, "0x8086": Vendor.INTEL}


class _ProbeFailed(Exception):
    pass


def _with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run fn in a daemon thread; a call stuck inside a driver cannot block us."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a fact
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"sdboot-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise _ProbeFailed(t("{what} did not answer within {seconds} s", what=what,
                             seconds=f"{timeout:g}"))
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def format_cuda_version(code: int) -> str:
    """NVML / the driver API encode CUDA versions as 1000*major + 10*minor."""
    return f"{code // 1000}.{(code % 1000) // 10}"


def detect_host() -> HostFacts:
    system = {"win32": "windows", "darwin": "darwin"}.get(sys.platform, "linux")
    wsl = False
    if system == "linux":
        try:
            proc = os.environ.get("SDBOOT_PROC_VERSION", PROC_VERSION)
            wsl = "microsoft" in Path(proc).read_text(errors="replace").lower()
        except OSError:
            wsl = False
    return HostFacts(system=system, machine=platform.machine().lower(), wsl=wsl)


# -- NVML ---------------------------------------------------------------------------------

def _nvml_query(pynvml: Any) -> tuple[str, str | None, tuple[GpuDevice, ...]]:
    pynvml.nvmlInit()
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda: str | None
        try:
            cuda = format_cuda_version(pynvml.nvmlSystemGetCudaDriverVersion_v2())
        except pynvml.NVMLError:
            try:  # drivers older than the _v2 entry point
                cuda = format_cuda_version(pynvml.nvmlSystemGetCudaDriverVersion())
            except pynvml.NVMLError:
                cuda = None
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            devices.append(GpuDevice(index, str(name), int(memory.total) // (1024 * 1024),
                                     f"{major}.{minor}"))
        return str(driver), cuda, tuple(devices)
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def probe_nvml(notes: list[str], wsl_dir: str, timeout: float,
               failure: dict[str, Any] | None = None) -> GpuInfo | None:
    """NVML through the loader path, else from the WSL2 folder. `failure` receives the
    loader-path attempt's error: {"code": nvmlReturn_t, "message": its string}."""
    failure = {} if failure is None else failure
    try:
        import pynvml
    except ImportError as exc:
        notes.append(t("NVML skipped: the pynvml module (nvidia-ml-py) is not importable: "
                       "{error}", error=exc))
        return None

    def standard() -> tuple[str, str | None, tuple[GpuDevice, ...]]:
        return _nvml_query(pynvml)

    try:
        driver, cuda, devices = _with_timeout(standard, timeout, "NVML")
        return GpuInfo(Vendor.NVIDIA, GpuSource.NVML, driver, cuda, devices, tuple(notes))
    except _ProbeFailed as exc:
        notes.append(t("NVML skipped: {reason}", reason=exc.args[0]))
        return None
    except pynvml.NVMLError_LibraryNotFound as exc:
        failure.update(code=NVML_LIBRARY_NOT_FOUND, message=str(exc))
        notes.append(t("NVML not found on the library path (libnvidia-ml.so.1 / nvml.dll)"))
    except pynvml.NVMLError as exc:
        failure.update(code=int(getattr(exc, "value", -1)), message=str(exc))
        notes.append(t("NVML failed: {error}", error=exc))
        return None
    except OSError as exc:
        notes.append(t("NVML failed to load: {error}", error=exc))
        return None

    wsl_lib = Path(wsl_dir) / "libnvidia-ml.so.1"
    if sys.platform == "win32" or not wsl_lib.exists():
        notes.append(t("WSL2 driver folder skipped: {path} does not exist", path=wsl_lib))
        return None

    def from_wsl() -> tuple[str, str | None, tuple[GpuDevice, ...]]:
        # pynvml loads its library only while its module-level handle is unset.
        pynvml.nvmlLib = ctypes.CDLL(str(wsl_lib))
        return _nvml_query(pynvml)

    try:
        driver, cuda, devices = _with_timeout(from_wsl, timeout, "NVML (WSL2)")
    except (_ProbeFailed, OSError, pynvml.NVMLError) as exc:
        notes.append(t("NVML from the WSL2 folder failed: {error}",
                       error=exc.args[0] if isinstance(exc, _ProbeFailed) else exc))
        return None
    notes.append(t("NVML loaded from the WSL2 driver folder {dir}", dir=wsl_dir))
    return GpuInfo(Vendor.NVIDIA, GpuSource.NVML, driver, cuda, devices, tuple(notes))


# -- nvidia-smi ---------------------------------------------------------------------------

SMI_FIELDS = "index,name,memory.total,compute_cap,driver_version"


def parse_smi_csv(text: str) -> tuple[str | None, tuple[GpuDevice, ...]]:
    """Parse `nvidia-smi --query-gpu=<SMI_FIELDS> --format=csv,noheader,nounits`."""
    driver = None
    devices = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 3 or not cells[0].isdigit():
            continue
        memory = int(float(cells[2])) if re.fullmatch(r"[\d.]+", cells[2]) else None
        cap = cells[3] if len(cells) > 3 and re.fullmatch(r"\d+\.\d+", cells[3]) else None
        if len(cells) > 4 and cells[4]:
            driver = cells[4]
        devices.append(GpuDevice(int(cells[0]), cells[1], memory, cap))
    return driver, tuple(devices)


def parse_smi_cuda_version(text: str) -> str | None:
    match = re.search(r"CUDA Version\s*:\s*(\d+\.\d+)", text)
    return match.group(1) if match else None


def probe_nvidia_smi(notes: list[str], runner: Runner, timeout: float) -> GpuInfo | None:
    exe = which("nvidia-smi")
    if exe is None:
        notes.append(t("nvidia-smi skipped: not found on PATH"))
        return None
    res = runner.run([exe, f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader,nounits"],
                     timeout=timeout)
    if not res.ok:
        notes.append(t("nvidia-smi failed: {error}",
                       error=res.tail(3) or f"exit {res.returncode}"))
        return None
    driver, devices = parse_smi_csv(res.stdout)
    if not devices:
        notes.append(t("nvidia-smi listed no GPU"))
        return None
    header = runner.run([exe], timeout=timeout)
    cuda = parse_smi_cuda_version(header.stdout) if header.ok else None
    if cuda is None:
        notes.append(t("nvidia-smi did not show the driver's CUDA version"))
    return GpuInfo(Vendor.NVIDIA, GpuSource.NVIDIA_SMI, driver, cuda, devices, tuple(notes))


# -- other vendors ------------------------------------------------------------------------

def probe_sysfs(notes: list[str], root: str) -> GpuInfo | None:
    """PCI display devices from /sys/class/drm: AMD and Intel GPUs, or an NVIDIA card whose
    driver is not loaded (NVML failed above)."""
    drm = Path(root) / "class" / "drm"
    try:
        cards = sorted(p for p in drm.iterdir() if re.fullmatch(r"card\d+", p.name))
    except OSError:
        notes.append(t("sysfs skipped: {path} is not readable", path=drm))
        return None
    found: list[tuple[Vendor, GpuDevice]] = []
    for card in cards:
        dev = card / "device"
        try:
            vendor_id = (dev / "vendor").read_text().strip().lower()
            device_id = (dev / "device").read_text().strip().lower()
        except OSError:
            continue
        vendor = PCI_VENDORS.get(vendor_id)
        if vendor is None:
            continue
        memory = None
        try:
            memory = int((dev / "mem_info_vram_total").read_text().strip()) // (1024 * 1024)
        except (OSError, ValueError):
            pass
        name = f"{vendor.value.upper()} GPU (PCI {vendor_id}:{device_id})"
        found.append((vendor, GpuDevice(len(found), name, memory, None)))
    if not found:
        notes.append(t("sysfs: no AMD, Intel or NVIDIA display device"))
        return None
    # The first discrete vendor wins: NVIDIA, then AMD, then Intel (often the iGPU).
    order = [Vendor.NVIDIA, Vendor.AMD, Vendor.INTEL]
    vendor = min((v for v, _ in found), key=order.index)
    devices = tuple(GpuDevice(i, d.name, d.memory_total_mib, None)
                    for i, (_, d) in enumerate(x for x in found if x[0] == vendor))
    if vendor == Vendor.NVIDIA:
        notes.append(t("an NVIDIA card is present but its driver did not answer: "
                       "install or repair the NVIDIA driver"))
    return GpuInfo(vendor, GpuSource.SYSFS, None, None, devices, tuple(notes))


def parse_rocminfo(text: str) -> tuple[GpuDevice, ...]:
    """GPU agents of `rocminfo` (CPU agents are listed too and skipped)."""
    devices: list[GpuDevice] = []
    for block in re.split(r"\n(?=\*+\s*\n\s*Agent \d+)", text):
        if not re.search(r"Device Type:\s*GPU", block):
            continue
        name = re.search(r"Marketing Name:\s*(.+)", block)
        gfx = re.search(r"\bName:\s*(gfx\w+)", block)
        label = (name.group(1).strip() if name else "AMD GPU") + (
            f" ({gfx.group(1)})" if gfx else "")
        devices.append(GpuDevice(len(devices), label, None, None))
    return tuple(devices)


def probe_rocm(notes: list[str], runner: Runner, timeout: float) -> GpuInfo | None:
    exe = which("rocminfo")
    if exe is None:
        notes.append(t("ROCm skipped: rocminfo not found on PATH"))
        return None
    res = runner.run([exe], timeout=timeout)
    if not res.ok:
        notes.append(t("rocminfo failed: {error}", error=res.tail(2)))
        return None
    devices = parse_rocminfo(res.stdout)
    if not devices:
        notes.append(t("rocminfo listed no GPU agent"))
        return None
    return GpuInfo(Vendor.AMD, GpuSource.ROCM, None, None, devices, tuple(notes))


def visible_devices(value: str | None, count: int | None) -> list[int] | None:
    """The GPU ordinals CUDA_VISIBLE_DEVICES leaves to CUDA, as the driver reads it: a
    comma-separated list whose first entry that is not an existing, unused ordinal ends
    it ("", "-1", or "1" on a one-GPU machine: none). None when it cannot be told here
    (a UUID entry, or an ordinal while the number of GPUs is unknown); unset: all."""
    if value is None:
        return list(range(count)) if count is not None else None
    found: list[int] = []
    for item in value.split(","):
        item = item.strip()
        if item.upper().startswith(("GPU-", "MIG-")):
            return found or None  # a UUID: only the driver can match it
        if not re.fullmatch(r"-?\d+", item) or int(item) < 0:
            return found
        if count is None:
            return None
        if int(item) >= count or int(item) in found:
            return found
        found.append(int(item))
    return found


def detect_access(host: HostFacts, wsl_dir: str, dev_dir: str) -> GpuAccess:
    """CUDA_VISIBLE_DEVICES, /dev/nvidia* (Linux) and the WSL2 driver folder. Never raises."""
    nodes: tuple[str, ...] | None = None
    if host.system == "linux":
        try:
            nodes = tuple(sorted(n for n in os.listdir(dev_dir) if n.startswith("nvidia")))
        except OSError:
            nodes = ()
    wsl_lib = Path(wsl_dir)
    has_wsl_lib = host.wsl and (wsl_lib / "libnvidia-ml.so.1").exists()
    return GpuAccess(os.environ.get("CUDA_VISIBLE_DEVICES"), nodes, host.wsl,
                     str(wsl_lib) if has_wsl_lib else None)


def detect_gpu(runner: Runner | None = None, host: HostFacts | None = None) -> GpuInfo:
    """Probe the machine once. Never raises; every skipped source leaves a note."""
    runner = runner or Runner()
    host = host or detect_host()
    notes: list[str] = []
    failure: dict[str, Any] = {}
    wsl_dir = os.environ.get("SDBOOT_WSL_LIB_DIR", WSL_LIB_DIR)
    try:
        access = detect_access(host, wsl_dir, os.environ.get("SDBOOT_DEV_DIR", DEV_DIR))
    except Exception as exc:  # noqa: BLE001 - a probe bug must not crash the command
        access = GpuAccess()
        notes.append(t("GPU access facts failed unexpectedly: {error}", error=repr(exc)))

    def done(info: GpuInfo) -> GpuInfo:
        return replace(info, nvml_error_code=failure.get("code"),
                       nvml_error=failure.get("message"), access=access)

    try:
        if host.system == "darwin":
            if host.machine in ("arm64", "aarch64"):
                return done(GpuInfo(Vendor.APPLE, GpuSource.PLATFORM, None, None,
                                    (GpuDevice(0, "Apple Silicon GPU (MPS)", None, None),),
                                    ()))
            return done(GpuInfo(Vendor.NONE, GpuSource.NONE,
                                notes=(t("Intel Mac: no MPS device"),)))
        probes: list[Callable[[], GpuInfo | None]] = [
            lambda: probe_nvml(notes, wsl_dir, NVML_TIMEOUT_S, failure),
            lambda: probe_nvidia_smi(notes, runner, SMI_TIMEOUT_S),
            lambda: probe_rocm(notes, runner, SMI_TIMEOUT_S),
            lambda: probe_sysfs(notes, os.environ.get("SDBOOT_SYSFS_ROOT", "/sys")),
        ]
        for probe in probes:
            info = probe()
            if info is not None:
                return done(info)
    except Exception as exc:  # noqa: BLE001 - a probe bug must not crash the command
        notes.append(t("GPU detection failed unexpectedly: {error}", error=repr(exc)))
    return done(GpuInfo(Vendor.NONE, GpuSource.NONE, notes=tuple(notes)))
