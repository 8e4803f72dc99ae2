"""environment: the WebUI folder, its Python environment, the interpreter's version, pip."""

from __future__ import annotations

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.model import Finding, Fix, Severity

# The WebUI (A1111 v1.x, Forge) is tested on 3.10; its pinned packages (e.g. torch 2.1.2,
# the tokenizers and scikit-image pins) have no wheels for 3.12+.
TESTED = "3.10"
NO_WHEELS_FROM = (3, 12)


def run(facts: DoctorFacts) -> Outcome:
    findings: list[Finding] = []
    if facts.webui_dir is not None and not facts.is_webui:
        findings.append(Finding("webui-missing", Severity.ERROR,
                                f"{facts.webui_dir} is not a Stable Diffusion WebUI checkout "
                                "(no launch.py and modules/)",
                                Fix("give the WebUI folder, or create one: sdboot install "
                                    f"{facts.webui_dir}")))
    python, how = facts.python
    if python is None:
        findings.append(Finding("env-missing", Severity.ERROR,
                                f"no Python environment found for the WebUI: {how}",
                                Fix("create it: sdboot install (or give --python PATH)")))
        return Outcome("no environment", tuple(findings))
    probe = facts.probe or {}
    if "error" in probe:
        findings.append(Finding("env-missing", Severity.ERROR,
                                f"the environment's Python does not run: {probe['error']}",
                                Fix("recreate it: delete the folder and run sdboot install")))
        return Outcome(f"{python} (broken)", tuple(findings))
    version = str(probe.get("python", "?"))
    major_minor = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if major_minor and ".".join(map(str, major_minor)) != TESTED:
        cannot = major_minor >= NO_WHEELS_FROM
        findings.append(Finding(
            "python-version", Severity.ERROR if cannot else Severity.WARNING,
            f"Python {version}: the WebUI is tested on {TESTED}"
            + ("; its pinned packages have no wheels for this Python" if cannot else ""),
            Fix("recreate the environment with Python 3.10: sdboot install (it finds or "
                "names a 3.10)")))
    if not probe.get("pip"):
        findings.append(Finding("pip-missing", Severity.ERROR,
                                "the environment's Python has no pip: the WebUI cannot "
                                "install its requirements",
                                Fix("bootstrap pip",
                                    ((str(python), "-m", "ensurepip", "--upgrade"),),
                                    automatic=True)))
    return Outcome(f"Python {version} at {python} ({how})", tuple(findings))


CHECK = Check("environment", "Python environment", run,
              ("webui-missing", "env-missing", "python-version", "pip-missing"))
