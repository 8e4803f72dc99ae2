"""torch: the installed stack against the GPU and the expected profile (verify's judgement,
shared with verify and the launch guard: gpu-not-visible, numpy-abi and the rest), with
torch-drift an error here, as CONTRACT.md lists it."""

from __future__ import annotations

from dataclasses import replace

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.i18n import N_, t
from sdboot.stack.verdict import assess_stack
from sdboot.values import Severity

CODES = ("cpu-torch", "torch-missing", "torch-import-error", "torch-drift",
         "xformers-mismatch", "driver-too-old", "gpu-arch-unsupported", "cuda-unavailable",
         "cuda-kernel-failed", "gpu-not-visible", "numpy-abi")


def run(facts: DoctorFacts) -> Outcome:
    python, _ = facts.python
    probe = facts.probe
    if python is None or probe is None or "error" in probe:
        return Outcome(t("no environment to look into"), skipped=True)
    expected, source = facts.expected
    verdict = assess_stack(probe, facts.gpu, expected, str(python),
                           pinned=source != "resolver", webui_env=facts.webui_env,
                           constraints=facts.constraints, numpy_pin=facts.numpy_pin)
    findings = tuple(
        replace(f, severity=Severity.ERROR) if f.code == "torch-drift" else f
        for f in verdict.findings if f.code != "pip-missing")  # environment reports pip
    if expected is None:
        return Outcome(verdict.summary, findings)
    return Outcome(t("{summary}; expected {profile} ({source})", summary=verdict.summary,
                     profile=expected.name, source=source), findings)


CHECK = Check("torch", N_("torch stack"), run, CODES)
