"""The install record, WEBUI/.sdboot/install.json: what `sdboot install` chose (profile,
environment, mirrors, WebUI commit) and which steps are done, written atomically after
every step so that an interrupted install resumes. doctor and launch read the profile
from it first (CONTRACT: the expected stack).

The record is validated before anything acts on it (io/statefile.py): its schema, the types
of its fields, and the environment folder it names, which must be one that sdboot makes
inside the WebUI folder (venv/ or conda-env/): a record is never a way to make sdboot
delete a folder of the user's. It never holds secrets: what is written passes the mask."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sdboot.i18n import N_, t
from sdboot.io.files import atomic_write
from sdboot.io.mask import mask_obj
from sdboot.io.statefile import (
    bad_state,
    check_fields,
    check_path,
    is_bool,
    is_int,
    is_str,
    load_state,
    opt_str,
    state_dir,
    str_list,
    str_map,
)

SCHEMA = "sdboot.install-record/1"
REL_PATH = ".sdboot/install.json"
# the environment folders sdboot creates (and so may remove), by kind
ENV_DIRS = {"venv": "venv", "conda": "conda-env"}
FIX = N_("restore the file; or, to start over, move it and the environment folder (venv/ or "
         "conda-env/) away and run sdboot install again (the WebUI checkout is kept)")
_FIELDS = {
    "repo": opt_str, "ref": opt_str, "commit": opt_str, "clone_url": opt_str,
    "profile": opt_str, "webui_version": opt_str, "installer": opt_str, "lock": opt_str,
    "complete": is_bool, "updated_at": is_int, "steps": lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(s, dict) for k, s in v.items()),
    "env": lambda v: isinstance(v, dict), "env_pending": lambda v: isinstance(v, dict),
    "mirror": str_map, "webui_args": str_list,
    "versions": lambda v: v is None or str_map(v),
}
_ENV_FIELDS = {"kind": lambda v: v in ENV_DIRS, "prefix": is_str, "python": is_str,
               "base_python": is_str}


def record_path(root: Path) -> Path:
    return root / REL_PATH


def read_record(root: Path) -> dict[str, Any]:
    """The validated record, {} when there is none. SdbootError (exit 2) for a record that
    cannot be trusted: nothing has acted on it yet."""
    path = record_path(root)
    doc = load_state(root, REL_PATH, SCHEMA, FIX)
    if doc is None:
        return {}
    check_fields(path, doc, _FIELDS, FIX)
    for key in ("env", "env_pending"):
        if key in doc:
            check_fields(path, doc[key], _ENV_FIELDS, FIX, f"{key}.")
            if "prefix" in doc[key]:
                env_prefix(root, doc[key], path)
    return doc


def env_prefix(root: Path, env: dict[str, Any], path: Path | None = None) -> Path:
    """The environment folder a record entry names, proven to be the one sdboot makes for
    its kind inside the WebUI folder (never the folder itself, never a user's folder)."""
    path = path or record_path(root)
    kind = env.get("kind", "venv")
    prefix = check_path(root, path, str(env.get("prefix")), t("the environment folder"), FIX)
    expected = root.resolve() / ENV_DIRS.get(str(kind), "venv")
    if prefix != expected:
        raise bad_state(path, t("names {prefix} as the {kind} environment; sdboot only makes "
                                "(and removes) {expected}", prefix=prefix, kind=kind,
                                expected=expected), FIX)
    return prefix


def write_record(root: Path, doc: dict[str, Any]) -> None:
    state_dir(root, FIX)
    doc["schema"] = SCHEMA
    doc["updated_at"] = int(time.time())
    data = json.dumps(mask_obj(doc), indent=2) + "\n"
    atomic_write(record_path(root), data.encode(), root=root)


def step_done(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    done = (doc.get("steps") or {}).get(name)
    return done if isinstance(done, dict) else None


def mark_step(doc: dict[str, Any], name: str, **facts: Any) -> None:
    doc.setdefault("steps", {})[name] = {"at": int(time.time()), **facts}


def forget_steps(doc: dict[str, Any], names: list[str]) -> None:
    for name in names:
        (doc.get("steps") or {}).pop(name, None)
    doc["complete"] = False
