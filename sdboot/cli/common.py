"""Output helpers shared by the commands: the two-line error, JSON on stdout, and the rich
console (stderr when --json is given, so stdout carries only the document)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def _one_line(text: str) -> str:
    """The contract's error is two lines: tool output quoted in a message is folded."""
    return " | ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def print_error(message: str, hint: str = "") -> None:
    sys.stderr.write(f"error: {_one_line(message)}\n")
    if hint:
        sys.stderr.write(f"hint: {_one_line(hint)}\n")
    sys.stderr.flush()


def console(json_mode: bool = False) -> Console:
    from rich.console import Console

    # rich honours NO_COLOR and drops colour and live displays when not on a terminal.
    return Console(stderr=json_mode, highlight=False, soft_wrap=False)


def emit_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
