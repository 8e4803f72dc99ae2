"""Lines that read in a terminal and copy from a pipe.

On a terminal a long line is broken between words (never inside one) at the console's
width, its continuation lines indented under its text; a word longer than the whole line (a
URL, a path) stays whole on a line of its own, for the terminal to fold and the reader to
copy. A command is broken between its arguments only, each broken line ending in ` \\` so
that the lines paste into a POSIX shell as one command. Into a pipe or a file every line
stays whole however long (rich's soft wrap).

`busy` is the spinner of a command that may take a while (doctor, mirror test): on a
terminal only, after a short grace so that a quick run shows none, gone before the result is
printed; never into a pipe, never with --json."""

from __future__ import annotations

import re
import sys
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from rich.console import Console
    from rich.live import Live
    from rich.spinner import Spinner

# East Asian wide characters: a line may break before or after any of them (Chinese text
# has no spaces), except inside punctuation: an opening mark stays with what follows it, a
# closing one with what it closes
_WIDE = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
_OPENING = "（「『《【“‘"
_CLOSING = "，。：；、！？）」』》】”’"
_UNIT = re.compile(rf"[{_OPENING}]*(?:[^\s{_WIDE}]+|\S)[{_CLOSING}]*\s*")
GRACE_S = 0.3  # a command that finishes sooner shows no spinner


def breaks(plain: str, width: int, hang: int) -> list[int]:
    """The offsets where `plain` (one logical line) is broken to fit `width` cells; lines
    after the first lose `hang` cells to their indent."""
    out: list[int] = []
    used, room = 0, width
    for unit in _UNIT.finditer(plain):
        word = unit.group().rstrip()
        if used and used + cell_len(word) > room:
            out.append(unit.start())
            used, room = 0, max(1, width - hang)
        used += cell_len(unit.group())
    return out


def _print_lines(con: Console, pieces: Sequence[Text], indent: int, hang: int) -> None:
    for i, piece in enumerate(pieces):
        piece.rstrip()
        con.print(Text(" " * (indent if i == 0 else hang)) + piece, soft_wrap=True,
                  highlight=False)


def say(con: Console, text: Text | str, indent: int = 0, hang: int | None = None) -> None:
    """One logical line, `indent` spaces in; on a terminal broken between words, the
    continuation lines `hang` spaces in (default: indent + 2). A str is rich markup."""
    line = Text.from_markup(text) if isinstance(text, str) else text
    hang = indent + 2 if hang is None else hang
    if con.soft_wrap or not con.is_terminal:
        con.print(Text(" " * indent) + line, soft_wrap=True, highlight=False)
        return
    width = con.width - indent
    _print_lines(con, list(line.divide(breaks(line.plain, width, hang - indent))), indent,
                 hang)


def say_command(con: Console, lead: Text, args: Sequence[str], indent: int = 0,
                hang: int | None = None) -> None:
    """`lead` then a command given as its shell-quoted arguments (already masked); on a
    terminal broken only between arguments, each broken line ending in ` \\`."""
    hang = indent + 4 if hang is None else hang
    if con.soft_wrap or not con.is_terminal:
        con.print(Text(" " * indent) + lead + Text(" ".join(args)), soft_wrap=True,
                  highlight=False)
        return
    cont = "" if sys.platform == "win32" else " \\"
    lines: list[Text] = []
    current, room, has_arg = lead.copy(), con.width - indent, False
    prompt = cell_len(lead.plain) <= 2  # "$ " stays with the command's first word
    for arg in args:
        sep = " " if has_arg else ""
        if (has_arg or (current.plain and not prompt)) and \
                cell_len(current.plain + sep + arg + cont) > room:
            lines.append(current + cont if has_arg else current)
            current, room, sep = Text(), con.width - hang, ""
        current.append(sep + arg)
        has_arg = True
    lines.append(current)
    _print_lines(con, lines, indent, hang)


class _Spinner:
    """The spinner behind busy(): a transient Live, started by a timer after the grace.
    No stdout redirection (the masking stream writes to sys.stdout; a redirected sys.stdout
    would send each write back into the Live: a deadlock, see progress.LiveUI)."""

    def __init__(self, con: Console, text: str) -> None:
        self.con, self.text = con, text
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.live: Live | None = None
        from rich.spinner import Spinner  # only when one turns: not on every command's start

        self.spinner = Spinner("dots")
        self.stopped = False
        self.timer = threading.Timer(GRACE_S, self.start)
        self.timer.daemon = True

    def __rich__(self) -> Spinner:
        elapsed = time.monotonic() - self.started
        self.spinner.update(text=Text.assemble(self.text, (f"  {elapsed:.0f} s", "dim"),
                                               no_wrap=True, overflow="ellipsis"))
        return self.spinner

    def start(self) -> None:
        from rich.live import Live

        with self.lock:
            if self.stopped:
                return
            self.live = Live(self, console=self.con, refresh_per_second=10, transient=True,
                             redirect_stdout=False, redirect_stderr=False)
            self.live.start()

    def stop(self) -> None:
        self.timer.cancel()
        with self.lock:
            self.stopped = True
            if self.live is not None:
                self.live.stop()


@contextmanager
def busy(con: Console | None, text: str) -> Iterator[None]:
    """A spinner with `text` and the elapsed seconds while the block runs, on a terminal
    only; `con` None (e.g. --json) shows nothing."""
    if con is None or not con.is_terminal or con.is_dumb_terminal:
        yield
        return
    spinner = _Spinner(con, text)
    spinner.timer.start()
    try:
        yield
    finally:
        spinner.stop()
