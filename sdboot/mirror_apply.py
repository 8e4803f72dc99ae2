"""`sdboot mirror apply / revert / status` on a WebUI folder: the effects around the pure
rewriting (rewrite.py) and env planning (mirror_env.py). The state lives in
WEBUI/.sdboot/mirror.json with a byte copy of the launch file as it was before the rewrite,
so that revert restores it exactly, and refuses when the file was edited since."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
import shlex
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.fsutil import (
    atomic_write,
    inside,
    move_no_clobber,
    refuse_symlink,
    remove_tree,
)
from sdboot.mirror_env import (
    BLOCK_BEGIN,
    BLOCK_END,
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
from sdboot.statefile import (
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


def _backup_path(root: Path, rel: str) -> Path:
    return root / STATE_DIR / "backup" / (rel + ".orig")


LAUNCH_FILES = ("modules/launch_utils.py", "launch.py")
STATE_FIX = ("restore it; or, if you did not edit it: restore the launch file and webui-user.sh "
             "/ .bat from git (`git checkout -- FILE`), move it away and run the command again")
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
            raise bad_state(path, f"lacks the field 'rewrite.{missing[0]}'", STATE_FIX)
        want = _backup_path(root, rw["file"]).relative_to(root).as_posix()
        if rw["backup"] != want:
            raise bad_state(path, f"names {rw['backup'][:200]!r} as the saved original; "
                            f"sdboot keeps it at {want}", STATE_FIX)
        check_path(root, path, rw["file"], "the launch file", STATE_FIX)
        check_path(root, path, rw["backup"], "the saved original", STATE_FIX)
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


def exclude_from_git(root: Path, patterns: tuple[str, ...]) -> list[str]:
    """Keep sdboot's files (.sdboot/, webui-user backups) out of `git status` and so out of
    the user's commits, through .git/info/exclude. An exclude file that cannot be read or
    written (no permission, a folder, outside the folder) is left alone with a note; one
    that is not UTF-8 is kept byte for byte."""
    git_dir = root / ".git"
    if git_dir.is_symlink() or not git_dir.is_dir():
        return []
    exclude = git_dir / "info" / "exclude"
    rel = exclude.relative_to(root).as_posix()
    try:
        inside(root, exclude.parent, rel)
        if exclude.is_symlink():
            return [f"{rel} is a symbolic link: not changing it, so {patterns[0]} may show "
                    "in `git status`"]
        data = exclude.read_bytes() if os.path.lexists(exclude) else b""
    except (OSError, SdbootError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "outside"
        return [f"could not read {rel} ({reason}): {patterns[0]} may show in `git status`"]
    present = set(data.split())
    missing = [p for p in patterns if p.encode() not in present]
    if not missing:
        return []
    sep = b"" if not data or data.endswith(b"\n") else b"\n"
    try:
        atomic_write(exclude, data + sep + "".join(f"{p}\n" for p in missing).encode(),
                     root=root)
    except (OSError, SdbootError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "refused"
        return [f"could not add {', '.join(missing)} to {rel} ({reason}): they may show in "
                "`git status`"]
    return []


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
    state = read_state(root)
    current = lf.read_bytes()
    old = state.get("rewrite") or {}
    base = current
    if old:
        if old.get("file") != rel:
            raise SdbootError(f"sdboot rewrote {old.get('file')}, but the launch file is now "
                              f"{rel}", f"run `sdboot mirror revert {root}` first")
        if sha256(current) == old.get("rewritten_sha256"):
            base = _saved_original(root, old)
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
        raise SdbootError(f"the saved original of {rw['file']} is missing or damaged",
                          f"nothing was changed; restore the file from git: `git checkout -- "
                          f"{rw['file']}`, then remove {STATE_DIR}/{STATE_FILE}")
    return data


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


# --- webui-user.sh / webui-user.bat: the managed blocks -----------------------------------------
# Both `sdboot install` (its own block and the mirror block) and `mirror apply --mode env`
# write these files, through plan_user_file() and write_user_files() only: the user's
# original is copied beside the file before sdboot first changes it, lines the user put
# inside a managed block are kept (moved above it) and reported, and removing a block gives
# back the file byte for byte, its final newline (or the lack of one) included.

BACKUP_SUFFIX = ".sdboot-backup"


@dataclass(frozen=True)
class BlockKind:
    """A managed block: its markers and the variable names sdboot writes into it."""

    markers: tuple[str, str]
    names: re.Pattern[str]


MIRROR_BLOCK = BlockKind((BLOCK_BEGIN, BLOCK_END), re.compile(
    r"\w+_REPO|\w+_PACKAGE|TORCH_COMMAND|TORCH_INDEX_URL|PIP_INDEX_URL|INDEX_URL|HF_ENDPOINT"
    r"|HF_TOKEN|HUGGING_FACE_HUB_TOKEN|GIT_CONFIG_COUNT|GIT_CONFIG_(?:KEY|VALUE)_\d+"))
_SH_EXPORT = re.compile(r"export (\w+)=(.*)")
_SH_UNSET = re.compile(r"unset (\w+)")
_BAT_SET = re.compile(r'set "(\w+)=(.*)"')
_BAT_UNSET = re.compile(r"set (\w+)=")


def _sdboot_line(line: str, kind: BlockKind, names: frozenset[str]) -> bool:
    """Whether a line inside a block is one render_block writes: a marker, or exactly
    sdboot's form of setting (or unsetting) a variable sdboot manages in this block."""
    if any(marker in line for marker in kind.markers):
        return True
    name = ""
    if m := _SH_EXPORT.fullmatch(line):
        try:
            parts = shlex.split(m[2])
        except ValueError:
            return False
        if len(parts) != 1 or shlex.quote(parts[0]) != m[2]:
            return False
        name = m[1]
    elif m := _BAT_SET.fullmatch(line):
        if "%" in m[2].replace("%%", ""):
            return False
        name = m[1]
    elif m := (_SH_UNSET.fullmatch(line) or _BAT_UNSET.fullmatch(line)):
        name = m[1]
    return bool(name) and (name in names or bool(kind.names.fullmatch(name)))


