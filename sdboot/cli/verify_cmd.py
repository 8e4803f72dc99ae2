"""`sdboot verify` (issue 3 fills it in)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
