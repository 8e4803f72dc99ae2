"""Why a CUDA torch cannot see the GPU (gpu-not-visible): the driver, CUDA_VISIBLE_DEVICES,
WSL's library folder; each cause with its fix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sdboot.i18n import t
from sdboot.machine.gpu import WSL_LIB_DIR, visible_devices
from sdboot.values import Finding, Fix, GpuInfo, GpuSource, Severity, Vendor

# -- gpu-not-visible ----------------------------------------------------------------------

def cuda_visible_setting(gpu: GpuInfo, webui_env: Mapping[str, str] | None
                         ) -> tuple[str | None, str]:
    """CUDA_VISIBLE_DEVICES as the WebUI will get it, and where it comes from: webui-user's
    export (sourced by webui.sh / webui-user.bat after the environment), else ours."""
    if webui_env and "CUDA_VISIBLE_DEVICES" in webui_env:
        return webui_env["CUDA_VISIBLE_DEVICES"], "webui-user"
    return gpu.access.cuda_visible_devices, "the environment"


def _usable(gpu: GpuInfo) -> bool:
    """A driver that answered (NVML or nvidia-smi) and listed an NVIDIA GPU. A card seen
    only in sysfs has no working driver."""
    return gpu.vendor == Vendor.NVIDIA and bool(gpu.gpus) and gpu.source in (
        GpuSource.NVML, GpuSource.NVIDIA_SMI)


def _hidden(gpu: GpuInfo, webui_env: Mapping[str, str] | None) -> tuple[str, Fix] | None:
    value, where = cuda_visible_setting(gpu, webui_env)
    if value is None or gpu.vendor != Vendor.NVIDIA:
        return None
    count = len(gpu.gpus) if _usable(gpu) else None
    if visible_devices(value, count) != []:
        return None
    if value.strip() == "":
        what = t("is empty, which hides every GPU")
    elif value.strip().startswith("-"):
        what = t("hides every GPU")
    elif count:
        what = t("names no existing device (this machine has {count} GPU(s): index 0 to "
                 "{last})", count=count, last=count - 1)
    else:
        what = t("names no existing device")
    source = where if where == "webui-user" else t("the environment")
    fix = t("remove CUDA_VISIBLE_DEVICES in webui-user.sh / webui-user.bat, or set it to a "
            "GPU's index (e.g. 0): NVML still lists the GPU, but CUDA sees only the listed "
            "ones") if where == "webui-user" else \
        t("remove CUDA_VISIBLE_DEVICES, or set it to a GPU's index (e.g. 0): NVML still "
          "lists the GPU, but CUDA sees only the listed ones")
    return (t("CUDA_VISIBLE_DEVICES={value} (from {where}) {what}", value=repr(value),
              where=source, what=what), Fix(fix))


def gpu_unusable_cause(gpu: GpuInfo, torch: Mapping[str, Any],
                       webui_env: Mapping[str, str] | None = None) -> tuple[str, Fix] | None:
    """Why a CUDA build cannot reach an NVIDIA GPU here, the most specific cause first;
    None when nothing explains it (then the GPU is usable, or the cause is unknown)."""
    text = " ".join([*(str(w) for w in torch.get("warnings") or []), str(torch.get("output") or ""),
                     str(torch.get("kernel_error") or "")])
    code, acc, usable = gpu.nvml_error_code, gpu.access, _usable(gpu)
    if code == 18 or "Error 803" in text:
        return (t("the NVIDIA driver and its libraries are of different versions (NVML "
                  "\"Driver/library version mismatch\", error 18; CUDA error 803): the driver "
                  "was upgraded while the old one is still loaded"),
                Fix(t("reboot the machine: the new driver loads at boot (nvidia-smi works "
                      "again afterwards)")))
    if not usable:
        return _driver_cause(gpu)
    hidden = _hidden(gpu, webui_env)
    if hidden:
        return hidden
    wsl_dir = acc.wsl_lib_dir or WSL_LIB_DIR
    if acc.wsl and code == 12:  # NVML came from the WSL2 folder, not the loader
        return (t("WSL2: the driver libraries in {dir} are not on the loader path, so torch "
                  "cannot load libcuda.so.1 (sdboot found NVML only by looking there)",
                  dir=wsl_dir),
                Fix(t("put {dir} on the loader path: echo {dir} | sudo tee "
                      "/etc/ld.so.conf.d/ld.wsl.conf && sudo ldconfig (or export "
                      "LD_LIBRARY_PATH={dir}:$LD_LIBRARY_PATH), then open a new shell",
                      dir=wsl_dir)))
    return None


def _driver_cause(gpu: GpuInfo) -> tuple[str, Fix]:
    """No driver answered: the WSL2, kernel-module, container or no-GPU story. A
    CUDA_VISIBLE_DEVICES problem, if any, shows once the driver works."""
    code, acc = gpu.nvml_error_code, gpu.access
    if acc.wsl and acc.wsl_lib_dir is None:
        return (t("WSL2 without GPU access: {dir} holds no NVIDIA driver library",
                  dir=WSL_LIB_DIR),
                Fix(t("install the NVIDIA driver on Windows (never inside WSL), update WSL "
                      "(wsl --update in PowerShell) and restart it (wsl --shutdown)")))
    no_nodes = acc.dev_nodes == ()
    if code == 9:
        return (t("the NVIDIA driver is installed but not loaded (NVML: \"Driver Not "
                  "Loaded\"); /dev has no nvidia* device nodes") if no_nodes else
                t("the NVIDIA driver is installed but not loaded (NVML: \"Driver Not "
                  "Loaded\")"),
                Fix(t("reboot after a driver install or kernel update; if it remains: sudo "
                      "modprobe nvidia (Secure Boot can block an unsigned module) or "
                      "reinstall the driver, until nvidia-smi works")))
    card = gpu.gpus[0].name if gpu.vendor == Vendor.NVIDIA and gpu.gpus else None
    if card and no_nodes:
        return (t("{card} is present, but there are no /dev/nvidia* device nodes and no "
                  "NVIDIA driver answers", card=card),
                Fix(t("in a container: start it with GPU access (docker run --gpus all, with "
                      "the NVIDIA Container Toolkit); on the machine itself: install the "
                      "NVIDIA driver and reboot")))
    if card:
        return (t("{card} is present, but no NVIDIA driver answers (NVML: {error})",
                  card=card, error=gpu.nvml_error) if gpu.nvml_error else
                t("{card} is present, but no NVIDIA driver answers", card=card),
                Fix(t("install the NVIDIA driver (or repair it), then reboot; nvidia-smi "
                      "must work")))
    if code is not None and code != 12:
        return (t("NVML failed: {error} (error {code})", error=gpu.nvml_error, code=code),
                Fix(t("check nvidia-smi; reinstall the NVIDIA driver or reboot")))
    none = t("this machine has no NVIDIA GPU (it has {gpu})", gpu=gpu.gpus[0].name) \
        if gpu.gpus else t("this machine has no NVIDIA GPU")
    if no_nodes:
        none = t("{reason}; no /dev/nvidia* either (a container started without --gpus looks "
                 "the same)", reason=none)
    return (none,
            Fix(t("use the CPU profile: sdboot install --profile cpu (ROCm for an AMD GPU), "
                  "or start on the CPU anyway: sdboot launch --allow-cpu")))


def _not_visible(version: str, why: str, fix: Fix, on_cpu: str | None = None,
                 gpu: GpuInfo | None = None) -> Finding:
    """An error, unless the expected profile (`on_cpu`, its name) is a cpu one the user
    chose: then the WebUI starts with --skip-torch-cuda-test and runs on the CPU, and this
    is information. The cause's fix stays only where an NVIDIA card is there to be used."""
    if on_cpu:
        card = gpu is not None and gpu.vendor == Vendor.NVIDIA and bool(gpu.gpus)
        return Finding("gpu-not-visible", Severity.INFO,
                       t("torch {version} is a CUDA build and no NVIDIA GPU is usable ({why}): "
                         "fine, the profile {profile} runs the WebUI on the CPU "
                         "(--skip-torch-cuda-test --no-half --precision full), so CUDA is not "
                         "needed", version=version, why=why, profile=on_cpu),
                       Fix(t("to use the GPU instead: {fix}", fix=fix.summary))
                       if card else None)
    return Finding("gpu-not-visible", Severity.ERROR,
                   t("torch {version} is a CUDA build, but no NVIDIA GPU is usable: {why}; the "
                     "WebUI would stop with 'Torch is not able to use GPU'", version=version,
                     why=why), fix)
