"""Output helpers shared by the commands: the two-line error, JSON on stdout, and the rich
console (stderr when --json is given, so stdout carries only the document). All three pass
what they show through sdboot.io.mask: a credential in a mirror URL, a flag or the environment
never reaches the screen (the commands themselves still use the real values)."""

from __future__ import annotations

import json
import sys
from typing import IO, TYPE_CHECKING, Any

from sdboot.i18n import local
from sdboot.io.mask import mask, mask_obj

if TYPE_CHECKING:
    from rich.console import Console


def _one_line(text: str) -> str:
    """The contract's error is two lines: tool output quoted in a message is folded."""
    return " | ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def print_error(message: str, hint: str = "") -> None:
    """The contract's two lines. The `error:` / `hint:` prefixes stay ASCII in every
    language; the text after them is what a human reads (local(): a t() text translated)."""
    sys.stderr.write(f"error: {mask(_one_line(local(message)))}\n")
    if hint:
        sys.stderr.write(f"hint: {mask(_one_line(local(hint)))}\n")
    sys.stderr.flush()


class MaskedStream:
    """A text stream that masks every write: the console's last funnel, so that whatever a
    renderer, the progress display or a note prints is masked once, here. The stream is
    looked up at each write (sys.stdout may be replaced, e.g. by pytest)."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr

    @property
    def _target(self) -> IO[str]:
        return sys.stderr if self._stderr else sys.stdout

    def write(self, text: str) -> int:
        self._target.write(mask(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._target, "encoding", None) or "utf-8"


def console(json_mode: bool = False) -> Console:
    from rich.console import Console

    # rich honours NO_COLOR and drops colour and live displays when not on a terminal.
    # Into a pipe or a file nothing is wrapped (URLs and commands stay whole and copyable);
    # on a terminal rich wraps at its width.
    stream = MaskedStream(stderr=json_mode)
    return Console(file=stream, highlight=False,  # type: ignore[arg-type]
                   soft_wrap=not stream.isatty())


def emit_json(doc: dict[str, Any]) -> None:
    """JSON stays English: a t() text is a str whose value is the English (mask_obj and
    json write that value, never .localized)."""
    sys.stdout.write(json.dumps(mask_obj(doc), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
