"""The managed blocks in webui-user.sh / webui-user.bat: put, take and write them so that
removing a block gives back the user's file byte for byte."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.files import (
    atomic_write,
    inside,
    move_no_clobber,
    refuse_symlink,
)
from sdboot.mirrors.env import (
    BLOCK_BEGIN,
    BLOCK_END,
    MirrorEnv,
    remove_block,
    render_block,
    upsert_block,
)


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
            return [t("{path} is a symbolic link: not changing it, so {pattern} may show in "
                      "`git status`", path=rel, pattern=patterns[0])]
        data = exclude.read_bytes() if os.path.lexists(exclude) else b""
    except (OSError, SdbootError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else t("outside")
        return [t("could not read {path} ({reason}): {pattern} may show in `git status`",
                  path=rel, reason=reason, pattern=patterns[0])]
    present = set(data.split())
    missing = [p for p in patterns if p.encode() not in present]
    if not missing:
        return []
    sep = b"" if not data or data.endswith(b"\n") else b"\n"
    try:
        atomic_write(exclude, data + sep + "".join(f"{p}\n" for p in missing).encode(),
                     root=root)
    except (OSError, SdbootError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else t("refused")
        return [t("could not add {patterns} to {path} ({reason}): they may show in "
                  "`git status`", patterns=", ".join(missing), path=rel, reason=reason)]
    return []

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
    """(first, last) line of a block, as mirrors/env.py finds it (no end marker: one line)."""
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
        raise SdbootError(t("{path} is not a file", path=path),
                          t("move it away; sdboot writes {name} as a plain text file",
                            name=name), exit_code=2)
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
                notes.append(t("{name}: your original is kept as {copy}", name=uf.name,
                               copy=copy.name))
                backups.append(f"/{copy.name}")
        atomic_write(path, uf.new.encode("utf-8", "surrogateescape"), root=root)
        if uf.kept:
            shown = "; ".join(ln.strip() for ln in uf.kept)[:200]
            notes.append(t("{name}: {count} line(s) of yours were inside sdboot's managed "
                           "block; kept, moved above it: {lines}", name=uf.name,
                           count=len(uf.kept), lines=shown))
    if backups:
        notes.extend(exclude_from_git(root, tuple(backups)))
    return notes
