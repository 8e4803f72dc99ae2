"""`sdboot launch` on an install in the local world: the world's WebUI records its argv and
environment in webui-started.json and exits with WEBUI_FAKE_EXIT. Flags, pass-through,
--auto by VRAM, the guard on a simulated GPU with CPU torch, --dry-run, the exit code."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from sdboot.launch.guard import LaunchRequest, mask_env, plan_args
from sdboot.values import GpuDevice, GpuInfo, GpuSource, Vendor
from tests.world.gpu import FakeGpu, Scenario
from tests.world.local import LocalWorld, build_local_world, sdboot_argv
from tests.world.wheels import STACKS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalWorld, Path]:
    world = build_local_world(tmp_path_factory.mktemp("launch-world"))
    webui = world.root / "webui"
    res = subprocess.run(sdboot_argv("install", str(webui), "--mirror", "world"),
                         env=world.env(), cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    yield world, webui
    world.stop()


def launch(world: LocalWorld, webui: Path, *args: str, scenario: Scenario | None = None,
           **env: str) -> subprocess.CompletedProcess[str]:
    started = webui / "webui-started.json"
    started.unlink(missing_ok=True)
    return subprocess.run(sdboot_argv("launch", str(webui), *args),
                          env=world.env(scenario, **env), cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def started(webui: Path) -> dict:
    return json.loads((webui / "webui-started.json").read_text())


def test_launch_runs_the_webui_with_our_flags_and_its_exit_code(installed) -> None:
    world, webui = installed
    res = launch(world, webui, "--xformers", "--port", "7861", "--", "--api",
                 "--some-flag-sdboot-does-not-know", WEBUI_FAKE_EXIT="3")
    assert res.returncode == 3, res.stderr
    doc = started(webui)
    # recorded by install: --medvram-sdxl --xformers (12 GB); ours first, each flag once
    assert doc["argv"] == ["--xformers", "--port", "7861", "--medvram-sdxl", "--api",
                           "--some-flag-sdboot-does-not-know"]
    assert doc["python"] == str(webui / "venv/bin/python")
    env = doc["env"]
    assert env["COMMANDLINE_ARGS"] == ""
    assert env["PIP_CONSTRAINT"] == str(webui / ".sdboot/constraints.txt")
    assert env["STABLE_DIFFUSION_REPO"].endswith("https://github.com/w-e-w/stablediffusion.git")
    assert "Running on local URL" in res.stdout


def test_dry_run_prints_env_then_the_command(installed) -> None:
    world, webui = installed
    res = launch(world, webui, "--dry-run", "--listen", "--", "--api")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert "--listen without --gradio-auth" in res.stdout
    assert any(ln.startswith("PIP_CONSTRAINT=") for ln in lines)
    argv = shlex.split(lines[-1])
    assert argv[:2] == [str(webui / "venv/bin/python"), str(webui / "launch.py")]
    assert argv[2:] == ["--listen", "--medvram-sdxl", "--xformers", "--api"]
    assert not (webui / "webui-started.json").exists()


def test_commandline_args_are_not_given_twice(installed) -> None:
    world, webui = installed
    res = launch(world, webui, "--dry-run", COMMANDLINE_ARGS="--medvram --xformers --theme dark")
    argv = shlex.split(res.stdout.strip().splitlines()[-1])[2:]
    assert argv == ["--medvram", "--xformers", "--theme", "dark"]
    assert "left out: --medvram-sdxl" in res.stdout


@pytest.mark.parametrize(("mib", "flag"), [(4096, "--lowvram"), (6144, "--medvram"),
                                           (12288, "--medvram-sdxl"), (24564, None)])
def test_auto_chooses_from_vram(installed, mib: int, flag: str | None) -> None:
    world, webui = installed
    gpu = Scenario(driver="531.18", cuda=12010, gpus=(FakeGpu("NVIDIA Test", mib, "8.6"),))
    res = launch(world, webui, "--dry-run", "--auto", scenario=gpu)
    assert res.returncode == 0, res.stderr
    argv = shlex.split(res.stdout.strip().splitlines()[-1])[2:]
    memory = [a for a in argv if a in ("--lowvram", "--medvram", "--medvram-sdxl")]
    assert memory == ([flag] if flag else [])


def test_guard_refuses_cpu_torch_and_allow_cpu_runs_it(installed, tmp_path: Path) -> None:
    world, webui = installed
    py = webui / "venv/bin/python"
    uv = shutil.which("uv")
    cpu = STACKS["cpu"]

    def swap(stack) -> None:
        subprocess.run([uv, "pip", "install", "-q", "--python", str(py), "--reinstall",
                        f"torch=={stack.torch}", f"torchvision=={stack.torchvision}",
                        "--index-url", world.index.index_url(stack.torch.split("+")[1])],
                       check=True, env=world.env())

    swap(cpu)
    try:
        res = launch(world, webui)
        assert res.returncode == 1
        assert "cpu-torch" in res.stdout and "not started" in res.stderr
        assert not (webui / "webui-started.json").exists()
        dry = launch(world, webui, "--dry-run")
        assert dry.returncode == 1 and "launch.py" not in dry.stdout
        res = launch(world, webui, "--allow-cpu", "--", "--api")
        assert res.returncode == 0, res.stdout + res.stderr
        argv = started(webui)["argv"]
        assert argv[:4] == ["--skip-torch-cuda-test", "--no-half", "--precision", "full"]
        assert "--xformers" not in argv  # xformers does not match a CPU torch
    finally:
        swap(STACKS["cu121"])
    res = launch(world, webui, "--dry-run")
    assert res.returncode == 0


def test_guard_verdict_is_cached_while_the_stack_is_unchanged(installed) -> None:
    world, webui = installed
    launch(world, webui, "--dry-run")
    res = launch(world, webui, "--dry-run")
    assert "cached verdict" in res.stdout
    other_gpu = Scenario(driver="560.35.03", cuda=12060,
                         gpus=(FakeGpu("NVIDIA GeForce RTX 4090", 24564, "8.9"),))
    res = launch(world, webui, "--dry-run", scenario=other_gpu)
    assert "cached verdict" not in res.stdout  # another GPU: probed again


def test_not_a_webui_and_two_memory_flags(installed, tmp_path: Path) -> None:
    world, _ = installed
    res = subprocess.run(sdboot_argv("launch", str(tmp_path)), env=world.env(), cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 2 and "not a Stable Diffusion WebUI" in res.stderr
    res = subprocess.run(sdboot_argv("launch", str(tmp_path), "--medvram", "--lowvram"),
                         env=world.env(), cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and "choose one of" in res.stderr


def test_plan_args_and_masking_pure() -> None:
    gpu = GpuInfo(Vendor.NVIDIA, GpuSource.NVML, "531.18", "12.1",
                  (GpuDevice(0, "NVIDIA GeForce GTX 1060 6GB", 6144, "6.1"),))
    args, notes = plan_args(LaunchRequest("auto", True, extra=("--api",)), gpu, "1.10.1",
                            ["--medvram-sdxl", "--xformers"], [], False, cpu=False)
    assert args == ["--medvram", "--api"]
    assert any("--xformers left out" in n for n in notes)
    args, _ = plan_args(LaunchRequest(port=8080), gpu, "1.5.2", [], ["--port", "7000"], True,
                        cpu=False)
    assert args == ["--port", "8080"]
    masked = mask_env({"HF_TOKEN": "hf_x", "CIVITAI_API_KEY": "k", "GIT_CONFIG_KEY_0": "url.x",
                       "INDEX_URL": "https://me:pw@pypi.example/simple"})
    assert masked == {"HF_TOKEN": "***", "CIVITAI_API_KEY": "***", "GIT_CONFIG_KEY_0": "url.x",
                      "INDEX_URL": "https://***@pypi.example/simple"}


@pytest.mark.parametrize(("pin", "kept"), [("2.1.2", True), ("2.1.1", False),
                                           ("2.1.2+cu118", False)])
def test_pip_constraint_kept_when_the_pin_holds_the_installed_build(installed, pin: str,
                                                                     kept: bool) -> None:
    """A pin without a local label (a profile on the default index: torch 2.1.2) holds the
    installed 2.1.2+cu121, as pip reads ==2.1.2; a pin with a label must match exactly."""
    world, webui = installed
    record = json.loads((webui / ".sdboot/install.json").read_text())
    profile = world.config_dir / "profiles" / f"{record['profile']}.yaml"
    original = profile.read_text()
    assert f"torch: {STACKS['cu121'].torch}\n" in original
    profile.write_text(original.replace(f"torch: {STACKS['cu121'].torch}\n", f"torch: {pin}\n"))
    try:
        res = launch(world, webui, "--dry-run")
    finally:
        profile.write_text(original)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert any(ln.startswith("PIP_CONSTRAINT=") for ln in lines) is kept
    assert ("the installed torch is not the pinned one" in res.stdout) is not kept
