"""Step progress for long commands (install, doctor --fix): on a terminal a live display
with one line per step (spinner, elapsed time, the latest output line, a bar when the
output carries a percentage, e.g. git's "Receiving objects: 45%"); elsewhere (a pipe, CI,
NO_COLOR consoles that are not terminals) plain lines, one per event. Titles, notes and
details may be t() texts (the install report keeps their English): shown translated."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from sdboot.i18n import N_, _, local

_PERCENT = re.compile(r"(\d{1,3})%")
# the status words as shown (the StepResult JSON keeps the English keyword)
STATUS_WORDS = {"done": N_("done"), "skipped": N_("skipped"), "planned": N_("planned"),
                "failed": N_("failed")}
MARKS = {"done": "[green]✓[/green]", "skipped": "[dim]·[/dim]", "planned": "[cyan]→[/cyan]",
         "failed": "[red]✗[/red]"}


@dataclass
class _Line:
    title: str
    status: str = "running"
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0
    detail: str = ""
    fraction: float | None = None
    note: str = ""


class PlainUI:
    """One line per event; for pipes and logs."""

    def __init__(self, console: Console) -> None:
        self.con = console
        self.index = 0
        self.total = 0

    def note(self, text: str, style: str = "") -> None:
        self.con.print(local(text), style=style or None, markup=False, highlight=False)

    def begin(self, index: int, total: int, title: str) -> None:
        self.index, self.total = index, total
        self.con.print(f"[{index}/{total}] {local(title)} ...", markup=False, highlight=False)

    def detail(self, text: str) -> None:
        pass  # the full output is in the log file

    def end(self, status: str, elapsed_s: float, note: str = "") -> None:
        tail = f" ({elapsed_s:.1f} s)" if status == "done" else ""
        extra = f": {local(note)}" if note else ""
        shown = _(STATUS_WORDS[status]) if status in STATUS_WORDS else status
        self.con.print(f"[{self.index}/{self.total}] {shown}{tail}{extra}", markup=False,
                       highlight=False)

    def close(self) -> None:
        pass


class LiveUI:
    """The live display: finished steps stay as lines, the running one animates."""

    def __init__(self, console: Console) -> None:
        self.con = console
        self.lines: list[_Line] = []
        self.total = 0
        self.spinner = Spinner("dots")
        # no stdout redirection: the console writes through MaskedStream to sys.stdout, and
        # a redirected sys.stdout would send every write back into the Live (a deadlock)
        self.live = Live(self, console=console, refresh_per_second=8, transient=False,
                         redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def __rich__(self) -> RenderableType:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=2)
        grid.add_column(overflow="fold")  # never cut a word short (…)
        grid.add_column(justify="right", width=8)
        rows: list[RenderableType] = [grid]
        for i, line in enumerate(self.lines, start=1):
            running = line.status == "running"
            elapsed = time.monotonic() - line.started if running else line.elapsed
            mark: Any = self.spinner if running else Text.from_markup(MARKS.get(line.status,
                                                                                "?"))
            title = Text(f"[{i}/{self.total}] {line.title}")
            if line.note and not running:
                title.append(f"  {line.note}", style="dim")
            grid.add_row(mark, title, f"{elapsed:5.1f} s" if line.status != "skipped" else "")
        current = self.lines[-1] if self.lines else None
        if current is not None and current.status == "running":
            if current.fraction is not None:
                rows.append(ProgressBar(total=1.0, completed=current.fraction, width=40))
            if current.detail:
                rows.append(Text("   " + current.detail[: max(20, self.con.width - 6)],
                                 style="dim", no_wrap=True))
        return Group(*rows)

    def note(self, text: str, style: str = "") -> None:
        self.live.console.print(local(text), style=style or None, markup=False,
                                highlight=False)

    def begin(self, index: int, total: int, title: str) -> None:
        self.total = total
        self.lines.append(_Line(local(title)))

    def detail(self, text: str) -> None:
        if not self.lines:
            return
        line = self.lines[-1]
        line.detail = text.strip()
        match = _PERCENT.search(text)
        line.fraction = min(int(match.group(1)), 100) / 100 if match else line.fraction

    def end(self, status: str, elapsed_s: float, note: str = "") -> None:
        if self.lines:
            line = self.lines[-1]
            line.status, line.elapsed, line.note = status, elapsed_s, local(note)
            line.detail, line.fraction = "", None

    def close(self) -> None:
        self.live.stop()


def make_ui(console: Console) -> PlainUI | LiveUI:
    return LiveUI(console) if console.is_terminal and not console.is_dumb_terminal \
        else PlainUI(console)


def hint_with_log(exc: BaseException, log: Path) -> None:
    """A failed install's or update's hint names its full log (once)."""
    from sdboot.errors import SdbootError
    from sdboot.i18n import t

    if isinstance(exc, SdbootError) and log.exists() and str(log) not in exc.hint:
        exc.hint = t("{hint} (full log: {log})", hint=exc.hint, log=log)