def _span(lines: list[str], markers: tuple[str, str]) -> tuple[int, int] | None:
    """(first, last) line of a block, as mirror_env finds it (no end marker: one line)."""
    begin = next((i for i, ln in enumerate(lines) if markers[0] in ln), None)
    if begin is None:
        return None
    end = next((i for i in range(begin, len(lines)) if markers[1] in lines[i]), begin)
    return begin, end


def _ends_line(text: str) -> bool:
    return text.endswith(("\n", "\r"))


def _strip_newline(text: str) -> str:
    return text[:-2] if text.endswith("\r\n") else text[:-1] if _ends_line(text) else text


def _lift_user_lines(text: str, kind: BlockKind, names: frozenset[str]
                     ) -> tuple[str, list[str]]:
    """text with the lines inside the block that sdboot did not write moved right above
    it; and those lines."""
    lines = text.splitlines(keepends=True)
    span = _span(lines, kind.markers)
    if span is None:
        return text, []
    begin, end = span
    inner = lines[begin + 1:end]
    kept = [ln for ln in inner if ln.strip() and not _sdboot_line(ln.rstrip("\r\n"), kind,
                                                                   names)]
    if not kept:
        return text, []
    nl = "\r\n" if lines[begin].endswith("\r\n") else "\n"
    moved = [ln if _ends_line(ln) else ln + nl for ln in kept]
    rest = [ln for ln in inner if ln not in kept]
    lines = lines[:begin] + moved + [lines[begin]] + rest + lines[end:]
    return "".join(lines), [ln.rstrip("\r\n") for ln in kept]


def put_block(text: str, env: MirrorEnv, shell: str, kind: BlockKind
              ) -> tuple[str, list[str]]:
    """(text with the block written or replaced, the user's lines moved out of it). The
    file keeps its final newline, or the lack of one, so take_block undoes this exactly."""
    names = frozenset(env.vars) | frozenset(env.unset)
    lifted, kept = _lift_user_lines(text, kind, names)
    new = upsert_block(lifted, render_block(env, shell, kind.markers), shell, kind.markers)
    if text and not _ends_line(text):
        new = _strip_newline(new)
    return new, kept


def take_block(text: str, kind: BlockKind) -> tuple[str, list[str]]:
    """(text without the block, the user's lines that were inside it, kept in its place)."""
    lifted, kept = _lift_user_lines(text, kind, frozenset())
    lines = lifted.splitlines(keepends=True)
    span = _span(lines, kind.markers)
    if span is None:
        return text, kept
    at_end = span[1] == len(lines) - 1 and not _ends_line(lines[-1])
    new = remove_block(lifted, kind.markers)
    return (_strip_newline(new) if at_end else new), kept


