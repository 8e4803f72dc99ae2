"""gpu: what the driver reports, and whether VRAM calls for --medvram / --lowvram."""

from __future__ import annotations

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.values import Finding, Fix, Severity, Vendor
from sdboot.webui.flags import vram_flags


def run(facts: DoctorFacts) -> Outcome:
    gpu = facts.gpu
    if not gpu.gpus:
        note = f" ({gpu.notes[0]})" if gpu.notes else ""
        return Outcome(f"no GPU found{note}: the WebUI will run on the CPU (slowly)")
    first = gpu.gpus[0]
    mem = f"{first.memory_total_mib / 1024:.0f} GB" if first.memory_total_mib else "? GB"
    summary = f"{first.name}, {mem}"
    if gpu.vendor == Vendor.NVIDIA:
        summary += f", driver {gpu.driver_version or '?'}"
        if gpu.cuda_driver_version:
            summary += f" (CUDA {gpu.cuda_driver_version})"
    findings = []
    version = facts.webui.version if facts.webui else None
    flags = vram_flags(gpu, version)
    if flags and first.memory_total_mib:
        low = flags[0] == "--lowvram"
        findings.append(Finding(
            "vram-low", Severity.WARNING if low else Severity.INFO,
            f"{mem} of VRAM: start the WebUI with {flags[0]}"
            + (" (SD 1.5 fits; SDXL needs the offloading)" if flags[0] == "--medvram-sdxl"
               else ""),
            Fix(f"add {flags[0]} to COMMANDLINE_ARGS in webui-user.sh / webui-user.bat "
                "(sdboot install does)")))
    return Outcome(summary, tuple(findings))


CHECK = Check("gpu", "GPU and driver", run, ("vram-low",))
