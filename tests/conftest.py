"""Shared fixtures: the compiled fake GPU libraries and a helper that runs the real
`sdboot` CLI in a subprocess with a scenario's environment."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.world.gpu import GpuLibs, build_gpu_libs

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """A base temp folder of this run's own (unless --basetemp is given): pytest's shared
    numbered folders (pytest-of-USER/pytest-N) are rotated by every run, so two runs at once
    (xdist included) removed each other's folders. Removed again when the run ends."""
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        import tempfile

        config.option.basetemp = tempfile.mkdtemp(prefix="sdboot-tests-")
        config._sdboot_basetemp = config.option.basetemp  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    made = getattr(config, "_sdboot_basetemp", None)
    if made:
        import shutil

        shutil.rmtree(made, ignore_errors=True)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def clean_env(extra: Mapping[str, str] | None = None, **kw: str) -> dict[str, str]:
    """The test process's environment without anything GPU-related that could leak in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FAKE_", "SDBOOT_")) and k != "LD_LIBRARY_PATH"}
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    env["SDBOOT_WSL_LIB_DIR"] = "/nonexistent-wsl"
    env["SDBOOT_SYSFS_ROOT"] = "/nonexistent-sys"
    env["SDBOOT_LANG"] = "en"  # the tests read English whatever the machine's locale
    env.update(extra or {})
    env.update(kw)
    return env


def run_cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 60) -> CliResult:
    proc = subprocess.run([sys.executable, "-m", "sdboot", *args], capture_output=True,
                          text=True, env=clean_env(env), cwd=cwd or ROOT, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def gpu_libs(tmp_path_factory: pytest.TempPathFactory) -> GpuLibs:
    return build_gpu_libs(tmp_path_factory.mktemp("gpu-libs"))


@pytest.fixture()
def config_dir(tmp_path: Path) -> Path:
    d = tmp_path / "sdboot-config"
    d.mkdir()
    return d


# -- the package world (issue 3) -------------------------------------------------------------

from tests.world.index import LocalIndex, build_world_index, overlay_profiles  # noqa: E402


@dataclass
class PackageWorld:
    index: LocalIndex
    config_dir: Path
    uv_cache: Path

    @contextlib.contextmanager
    def active(self):
        """This process's environment replaced by env() for in-process installer calls."""
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env())
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Installer settings that reach only the local world: no user pip config, the
        local index as the default index, a private uv cache, the overlay profiles."""
        env = {k: v for k, v in clean_env().items() if not k.startswith(("PIP_", "UV_"))}
        env.update({
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_INDEX_URL": self.index.index_url("simple"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "UV_INDEX_URL": self.index.index_url("simple"),
            "UV_CACHE_DIR": str(self.uv_cache),
            "UV_NO_CONFIG": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            "SDBOOT_CONFIG_DIR": str(self.config_dir),
        })
        env.update(extra or {})
        return env


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> PackageWorld:
    root = tmp_path_factory.mktemp("world")
    index = build_world_index(root / "index")
    index.start()
    config = root / "config"
    overlay_profiles(config, index, ROOT / "profiles")
    yield PackageWorld(index, config, root / "uv-cache")
    index.stop()


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process commands speak English whatever the machine's locale (tests/test_i18n.py
    asks for Chinese on purpose)."""
    monkeypatch.setenv("SDBOOT_LANG", "en")


@pytest.fixture(autouse=True)
def _no_interrupt_note_between_tests() -> Iterator[None]:
    """A test that runs a command in-process (fetch, install steps) registers what a Ctrl-C
    would keep; the next test in the same worker must not inherit it."""
    from sdboot.errors import forget_interrupt_note

    forget_interrupt_note()
    yield
    forget_interrupt_note()
