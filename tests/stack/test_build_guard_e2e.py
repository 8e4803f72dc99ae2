"""The build guard end to end, on real parts: a source package whose setup.py imports
pkg_resources (the shape of CLIP's) builds under the build constraints sdboot writes, and
fails without them, because the newest setuptools (>= 82) has no pkg_resources.

The packages: the real setuptools >= 82, wheel and packaging of the test environment, repacked into
wheels; the real setuptools 65.5.0 wheel the standard library bundles for ensurepip; the
sdist is our own. Installed offline (--no-index --find-links) by the real uv, and by a current
pip (>= 25.3, the test environment's, repacked), which no longer applies PIP_CONSTRAINT in build
environments: only PIP_BUILD_CONSTRAINT reaches them there (pypa/pip#13534)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

from sdboot.stack.packages import build_caps, constraint_env, render_build_constraints
from tests.world.repack import bundled, repack

pytestmark = pytest.mark.slow


def _sdist(out: Path) -> Path:
    setup = ("import pkg_resources  # CLIP's setup.py does this (openai/CLIP#528)\n"
             "from setuptools import setup\n"
             "setup(name='pkgres-demo', version='1.0', py_modules=['pkgres_demo'])\n")
    path = out / "pkgres-demo-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, text in (("setup.py", setup), ("pkgres_demo.py", "VALUE = 1\n"),
                           ("PKG-INFO", "Metadata-Version: 2.1\nName: pkgres-demo\n"
                                        "Version: 1.0\n")):
            data = text.encode()
            member = tarfile.TarInfo(f"pkgres-demo-1.0/{name}")
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if Version(metadata.version("setuptools")) < Version("82"):
        pytest.skip("the test extra installs setuptools >= 82; this environment has older")
    old = bundled("setuptools")
    if old is None:
        pytest.skip("this Python bundles no setuptools wheel for ensurepip (3.12+)")
    out = tmp_path_factory.mktemp("find-links")
    repack("setuptools", out)
    repack("wheel", out)
    repack("packaging", out)  # wheel needs it
    if Version(metadata.version("pip")) >= Version("25.3"):
        repack("pip", out)
    (out / old.name).write_bytes(old.read_bytes())
    _sdist(out)
    return out


def _install(links: Path, tmp_path: Path,
             env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env.update(UV_CACHE_DIR=str(tmp_path / "uv-cache"), **env_extra)
    return subprocess.run(["uv", "pip", "install", "--python", str(venv / "bin/python"),
                           "--no-index", "--find-links", str(links), "pkgres-demo"],
                          capture_output=True, text=True, env=env, timeout=300)


def _pip_install(links: Path, tmp_path: Path,
                 env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The same install by a current pip inside a fresh venv."""
    wheels = sorted(links.glob("pip-*.whl"))
    if not wheels:
        pytest.skip("the test extra installs pip >= 25.3; this environment has older")
    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    py = str(venv / "bin/python")
    subprocess.run(["uv", "pip", "install", "-q", "--python", py, "--no-index", str(wheels[0])],
                   check=True, env={**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache")})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env.update(PIP_CACHE_DIR=str(tmp_path / "pip-cache"), PIP_CONFIG_FILE=os.devnull,
               PIP_DISABLE_PIP_VERSION_CHECK="1", **env_extra)
    return subprocess.run([py, "-m", "pip", "install", "--no-index", "--find-links", str(links),
                           "pkgres-demo"], capture_output=True, text=True, env=env, timeout=300)


def test_current_pip_fails_without_the_guard_and_with_pip_constraint_only(
        links: Path, tmp_path: Path) -> None:
    res = _pip_install(links, tmp_path / "bare", {})
    assert res.returncode != 0 and "pkg_resources" in res.stdout + res.stderr
    caps = tmp_path / "constraints.txt"
    caps.write_text(render_build_constraints(build_caps()))
    # the old way (PIP_CONSTRAINT alone) no longer reaches the build environment
    old_way = _pip_install(links, tmp_path / "old-way", {"PIP_CONSTRAINT": str(caps)})
    assert old_way.returncode != 0 and "pkg_resources" in old_way.stdout + old_way.stderr


def test_current_pip_builds_under_the_guard(links: Path, tmp_path: Path) -> None:
    build = tmp_path / "build-constraints.txt"
    build.write_text(render_build_constraints(build_caps()))
    res = _pip_install(links, tmp_path, constraint_env(None, build))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Successfully installed pkgres-demo-1.0" in res.stdout


def test_pkg_resources_build_fails_without_the_guard(links: Path, tmp_path: Path) -> None:
    res = _install(links, tmp_path, {})
    assert res.returncode != 0
    assert "pkg_resources" in res.stderr


def test_pkg_resources_build_passes_under_the_guard(links: Path, tmp_path: Path) -> None:
    build = tmp_path / "build-constraints.txt"
    build.write_text(render_build_constraints(build_caps()))  # what an install writes
    res = _install(links, tmp_path, constraint_env(None, build))
    assert res.returncode == 0, res.stderr
    assert "pkgres-demo==1.0" in res.stderr
