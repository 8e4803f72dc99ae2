"""The one error type users can cause; the CLI renders it as `error:` / `hint:`."""

from __future__ import annotations


class SdbootError(Exception):
    """A problem the user can act on. exit_code follows the contract (2 = bad input)."""

    def __init__(self, message: str, hint: str = "", exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
