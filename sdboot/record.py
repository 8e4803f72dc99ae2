"""The install record, WEBUI/.sdboot/install.json: what `sdboot install` chose (profile,
environment, mirrors, WebUI commit) and which steps are done, written atomically after
every step so that an interrupted install resumes. doctor and launch read the profile
from it first (CONTRACT: the expected stack)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.fsutil import atomic_write

SCHEMA = "sdboot.install-record/1"
REL_PATH = ".sdboot/install.json"


def record_path(root: Path) -> Path:
    return root / REL_PATH


def read_record(root: Path) -> dict[str, Any]:
    path = record_path(root)
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SdbootError(f"the install record {path} is damaged ({exc})",
                          "delete it and run sdboot install again: finished steps are "
                          "checked again, not redone") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        return {}
    return doc


def write_record(root: Path, doc: dict[str, Any]) -> None:
    doc["schema"] = SCHEMA
    doc["updated_at"] = int(time.time())
    atomic_write(record_path(root), (json.dumps(doc, indent=2) + "\n").encode())


def step_done(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    done = (doc.get("steps") or {}).get(name)
    return done if isinstance(done, dict) else None


def mark_step(doc: dict[str, Any], name: str, **facts: Any) -> None:
    doc.setdefault("steps", {})[name] = {"at": int(time.time()), **facts}


def forget_steps(doc: dict[str, Any], names: list[str]) -> None:
    for name in names:
        (doc.get("steps") or {}).pop(name, None)
    doc["complete"] = False
