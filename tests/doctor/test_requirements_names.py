"""requirements-unmet reads what is installed from the names of site-packages' metadata
entries. The real shapes: NAME-VERSION.dist-info (a wheel install), NAME-VERSION-pyX.Y.egg-info
folders (what pip 23.0.1's legacy `setup.py install` left for jsonmerge 1.8.0 in the real
A1111 v1.10.1 environment), egg-info files (distutils), NAME.egg-info with the version only
in PKG-INFO; "-" in names is escaped to "_", so the first "-" ends the name. Each case
also as a doctor run on a real venv: the installed pin must not be reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdboot.doctor import requirements
from sdboot.doctor.requirements import installed_distributions, parse_info_name
from tests.doctor.test_diagnose_checkout import codes_of, facts, gitenv, make_venv, make_webui

__all__ = ["gitenv"]  # the fixture, used by name


@pytest.mark.parametrize(("name", "parsed"), [
    ("jsonmerge-1.8.0-py3.10.egg-info", ("jsonmerge", "1.8.0")),
    ("typing_extensions-4.12.2.dist-info", ("typing_extensions", "4.12.2")),
    ("open_clip_torch-2.20.0.dist-info", ("open_clip_torch", "2.20.0")),
    ("antlr4_python3_runtime-4.9.3-py3.10.egg-info", ("antlr4_python3_runtime", "4.9.3")),
    ("clip-1.0-py3.10.egg-info", ("clip", "1.0")),
    ("filterpy-1.4.5.egg-info", ("filterpy", "1.4.5")),
    ("basicsr.egg-info", ("basicsr", None)),
    ("torch-2.1.2+cu121.dist-info", ("torch", "2.1.2+cu121")),
    ("README.txt", None), ("jsonmerge", None), (".dist-info", None), ("x.dist-info", None),
])
def test_parse_info_names(name, parsed) -> None:
    assert parse_info_name(name) == parsed


def _pkg_info(name: str, version: str) -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: x\n\nbody\n"


def _site(py: Path) -> Path:
    return next(py.parent.parent.glob("lib/python3*/site-packages"))


def test_egg_info_installs_are_installed(tmp_path: Path, gitenv: dict[str, str]) -> None:
    root = make_webui(tmp_path, clones=False)
    py = make_venv(root)
    site = _site(py)
    legacy = site / "jsonmerge-1.8.0-py3.10.egg-info"  # a folder, as setup.py install makes
    legacy.mkdir()
    (legacy / "PKG-INFO").write_text(_pkg_info("jsonmerge", "1.8.0"))
    (legacy / "top_level.txt").write_text("jsonmerge\n")
    (site / "jsonmerge").mkdir()
    (site / "sdb_file-2.0-py3.10.egg-info").write_text(_pkg_info("sdb-file", "2.0"))  # a file
    develop = site / "sdb_dev.egg-info"  # no version in the name: PKG-INFO has it
    develop.mkdir()
    (develop / "PKG-INFO").write_text(_pkg_info("sdb-dev", "0.3"))
    dists, tops = installed_distributions(py)
    assert dists["jsonmerge"] == "1.8.0" and dists["sdb-file"] == "2.0"
    assert dists["sdb-dev"] == "0.3" and "pip" in dists
    assert "jsonmerge" in tops and not any(t.endswith("-info") for t in tops)
    (root / "requirements_versions.txt").write_text(
        "jsonmerge==1.8.0\nsdb-file==2.0\nsdb-dev==0.3\n")
    assert requirements.run(facts(root)).findings == ()
    # the twin: another pinned version is still reported, with the installed one
    (root / "requirements_versions.txt").write_text("jsonmerge==1.9.0\nsdb-dev==0.4\n")
    outcome = requirements.run(facts(root))
    assert codes_of(list(outcome.findings)) == ["requirements-unmet"]
    message = outcome.findings[0].message
    assert "jsonmerge==1.9.0 (jsonmerge 1.8.0)" in message and "sdb-dev 0.3" in message
