"""system: git on PATH, free disk where the WebUI lives."""

from __future__ import annotations

import shutil
from pathlib import Path

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.i18n import N_, Text, local, t
from sdboot.values import Finding, Fix, Severity

DISK_WARN_GB = 10.0  # a checkpoint is 2-7 GB; the WebUI unpacks more into its folder


def run(facts: DoctorFacts) -> Outcome:
    findings: list[Finding] = []
    parts: list[Text] = []
    git = facts.git()
    if git.exe is None:
        findings.append(Finding("git-missing", Severity.ERROR,
                                t("git is not on PATH: the WebUI clones its repositories "
                                  "and extensions with it"),
                                Fix(t("install git (Windows: winget install Git.Git; Debian/"
                                      "Ubuntu: apt install git), then open a new terminal"))))
    else:
        parts.append(t("git {version}", version=".".join(map(str, git.version))
                       if git.version else "?"))
    where = facts.webui_dir if facts.webui_dir is not None and facts.webui_dir.exists() \
        else Path.cwd()
    free_gb = shutil.disk_usage(where).free / 1024**3
    parts.append(t("{free} GB free", free=f"{free_gb:.0f}"))
    if free_gb < DISK_WARN_GB:
        findings.append(Finding("disk-low", Severity.WARNING,
                                t("only {free} GB free at {where}: a model download or an "
                                  "update may fail halfway", free=f"{free_gb:.1f}",
                                  where=where),
                                Fix(t("free some space (old checkpoints in "
                                      "models/Stable-diffusion are the usual candidates)"))))
    return Outcome(Text(", ".join(parts), t(", ").localized.join(local(p) for p in parts)),
                   tuple(findings))


CHECK = Check("system", N_("system"), run, ("git-missing", "disk-low"))
