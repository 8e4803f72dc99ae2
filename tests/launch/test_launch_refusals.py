"""The launch guard refuses what stops the real WebUI at start, and its hint fits the refusal.
A folder of repositories/ that git refuses (another owner: the real v1.10.1 stops with
"Couldn't fetch BLIP.") is refused like an incomplete one; the WebUI folder itself owned by
another user only costs its version and updates, so it is a warning and the WebUI starts.
--allow-cpu is offered only where it would start the WebUI (the GPU refusals). Real parts:
git checkouts chowned to another uid, the cu121 stub stack in a real venv, the fake NVML."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.doctor.test_diagnose_checkout import gitenv, make_webui
from tests.doctor.test_doctor import make_env
from tests.world.githost import git
from tests.world.gpu import RTX_3060, Scenario

__all__ = ["gitenv"]  # the fixture, used by name
pytestmark = pytest.mark.slow
GOOD = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
needs_root = pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0,
                                reason="needs root to chown")


def _chown(path: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames, "."]:
            os.lchown(os.path.join(dirpath, name), uid, uid)


@pytest.fixture()
def webui(world, tmp_path: Path, gitenv: dict[str, str]) -> Path:
    root = make_webui(tmp_path)
    make_env(world, root / "venv", "cu121")
    return root


def _launch(world, gpu_libs, gitenv, root: Path, *args: str, scenario=GOOD):
    env = {k: v for k, v in gitenv.items() if k != "SDBOOT_CONFIG_DIR"}
    env.update(gpu_libs.env(scenario) if scenario else {})
    return run_cli("launch", str(root), "--dry-run", *args, env=world.env(env))


@needs_root
def test_refuses_a_repository_git_refuses(world, gpu_libs, gitenv, webui: Path) -> None:
    res = _launch(world, gpu_libs, gitenv, webui)  # the healthy twin
    assert res.returncode == 0, res.stdout + res.stderr
    assert "git-unsafe-directory" not in res.stdout
    sd = webui / "repositories/sd"
    _chown(sd, 12345)
    res = _launch(world, gpu_libs, gitenv, webui, "--allow-cpu")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "git-unsafe-directory" in res.stdout and "repositories/sd" in res.stdout
    assert "its start stops at this repository" in res.stdout
    fix = res.stdout.split("    fix: ", 1)[1].splitlines()
    assert not fix[0].startswith("git ")  # what the fix does, then its one command
    assert fix[1].startswith("      $ ") and "safe.directory" in fix[1], res.stdout
    assert "launch.py" not in res.stdout.splitlines()[-1]
    assert res.stderr.startswith("error: the WebUI would stop at a folder of repositories/")
    assert "sdboot doctor --fix" in res.stderr and "--allow-cpu" not in res.stderr
    # the doctor's fix (safe.directory in the test's git config) lets it start again
    git("config", "--global", "--add", "safe.directory", sd.as_posix(),
        env={"GIT_CONFIG_GLOBAL": gitenv["GIT_CONFIG_GLOBAL"]})
    res = _launch(world, gpu_libs, gitenv, webui)
    assert res.returncode == 0, res.stdout + res.stderr


@needs_root
def test_the_webui_folder_of_another_user_only_warns(world, gpu_libs, gitenv,
                                                    webui: Path) -> None:
    git("init", "-q", str(webui))
    os.chown(webui, 12345, 12345)
    _chown(webui / ".git", 12345)
    res = _launch(world, gpu_libs, gitenv, webui)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "warning: git-unsafe-directory: git refuses the WebUI folder" in res.stdout
    assert "launch.py" in res.stdout.splitlines()[-1]


def test_hint_fits_the_refusal(world, gpu_libs, gitenv, webui: Path) -> None:
    # a GPU refusal (no NVIDIA GPU, CUDA build, no cpu profile): --allow-cpu helps
    res = _launch(world, gpu_libs, gitenv, webui, scenario=None)
    assert res.returncode == 1 and "gpu-not-visible" in res.stdout
    assert "would not run on this GPU" in res.stderr and "--allow-cpu" in res.stderr
    # an environment refusal: --allow-cpu cannot help, so it is not offered
    shutil.rmtree(webui / "venv")
    make_env(world, webui / "venv", None)  # no torch
    for args in ((), ("--allow-cpu",)):
        res = _launch(world, gpu_libs, gitenv, webui, *args)
        assert res.returncode == 1 and "torch-missing" in res.stdout, res.stdout
        assert res.stderr.startswith("error: the WebUI would not start with this environment")
        assert "sdboot doctor --fix" in res.stderr and "--allow-cpu" not in res.stderr
