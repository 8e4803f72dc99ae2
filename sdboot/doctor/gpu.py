"""gpu: what the driver reports, and whether VRAM calls for --medvram / --lowvram."""

from __future__ import annotations

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.i18n import N_, Text, t
from sdboot.values import Finding, Fix, Severity, Vendor
from sdboot.webui.flags import vram_flags


def run(facts: DoctorFacts) -> Outcome:
    gpu = facts.gpu
    if not gpu.gpus:
        if gpu.notes:
            return Outcome(t("no GPU found ({note}): the WebUI will run on the CPU (slowly)",
                             note=gpu.notes[0]))
        return Outcome(t("no GPU found: the WebUI will run on the CPU (slowly)"))
    first = gpu.gpus[0]
    mem = f"{first.memory_total_mib / 1024:.0f} GB" if first.memory_total_mib else "? GB"
    summary: Text = t("{name}, {mem}", name=first.name, mem=mem)
    if gpu.vendor == Vendor.NVIDIA:
        if gpu.cuda_driver_version:
            summary = t("{name}, {mem}, driver {driver} (CUDA {cuda})", name=first.name,
                        mem=mem, driver=gpu.driver_version or "?",
                        cuda=gpu.cuda_driver_version)
        else:
            summary = t("{name}, {mem}, driver {driver}", name=first.name, mem=mem,
                        driver=gpu.driver_version or "?")
    findings = []
    version = facts.webui.version if facts.webui else None
    flags = vram_flags(gpu, version)
    if flags and first.memory_total_mib:
        low = flags[0] == "--lowvram"
        findings.append(Finding(
            "vram-low", Severity.WARNING if low else Severity.INFO,
            t("{mem} of VRAM: start the WebUI with {flag} (SD 1.5 fits; SDXL needs the "
              "offloading)", mem=mem, flag=flags[0]) if flags[0] == "--medvram-sdxl"
            else t("{mem} of VRAM: start the WebUI with {flag}", mem=mem, flag=flags[0]),
            Fix(t("add {flag} to COMMANDLINE_ARGS in webui-user.sh / webui-user.bat "
                  "(sdboot install does)", flag=flags[0]))))
    return Outcome(summary, tuple(findings))


CHECK = Check("gpu", N_("GPU and driver"), run, ("vram-low",))
