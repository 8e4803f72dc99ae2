"""The torch stack installer, the constraints file and the probe, with real pip and uv
installing stub wheels from the loopback index into real venvs."""

from __future__ import annotations

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
    plan_stack_install,
)
from sdboot.stack.profiles import load_profiles
from sdboot.stack.verdict import run_probe
from tests.conftest import run_cli
from tests.world.gpu import RTX_3060, Scenario

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
    assert constraints.read_text().splitlines()[-3:] == [
        "torch==2.1.2+cu121", "torchvision==0.16.2+cu121", "xformers==0.0.23.post1"]
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