@dataclass
class UserFile:
    """A planned change to one webui-user file."""

    name: str
    old: str  # the file's text now ("" when it does not exist)
    new: str
    exists: bool
    kept: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.new != self.old


def read_user_file(root: Path, name: str) -> tuple[str, bool]:
    """(text, exists) of a webui-user file; never through a symlink, never a folder."""
    path = root / name
    refuse_symlink(path, name)
    if path.is_file():
        return path.read_bytes().decode("utf-8", "surrogateescape"), True
    if os.path.lexists(path):
        raise SdbootError(f"{path} is not a file", f"move it away; sdboot writes {name} "
                          "as a plain text file", exit_code=2)
    return "", False


def plan_user_file(root: Path, name: str, shell: str,
                   blocks: list[tuple[BlockKind, MirrorEnv | None]]) -> UserFile:
    """The file with each block written (an env with variables) or removed (None or an
    empty env), in order."""
    old, exists = read_user_file(root, name)
    text, kept = old, []
    for kind, env in blocks:
        if env is not None and env.vars:
            text, found = put_block(text, env, shell, kind)
        else:
            text, found = take_block(text, kind)
        kept += found
    return UserFile(name, old, text, exists, kept)


def _keep_copy(root: Path, copy: Path, data: bytes, like: Path) -> bool:
    """Write data as a new file `copy` (complete or not at all) with the mode of `like`;
    False, changing nothing, when anything (a file, a folder, a link) has that name."""
    if os.path.lexists(copy):
        return False
    inside(root, copy.parent, copy.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{copy.name}.", suffix=".tmp", dir=copy.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IMODE(os.lstat(like).st_mode))
        move_no_clobber(Path(tmp), copy)
    except SdbootError:
        return False  # it appeared meanwhile: never replaced
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return True


def write_user_files(root: Path, files: list[UserFile], backup: bool = True) -> list[str]:
    """Write the changed files: first (with `backup`) a copy of each as it is, beside it,
    unless a copy is there already (it holds the user's original and is never replaced);
    returns notes for the user."""
    notes: list[str] = []
    backups = []
    for uf in files:
        if not uf.changed:
            continue
        path = root / uf.name
        if uf.exists and backup:
            copy = path.with_name(uf.name + BACKUP_SUFFIX)
            if _keep_copy(root, copy, uf.old.encode("utf-8", "surrogateescape"), path):
                notes.append(f"{uf.name}: your original is kept as {copy.name}")
                backups.append(f"/{copy.name}")
        atomic_write(path, uf.new.encode("utf-8", "surrogateescape"), root=root)
        if uf.kept:
            shown = "; ".join(ln.strip() for ln in uf.kept)[:200]
            notes.append(f"{uf.name}: {len(uf.kept)} line(s) of yours were inside sdboot's "
                         f"managed block; kept, moved above it: {shown}")
    if backups:
        notes.extend(exclude_from_git(root, tuple(backups)))
    return notes


def apply_env(root: Path, sel: Selection, table: MirrorTable, dry_run: bool = False,
              pins: TorchPins | None = None) -> ApplyResult:
    state = read_state(root)
    lf = launch_file(root)
    text = lf.read_text(encoding="utf-8", errors="replace") if lf else None
    env = plan_mirror_env(sel, table, text, pins)
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
            out.notes.append(f"{rw['file']} was already the original")
        elif sha256(current) != rw.get("rewritten_sha256") and not force:
            raise SdbootError(
                f"{rw['file']} was edited after sdboot rewrote it; restoring the original "
                "would lose those edits",
                f"see them with `git diff -- {rw['file']}`; `sdboot mirror revert {root} "
                "--force` restores the original and keeps the edited file in .sdboot/backup/")
        else:
            original = _saved_original(root, rw)
            if sha256(current) != rw.get("rewritten_sha256"):
                keep = backup.with_name(backup.name.replace(".orig", f".edited-{int(time.time())}"))
                atomic_write(keep, current, root=root)
                out.notes.append(f"your edited file is kept as {keep.relative_to(root)}")
            atomic_write(lf, original, root=root)
            out.restored.append(rw["file"])
        if os.path.lexists(backup):
            remove_tree(root, backup, "the saved original")
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
                out.notes.append(f"{rel} had proxy prefixes that sdboot did not write: removed "
                                 f"{len(result.changes)}; check with `git diff -- {rel}`")
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
