"""The file funnel. Every path sdboot writes, moves or deletes goes through here:

- `inside(root, path)` proves a path (symlinks resolved) stays in the folder it belongs to;
- `safe_name(text)` turns an untrusted name (a URL segment, a server's header or API
  answer, a state file's entry) into a plain file name, or refuses;
- `atomic_write` (temp file in the target folder + rename: a crash leaves the old or the
  new file, never half of one; a symlink at the target is replaced, never followed);
- `open_nofollow` opens a file for writing without following a planted symlink;
- `move_no_clobber` never replaces an existing file; `remove_tree` only deletes inside root;
- an exclusive lock that dies with its process.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from sdboot.errors import SdbootError
from sdboot.i18n import t

MAX_NAME_BYTES = 200  # most file systems allow 255; leave room for .part / .tmp suffixes
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _outside(path: Path | str, root: Path | str, what: str) -> SdbootError:
    return SdbootError(
        t("refusing to touch {path}: {what} is outside {root}", path=path, what=what, root=root),
        t("sdboot only writes inside the folder it manages; if a state file points there, "
          "it was edited or tampered with: check it, or remove it and run the command again"),
        exit_code=2)


def inside(root: Path, path: Path | str, what: str | None = None) -> Path:
    """`path` (relative to root unless absolute) resolved, symlinks included, and proven to
    stay inside `root`; raises SdbootError (exit 2) otherwise. Returns the resolved path."""
    base = Path(root).resolve()
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = base / candidate
    resolved = candidate.resolve()
    if resolved != base and base not in resolved.parents:
        raise _outside(path, root, what or t("the path"))
    return resolved


def safe_name(text: str, what: str | None = None) -> str:
    """A plain file name from untrusted text, unchanged when it already is one: no path
    separators, no `.`/`..`, no control characters, no Windows device names or trailing
    dots, at most MAX_NAME_BYTES bytes. Refuses (SdbootError, exit 2) rather than guess."""
    name = unicodedata.normalize("NFC", text).strip()
    problem = ""
    if not name or name in (".", ".."):
        problem = t("it is empty or a relative folder name")
    elif any(sep in name for sep in ("/", "\\")) or (os.altsep and os.altsep in name):
        problem = t("it contains a path separator")
    elif any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        problem = t("it contains control characters")
    elif name.startswith(".."):
        problem = t("it starts with '..'")
    elif ":" in name:
        problem = t("it contains ':' (a drive or stream name on Windows)")
    elif name.endswith((".", " ")) or name.split(".")[0].upper() in _WINDOWS_RESERVED:
        problem = t("it is not a valid file name on Windows")
    elif len(name.encode("utf-8")) > MAX_NAME_BYTES:
        problem = t("it is longer than {limit} bytes", limit=MAX_NAME_BYTES)
    if problem:
        shown = name.encode("unicode_escape").decode("ascii")[:80]
        raise SdbootError(t("unsafe {what} {name}: {problem}", what=what or t("file name"),
                            name=repr(shown),
                            problem=problem),
                          t("give the name yourself (--name NAME) or download from another "
                            "source"), exit_code=2)
    return name


def refuse_symlink(path: Path, what: str | None = None) -> None:
    """Raise when path is a symlink (or a junction): sdboot never writes through one."""
    if path.is_symlink() or (sys.platform == "win32" and _is_junction(path)):
        raise SdbootError(t("refusing to write {path}: the {what} is a symbolic link",
                            path=path, what=what or t("file")),
                          t("remove the link (sdboot never follows one it did not make) and "
                            "run the command again"), exit_code=2)


def _is_junction(path: Path) -> bool:
    is_junction = getattr(os.path, "isjunction", None)
    return bool(is_junction and is_junction(path))


def atomic_write(path: Path, data: bytes, root: Path | None = None) -> None:
    """Write data to path atomically, keeping an existing file's mode. With `root`, the
    path is first proven to stay inside it. A symlink at `path` is replaced by the file,
    never followed; a folder at `path` is an error."""
    if root is not None:
        inside(root, path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        raise OSError(errno.EISDIR, "is a directory", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:60]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def open_nofollow(path: Path, mode: str = "wb") -> BinaryIO:
    """Open path for writing ('wb' truncate, 'ab' append, 'xb' new only) without following
    a symlink at the final component (O_NOFOLLOW; checked by lstat where the platform has
    no such flag). A planted link makes this raise SdbootError and writes nothing."""
    flags = {"wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
             "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
             "xb": os.O_WRONLY | os.O_CREAT | os.O_EXCL}[mode]
    if not _NOFOLLOW:
        refuse_symlink(path)
    try:
        fd = os.open(path, flags | _NOFOLLOW | getattr(os, "O_BINARY", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (path.is_symlink() and exc.errno != errno.EEXIST):
            refuse_symlink(path)
        raise
    return cast(BinaryIO, os.fdopen(fd, "ab" if mode == "ab" else "wb"))


def _exists(dst: Path) -> SdbootError:
    return SdbootError(t("{path} already exists: not replacing it", path=dst),
                       t("move or rename that file yourself first"), exit_code=1)


def move_no_clobber(src: Path, dst: Path) -> None:
    """Move a file to dst, refusing (SdbootError, exit 1) when dst already exists. On one
    disk this is a hard link + unlink, so an existing file can never be replaced, even by
    a race; across disks a copy to a new temp name + no-replace link."""
    if os.path.lexists(dst):
        raise _exists(dst)
    try:
        os.link(src, dst)
    except FileExistsError:
        raise _exists(dst) from None
    except OSError:
        # another disk, or a file system without hard links: copy, then claim the name
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name[:60]}.", suffix=".tmp", dir=dst.parent)
        os.close(fd)
        try:
            shutil.copy2(src, tmp)
            try:
                os.link(tmp, dst)
            except OSError:
                if os.path.lexists(dst):
                    raise
                os.replace(tmp, dst)  # no hard links here: the lexists check above holds
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    os.unlink(src)


def remove_tree(root: Path, path: Path, what: str | None = None) -> None:
    """Delete path (a folder or file) after proving it is inside root and not root itself.
    A symlink is removed as a link; what it points to is never touched."""
    what = what or t("folder")
    if os.path.islink(path):
        inside(root, Path(path).parent, what)
        os.unlink(path)
        return
    resolved = inside(root, path, what)
    if resolved == Path(root).resolve():
        raise _outside(path, root, t("the {what} is the managed folder itself, which",
                                     what=what))
    if resolved.is_dir():
        shutil.rmtree(resolved)
    elif os.path.lexists(resolved):
        os.unlink(resolved)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on `path` (created if needed); yields False at once when
    another process holds it. The OS drops the lock when its holder dies, so a killed
    run never leaves a stale lock behind. A folder or symlink at `path` is an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.is_dir():
        raise SdbootError(t("the lock file {path} is a folder or a symbolic link", path=path),
                          t("remove it (nothing in it is used) and run the command again"),
                          exit_code=2)
    fh = open_nofollow(path, "ab")
    try:
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        fh.close()
