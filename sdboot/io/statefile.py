"""Reading sdboot's state files (WEBUI/.sdboot/*.json) before anything acts on them: the
one validation step. A state file is data that anyone who can write the folder can edit,
so before a command deletes, restores or rebuilds anything because of it, its schema, the
types of its fields and every path in it (proven inside its folder, symlinks resolved) are
checked. Anything else - a folder or a link at the file's place, a damaged or truncated
file, a schema this sdboot does not know, a path outside the folder - is a two-line error
(exit 2) raised before anything changes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import Text, t
from sdboot.io.files import inside

STATE_DIR = ".sdboot"
Check = Callable[[Any], bool]


def bad_state(path: Path, problem: str, fix: str) -> SdbootError:
    """The error for a state file that cannot be trusted; nothing was changed yet. `fix`:
    a t() text, or an N_() message id (looked up here)."""
    return SdbootError(t("the state file {path} {problem}", path=path, problem=problem),
                       t("nothing was changed; {fix}",
                         fix=fix if isinstance(fix, Text) else t(fix)), exit_code=2)


def state_dir(root: Path, fix: str) -> Path:
    """WEBUI/.sdboot, proven to be a real folder inside root (or absent)."""
    path = root / STATE_DIR
    if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
        raise bad_state(path, t("is a symbolic link or not a folder"),
                        t("remove it (sdboot never follows a link it did not make); {fix}",
                          fix=fix if isinstance(fix, Text) else t(fix)))
    return path


def load_state(root: Path, rel: str, schema: str, fix: str) -> dict[str, Any] | None:
    """The JSON document at root/rel (None when there is none), checked for being a plain
    file inside root with the expected schema. `fix` completes the hint."""
    state_dir(root, fix)
    path = root / rel
    if not os.path.lexists(path):
        return None
    if path.is_symlink() or not path.is_file():
        raise bad_state(path, t("is a folder or a symbolic link, not a file"), fix)
    inside(root, path, t("the state file"))
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise bad_state(path, t("is damaged ({error})",
                                error=f"{type(exc).__name__}: {exc}"[:287]), fix) from None
    if not isinstance(doc, dict):
        raise bad_state(path, t("is damaged (not a JSON object)"), fix)
    if doc.get("schema") != schema:
        found = doc.get("schema")
        shown = repr(found)[:60] if found is not None else "none"
        raise bad_state(path, t("has schema {found}, not {schema} (written by another sdboot "
                                "version, or edited)", found=shown, schema=repr(schema)), fix)
    return doc


def check_fields(path: Path, doc: Mapping[str, Any], fields: Mapping[str, Check],
                 fix: str, where: str = "") -> None:
    """Every present field of doc passes its check (absent fields are fine)."""
    for name, check in fields.items():
        if name in doc and not check(doc[name]):
            raise bad_state(path, t("has an invalid field {field}", field=f"{where}{name!r}"),
                            fix)


def check_path(root: Path, path: Path, value: str, what: str, fix: str) -> Path:
    """value (relative to root unless absolute) resolved and proven inside root."""
    try:
        return inside(root, value, what)
    except SdbootError:
        raise bad_state(path, t("points {what} outside {root} ({value})", what=what, root=root,
                                value=value[:200]), fix) from None


# --- field checks -----------------------------------------------------------------------------


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def str_map(value: Any) -> bool:
    """A mapping of names to strings or nulls."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items())


def opt_dict(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and \
        all(c in "0123456789abcdef" for c in value)
