"""Mark the install complete in the install record, with the versions it ended with."""

from __future__ import annotations

from sdboot.install.steps.base import Step


class RecordStep(Step):
    name = "record"
    title = "record the install"

    def check(self) -> bool:
        return bool(self.ctx.record.get("complete"))

    def describe(self) -> list[str]:
        return [f"write {self.ctx.root / '.sdboot/install.json'}"]

    def do(self) -> str:
        assert self.ctx.profile is not None
        self.ctx.record["complete"] = True
        self.ctx.record["versions"] = self.ctx.installed()
        return str(self.ctx.root / ".sdboot" / "install.json")
