"""`sdboot mirror apply / revert / status` on a WebUI folder: the effects around the pure
rewriting (rewrite.py) and env planning (mirror_env.py). The state lives in
WEBUI/.sdboot/mirror.json with a byte copy of the launch file as it was before the rewrite,
so that revert restores it exactly, and refuses when the file was edited since."""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.fsutil import atomic_write
from sdboot.mirror_env import (
    MirrorEnv,
    plan_mirror_env,
    read_block,
    remove_block,
    render_block,
    upsert_block,
)
from sdboot.mirrors import MirrorKind, MirrorTable, Selection, retarget
from sdboot.model import TorchPins
from sdboot.rewrite import check_compiles, literal_spans, rewrite_text
from sdboot.webui import is_webui, launch_file

STATE_DIR = ".sdboot"
STATE_FILE = "mirror.json"
SCHEMA = "sdboot.mirror-state/1"
USER_FILES = (("webui-user.sh", "sh"), ("webui-user.bat", "bat"))
PULL_WARNING = ("a rewritten launch file blocks `git pull`; to update the WebUI run "
                "`sdboot mirror revert DIR`, `git pull`, then apply again")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def webui_root(path: Path) -> Path:
    root = path.expanduser().resolve()
    if not root.is_dir() or not is_webui(root):
        raise SdbootError(f"{root} is not a Stable Diffusion WebUI checkout",
                          "give the folder that holds launch.py and webui.py")
    return root


def _state_path(root: Path) -> Path:
    return root / STATE_DIR / STATE_FILE


def read_state(root: Path) -> dict[str, Any]:
    path = _state_path(root)
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SdbootError(f"cannot read {path}: {exc}",
                          "delete it if you did not edit it; sdboot mirror status shows "
                          "what is applied") from None
    return doc if isinstance(doc, dict) else {}


def _write_state(root: Path, state: dict[str, Any]) -> None:
    path = _state_path(root)
    if not state.get("rewrite") and not state.get("env"):
        path.unlink(missing_ok=True)
        return
    state["schema"] = SCHEMA
    atomic_write(path, (json.dumps(state, indent=2) + "\n").encode())
    _exclude_from_git(root)


def _exclude_from_git(root: Path) -> None:
    """Keep .sdboot/ out of `git status` (and so out of the user's commits)."""
    exclude = root / ".git" / "info" / "exclude"
    if not (root / ".git").is_dir():
        return
    text = exclude.read_text(encoding="utf-8") if exclude.is_file() else ""
    if f"/{STATE_DIR}/" in text.split():
        return
    sep = "" if not text or text.endswith("\n") else "\n"
    atomic_write(exclude, (text + sep + f"/{STATE_DIR}/\n").encode())


def _backup_path(root: Path, rel: str) -> Path:
    return root / STATE_DIR / "backup" / (rel + ".orig")


def proxied_urls(text: str, table: MirrorTable) -> list[str]:
    """GitHub URLs inside string literals that sit behind a proxy or mirror host: a rewrite
    by sdboot or by hand (the seed's ghproxy.com edit)."""
    body = text.removeprefix("\ufeff")
    found = []
    for start, end in literal_spans(body):
        literal = body[start:end]
        if retarget(literal, None, table.host_bases()) != literal:
            found.append(literal.strip("'\"fFrRbBuU"))
    return found


@dataclass
class ApplyResult:
    root: Path
    mode: str
    files: list[str] = field(default_factory=list)  # relative paths changed (or to change)
    urls: int = 0
    diff: str = ""
    notes: list[str] = field(default_factory=list)
    env: MirrorEnv | None = None


def _diff(old: str, new: str, rel: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        f"a/{rel}", f"b/{rel}"))


