"""A cpu-backend profile whose torch is a CUDA build (the real route where the PyTorch index
cannot be reached: `torch==2.1.2` from the default index, which on Linux is the cu121 build),
installed with the CPU flags recorded, on a machine without an NVIDIA GPU. The WebUI runs on
the CPU there, so gpu-not-visible is information, and verify, doctor, install's verify step
and the launch guard agree. Twins: the same install on a machine with a GPU (no finding at
all), and the same CUDA build where the expected profile is a CUDA one (an error). Real parts:
the cu121 stub stack in a real venv, the overlay profile read by sdboot, no NVML (as on the
real machine) or the fake NVML with an RTX 3060."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sdboot.io.runner import Runner
from sdboot.machine.gpu import detect_gpu, detect_host
from sdboot.stack.profiles import load_profiles
from sdboot.stack.verdict import assess_stack, run_probe
from sdboot.values import Vendor
from sdboot.webui.flags import CPU_FLAGS
from sdboot.webui.record import write_record
from tests.conftest import run_cli
from tests.doctor.test_doctor import doctor, errors, healthy_webui
from tests.world.gpu import RTX_3060, Scenario

pytestmark = pytest.mark.slow
GOOD = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
# the recipe's overlay profile, as a user writes it (config/profiles/cpu-pypi.yaml)
CPU_PYPI = """\
name: cpu-pypi
description: no GPU, torch from the default index (its CUDA build, run on the CPU)
backend: cpu
torch: 2.1.2
torchvision: 0.16.2
xformers: null
variant: cpu
cuda: null
index_mode: default
arch: []
ptx: []
python: ">=3.8,<3.12"
webui: []
platforms: [linux, windows]
"""


@pytest.fixture()
def cpu_install(world, tmp_path) -> tuple[Path, dict[str, str]]:
    """The finished install: the cu121 build in venv/, profile cpu-pypi in the record, the
    CPU flags recorded; and the sdboot config with the overlay profile."""
    config = tmp_path / "config"
    shutil.copytree(world.config_dir, config)
    (config / "profiles" / "cpu-pypi.yaml").write_text(CPU_PYPI)
    webui = healthy_webui(world, tmp_path / "webui")
    write_record(webui, {"profile": "cpu-pypi", "complete": True,
                         "webui_args": list(CPU_FLAGS)})
    return webui, {"SDBOOT_CONFIG_DIR": str(config)}


def _record_profile(webui: Path, name: str) -> None:
    doc = json.loads((webui / ".sdboot/install.json").read_text())
    doc["profile"] = name
    write_record(webui, doc)


def _finding(doc: dict, code: str) -> dict:
    return next(f for c in doc["checks"] for f in c["findings"] if f["code"] == code)


def test_cuda_build_on_a_cpu_profile_without_gpu_is_info(world, gpu_libs, cpu_install) -> None:
    webui, config = cpu_install
    # doctor: no NVML on this machine (scenario None), as on the real one
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", scenario=None,
                            extra=config)
    assert rc == 0 and errors(codes) == set(), doc
    assert codes["gpu-not-visible"] == "info"
    found = _finding(doc, "gpu-not-visible")
    assert "profile cpu-pypi runs the WebUI on the CPU" in found["message"]
    assert "CUDA is not needed" in found["message"] and "this machine has no NVIDIA GPU" \
        in found["message"]
    assert found["fix"] is None  # no card to use: nothing to do
    torch = next(c for c in doc["checks"] if c["id"] == "torch")
    assert torch["status"] == "pass" and "on the CPU (cpu-pypi" in torch["summary"]
    # verify agrees
    res = run_cli("verify", str(webui), "--json", env=world.env(config))
    assert res.returncode == 0, res.stdout + res.stderr
    vdoc = res.json()
    assert vdoc["ok"] and vdoc["expected_profile"] == "cpu-pypi"
    assert [(f["code"], f["severity"]) for f in vdoc["findings"]] == [("gpu-not-visible",
                                                                       "info")]
    # the launch guard: starts (no --allow-cpu) with the CPU flags, and again from the cache
    for _ in range(2):
        res = run_cli("launch", str(webui), "--dry-run", env=world.env(config))
        assert res.returncode == 0, res.stdout + res.stderr
        argv = res.stdout.strip().splitlines()[-1]
        assert "--skip-torch-cuda-test --no-half --precision full" in argv
        assert "profile cpu-pypi: running on the CPU" in res.stdout


def test_install_verify_step_accepts_it(world, cpu_install) -> None:
    """What install's verify step judges (assess_stack with the install's profile, pinned),
    on the real probe of the cu121 venv and this machine's facts without a GPU."""
    webui, config = cpu_install
    with world.active():
        os.environ.update(config)
        os.environ.pop("LD_LIBRARY_PATH", None)  # no NVML: this machine has no NVIDIA GPU
        profiles = load_profiles()
        probe = run_probe(webui / "venv/bin/python", Runner())
        no_gpu = detect_gpu(Runner(), detect_host())
    assert no_gpu.vendor != Vendor.NVIDIA and probe["torch"]["cuda"] == "12.1"
    verdict = assess_stack(probe, no_gpu, profiles["cpu-pypi"], "python", pinned=True)
    assert verdict.ok and [(f.code, f.severity) for f in verdict.findings] == [
        ("gpu-not-visible", "info")]
    # the error twin: the same machine, a CUDA profile
    verdict = assess_stack(probe, no_gpu, profiles["torch2.1.2-cu121"], "python", pinned=True)
    assert not verdict.ok and [f.code for f in verdict.findings] == ["gpu-not-visible"]
    # the resolver's guess is no choice of the user's: still an error
    verdict = assess_stack(probe, no_gpu, profiles["cpu-pypi"], "python", pinned=False)
    assert not verdict.ok


