"""The torch stack installer, the constraints file and the probe, with real pip and uv
installing stub wheels from the loopback index into real venvs."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdboot.io.runner import Runner
from sdboot.stack.packages import (
    Installer,
    choose_installer,
    constraint_env,
    install_stack,
    pin_matches,
    plan_stack_install,
    render_constraints,
)
from sdboot.stack.profiles import load_profiles
from sdboot.stack.verdict import run_probe, stack_install_fix
from tests.conftest import run_cli
from tests.world.gpu import RTX_3060, Scenario
from tests.world.index import LocalIndex
from tests.world.wheels import STACKS, build_numpy, build_stack, build_wheel

pytestmark = pytest.mark.slow


def make_venv(path: Path, with_pip: bool = True) -> Path:
    args = [sys.executable, "-m", "venv", str(path)]
    if not with_pip:
        args.insert(3, "--without-pip")
    subprocess.run(args, check=True)
    return path / "bin" / "python"


def profiles_in(world) -> dict:
    with world.active():
        return load_profiles()


def installed(python: Path, env: dict) -> dict[str, str]:
    out = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                          "print({d.metadata['Name']: d.version for d in m.distributions()})"],
                         capture_output=True, text=True, env=env, check=True).stdout
    return eval(out)  # a dict literal printed by the child


@pytest.mark.parametrize("kind", ["pip", "uv"])
def test_install_exact_stack_and_constraints_hold(world, gpu_libs, tmp_path, kind):
    env = world.env()
    profile = profiles_in(world)["torch2.1.2-cu121"]
    python = make_venv(tmp_path / "venv")
    installer = choose_installer(kind)
    constraints = tmp_path / "webui" / ".sdboot" / "constraints.txt"
    runner = Runner(log_path=tmp_path / "install.log")
    lines: list[str] = []
    with world.active():
        install_stack(profile, python, constraints, runner, installer, on_progress=lines.append)
    have = installed(python, env)
    assert (have["torch"], have["torchvision"], have["xformers"]) == (
        "2.1.2+cu121", "0.16.2+cu121", "0.0.23.post1")
    # the pins, the numpy cap, and the setuptools cap old pips apply to build environments
    assert constraints.read_text().splitlines()[-5:] == [
        "torch==2.1.2+cu121", "torchvision==0.16.2+cu121", "xformers==0.0.23.post1", "numpy<2",
        "setuptools<82"]
    log = (tmp_path / "install.log").read_text()
    assert "torch==2.1.2+cu121" in log and "[exit 0]" in log
    assert lines, "progress lines reach the display"

    # A requirements file (or an extension) that asks for another torch cannot replace it.
    req = tmp_path / "requirements.txt"
    req.write_text("torch==2.0.1\n")
    pinned = dict(env, **constraint_env(constraints))
    cu118 = world.index.index_url("cu118")
    if kind == "pip":
        argv = [str(python), "-m", "pip", "install", "-r", str(req), "--extra-index-url", cu118]
        upgrade = [str(python), "-m", "pip", "install", "-U", "torch", "--extra-index-url", cu118]
    else:
        uv = shutil.which("uv")
        argv = [uv, "pip", "install", "--python", str(python), "-r", str(req),
                "--extra-index-url", cu118]
        upgrade = [uv, "pip", "install", "--python", str(python), "-U", "torch",
                   "--extra-index-url", cu118]
    res = subprocess.run(argv, capture_output=True, text=True, env=pinned)
    assert res.returncode != 0, "the conflicting pin must be refused"
    subprocess.run(upgrade, capture_output=True, text=True, env=pinned)
    assert installed(python, env)["torch"] == "2.1.2+cu121"
    # Without the constraints file the same request does replace torch: the test can fail.
    res = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert installed(python, env)["torch"] == "2.0.1+cu118"

    # The probe in that environment, on a simulated RTX 3060 with driver 531 (CUDA 12.1).
    scenario_env = gpu_libs.env(Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,)))
    res = run_cli("verify", "--python", str(python), "--json", env=dict(env, **scenario_env))
    doc = res.json()
    assert doc["probe"]["torch"]["version"] == "2.0.1+cu118"
    assert {f["code"] for f in doc["findings"]} >= {"xformers-mismatch"}


def test_plan_forms_for_index_modes(world):
    profiles = profiles_in(world)
    pip = Installer("pip", None)
    py = Path("/env/bin/python")
    c = Path("/w/constraints.txt")
    old = plan_stack_install(profiles["torch1.13.1-cu117"], py, pip, c)
    assert old[0][:6] == [str(py), "-m", "pip", "install", "torch==1.13.1+cu117",
                          "torchvision==0.14.1+cu117"]
    assert "--extra-index-url" in old[0] and "--index-url" not in old[0]
    new = plan_stack_install(profiles["torch2.1.2-cu121"], py, pip, c)
    assert new[0][new[0].index("--index-url") + 1].endswith("/whl/cu121")
    assert new[1][4] == "xformers==0.0.23.post1" and "--extra-index-url" in new[1]
    assert all(cmd[cmd.index("-c") + 1] == str(c) for cmd in new)
    uv = plan_stack_install(profiles["cpu"], py, Installer("uv", "/bin/uv"), c)
    assert uv[0][:5] == ["/bin/uv", "pip", "install", "--python", str(py)] and len(uv) == 1


def test_pre_2_0_extra_index_install_with_uv(world, tmp_path):
    # The seed's stack: +cu117 pins that only the extra index carries.
    env = world.env()
    profile = profiles_in(world)["torch1.13.1-cu117"]
    python = make_venv(tmp_path / "venv")
    with world.active():
        install_stack(profile, python, tmp_path / "c.txt", Runner(), choose_installer("uv"))
    have = installed(python, env)
    assert (have["torch"], have["xformers"]) == ("1.13.1+cu117", "0.0.16rc425")


def test_probe_is_one_process_and_works_without_pip(world, tmp_path):
    python = make_venv(tmp_path / "bare", with_pip=False)
    doc = run_probe(python, Runner())
    assert doc["pip"] is False
    assert doc["torch"]["installed"] is False
    assert doc["python"].startswith(f"{sys.version_info[0]}.{sys.version_info[1]}")


# --- the numpy cap: torch < 2.3 was built against NumPy 1.x ---------------------------------


@pytest.fixture(scope="module")
def numpy_world(tmp_path_factory):
    """Indexes like the real ones: torchvision requires numpy without an upper bound, and
    NumPy 2 is the newest numpy on the default index and on the torch index."""
    root = tmp_path_factory.mktemp("numpy-world")
    index = LocalIndex(root / "index")
    for key in ("cu121", "cu121-forge"):
        stack = STACKS[key]
        wheels = build_stack(root / "build" / key, stack)
        index.add(wheels["torch"], "cu121")
        index.add(build_wheel(root / "build" / f"{key}-vision", "torchvision", stack.torchvision,
                              {"torchvision/__init__.py": ""},
                              [f"torch=={stack.torch.split('+')[0]}", "numpy"]), "cu121")
    for version in ("1.26.2", "1.26.4", "2.2.6"):  # the PyTorch index carries numpy too
        wheel = build_numpy(root / "build" / "numpy", version)
        index.add(wheel, "simple")
        index.add(wheel, "cu121")
    index.start()
    yield index
    index.stop()


def _numpy_env(index: LocalIndex, uv_cache: Path) -> dict[str, str]:
    return {"PIP_INDEX_URL": index.index_url("simple"), "UV_INDEX_URL": index.index_url("simple"),
            "PIP_CONFIG_FILE": os.devnull, "UV_NO_CONFIG": "1", "UV_CACHE_DIR": str(uv_cache),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "UV_PYTHON_DOWNLOADS": "never"}


@pytest.mark.parametrize(("name", "numpy", "cap"), [("torch2.1.2-cu121", "1.26.4", True),
                                                     ("torch2.3.1-cu121", "2.2.6", False)])
def test_stack_install_caps_numpy_below_2_for_torch_before_2_3(world, numpy_world, tmp_path,
                                                                name, numpy, cap) -> None:
    profile = dataclasses.replace(profiles_in(world)[name], xformers=None,
                                  index_url=numpy_world.index_url("cu121"))
    python = make_venv(tmp_path / "venv")
    constraints = tmp_path / "webui" / ".sdboot" / "constraints.txt"
    env = _numpy_env(numpy_world, tmp_path / "uv-cache")
    with world.active():
        install_stack(profile, python, constraints, Runner(), choose_installer("uv"), env=env)
    assert installed(python, env)["numpy"] == numpy
    assert ("numpy<2" in constraints.read_text().splitlines()) is cap
    if cap:  # the WebUI's own numpy==1.26.2 pin stays installable under PIP_CONSTRAINT
        res = subprocess.run([str(python), "-m", "pip", "install", "numpy==1.26.2"],
                             capture_output=True, text=True, env=dict(
                                 os.environ, **env, **constraint_env(constraints)))
        assert res.returncode == 0, res.stdout + res.stderr
        assert installed(python, env)["numpy"] == "1.26.2"


def test_stack_install_fix_keeps_numpy_1_with_a_stale_constraints_file(world, numpy_world,
                                                                      tmp_path) -> None:
    """doctor's env-broken rebuild and torch-missing install: an install made before the
    cap has a constraints file without it; the fix still brings NumPy 1.x."""
    profile = dataclasses.replace(profiles_in(world)["torch2.1.2-cu121"], xformers=None,
                                  index_url=numpy_world.index_url("cu121"))
    stale = tmp_path / "constraints.txt"
    stale.write_text("torch==2.1.2+cu121\ntorchvision==0.16.2+cu121\n")
    python = make_venv(tmp_path / "venv")
    fix = stack_install_fix(profile, str(python), stale)
    assert fix is not None and all("-c" in cmd for cmd in fix.commands)
    env = dict(os.environ, **_numpy_env(numpy_world, tmp_path / "uv-cache"))
    for argv in fix.commands:
        res = subprocess.run(argv, capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
    have = installed(python, env)
    assert (have["torch"], have["numpy"]) == ("2.1.2+cu121", "1.26.4")


def test_numpy_cap_and_pin_matching_pure(world) -> None:
    profiles = profiles_in(world)
    capped = {n for n, p in profiles.items() if "numpy<2" in render_constraints(p)}
    assert {"torch1.13.1-cu117", "torch2.0.1-cu118", "torch2.1.2-cu121", "cpu", "mps"} <= capped
    assert not capped & {"torch2.3.1-cu121", "rocm", "torch2.7.0-cu128", "torch2.10.0-cu128"}
    assert pin_matches("2.1.2+cu121", "2.1.2") and pin_matches("2.1.2", "2.1.2")
    assert pin_matches("2.1.2+cu121", "2.1.2+cu121")
    assert not pin_matches("2.1.2+cu118", "2.1.2+cu121")
    assert not pin_matches("2.1.2", "2.1.2+cu121")
    assert not pin_matches("2.1.1+cu121", "2.1.2") and not pin_matches(None, "2.1.2")