def apply_rewrite(root: Path, sel: Selection, table: MirrorTable,
                  dry_run: bool = False) -> ApplyResult:
    mirror = sel.github
    if mirror is None:
        raise SdbootError("--mode rewrite needs a GitHub mirror", "add --github NAME "
                          "(a github-prefix mirror from sdboot mirror list)")
    if mirror.kind != MirrorKind.GITHUB_PREFIX:
        raise SdbootError(f"'{mirror.name}' is a {mirror.kind} mirror; --mode rewrite needs "
                          "a prefix proxy (it must serve archives and release files too)",
                          f"use --mode env with {mirror.name}, or a github-prefix mirror")
    lf = launch_file(root)
    if lf is None:
        raise SdbootError(f"{root} has no launch file", "is this a WebUI checkout?")
    rel = lf.relative_to(root).as_posix()
    current = lf.read_bytes()
    state = read_state(root)
    old = state.get("rewrite") or {}
    base = current
    if old:
        if old.get("file") != rel:
            raise SdbootError(f"sdboot rewrote {old.get('file')}, but the launch file is now "
                              f"{rel}", f"run `sdboot mirror revert {root}` first")
        if sha256(current) == old.get("rewritten_sha256"):
            base = _backup_path(root, rel).read_bytes()
        elif sha256(current) != old.get("original_sha256"):
            raise SdbootError(f"{rel} was changed since sdboot rewrote it",
                              f"run `sdboot mirror revert {root} --force` to restore the "
                              "original (your edits are kept in .sdboot/backup/)")
    text = _decode(base, rel)
    result = rewrite_text(text, mirror.url, table.host_bases())
    new_bytes = result.text.encode("utf-8")
    out = ApplyResult(root, "rewrite", [rel], len(result.changes),
                      _diff(_decode(current, rel), result.text, rel))
    out.notes.append(PULL_WARNING)
    if dry_run or new_bytes == current:
        return out
    _check(text, result.text, rel)
    atomic_write(_backup_path(root, rel), base)
    state["rewrite"] = {"file": rel, "mirror": mirror.name, "prefix": mirror.url,
                        "original_sha256": sha256(base), "rewritten_sha256": sha256(new_bytes),
                        "backup": _backup_path(root, rel).relative_to(root).as_posix(),
                        "urls": len(result.changes), "applied_at": int(time.time())}
    _write_state(root, state)
    atomic_write(lf, new_bytes)
    return out


