"""Compile the fake NVML / libcuda and describe GPU scenarios as environment variables."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class FakeGpu:
    name: str
    memory_mib: int
    capability: str


@dataclass(frozen=True)
class Scenario:
    """A simulated NVIDIA machine: what the driver reports."""

    driver: str = "560.35.03"
    cuda: int = 12060  # 1000*major + 10*minor, as NVML encodes it
    gpus: tuple[FakeGpu, ...] = ()
    init_rc: int = 0  # nvmlInit: 9 driver not loaded, 18 driver/library version mismatch
    sleep_s: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    cuda_rc: int | None = None  # cuInit: 803 system driver mismatch, 100 no device
    visible: str | None = None  # CUDA_VISIBLE_DEVICES (None: unset)

    def env(self) -> dict[str, str]:
        env = {
            "FAKE_GPU_DRIVER": self.driver,
            "FAKE_GPU_CUDA": str(self.cuda),
            "FAKE_GPU_DEVICES": ";".join(f"{g.name}|{g.memory_mib}|{g.capability}"
                                         for g in self.gpus),
            "FAKE_NVML_INIT_RC": str(self.init_rc),
            "FAKE_GPU_SLEEP": str(self.sleep_s),
        }
        if self.cuda_rc is not None:
            env["FAKE_CUDA_INIT_RC"] = str(self.cuda_rc)
        if self.visible is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.visible
        env.update(self.extra)
        return env


RTX_3060 = FakeGpu("NVIDIA GeForce RTX 3060", 12288, "8.6")
RTX_4090 = FakeGpu("NVIDIA GeForce RTX 4090", 24564, "8.9")
RTX_5090 = FakeGpu("NVIDIA GeForce RTX 5090", 32607, "12.0")
RTX_2060 = FakeGpu("NVIDIA GeForce RTX 2060", 6144, "7.5")
GTX_1060 = FakeGpu("NVIDIA GeForce GTX 1060 6GB", 6144, "6.1")
H100 = FakeGpu("NVIDIA H100 80GB HBM3", 81559, "9.0")
K80 = FakeGpu("Tesla K80", 11441, "3.7")


def compile_lib(source: str, out: Path, *defines: str) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("a C compiler (cc or gcc) is needed to build the fake GPU libraries")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall", *[f"-D{d}" for d in defines],
                    "-o", str(out), str(HERE / source)], check=True)
    return out


@dataclass(frozen=True)
class GpuLibs:
    """Folders to put on LD_LIBRARY_PATH: current driver, old driver (no _v2 entry)."""

    current: Path
    old: Path
    smi_bin: Path  # a folder with a fake nvidia-smi

    def env(self, scenario: Scenario, *, old: bool = False, smi: bool = False,
            nvml: bool = True) -> dict[str, str]:
        env = scenario.env()
        if nvml:
            env["LD_LIBRARY_PATH"] = str(self.old if old else self.current)
        if smi:
            env["PATH"] = f"{self.smi_bin}{os.pathsep}{os.environ.get('PATH', '')}"
        return env


FAKE_SMI = '''#!{python}
"""A fake nvidia-smi: the two invocations sdboot makes, answered from FAKE_GPU_*."""
import os, sys
devices = [d.split("|") for d in os.environ.get("FAKE_GPU_DEVICES", "").split(";") if d]
driver = os.environ.get("FAKE_GPU_DRIVER", "560.35.03")
cuda = int(os.environ.get("FAKE_GPU_CUDA", "12060"))
args = sys.argv[1:]
if os.environ.get("FAKE_NVML_INIT_RC", "0") != "0":
    print("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    sys.exit(9)
if any(a.startswith("--query-gpu=") for a in args):
    fields = [a.split("=", 1)[1] for a in args if a.startswith("--query-gpu=")][0].split(",")
    if "compute_cap" in fields and os.environ.get("FAKE_SMI_NO_COMPUTE_CAP"):
        print('Field "compute_cap" is not a valid field to query.')
        sys.exit(2)
    for i, (name, mem, cap) in enumerate(devices):
        values = {{"index": str(i), "name": name, "memory.total": mem, "compute_cap": cap,
                  "driver_version": driver}}
        print(", ".join(values[f] for f in fields))
    sys.exit(0)
print("+" + "-" * 60 + "+")
print(f"| NVIDIA-SMI {{driver}}   Driver Version: {{driver}}   CUDA Version: "
      f"{{cuda // 1000}}.{{cuda % 1000 // 10}}     |")
'''


def build_gpu_libs(root: Path) -> GpuLibs:
    current = compile_lib("fake_nvml.c", root / "current" / "libnvidia-ml.so.1")
    compile_lib("fake_cuda.c", root / "current" / "libcuda.so.1")
    old = compile_lib("fake_nvml.c", root / "old" / "libnvidia-ml.so.1", "FAKE_NVML_OLD")
    compile_lib("fake_cuda.c", root / "old" / "libcuda.so.1")
    smi = root / "smi-bin" / "nvidia-smi"
    smi.parent.mkdir(parents=True, exist_ok=True)
    smi.write_text(FAKE_SMI.format(python=sys.executable))
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return GpuLibs(current.parent, old.parent, smi.parent)
