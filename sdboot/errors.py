"""The one error type users can cause; the CLI renders it as `error:` / `hint:`.

Also what the CLI says when a failure comes from outside sdboot's own checks: an OSError
(disk full, name too long, permission denied...) becomes `describe_os_error`'s two lines,
and Ctrl-C says what the interruption kept. A command that changes things registers that
note while it works:

    from sdboot.errors import KEPT_RESUME, on_interrupt
    with on_interrupt(KEPT_RESUME):
        ...  # long work; Ctrl-C here prints `hint: finished steps are kept; ...`

or, for the rest of the command, `keep_on_interrupt(note)`. Without a note the CLI says
"nothing was changed" for the commands that only read, and a careful neutral hint else.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from contextvars import ContextVar

from sdboot.i18n import N_, Text, t


class SdbootError(Exception):
    """A problem the user can act on. exit_code follows the contract (2 = bad input)."""

    def __init__(self, message: str, hint: str = "", exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


# --- Ctrl-C: what an interruption keeps ------------------------------------------------------

# English msgids (N_): the CLI shows them translated (sdboot.i18n.local_or_lookup).
NOTHING_CHANGED = N_("nothing was changed")
KEPT_RESUME = N_("finished steps are kept; run the same command again to resume")
KEPT_UNKNOWN = N_("the command stopped part-way; run it again to finish it "
                  "(sdboot doctor shows what is there)")

_NOTE: ContextVar[str | None] = ContextVar("sdboot_interrupt_note", default=None)
_ATTR = "sdboot_interrupt_note"


def keep_on_interrupt(note: str) -> None:
    """What a Ctrl-C from now on leaves behind, for the rest of this command (call it from
    the command's own thread; the latest call wins)."""
    _NOTE.set(note)


def forget_interrupt_note() -> None:
    """A new command starts with nothing registered (main() and the tests call this)."""
    _NOTE.set(None)


@contextlib.contextmanager
def on_interrupt(note: str) -> Iterator[None]:
    """What a Ctrl-C inside the block leaves behind. Blocks nest: the innermost note wins;
    after the block the outer note holds again."""
    token = _NOTE.set(note)
    try:
        yield
    except KeyboardInterrupt as exc:
        if not hasattr(exc, _ATTR):
            setattr(exc, _ATTR, note)
        raise
    finally:
        _NOTE.reset(token)


def interrupt_note(exc: BaseException | None = None) -> str | None:
    """The note for an interruption: the one stamped on the KeyboardInterrupt (or on what
    caused it, e.g. click's Abort), else the one registered now, else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        note = getattr(exc, _ATTR, None)
        if isinstance(note, str):
            return note
        exc = exc.__cause__ or exc.__context__
    return _NOTE.get()


# --- failures of the operating system, in plain words ----------------------------------------

_IN_USE = N_("the file is in use: close the program that holds it (a running WebUI?), then "
             "run the same command again")
_PERMS = N_("check the permissions of that path (it must be yours and writable), or choose "
            "a folder under your home folder")
_OS_HINTS: dict[int, str] = {
    errno.ENOSPC: N_("free some disk space there (or choose a folder on another drive), then "
                     "run the same command again"),
    errno.ENAMETOOLONG: N_("choose a shorter folder or file name (most file systems allow "
                           "255 bytes per name, and sdboot adds a few characters for its "
                           "temporary files)"),
    errno.EACCES: _PERMS,
    errno.EPERM: _PERMS,
    errno.EISDIR: N_("a folder is where a file belongs: move that folder away, or choose "
                     "another path"),
    errno.ENOTDIR: N_("a file is where a folder belongs: move that file away, or choose "
                      "another path"),
    errno.EROFS: N_("that drive is mounted read-only: choose a folder on a writable drive"),
    errno.ELOOP: N_("that path goes through a symbolic link loop (or a link sdboot will not "
                    "follow): replace the link with a real folder or file"),
    errno.ENOENT: N_("check that the path exists (was a folder moved or deleted meanwhile?), "
                     "then run the same command again"),
    errno.EEXIST: N_("something is already at that path: move it away or choose another "
                     "path"),
    errno.EMFILE: N_("too many open files: close other programs (or raise 'ulimit -n'), then "
                     "run the same command again"),
    errno.ENFILE: N_("too many open files on this system: close other programs, then run "
                     "the same command again"),
    errno.EBUSY: _IN_USE,
    errno.ETXTBSY: _IN_USE,
    errno.EIO: N_("the drive reported an input/output error: check the disk, then run "
                  "again"),
}
_EDQUOT = getattr(errno, "EDQUOT", None)
if _EDQUOT is not None:
    _OS_HINTS[_EDQUOT] = N_("you are over your disk quota there: free some space (or choose "
                            "another drive), then run the same command again")
_NET_HINT = N_("check the network connection, or use a mirror (sdboot mirror test shows "
               "which answer), then run the same command again")
_NET_MODULES = ("socket", "ssl", "requests", "urllib3", "http")
_MAX_SHOWN = 1000  # characters of a path shown in a message (the middle of longer ones is cut)


def _shown(path: object) -> str:
    text = path.decode(errors="replace") if isinstance(path, bytes) else str(path)
    if len(text) > _MAX_SHOWN:
        half = _MAX_SHOWN // 2
        text = f"{text[:half]}...{text[-half:]} ({len(text)} characters)"
    return text


def describe_os_error(exc: OSError) -> tuple[Text, Text, int]:
    """(message, hint, exit code) for an OSError that escaped a command: the path and the
    OS reason in plain words, and what to do. Exit 1: the operation failed."""
    import os

    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else "") or \
        type(exc).__name__
    if exc.filename is None:
        if isinstance(exc, (ConnectionError, TimeoutError)) or \
                type(exc).__module__.split(".")[0] in _NET_MODULES:
            detail = str(exc) or reason
            return t("network error: {detail}", detail=detail), t(_NET_HINT), 1
        return t("the operating system refused: {reason}", reason=reason), \
            t(_OS_HINTS.get(exc.errno or 0, N_("run again with -v to see where it happened"))), 1
    where = _shown(exc.filename)
    if exc.filename2 is not None:
        where = f"{where} -> {_shown(exc.filename2)}"
    hint = _OS_HINTS.get(exc.errno or 0, N_("check that path, then run the same command again"))
    return t("{path}: {reason}", path=where, reason=f"{reason[:1].lower()}{reason[1:]}"), \
        t(hint), 1
