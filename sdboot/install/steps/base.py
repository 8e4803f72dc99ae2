"""The shape of an install step: `check` (already done?), `describe` (the commands it would
run, for --dry-run) and `do` (run it, return a one-line note); steps share an InstallContext."""

from __future__ import annotations

from typing import ClassVar

from sdboot.i18n import t
from sdboot.install.context import InstallContext


class Step:
    """One step of the plan; `update`, `rollback` and `doctor --fix` can run the same ones."""

    name: ClassVar[str]
    title: str = ""  # N_() text: English in the report's JSON, translated for people

    def __init__(self, ctx: InstallContext) -> None:
        self.ctx = ctx
        self.title = self.make_title()  # fixed when the plan is made, like the plan itself

    def make_title(self) -> str:
        return t(type(self).title)

    def check(self) -> bool:
        raise NotImplementedError

    def describe(self) -> list[str]:
        raise NotImplementedError

    def do(self) -> str:
        raise NotImplementedError
