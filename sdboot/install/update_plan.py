"""`sdboot update` and `rollback`, the pure part: which commit a ref names on the remote
(`latest` = the newest v-prefixed release tag), the update's step names, the update state
(WEBUI/.sdboot/update.json: what an interrupted update was doing, so that a rerun finishes
it or rolls it back), and the report. Effects live in update.py, snapshots in snapshot.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import N_, t
from sdboot.install.plan import StepResult
from sdboot.io.statefile import (
    bad_state,
    check_fields,
    is_int,
    is_str,
    load_state,
    opt_str,
    str_map,
)

UPDATE_STATE = ".sdboot/update.json"
UPDATE_SCHEMA = "sdboot.update-state/1"
LATEST = "latest"
# the update's own steps; the install's steps (clone ... record) follow them
UPDATE_STEPS = (("snapshot", N_("take a snapshot")),
                ("fetch", N_("fetch the new version through the mirror")),
                ("checkout", N_("move the checkout to the new version")))
ROLLBACK_STEPS = (("commits", N_("restore the commits (WebUI, repositories, extensions)")),
                  ("environment", N_("restore the environment from the snapshot's lock")),
                  ("files", N_("restore the launch file, webui-user files and the record")))
PHASES = ("checkout", "install", "rollback")
_RELEASE = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_HEX_REF = re.compile(r"[0-9a-fA-F]{7,64}")
STATE_FIX = N_("if no update is running, run `sdboot rollback` (it restores the newest "
               "snapshot), or move .sdboot/update.json away")


def parse_ls_remote(text: str) -> dict[str, str]:
    """`git ls-remote` output -> ref name -> commit; an annotated tag's peeled commit
    (refs/tags/X^{}) replaces the tag object's hash."""
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 2 or not COMMIT.fullmatch(parts[0]):
            continue
        commit, name = parts
        if name.endswith("^{}"):
            peeled[name[:-3]] = commit
        else:
            refs[name] = commit
    refs.update(peeled)
    return refs


def latest_release(refs: dict[str, str]) -> str | None:
    """The newest release tag (vX.Y.Z, no pre-release), by version, not by name."""
    found = [(tuple(int(g) for g in m.groups()), name.removeprefix("refs/tags/"))
             for name in refs if name.startswith("refs/tags/")
             if (m := _RELEASE.fullmatch(name.removeprefix("refs/tags/")))]
    return max(found)[1] if found else None


def resolve_ref(refs: dict[str, str], ref: str) -> str | None:
    """The commit `ref` names on the remote: a branch, then a tag; None for a commit hash
    (resolved after the fetch) or a name the remote does not have."""
    for name in (f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if name in refs:
            return refs[name]
    return None


def is_hex_ref(ref: str) -> bool:
    return bool(_HEX_REF.fullmatch(ref))


def is_branch(refs: dict[str, str], ref: str | None) -> bool:
    return bool(ref) and f"refs/heads/{ref}" in refs


# --- the update state ------------------------------------------------------------------------

_FIELDS = {"phase": lambda v: v in PHASES, "snapshot": is_str, "ref": is_str,
           "commit": lambda v: v is None or (isinstance(v, str) and bool(COMMIT.fullmatch(v))),
           "changes": lambda v: isinstance(v, list) and all(isinstance(f, str) for f in v),
           "rewrite": opt_str, "env_mirror": lambda v: v is None or str_map(v),
           "stash": opt_str, "started": is_int, "from_commit": opt_str, "profile": opt_str}


def read_update_state(root: Path) -> dict[str, Any]:
    """The validated state of an interrupted update ({} when none)."""
    from sdboot.install.snapshot import check_snapshot_id

    doc = load_state(root, UPDATE_STATE, UPDATE_SCHEMA, STATE_FIX)
    if doc is None:
        return {}
    path = root / UPDATE_STATE
    check_fields(path, doc, _FIELDS, STATE_FIX)
    for key in ("phase", "snapshot") if doc.get("phase") == "rollback" else (
            "phase", "snapshot", "ref"):
        if key not in doc:
            raise bad_state(path, t("lacks the field '{field}'", field=key), STATE_FIX)
    if not check_snapshot_id(doc["snapshot"]):
        raise bad_state(path, t("has an invalid field {field}", field="'snapshot'"), STATE_FIX)
    return doc


# --- the outcome --------------------------------------------------------------------------------


@dataclass
class UpdateReport:
    webui: Path
    ref: str | None
    before: dict[str, Any]  # commit, ref, profile
    after: dict[str, Any]
    steps: list[StepResult] = field(default_factory=list)
    snapshot: str | None = None
    complete: bool = False
    nothing_to_do: bool = False
    dry_run: bool = False
    rolled_back: bool = False
    stash: str | None = None
    notes: list[str] = field(default_factory=list)
    log: Path | None = None
    error: SdbootError | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema": "sdboot.update/1", "webui": str(self.webui), "ref": self.ref,
            "from": self.before, "to": self.after, "snapshot": self.snapshot,
            "complete": self.complete, "nothing_to_do": self.nothing_to_do,
            "dry_run": self.dry_run, "rolled_back": self.rolled_back, "stash": self.stash,
            "steps": [s.to_json() for s in self.steps], "notes": [str(n) for n in self.notes],
            "log": str(self.log) if self.log else None}
        if self.error is not None:
            doc["error"] = {"message": str(self.error.message), "hint": str(self.error.hint),
                            "exit_code": self.error.exit_code}
        return doc


class UpdateFailed(SdbootError):
    """An update that failed (and was rolled back, or not); carries its report."""

    def __init__(self, error: SdbootError, report: UpdateReport) -> None:
        super().__init__(error.message, error.hint, error.exit_code)
        self.report = report
        report.error = self
