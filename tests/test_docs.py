"""The docs: every English doc has its zh-CN twin (README included), and every relative link
in them points at a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _docs() -> list[Path]:
    return sorted([*ROOT.glob("README*.md"), *(ROOT / "docs").glob("*.md")])


def test_every_doc_has_its_chinese_twin() -> None:
    english = [p for p in _docs() if not p.name.endswith(".zh-CN.md")]
    assert len(english) >= 9
    missing = [p.name for p in english if not p.with_name(p.stem + ".zh-CN.md").is_file()]
    assert not missing
    orphans = [p.name for p in _docs() if p.name.endswith(".zh-CN.md")
               and not p.with_name(p.name.replace(".zh-CN.md", ".md")).is_file()]
    assert not orphans


def test_relative_links_resolve() -> None:
    broken = []
    for doc in _docs():
        text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            if path and not (doc.parent / path).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not broken, broken
