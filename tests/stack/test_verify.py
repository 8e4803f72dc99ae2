"""`sdboot verify` verdicts: real venvs holding stub stacks (or the real CPU torch wheel),
probed on simulated GPUs through the fake libcuda / NVML."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.webui.test_webui import POST_V13, make_webui
from tests.world.gpu import RTX_3060, RTX_5090, Scenario

pytestmark = pytest.mark.slow

UV = shutil.which("uv")
GOOD = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))


def stub_env(world, path: Path, variant: str | None, *, seed: bool = True,
             xformers: str | None = "auto") -> Path:
    env = world.env()
    if seed:  # a venv with pip, as the WebUI's scripts make it
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    else:
        subprocess.run([UV, "venv", "-q", "--python", sys.executable, str(path)], check=True,
                       env=env)
    python = path / "bin" / "python"
    if variant:
        from tests.world.wheels import STACKS

        stack = STACKS[variant]
        subprocess.run([UV, "pip", "install", "-q", "--python", str(python),
                        f"torch=={stack.torch}", f"torchvision=={stack.torchvision}",
                        "--index-url", world.index.index_url(variant)], check=True, env=env)
        wanted = stack.xformers if xformers == "auto" else xformers
        if wanted:
            subprocess.run([UV, "pip", "install", "-q", "--no-deps", "--python", str(python),
                            f"xformers=={wanted}"], check=True, env=env)
    return python


def verify(world, gpu_libs, python: Path | None, scenario: Scenario | None, *args: str):
    env = world.env(gpu_libs.env(scenario) if scenario else {})
    argv = ["verify", *args, "--json"]
    if python is not None:
        argv += ["--python", str(python)]
    res = run_cli(*argv, env=env)
    assert "Traceback" not in res.stderr, res.stderr
    doc = res.json()
    return res.returncode, doc, {f["code"] for f in doc["findings"]}


def test_healthy_cuda_stack_passes(world, gpu_libs, tmp_path):
    python = stub_env(world, tmp_path / "env", "cu121")
    rc, doc, codes = verify(world, gpu_libs, python, GOOD)
    assert rc == 0 and doc["ok"] and not codes
    assert doc["probe"]["torch"]["kernel_ok"] is True
    assert doc["summary"] == "CUDA torch 2.1.2+cu121 runs on NVIDIA GeForce RTX 3060 " \
                             "(kernel check passed)"
    human = run_cli("verify", "--python", str(python), env=world.env(gpu_libs.env(GOOD)))
    assert human.returncode == 0 and "✓" in human.stdout


def test_cpu_build_on_nvidia_fails_with_the_exact_fix(world, gpu_libs, tmp_path):
    python = stub_env(world, tmp_path / "env", "cpu")
    rc, doc, codes = verify(world, gpu_libs, python, GOOD)
    assert rc == 1 and "cpu-torch" in codes
    fix = next(f for f in doc["findings"] if f["code"] == "cpu-torch")["fix"]
    argv = fix["commands"][0]
    assert argv[:4] == [str(python), "-m", "pip", "install"]
    assert "torch==2.6.0+cu126" in argv or "torch==2.1.2+cu121" in argv or any(
        a.startswith("torch==") and "+cu" in a for a in argv)
    human = run_cli("verify", "--python", str(python), env=world.env(gpu_libs.env(GOOD)))
    assert "cpu-torch" in human.stdout and "$ " in human.stdout


def test_cpu_build_without_gpu_is_fine(world, gpu_libs, tmp_path):
    python = stub_env(world, tmp_path / "env", "cpu")
    rc, doc, codes = verify(world, gpu_libs, python, None)
    assert rc == 0 and codes == {"cpu-torch-no-gpu"}


def test_driver_too_old(world, gpu_libs, tmp_path):
    python = stub_env(world, tmp_path / "env", "cu121")
    old = Scenario(driver="516.94", cuda=11070, gpus=(RTX_3060,))
    rc, doc, codes = verify(world, gpu_libs, python, old)
    assert rc == 1 and "driver-too-old" in codes
    assert doc["probe"]["torch"]["cuda_available"] is False
    assert any("too old (found version 11070)" in w for w in doc["probe"]["torch"]["warnings"])


def test_rtx_50_on_cu121_has_no_kernels(world, gpu_libs, tmp_path):
    python = stub_env(world, tmp_path / "env", "cu121")
    rc, doc, codes = verify(world, gpu_libs, python,
                            Scenario(driver="572.16", cuda=12080, gpus=(RTX_5090,)))
    assert rc == 1 and "gpu-arch-unsupported" in codes
    assert doc["probe"]["torch"]["kernel_ok"] is False
    assert "no kernel image" in doc["probe"]["torch"]["kernel_error"]


def test_rtx_50_on_cu128_passes(world, gpu_libs, tmp_path):
    python = stub_env(world, tmp_path / "env", "cu128")
    rc, doc, codes = verify(world, gpu_libs, python,
                            Scenario(driver="572.16", cuda=12080, gpus=(RTX_5090,)))
    assert rc == 0, doc["findings"]


def test_xformers_built_for_another_torch(world, gpu_libs, tmp_path):
    python = stub_env(world, tmp_path / "env", "cu121", xformers="0.0.20")
    rc, doc, codes = verify(world, gpu_libs, python, GOOD)
    assert rc == 1 and codes == {"xformers-mismatch"}
    assert doc["probe"]["xformers"]["built_for_torch"] == "2.0.1"
    assert "xFormers was built for" in doc["probe"]["xformers"]["output"]


def test_torch_missing_and_pip_missing(world, gpu_libs, tmp_path):
    python = stub_env(world, tmp_path / "env", None, seed=False)
    rc, doc, codes = verify(world, gpu_libs, python, GOOD)
    assert rc == 1 and codes == {"torch-missing", "pip-missing"}
    pip_fix = next(f for f in doc["findings"] if f["code"] == "pip-missing")["fix"]
    assert pip_fix["commands"] == [[str(python), "-m", "ensurepip", "--upgrade"]]


def test_torch_that_does_not_import(world, gpu_libs, tmp_path):
    python = stub_env(world, tmp_path / "env", "cu121")
    init = next((tmp_path / "env").glob("lib/python*/site-packages/torch/__init__.py"))
    init.unlink()  # uv hard-links from its cache: never write through into other venvs
    init.write_text('raise ImportError("libtorch_cuda.so: cannot open shared object file")\n')
    rc, doc, codes = verify(world, gpu_libs, python, GOOD)
    assert rc == 1 and "torch-import-error" in codes
    msg = next(f for f in doc["findings"] if f["code"] == "torch-import-error")["message"]
    assert "libtorch_cuda.so" in msg


def test_webui_folder_and_drift(world, gpu_libs, tmp_path):
    webui = make_webui(tmp_path / "sd", POST_V13, tag="v1.10.1")
    stub_env(world, webui / "venv", "cu118")
    rc, doc, codes = verify(world, gpu_libs, None, GOOD, str(webui))
    assert doc["expected_profile"] == "torch2.1.2-cu121"
    assert "torch-drift" in codes and rc == 0  # drift is a warning for verify
    assert doc["python"] == str(webui / "venv" / "bin" / "python")


def test_missing_env_is_explained(tmp_path):
    webui = make_webui(tmp_path / "sd", POST_V13)
    res = run_cli("verify", str(webui))
    assert res.returncode == 1
    assert res.stderr.startswith("error: no Python environment found")


@pytest.fixture(scope="module")
def real_cpu_torch(tmp_path_factory):
    """The real CPU torch 2.13.0 wheel (on this machine's local wheel folder)."""
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the local CPU torch wheel is built for Python 3.11")
    path = tmp_path_factory.mktemp("realtorch") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    res = subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip("torch==2.13.0 cannot be installed here: " + res.stderr[-300:])
    return python


def test_real_cpu_torch_on_nvidia_machine_fails(real_cpu_torch, world, gpu_libs):
    rc, doc, codes = verify(world, gpu_libs, real_cpu_torch, GOOD)
    assert rc == 1 and "cpu-torch" in codes
    assert doc["probe"]["torch"]["version"].startswith("2.13.0")
    assert doc["probe"]["torch"]["cuda"] is None


def test_real_cpu_torch_without_gpu_passes(real_cpu_torch, world, gpu_libs):
    rc, doc, codes = verify(world, gpu_libs, real_cpu_torch, None)
    assert rc == 0 and codes == {"cpu-torch-no-gpu"}
