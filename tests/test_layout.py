"""The layout rules (docs/architecture.md): imports only run downward between the wings, and
no module or class grows past the size a reader can hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sdboot"

# Lowest first: a wing may import its own modules and any wing of a lower rank.
RANK = {
    "values": 0, "errors": 0, "i18n": 0,
    "io": 1,
    "machine": 2, "webui": 2,
    "stack": 3, "mirrors": 3,
    "install": 4, "addons": 4,
    "launch": 5, "doctor": 5,
    "cli": 6, "__main__": 7, "__init__": 0,
}
# Same-rank pairs that may import one way (never back): the profiles check their URLs with the
# mirrors' URL rules, the launch guard runs the doctor's checkout checks, and the errors and
# values speak through the message catalog (i18n imports nothing of sdboot).
ALLOWED_SIDEWAYS = {("stack", "mirrors"), ("launch", "doctor"), ("errors", "i18n"),
                    ("values", "i18n")}
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 200


def wing_of(module: str) -> str:
    """sdboot.mirrors.table -> mirrors; sdboot.values -> values; sdboot -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def sdboot_imports(tree: ast.AST, here: str) -> list[tuple[int, str]]:
    """Every sdboot module a file imports, at the top or inside a function."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "sdboot"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this package
                base = here.split(".")[:-node.level] if node.level else []
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != "sdboot":
                continue
            if target == "sdboot":  # from sdboot import io, stack -> those wings
                found += [(node.lineno, f"sdboot.{a.name}" if _is_module(a.name) else "sdboot")
                          for a in node.names]
            else:
                found.append((node.lineno, target))
    return found


def _is_module(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def upward_imports(path: Path, source: str) -> list[str]:
    here = module_name(path)
    mine = wing_of(here)
    bad = []
    for line, target in sdboot_imports(ast.parse(source), here):
        theirs = wing_of(target)
        if theirs == mine or (theirs == "__init__" and target == "sdboot"):
            continue
        if theirs not in RANK:
            bad.append(f"{path.name}:{line} imports {target}: a wing not in the layout")
        elif RANK[theirs] > RANK[mine] or (RANK[theirs] == RANK[mine]
                                           and (mine, theirs) not in ALLOWED_SIDEWAYS):
            bad.append(f"{here}:{line} ({mine}) imports {target} ({theirs}): upward")
    return bad


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_known_wing() -> None:
    assert MODULES
    for path in MODULES:
        assert wing_of(module_name(path)) in RANK, path


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_downward(path: Path) -> None:
    assert upward_imports(path, path.read_text(encoding="utf-8")) == []


def test_an_upward_import_is_caught() -> None:
    """The rule can fail: the same check on a made-up upward import, top level and lazy."""
    path = PACKAGE / "io" / "net.py"
    top = "from sdboot.mirrors.table import load_mirrors\n"
    lazy = "def f():\n    import sdboot.cli.render\n"
    sideways = "from sdboot.mirrors import table\n"
    assert len(upward_imports(path, top)) == 1
    assert len(upward_imports(path, lazy)) == 1
    assert len(upward_imports(PACKAGE / "mirrors" / "env.py", "from sdboot.stack import x\n")) == 1
    assert upward_imports(PACKAGE / "stack" / "profiles.py", sideways) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_classes_stay_small(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{path} is over {MAX_MODULE_LINES} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            assert size <= MAX_CLASS_LINES, f"{path}: class {node.name} is {size} lines"
