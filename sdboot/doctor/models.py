"""models: a checkpoint to start with, files in the folder of another model type (found
from the safetensors header, without loading any tensor), and files the WebUI cannot load
at all (a git-LFS pointer, an HTML page, an empty, truncated or malformed file: found from
the size, the first 512 bytes and the header or zip directory; nothing is unpickled)."""

from __future__ import annotations

import sys
from pathlib import Path

from sdboot.addons.damaged import QUARANTINE, real_file_hint
from sdboot.addons.models import FOLDERS, Inspection, ModelType, inspect_model, model_files
from sdboot.doctor.engine import Check, Outcome
from sdboot.doctor.facts import DoctorFacts
from sdboot.errors import SdbootError
from sdboot.i18n import N_, Text, local, t
from sdboot.values import Finding, Fix, Severity
from sdboot.webui.store import Store, applies_to, read_store

# The fixes run through the runner as commands; both refuse to replace an existing file
# and prove their paths inside the WebUI (sdboot.addons.damaged.fix_command).
_FIX = ("import sys; from sdboot.addons.damaged import fix_command; "
        "sys.exit(fix_command(sys.argv[1:]))")
# Folders the WebUI loads models from beyond FOLDERS (the Lora extension reads LyCORIS too).
EXTRA_FOLDERS = ("models/LyCORIS",)


def _corrupt(root: Path, path: Path, found: Inspection) -> Finding:
    rel = path.relative_to(root).as_posix()
    return Finding(
        "model-corrupt", Severity.ERROR,
        t("{rel} is {problem}; the WebUI cannot load it: {hint}", rel=rel,
          problem=found.problem, hint=real_file_hint(found)),
        Fix(t("move it aside to {folder}/ (nothing is deleted)", folder=QUARANTINE),
            ((sys.executable, "-c", _FIX, "quarantine", str(root), str(path)),),
            automatic=True))


def _store() -> Store | None:
    try:
        return read_store()
    except SdbootError:
        return None  # the store check reports it


def run(facts: DoctorFacts) -> Outcome:
    if not facts.is_webui or facts.webui_dir is None:
        return Outcome(t("no WebUI folder"), skipped=True)
    root = facts.webui_dir
    findings: list[Finding] = []
    seen: dict[Path, Inspection] = {}

    def inspect(path: Path) -> Inspection:
        if path not in seen:
            seen[path] = inspect_model(path)
        return seen[path]

    counts: list[Text] = []
    planned: set[Path] = set()
    # the model store this WebUI uses (webui/store.py) is checked like its own folders
    bases = [root] + [s.path for s in [_store()] if s is not None and applies_to(s, root)
                      and s.path.is_dir() and s.path.resolve() != root.resolve()]
    for base, (kind, rel) in ((b, item) for b in bases for item in FOLDERS.items()):
        files = model_files(base / rel)
        if files:
            counts.append(t("{count} {kind}", count=len(files), kind=kind))
        for path in files:
            found = inspect(path)
            if found.problem:
                findings.append(_corrupt(base, path, found))
                continue
            if found.type in (ModelType.UNKNOWN, kind):
                continue
            target = base / FOLDERS[found.type] / path.name
            free = not target.exists() and target not in planned
            planned.add(target)
            findings.append(Finding(
                "model-misplaced", Severity.WARNING,
                t("{rel} is a {type}, not a {kind}: the WebUI will not find it there (or "
                  "fail to load it)", rel=path.relative_to(base) if base == root else path,
                  type=found.type, kind=kind),
                Fix(t("move it to {folder}/", folder=FOLDERS[found.type]) if free else
                    t("move it to {folder}/ yourself: a file named {name} is already there "
                      "(or another file is to be moved there); compare them first",
                      folder=FOLDERS[found.type], name=path.name),
                    ((sys.executable, "-c", _FIX, "move", str(base), str(path), str(target)),),
                    automatic=free)))
    for rel in EXTRA_FOLDERS:
        for path in model_files(root / rel):
            found = inspect(path)
            if found.problem:
                findings.append(_corrupt(root, path, found))
    # a LoRA sitting in the checkpoint folder is no checkpoint, nor is a damaged file
    checkpoints = [p for b in bases for p in model_files(b / FOLDERS[ModelType.CHECKPOINT])
                   if not inspect(p).problem
                   and inspect(p).type in (ModelType.CHECKPOINT, ModelType.UNKNOWN)]
    if not checkpoints:
        findings.append(Finding(
            "no-checkpoint", Severity.WARNING,
            t("{folder} holds no loadable model: the WebUI has nothing to generate with (it "
              "tries to download one on first start, which fails offline)",
              folder=FOLDERS[ModelType.CHECKPOINT]),
            Fix(t("put a .safetensors checkpoint into models/Stable-diffusion"))))
    if not counts:
        return Outcome(t("no model files"), tuple(findings))
    return Outcome(Text(", ".join(counts), t(", ").localized.join(local(c) for c in counts)),
                   tuple(findings))


CHECK = Check("models", N_("models"), run, ("no-checkpoint", "model-misplaced", "model-corrupt"))