def test_healthy_twin_with_a_gpu(world, gpu_libs, cpu_install) -> None:
    webui, config = cpu_install
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", extra=config)
    assert rc == 0 and "gpu-not-visible" not in codes, doc


def test_error_twin_cuda_profile(world, gpu_libs, cpu_install) -> None:
    webui, config = cpu_install
    _record_profile(webui, "torch2.1.2-cu121")
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", scenario=None,
                            extra=config)
    assert rc == 1 and codes["gpu-not-visible"] == "error"
    assert "would stop with 'Torch is not able to use GPU'" in \
        _finding(doc, "gpu-not-visible")["message"]
    res = run_cli("verify", str(webui), "--json", env=world.env(config))
    assert res.returncode == 1
    res = run_cli("launch", str(webui), "--dry-run", env=world.env(config))
    assert res.returncode == 1 and "gpu-not-visible" in res.stdout
    assert "error: the WebUI would not run on this GPU" in res.stderr
    assert "--allow-cpu" in res.stderr  # here it helps
    res = run_cli("launch", str(webui), "--dry-run", "--allow-cpu", env=world.env(config))
    assert res.returncode == 0 and "--skip-torch-cuda-test" in res.stdout


def test_install_on_a_cpu_profile_with_the_cuda_build(tmp_path) -> None:
    """sdboot install --profile cpu-pypi end to end in the local world, on a machine without
    NVML: step 4/8 (verify) passes, the CPU flags are recorded, verify says ok."""
    import subprocess

    from tests.world.local import ROOT, build_local_world, sdboot_argv

    lw = build_local_world(tmp_path / "lw")
    try:
        # the shape of cpu-pypi, with the world's cu121 index standing in for the default one
        profile = CPU_PYPI.replace("index_mode: default",
                                   f"index_mode: index\nindex_url: {lw.index.index_url('cu121')}")
        (lw.config_dir / "profiles" / "cpu-pypi.yaml").write_text(profile)
        env = lw.env(LD_LIBRARY_PATH="/nonexistent-nvml")
        webui = tmp_path / "webui"
        res = subprocess.run(sdboot_argv("install", str(webui), "--mirror", "none",
                                         "--profile", "cpu-pypi", "--json"), env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        doc = json.loads(res.stdout)
        assert doc["complete"] and doc["profile"] == "cpu-pypi"
        assert doc["webui_args"] == list(CPU_FLAGS)
        res = subprocess.run(sdboot_argv("verify", str(webui), "--json"), env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        vdoc = json.loads(res.stdout)
        assert res.returncode == 0 and vdoc["probe"]["torch"]["version"] == "2.1.2+cu121"
        assert [f["code"] for f in vdoc["findings"]] == ["gpu-not-visible"]
        res = subprocess.run(sdboot_argv("launch", str(webui), "--dry-run"), env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "--skip-torch-cuda-test" in res.stdout.strip().splitlines()[-1]
        # a second run finds the pinned 2.1.2 in the installed 2.1.2+cu121: nothing to do
        res = subprocess.run(sdboot_argv("install", str(webui), "--json"), env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        assert json.loads(res.stdout)["nothing_to_do"] is True
    finally:
        lw.stop()
