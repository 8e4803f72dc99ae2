"""The message ids in sdboot's code and the state of the catalogs, for the tests and for
whoever adds or translates a message.

    python -m tests.i18n_scan                 # counts: marked, translated, missing, stale
    python -m tests.i18n_scan sdboot/cli      # the untranslated ids under a path, as .po text

A message id is the literal first argument of `_()`, `t()`, `N_()` (or the first two of
`ngettext()`) anywhere under sdboot/; implicit concatenation of literals counts as one
literal. A call whose first argument is built inside the call (an f-string, `+`, `%`, a
`.format()`) is listed as `bad`: its id can never match a catalog entry. A variable is fine
(the N_() constants are looked up that way), and so is any argument in the funnel itself."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sdboot.i18n import LOCALE_DIR, parse_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sdboot"
MARKERS = {"_", "t", "N_"}
FUNNEL = "sdboot/i18n.py"


@dataclass
class Scan:
    ids: dict[str, list[str]] = field(default_factory=dict)  # msgid -> ["file:line", ...]
    bad: list[str] = field(default_factory=list)


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _built(node: ast.expr) -> bool:
    if isinstance(node, (ast.JoinedStr, ast.BinOp)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
        and node.func.attr == "format"


def scan(paths: list[Path] | None = None) -> Scan:
    result = Scan()
    files = sorted(PACKAGE.rglob("*.py")) if not paths else sorted(
        f for p in paths for f in ([p] if p.is_file() else p.rglob("*.py")))
    for path in files:
        rel = path.resolve().relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            name = node.func.id
            if name not in MARKERS and name != "ngettext":
                continue
            if not node.args:
                continue
            args = node.args[:2] if name == "ngettext" else node.args[:1]
            for arg in args:
                text = _literal(arg)
                where = f"{rel}:{node.lineno}"
                if text is None:
                    if rel != FUNNEL and _built(arg):
                        result.bad.append(where)
                elif text:
                    result.ids.setdefault(text, []).append(where)
    return result


def catalog(lang: str = "zh_CN") -> dict[str, tuple[str, str]]:
    """msgid -> (msgstr, the .po file's name), over every .po file of the language."""
    out: dict[str, tuple[str, str]] = {}
    for po in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        for msgid, msgstr in parse_po(po.read_text(encoding="utf-8")).items():
            if msgid:
                out.setdefault(msgid, (msgstr, po.name))
    return out


def duplicates(lang: str = "zh_CN") -> list[tuple[str, str, str]]:
    """msgids defined in more than one .po file (msgid, first file, second file)."""
    seen: dict[str, str] = {}
    dups = []
    for po in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        for msgid in parse_po(po.read_text(encoding="utf-8")):
            if not msgid:
                continue
            if msgid in seen:
                dups.append((msgid, seen[msgid], po.name))
            else:
                seen[msgid] = po.name
    return dups


def _po_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv]
    found = scan(paths or None)
    cat = catalog()
    missing = {k: v for k, v in found.ids.items() if k not in cat}
    if paths:
        for msgid, where in sorted(missing.items(), key=lambda kv: kv[1][0]):
            print(f"#: {' '.join(where)}\nmsgid {_po_quote(msgid)}\nmsgstr \"\"\n")
        for where in found.bad:
            print(f"# built inside the call (never matches a catalog entry): {where}")
        return 0
    stale = sorted(set(cat) - set(found.ids))
    print(f"marked: {len(found.ids)}  translated: {len(found.ids) - len(missing)}  "
          f"missing: {len(missing)}  stale: {len(stale)}  bad: {len(found.bad)}  "
          f"duplicated: {len(duplicates())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
