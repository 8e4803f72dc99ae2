"""models: a checkpoint to start with, and files in the folder of another model type
(found from the safetensors header, without loading any tensor)."""

from __future__ import annotations

import sys

from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.model import Finding, Fix, Severity
from sdboot.models import FOLDERS, ModelType, classify_file, model_files

_MOVE = "import shutil, sys; shutil.move(sys.argv[1], sys.argv[2])"


def run(facts: DoctorFacts) -> Outcome:
    if not facts.is_webui or facts.webui_dir is None:
        return Outcome("no WebUI folder", skipped=True)
    root = facts.webui_dir
    findings: list[Finding] = []
    # a LoRA sitting in the checkpoint folder is no checkpoint
    checkpoints = [p for p in model_files(root / FOLDERS[ModelType.CHECKPOINT])
                   if classify_file(p) in (ModelType.CHECKPOINT, ModelType.UNKNOWN)]
    counts = []
    for kind, rel in FOLDERS.items():
        files = model_files(root / rel)
        if files:
            counts.append(f"{len(files)} {kind}")
        for path in files:
            found = classify_file(path)
            if found in (ModelType.UNKNOWN, kind):
                continue
            target = root / FOLDERS[found] / path.name
            findings.append(Finding(
                "model-misplaced", Severity.WARNING,
                f"{path.relative_to(root)} is a {found}, not a {kind}: the WebUI will not "
                f"find it there (or fail to load it)",
                Fix(f"move it to {FOLDERS[found]}/",
                    ((sys.executable, "-c", _MOVE, str(path), str(target)),),
                    automatic=not target.exists())))
    if not checkpoints:
        findings.append(Finding(
            "no-checkpoint", Severity.WARNING,
            f"{FOLDERS[ModelType.CHECKPOINT]} holds no model: the WebUI has nothing to "
            "generate with (it tries to download one on first start, which fails offline)",
            Fix("put a .safetensors checkpoint into models/Stable-diffusion")))
    return Outcome(", ".join(counts) or "no model files", tuple(findings))


CHECK = Check("models", "models", run, ("no-checkpoint", "model-misplaced"))
