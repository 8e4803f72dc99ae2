"""Wheel build hook: compile the .po message catalogs to .mo (GNU gettext format) with
sdboot's own compiler (sdboot/i18n.py, standard library only), so that the wheel carries
the compiled catalogs and no .po files. The sdist keeps the .po files; a checkout compiles
them in memory (sdboot.i18n._catalog)."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOT = Path(__file__).resolve().parent


def _i18n() -> Any:
    spec = importlib.util.spec_from_file_location("_sdboot_i18n", ROOT / "sdboot" / "i18n.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        compile_po = _i18n().compile_po
        self._out = tempfile.TemporaryDirectory(prefix="sdboot-mo-")
        out = Path(self._out.name)
        for po in sorted((ROOT / "sdboot" / "locale").glob("*/LC_MESSAGES/*.po")):
            rel = po.relative_to(ROOT).with_suffix(".mo")
            mo = out / rel
            mo.parent.mkdir(parents=True, exist_ok=True)
            mo.write_bytes(compile_po(po.read_text(encoding="utf-8")))
            build_data["force_include"][str(mo)] = rel.as_posix()

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        out = getattr(self, "_out", None)
        if out is not None:
            out.cleanup()
