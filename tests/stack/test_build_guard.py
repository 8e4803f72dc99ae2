"""The build guard: setuptools<82 reaches every build environment (unit part)."""

from __future__ import annotations

from pathlib import Path

from sdboot.install.catalog import KnownWebui, _parse, webui_build_caps
from sdboot.install.plan import INSTALL_BLOCK, install_block
from sdboot.stack.packages import (
    Installer,
    build_caps,
    constraint_env,
    plan_stack_install,
    render_build_constraints,
    render_constraints,
    write_constraints,
)
from sdboot.stack.profiles import load_profiles


def test_runtime_and_build_files_carry_the_cap(tmp_path: Path) -> None:
    profile = load_profiles()["cpu"]
    c, b = tmp_path / "c.txt", tmp_path / "b.txt"
    write_constraints(profile, c, ["setuptools<82", "wheel<1"], b)
    assert "setuptools<82" in c.read_text().splitlines()
    assert [ln for ln in b.read_text().splitlines() if not ln.startswith("#")] == \
        ["setuptools<82", "wheel<1"]
    assert "setuptools<82" in render_constraints(profile).splitlines()
    assert "torch==" not in render_build_constraints(build_caps())


def test_catalog_default_override_and_unknown(tmp_path: Path) -> None:
    doc = {"webuis": {"x": {"repo": "https://example.invalid/x.git",
                            "build_constraints": ["setuptools<81"],
                            "build_constraints_by_ref": {"v1": ["setuptools<70"]}}}}
    found: dict[str, KnownWebui] = {}
    _parse(doc, tmp_path / "w.yaml", found)
    assert webui_build_caps(found, "https://example.invalid/x.git", "v2") == ("setuptools<81",)
    assert webui_build_caps(found, "https://example.invalid/x.git", "v1") == ("setuptools<70",)
    assert webui_build_caps(found, "https://example.invalid/other.git", None) == \
        ("setuptools<82",)


def test_env_args_and_block(tmp_path: Path) -> None:
    b, c = tmp_path / "b.txt", tmp_path / "c.txt"
    env = constraint_env(c, b)
    assert env["PIP_BUILD_CONSTRAINT"] == env["UV_BUILD_CONSTRAINT"] == str(b)
    profile = load_profiles()["cpu"]
    uv = plan_stack_install(profile, Path("/py"), Installer("uv", "/bin/uv"), c, None, b)
    assert all(["--build-constraint", str(b)] == cmd[cmd.index("--build-constraint"):][:2]
               for cmd in uv)
    pip = plan_stack_install(profile, Path("/py"), Installer("pip", None), c, None, b)
    assert not any("--build-constraint" in cmd for cmd in pip)
    block = install_block("/py", "venv", [], c, b)
    assert block.vars["PIP_BUILD_CONSTRAINT"] == str(b)
    assert INSTALL_BLOCK.names.match("UV_BUILD_CONSTRAINT")