def _decode(data: bytes, rel: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SdbootError(f"{rel} is not UTF-8 text", "restore it with `git checkout -- "
                          f"{rel}`") from None


def _check(before: str, after: str, rel: str) -> None:
    try:
        compile(before.removeprefix("\ufeff"), rel, "exec", dont_inherit=True)
    except SyntaxError:
        return  # the file does not compile on this Python anyway; nothing to compare
    check_compiles(after, rel)


def apply_env(root: Path, sel: Selection, table: MirrorTable, dry_run: bool = False,
              pins: TorchPins | None = None) -> ApplyResult:
    lf = launch_file(root)
    text = lf.read_text(encoding="utf-8", errors="replace") if lf else None
    env = plan_mirror_env(sel, table, text, pins)
    out = ApplyResult(root, "env", env=env, notes=list(env.notes))
    diffs = []
    writes: list[tuple[Path, bytes]] = []
    for name, shell in USER_FILES:
        path = root / name
        old = path.read_bytes().decode("utf-8", errors="surrogateescape") if path.is_file() \
            else ""
        new = upsert_block(old, render_block(env, shell), shell) if env.vars else \
            remove_block(old)
        if new != old:
            out.files.append(name)
            diffs.append(_diff(old, new, name))
            writes.append((path, new.encode("utf-8", errors="surrogateescape")))
    out.diff = "".join(diffs)
    if dry_run:
        return out
    state = read_state(root)
    state["env"] = {"selection": sel.to_json(), "files": [n for n, _ in USER_FILES],
                    "applied_at": int(time.time())} if env.vars else None
    _write_state(root, state)
    for path, data in writes:
        atomic_write(path, data)
    return out


@dataclass
class RevertResult:
    root: Path
    restored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def revert(root: Path, table: MirrorTable, force: bool = False) -> RevertResult:
    """Undo both modes: restore the launch file from its copy (byte for byte) and remove the
    managed block from webui-user.sh/.bat. Without a copy, a hand-made prefix rewrite (the
    old ghproxy.com guides) is undone by stripping the prefixes."""
    out = RevertResult(root)
    state = read_state(root)
    rw = state.get("rewrite") or {}
    if rw:
        lf = root / rw["file"]
        backup = root / rw["backup"]
        current = lf.read_bytes() if lf.is_file() else b""
        if sha256(current) == rw.get("original_sha256"):
            out.notes.append(f"{rw['file']} was already the original")
        elif sha256(current) != rw.get("rewritten_sha256") and not force:
            raise SdbootError(
                f"{rw['file']} was edited after sdboot rewrote it; restoring the original "
                "would lose those edits",
                f"see them with `git diff -- {rw['file']}`; `sdboot mirror revert {root} "
                "--force` restores the original and keeps the edited file in .sdboot/backup/")
        else:
            if not backup.is_file() or sha256(backup.read_bytes()) != rw["original_sha256"]:
                raise SdbootError(f"the saved original of {rw['file']} is missing or damaged",
                                  f"restore it from git: `git checkout -- {rw['file']}`")
            if sha256(current) != rw.get("rewritten_sha256"):
                keep = backup.with_name(backup.name.replace(".orig", f".edited-{int(time.time())}"))
                atomic_write(keep, current)
                out.notes.append(f"your edited file is kept as {keep.relative_to(root)}")
            atomic_write(lf, backup.read_bytes())
            out.restored.append(rw["file"])
        backup.unlink(missing_ok=True)
        state["rewrite"] = None
    else:
        lf = launch_file(root)
        if lf is not None:
            text = _decode(lf.read_bytes(), lf.name)
            result = rewrite_text(text, None, table.host_bases())
            if result.changed:
                rel = lf.relative_to(root).as_posix()
                atomic_write(_backup_path(root, rel).with_suffix(".before-revert"), lf.read_bytes())
                _check(text, result.text, rel)
                atomic_write(lf, result.text.encode("utf-8"))
                out.restored.append(rel)
                out.notes.append(f"{rel} had proxy prefixes that sdboot did not write: removed "
                                 f"{len(result.changes)}; check with `git diff -- {rel}`")
    for name, _ in USER_FILES:
        path = root / name
        if path.is_file():
            old = path.read_bytes().decode("utf-8", errors="surrogateescape")
            new = remove_block(old)
            if new != old:
                atomic_write(path, new.encode("utf-8", errors="surrogateescape"))
                out.restored.append(name)
    state["env"] = None
    _write_state(root, state)
    return out


def status(root: Path, table: MirrorTable) -> dict[str, Any]:
    """What is applied, for humans and for `mirror status --json`."""
    state = read_state(root)
    lf = launch_file(root)
    rel = lf.relative_to(root).as_posix() if lf else None
    doc: dict[str, Any] = {"schema": "sdboot.mirror-status/1", "webui": str(root),
                           "launch_file": rel, "rewrite": None, "env": None,
                           "hand_rewrites": [], "problems": []}
    rw = state.get("rewrite")
    current = lf.read_bytes() if lf else b""
    if rw:
        if sha256(current) == rw.get("rewritten_sha256"):
            state_word = "applied"
        elif sha256(current) == rw.get("original_sha256"):
            state_word = "undone (the file is the original again)"
        else:
            state_word = "edited since"
            doc["problems"].append(f"{rw['file']} was edited after the rewrite; revert needs "
                                   "--force")
        doc["rewrite"] = {"file": rw["file"], "mirror": rw.get("mirror"),
                          "prefix": rw.get("prefix"), "urls": rw.get("urls"),
                          "state": state_word}
    elif lf is not None:
        text = current.decode("utf-8", errors="replace")
        try:
            doc["hand_rewrites"] = proxied_urls(text, table)[:20]
        except SdbootError as exc:
            doc["problems"].append(exc.message)
    env_files = {}
    for name, _ in USER_FILES:
        path = root / name
        if path.is_file():
            found = read_block(path.read_text(encoding="utf-8", errors="replace"))
            if found:
                env_files[name] = found
    if state.get("env") or env_files:
        doc["env"] = {"selection": (state.get("env") or {}).get("selection"),
                      "files": sorted(env_files), "vars": next(iter(env_files.values()), {})}
    return doc



def webui_selection(root: Path, table: MirrorTable) -> Selection:
    """The mirrors a WebUI uses: the install record's, overridden by `mirror apply`'s."""
    from sdboot.mirrors import select
    from sdboot.record import read_record

    names = {g: n for g, n in (read_record(root).get("mirror") or {}).items()
             if g != "label" and n}
    names.update({g: n for g, n in ((read_state(root).get("env") or {}).get("selection")
                                    or {}).items() if g != "label" and n})
    try:
        return select(table, None, True, **names)
    except SdbootError:  # a mirror that is no longer in the table: the upstreams
        return select(table, None)
