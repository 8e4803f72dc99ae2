"""model-store: the model store every WebUI sdboot manages uses (webui/store.py) is there
and writable: a missing folder leaves the WebUI's --ckpt-dir / --lora-dir pointing at
nothing (no models listed), an unwritable one makes `sdboot models add` fail."""

from __future__ import annotations

import os
import sys

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.errors import SdbootError
from sdboot.i18n import N_, t
from sdboot.values import Finding, Fix, Severity
from sdboot.webui.store import LAYOUT, applies_to, read_store


def run(facts: DoctorFacts) -> Outcome:
    try:
        store = read_store()
    except SdbootError as exc:
        return Outcome(exc.message, (Finding("store-missing", Severity.WARNING, exc.message,
                                             Fix(exc.hint)),))
    if store is None:
        return Outcome(t("no model store"), skipped=True)
    root = facts.webui_dir
    used = root is not None and facts.is_webui and applies_to(store, root)
    summary = t("{path} (used by this WebUI)", path=store.path) if used else \
        t("{path} (not used by this WebUI)", path=store.path) if root else str(store.path)
    remake = ((sys.executable, "-m", "sdboot", "models", "store", str(store.path)),)
    if not store.path.is_dir():
        return Outcome(summary, (Finding(
            "store-missing", Severity.WARNING,
            t("the model store {path} is missing (a disk that is not mounted?): the WebUIs "
              "that use it list no models", path=store.path),
            Fix(t("mount it again, or make it anew: sdboot models store {path}",
                  path=store.path), remake)),))
    missing = [rel for rel, _flag in LAYOUT.values() if not (store.path / rel).is_dir()]
    findings: list[Finding] = []
    if missing:
        findings.append(Finding(
            "store-missing", Severity.WARNING,
            t("the model store {path} has no {folders}", path=store.path,
              folders=", ".join(missing)),
            Fix(t("make them: sdboot models store {path}", path=store.path), remake,
                automatic=True)))
    if not os.access(store.path, os.W_OK) or any(
            not os.access(store.path / rel, os.W_OK) for rel, _flag in LAYOUT.values()
            if (store.path / rel).is_dir()):
        findings.append(Finding(
            "store-unwritable", Severity.WARNING,
            t("the model store {path} (or a folder in it) is not writable for this user: "
              "sdboot models add cannot put models there", path=store.path),
            Fix(t("give this user write access to {path}", path=store.path))))
    return Outcome(summary, tuple(findings))


CHECK = Check("store", N_("model store"), run, ("store-missing", "store-unwritable"))
