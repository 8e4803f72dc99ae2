"""`sdboot mirror apply / revert` on a WebUI folder: the effects around the pure rewriting
(rewrite.py), env planning (env.py) and the managed blocks (blocks.py). The state lives in
WEBUI/.sdboot/mirror.json with a byte copy of the launch file as it was before the rewrite,
so that revert restores it exactly, and refuses when the file was edited since."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import N_, t
from sdboot.io.files import (
    atomic_write,
    remove_tree,
)
from sdboot.io.statefile import (
    bad_state,
    check_fields,
    check_path,
    is_int,
    is_sha256,
    is_str,
    load_state,
    opt_dict,
    state_dir,
    str_list,
    str_map,
)
from sdboot.mirrors.blocks import (
    MIRROR_BLOCK,
    exclude_from_git,
    plan_user_file,
    write_user_files,
)
from sdboot.mirrors.env import (
    MirrorEnv,
    plan_mirror_env,
)
from sdboot.mirrors.rewrite import check_compiles, literal_spans, rewrite_text
from sdboot.mirrors.table import MirrorKind, MirrorTable, Selection, retarget
from sdboot.values import TorchPins
from sdboot.webui.folder import is_webui, launch_file

STATE_DIR = ".sdboot"
STATE_FILE = "mirror.json"
SCHEMA = "sdboot.mirror-state/1"
USER_FILES = (("webui-user.sh", "sh"), ("webui-user.bat", "bat"))
PULL_WARNING = N_("a rewritten launch file blocks `git pull`; to update the WebUI run "
                  "`sdboot mirror revert DIR`, `git pull`, then apply again")


_SAVED = N_("the saved original")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def webui_root(path: Path) -> Path:
    root = path.expanduser().resolve()
    if not root.is_dir() or not is_webui(root):
        raise SdbootError(t("{dir} is not a Stable Diffusion WebUI checkout", dir=root),
                          t("give the folder that holds launch.py and webui.py"))
    return root


def _state_path(root: Path) -> Path:
    return root / STATE_DIR / STATE_FILE


def _backup_path(root: Path, rel: str) -> Path:
    return root / STATE_DIR / "backup" / (rel + ".orig")


LAUNCH_FILES = ("modules/launch_utils.py", "launch.py")
STATE_FIX = N_("restore it; or, if you did not edit it: restore the launch file and "
               "webui-user.sh / .bat from git (`git checkout -- FILE`), move it away and run "
               "the command again")
_REWRITE_FIELDS = {"file": lambda v: v in LAUNCH_FILES, "backup": is_str, "mirror": is_str,
                   "prefix": is_str, "original_sha256": is_sha256,
                   "rewritten_sha256": is_sha256, "urls": is_int, "applied_at": is_int}
_ENV_FIELDS = {"selection": str_map, "applied_at": is_int,
               "files": lambda v: str_list(v) and set(v) <= {n for n, _ in USER_FILES},
               "created": lambda v: str_list(v) and set(v) <= {n for n, _ in USER_FILES}}


def read_state(root: Path) -> dict[str, Any]:
    """The validated mirror state, {} when there is none. Every field is checked, and the
    launch file and its saved original must be the ones sdboot uses, inside the WebUI
    folder; anything else is an error (exit 2) before a file is touched."""
    doc = load_state(root, f"{STATE_DIR}/{STATE_FILE}", SCHEMA, STATE_FIX)
    if doc is None:
        return {}
    path = _state_path(root)
    check_fields(path, doc, {"rewrite": opt_dict, "env": opt_dict}, STATE_FIX)
    rw = doc.get("rewrite")
    if rw:
        check_fields(path, rw, _REWRITE_FIELDS, STATE_FIX, "rewrite.")
        missing = [k for k in ("file", "backup", "original_sha256", "rewritten_sha256")
                   if k not in rw]
        if missing:
            raise bad_state(path, t("lacks the field '{field}'", field=f"rewrite.{missing[0]}"),
                            STATE_FIX)
        want = _backup_path(root, rw["file"]).relative_to(root).as_posix()
        if rw["backup"] != want:
            raise bad_state(path, t("names {name} as the saved original; sdboot keeps it at "
                                    "{path}", name=repr(rw["backup"][:200]), path=want),
                            STATE_FIX)
        check_path(root, path, rw["file"], t("the launch file"), STATE_FIX)
        check_path(root, path, rw["backup"], t(_SAVED), STATE_FIX)
    if doc.get("env"):
        check_fields(path, doc["env"], _ENV_FIELDS, STATE_FIX, "env.")
    return doc


def _write_state(root: Path, state: dict[str, Any]) -> list[str]:
    """Save (or, with nothing applied, remove) the state; returns notes for the user."""
    path = _state_path(root)
    state_dir(root, STATE_FIX)
    if not state.get("rewrite") and not state.get("env"):
        if os.path.lexists(path):
            remove_tree(root, path, "the mirror state")
        return []
    state["schema"] = SCHEMA
    atomic_write(path, (json.dumps(state, indent=2) + "\n").encode(), root=root)
    return exclude_from_git(root, (f"/{STATE_DIR}/",))




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
        raise SdbootError(t("--mode rewrite needs a GitHub mirror"),
                          t("add --github NAME (a github-prefix mirror from sdboot mirror "
                            "list)"))
    if mirror.kind != MirrorKind.GITHUB_PREFIX:
        raise SdbootError(t("'{name}' is a {kind} mirror; --mode rewrite needs a prefix proxy "
                            "(it must serve archives and release files too)",
                            name=mirror.name, kind=str(mirror.kind)),
                          t("use --mode env with {name}, or a github-prefix mirror",
                            name=mirror.name))
    lf = launch_file(root)
    if lf is None:
        raise SdbootError(t("{dir} has no launch file", dir=root),
                          t("is this a WebUI checkout?"))
    rel = lf.relative_to(root).as_posix()
    state = read_state(root)
    current = lf.read_bytes()
    old = state.get("rewrite") or {}
    base = current
    if old:
        if old.get("file") != rel:
            raise SdbootError(t("sdboot rewrote {old}, but the launch file is now {new}",
                                old=old.get("file"), new=rel),
                              t("run `{command}` first", command=f"sdboot mirror revert {root}"))
        if sha256(current) == old.get("rewritten_sha256"):
            base = _saved_original(root, old)
        elif sha256(current) != old.get("original_sha256"):
            raise SdbootError(t("{file} was changed since sdboot rewrote it", file=rel),
                              t("run `{command}` to restore the original (your edits are kept "
                                "in .sdboot/backup/)",
                                command=f"sdboot mirror revert {root} --force"))
    text = _decode(base, rel)
    result = rewrite_text(text, mirror.url, table.host_bases())
    new_bytes = result.text.encode("utf-8")
    out = ApplyResult(root, "rewrite", [rel], len(result.changes),
                      _diff(_decode(current, rel), result.text, rel))
    out.notes.append(t(PULL_WARNING))
    if dry_run or new_bytes == current:
        return out
    _check(text, result.text, rel)
    atomic_write(_backup_path(root, rel), base, root=root)
    state["rewrite"] = {"file": rel, "mirror": mirror.name, "prefix": mirror.url,
                        "original_sha256": sha256(base), "rewritten_sha256": sha256(new_bytes),
                        "backup": _backup_path(root, rel).relative_to(root).as_posix(),
                        "urls": len(result.changes), "applied_at": int(time.time())}
    out.notes.extend(_write_state(root, state))
    atomic_write(lf, new_bytes, root=root)
    return out


def _saved_original(root: Path, rw: dict[str, Any]) -> bytes:
    """The launch file as it was before the rewrite, from its copy, proven unchanged."""
    backup = _backup_path(root, rw["file"])
    data = backup.read_bytes() if backup.is_file() and not backup.is_symlink() else None
    if data is None or sha256(data) != rw["original_sha256"]:
        raise SdbootError(t("the saved original of {file} is missing or damaged",
                            file=rw["file"]),
                          t("nothing was changed; restore the file from git: `{command}`, then "
                            "remove {state}", command=f"git checkout -- {rw['file']}",
                            state=f"{STATE_DIR}/{STATE_FILE}"))
    return data


def _decode(data: bytes, rel: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SdbootError(t("{file} is not UTF-8 text", file=rel),
                          t("restore it with `{command}`",
                            command=f"git checkout -- {rel}")) from None


def _check(before: str, after: str, rel: str) -> None:
    try:
        compile(before.removeprefix("\ufeff"), rel, "exec", dont_inherit=True)
    except SyntaxError:
        return  # the file does not compile on this Python anyway; nothing to compare
    check_compiles(after, rel)


def apply_env(root: Path, sel: Selection, table: MirrorTable, dry_run: bool = False,
              pins: TorchPins | None = None) -> ApplyResult:
    state = read_state(root)
    lf = launch_file(root)
    text = lf.read_text(encoding="utf-8", errors="replace") if lf else None
    from sdboot.io.git import reads_config_env

    env = plan_mirror_env(sel, table, text, pins, git_config_env=reads_config_env())
    out = ApplyResult(root, "env", env=env, notes=list(env.notes))
    files = [plan_user_file(root, name, shell, [(MIRROR_BLOCK, env)])
             for name, shell in USER_FILES]
    changed = [uf for uf in files if uf.changed]
    out.files = [uf.name for uf in changed]
    out.diff = "".join(_diff(uf.old, uf.new, uf.name) for uf in changed)
    if dry_run:
        return out
    created = set((state.get("env") or {}).get("created") or [])
    created |= {uf.name for uf in changed if not uf.exists}
    state["env"] = {"selection": sel.to_json(), "files": [n for n, _ in USER_FILES],
                    "created": sorted(created), "applied_at": int(time.time())} \
        if env.vars else None
    out.notes.extend(_write_state(root, state))
    out.notes.extend(write_user_files(root, changed))
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
    state = read_state(root)  # validated: every path in it is sdboot's, inside root
    files = [plan_user_file(root, name, shell, [(MIRROR_BLOCK, None)])
             for name, shell in USER_FILES]
    rw = state.get("rewrite") or {}
    if rw:
        lf = root / rw["file"]
        backup = _backup_path(root, rw["file"])
        current = lf.read_bytes() if lf.is_file() else b""
        if sha256(current) == rw.get("original_sha256"):
            out.notes.append(t("{file} was already the original", file=rw["file"]))
        elif sha256(current) != rw.get("rewritten_sha256") and not force:
            raise SdbootError(
                t("{file} was edited after sdboot rewrote it; restoring the original would "
                  "lose those edits", file=rw["file"]),
                t("see them with `{diff}`; `{command}` restores the original and keeps the "
                  "edited file in .sdboot/backup/", diff=f"git diff -- {rw['file']}",
                  command=f"sdboot mirror revert {root} --force"))
        else:
            original = _saved_original(root, rw)
            if sha256(current) != rw.get("rewritten_sha256"):
                keep = backup.with_name(backup.name.replace(".orig", f".edited-{int(time.time())}"))
                atomic_write(keep, current, root=root)
                out.notes.append(t("your edited file is kept as {path}",
                                   path=keep.relative_to(root)))
            atomic_write(lf, original, root=root)
            out.restored.append(rw["file"])
        if os.path.lexists(backup):
            remove_tree(root, backup, t(_SAVED))
        state["rewrite"] = None
    else:
        lf = launch_file(root)
        if lf is not None:
            text = _decode(lf.read_bytes(), lf.name)
            result = rewrite_text(text, None, table.host_bases())
            if result.changed:
                rel = lf.relative_to(root).as_posix()
                atomic_write(_backup_path(root, rel).with_suffix(".before-revert"),
                             lf.read_bytes(), root=root)
                _check(text, result.text, rel)
                atomic_write(lf, result.text.encode("utf-8"), root=root)
                out.restored.append(rel)
                out.notes.append(t("{file} had proxy prefixes that sdboot did not write: "
                                   "removed {count}; check with `{command}`", file=rel,
                                   count=len(result.changes), command=f"git diff -- {rel}"))
    created = set((state.get("env") or {}).get("created") or [])
    for uf in files:
        if uf.changed:
            out.restored.append(uf.name)
            if uf.name in created and not uf.new:  # sdboot made it: gone again, as before
                remove_tree(root, root / uf.name, uf.name)
    out.notes.extend(write_user_files(root, [uf for uf in files if uf.changed and (
        uf.new or uf.name not in created)], backup=False))
    state["env"] = None
    out.notes.extend(_write_state(root, state))
    return out


