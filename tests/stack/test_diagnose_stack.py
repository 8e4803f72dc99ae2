"""The stack verdict shared by `sdboot verify`, `sdboot doctor` and the `sdboot launch` guard
on machines where the NVIDIA GPU is not usable (gpu-not-visible), where numpy 2 meets a torch
built against numpy 1.x (numpy-abi), and where the environment's interpreter cannot start
(env-broken). Real parts: the fake NVML / libcuda in C with their failure modes (nvmlInit 9
and 18, cuInit 803 and 100, CUDA_VISIBLE_DEVICES honoured by the CUDA side only), stub torch
and numpy wheels from the loopback index in real venvs, a venv whose base Python is gone.
Each code has a scenario that must report it and a healthy twin that must not."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdboot.machine.gpu import visible_devices
from sdboot.stack.gpu_visibility import gpu_unusable_cause
from sdboot.stack.verdict import webui_numpy_pin
from sdboot.values import GpuAccess, GpuDevice, GpuInfo, GpuSource, Vendor
from tests.conftest import run_cli
from tests.doctor.test_doctor import PY310, doctor, errors, healthy_webui, make_env
from tests.world.gpu import RTX_3060, RTX_4090, Scenario
from tests.world.wheels import build_numpy

pytestmark = pytest.mark.slow
UV = shutil.which("uv")
GOOD = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
REAL_NUMPY = next(Path("/opt/pypi-more/files").glob("numpy-2.1.3-cp311-*.whl"), None)


# --- building blocks -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def numpy_index(world, tmp_path_factory) -> None:
    """Stub numpy 2.1.0 (NumPy 2) and 1.26.2 (the A1111 pin) on the world's default index."""
    out = tmp_path_factory.mktemp("numpy-wheels")
    for version in ("2.1.0", "1.26.2"):
        world.index.add(build_numpy(out, version), "simple")


@pytest.fixture(scope="module")
def cu121(world, tmp_path_factory) -> Path:
    """One venv with the cu121 stub stack, judged on many simulated machines."""
    return make_env(world, tmp_path_factory.mktemp("cu121") / "venv", "cu121")


def machine(gpu_libs, scenario: Scenario | None, *, nvml: bool = True,
            **extra: str) -> dict[str, str]:
    env = gpu_libs.env(scenario, nvml=nvml) if scenario else {}
    env.update(extra)
    return env


def verify(world, python: Path, env: dict[str, str]) -> tuple[int, dict, dict[str, dict]]:
    res = run_cli("verify", "--python", str(python), "--json", env=world.env(env))
    assert "Traceback" not in res.stderr, res.stderr
    doc = res.json()
    assert res.returncode == (0 if doc["ok"] else 1)
    return res.returncode, doc, {f["code"]: f for f in doc["findings"]}


def install(world, python: Path, *specs: str) -> None:
    subprocess.run([UV, "pip", "install", "-q", "--python", str(python), *specs], check=True,
                   env=world.env())


def finding(doc: dict, code: str) -> dict:
    return next(f for c in doc["checks"] for f in c["findings"] if f["code"] == code)


# --- gpu-not-visible: the causes -------------------------------------------------------------


def test_driver_not_loaded(world, gpu_libs, cu121, tmp_path) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()  # no /dev/nvidia*, as on a machine whose module is not loaded
    sc = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,), init_rc=9)
    rc, doc, codes = verify(world, cu121, machine(gpu_libs, sc, SDBOOT_DEV_DIR=str(dev)))
    assert rc == 1 and set(codes) == {"gpu-not-visible"}
    msg = codes["gpu-not-visible"]["message"]
    assert "not loaded" in msg and "Driver Not Loaded" in msg and "no nvidia* device" in msg
    assert doc["gpu"]["nvml_error"] == {"code": 9, "message": "Driver Not Loaded"}
    assert doc["gpu"]["access"]["dev_nodes"] == []
    assert doc["probe"]["torch"]["cuda_available"] is False
    assert doc["summary"] == "CUDA torch 2.1.2+cu121, but no usable NVIDIA GPU"


def test_driver_library_mismatch_says_reboot(world, gpu_libs, cu121) -> None:
    sc = Scenario(driver="550.54", cuda=12040, gpus=(RTX_3060,), init_rc=18)
    rc, doc, codes = verify(world, cu121, machine(gpu_libs, sc))
    assert rc == 1 and set(codes) == {"gpu-not-visible"}
    assert "reboot" in codes["gpu-not-visible"]["fix"]["summary"]
    assert "Driver/library version mismatch" in codes["gpu-not-visible"]["message"]
    assert doc["gpu"]["nvml_error"]["code"] == 18
    # the stub torch warns as real torch does when cuInit returns 803
    assert any("Error 803: system has unsupported display driver / cuda driver combination"
               in w for w in doc["probe"]["torch"]["warnings"])


def test_cuinit_803_while_nvml_answers(world, gpu_libs, cu121) -> None:
    sc = Scenario(driver="550.54", cuda=12040, gpus=(RTX_3060,), cuda_rc=803)
    rc, doc, codes = verify(world, cu121, machine(gpu_libs, sc))
    assert doc["gpu"]["gpus"] and doc["gpu"]["nvml_error"] is None
    assert rc == 1 and set(codes) == {"gpu-not-visible"}
    assert "reboot" in codes["gpu-not-visible"]["fix"]["summary"]


@pytest.mark.parametrize(("cuda_rc", "warning"), [
    (3, "CUDA initialization: CUDA driver initialization failed, you might not have a CUDA "
        "gpu."),
    (100, None)])  # cudaErrorNoDevice: real torch says nothing
def test_other_cuinit_failures_stay_cuda_unavailable(world, gpu_libs, cu121, cuda_rc,
                                                     warning) -> None:
    sc = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,), cuda_rc=cuda_rc)
    rc, doc, codes = verify(world, cu121, machine(gpu_libs, sc))
    assert rc == 1 and set(codes) == {"cuda-unavailable"}  # no known cause: not guessed
    assert doc["probe"]["torch"]["warnings"] == ([warning] if warning else [])


@pytest.mark.parametrize(("value", "words"), [("-1", "hides every GPU"), ("", "is empty"),
                                              ("1", "names no existing device")])
def test_cuda_visible_devices_hides_the_gpu(world, gpu_libs, cu121, value, words) -> None:
    sc = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,), visible=value)
    rc, doc, codes = verify(world, cu121, machine(gpu_libs, sc))
    assert [g["name"] for g in doc["gpu"]["gpus"]] == [RTX_3060.name]  # NVML still lists it
    assert doc["probe"]["torch"]["cuda_available"] is False  # CUDA does not see it
    assert rc == 1 and set(codes) == {"gpu-not-visible"}
    msg = codes["gpu-not-visible"]["message"]
    assert f"CUDA_VISIBLE_DEVICES={value!r} (from the environment)" in msg and words in msg


def test_cuda_visible_devices_that_names_a_gpu_is_healthy(world, gpu_libs, cu121) -> None:
    two = Scenario(driver="560.35.03", cuda=12060, gpus=(RTX_3060, RTX_4090), visible="1")
    rc, doc, codes = verify(world, cu121, machine(gpu_libs, two))
    assert rc == 0 and codes == {}, codes
    # the CUDA side honours the variable: only the second GPU, as device 0
    assert [d["name"] for d in doc["probe"]["torch"]["devices"]] == [RTX_4090.name]
    assert doc["probe"]["numpy"] == {"installed": False, "version": None}
    rc, _, codes = verify(world, cu121, machine(gpu_libs, GOOD))
    assert rc == 0 and codes == {}


def test_container_without_gpu_access(world, gpu_libs, cu121, tmp_path) -> None:
    sysfs = tmp_path / "sys" / "class" / "drm" / "card0" / "device"
    sysfs.mkdir(parents=True)
    (sysfs / "vendor").write_text("0x10de\n")
    (sysfs / "device").write_text("0x2504\n")
    dev = tmp_path / "dev"
    dev.mkdir()
    box = {"SDBOOT_SYSFS_ROOT": str(tmp_path / "sys"), "SDBOOT_DEV_DIR": str(dev)}
    rc, doc, codes = verify(world, cu121, machine(gpu_libs, GOOD, nvml=False, **box))
    assert rc == 1 and set(codes) == {"gpu-not-visible"}
    assert "no /dev/nvidia* device nodes" in codes["gpu-not-visible"]["message"]
    assert "--gpus all" in codes["gpu-not-visible"]["fix"]["summary"]
    # twin: the same empty /dev, but the driver answers: /dev is only read when NVML fails
    rc, _, codes = verify(world, cu121, machine(gpu_libs, GOOD, **box))
    assert rc == 0 and codes == {}, codes


def test_wsl2_loader_path_and_no_gpu_access(world, gpu_libs, cu121, tmp_path) -> None:
    proc = tmp_path / "version"
    proc.write_text("Linux version 5.15.153.1-microsoft-standard-WSL2 (root@1) #1 SMP\n")
    wsl = {"SDBOOT_PROC_VERSION": str(proc), "SDBOOT_WSL_LIB_DIR": str(gpu_libs.current)}
    # NVML is only in the WSL2 folder; torch, on the loader path, finds no libcuda
    rc, doc, codes = verify(world, cu121, machine(gpu_libs, GOOD, nvml=False, **wsl))
    assert doc["gpu"]["access"]["wsl"] is True and doc["gpu"]["gpus"]
    assert rc == 1 and set(codes) == {"gpu-not-visible"}
    assert "not on the loader path" in codes["gpu-not-visible"]["message"]
    assert "ldconfig" in codes["gpu-not-visible"]["fix"]["summary"]
    # twin: the folder on the loader path, as /etc/ld.so.conf.d/ld.wsl.conf puts it
    rc, _, codes = verify(world, cu121, machine(gpu_libs, GOOD, **wsl))
    assert rc == 0 and codes == {}, codes
    # WSL2 whose driver folder is empty: no GPU access at all
    empty = {**wsl, "SDBOOT_WSL_LIB_DIR": str(tmp_path / "no-wsl-lib")}
    rc, _, codes = verify(world, cu121, machine(gpu_libs, None, **empty))
    assert rc == 1 and "WSL2 without GPU access" in codes["gpu-not-visible"]["message"]


def test_no_nvidia_device_at_all(world, gpu_libs, cu121) -> None:
    rc, doc, codes = verify(world, cu121, {})  # this machine: no NVML, no card
    assert rc == 1 and set(codes) == {"gpu-not-visible"}
    assert "has no NVIDIA GPU" in codes["gpu-not-visible"]["message"]
    fix = codes["gpu-not-visible"]["fix"]["summary"]
    assert "--profile cpu" in fix and "--allow-cpu" in fix
    assert doc["gpu"]["nvml_error"]["code"] == 12  # the library was not found


def test_gpu_json_keeps_nvml_error_and_access(gpu_libs) -> None:
    sc = Scenario(gpus=(RTX_3060,), init_rc=18, visible="-1")
    doc = run_cli("gpu", "--json", env=gpu_libs.env(sc)).json()
    assert doc["nvml_error"] == {"code": 18,
                                 "message": "RM has detected an NVML/RM version mismatch."}
    assert doc["access"]["cuda_visible_devices"] == "-1"
    doc = run_cli("gpu", "--json", env=gpu_libs.env(GOOD)).json()
    assert doc["nvml_error"] is None and doc["access"]["cuda_visible_devices"] is None


@pytest.mark.parametrize(("value", "count", "visible"), [
    (None, 2, [0, 1]), ("", 1, []), ("-1", 1, []), ("1", 1, []), ("0", 1, [0]),
    ("0,1", 1, [0]), ("1,0", 2, [1, 0]), ("0,0,1", 2, [0]), ("GPU-8f3a", 1, None),
    ("0", None, None), ("-1", None, [])])
def test_visible_devices_reads_like_the_driver(value, count, visible) -> None:
    assert visible_devices(value, count) == visible


def test_cause_order_is_pure_and_specific() -> None:
    gpu = GpuInfo(Vendor.NVIDIA, GpuSource.NVML, "531.18", "12.1",
                  (GpuDevice(0, "NVIDIA GeForce RTX 3060", 12288, "8.6"),),
                  access=GpuAccess(cuda_visible_devices="0", dev_nodes=("nvidia0",)))
    assert gpu_unusable_cause(gpu, {"warnings": []}) is None  # usable: nothing to explain
    why, _ = gpu_unusable_cause(gpu, {}, {"CUDA_VISIBLE_DEVICES": "-1"}) or ("", None)
    assert "(from webui-user)" in why  # webui-user's export beats the environment
    none = GpuInfo(Vendor.NONE, GpuSource.NONE, nvml_error_code=18, nvml_error="x",
                   access=GpuAccess(dev_nodes=()))
    why, fix = gpu_unusable_cause(none, {}) or ("", None)
    assert "mismatch" in why and fix is not None and "reboot" in fix.summary


# --- numpy-abi -------------------------------------------------------------------------------


def test_numpy2_beside_torch_built_for_numpy1(world, gpu_libs, numpy_index, tmp_path) -> None:
    py = make_env(world, tmp_path / "venv", "cu121")
    install(world, py, "numpy==2.1.0")
    rc, doc, codes = verify(world, py, machine(gpu_libs, GOOD))
    assert rc == 1 and set(codes) == {"numpy-abi"}
    assert doc["probe"]["numpy"] == {"installed": True, "version": "2.1.0"}
    assert "compiled using NumPy 1.x cannot be run in" in doc["probe"]["torch"]["output"]
    assert any("_ARRAY_API not found" in w for w in doc["probe"]["torch"]["warnings"])
    fix = codes["numpy-abi"]["fix"]
    assert fix["automatic"] and fix["commands"] == [[str(py), "-m", "pip", "install",
                                                     "numpy<2"]]
    # twin: numpy 1.x beside the same torch
    install(world, py, "numpy==1.26.2")
    rc, doc, codes = verify(world, py, machine(gpu_libs, GOOD))
    assert rc == 0 and codes == {} and doc["probe"]["numpy"]["version"] == "1.26.2"


def test_numpy2_beside_torch_23_is_healthy(world, gpu_libs, numpy_index, tmp_path) -> None:
    py = make_env(world, tmp_path / "venv", "cu121-forge")  # torch 2.3.1: built for NumPy 2
    install(world, py, "numpy==2.1.0")
    rc, doc, codes = verify(world, py, machine(gpu_libs, GOOD))
    assert rc == 0 and "numpy-abi" not in codes, codes
    assert "NumPy 1.x" not in doc["probe"]["torch"]["output"]


def test_real_numpy2_wheel(world, gpu_libs, tmp_path) -> None:
    if REAL_NUMPY is None or sys.version_info[:2] != (3, 11):
        pytest.skip("the local numpy 2.1.3 wheel (cp311) is not usable here")
    py = make_env(world, tmp_path / "venv", "cu121", python=sys.executable)
    install(world, py, str(REAL_NUMPY))
    rc, doc, codes = verify(world, py, machine(gpu_libs, GOOD))
    assert rc == 1 and set(codes) == {"numpy-abi"}
    assert doc["probe"]["numpy"]["version"] == "2.1.3"


def test_numpy_abi_doctor_fix_uses_the_webui_pin(world, gpu_libs, numpy_index, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    (webui / "requirements_versions.txt").write_text("numpy==1.26.2\n")
    assert webui_numpy_pin(webui) == "numpy==1.26.2"
    install(world, webui / "venv/bin/python", "numpy==2.1.0")
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 1 and errors(codes) == {"numpy-abi"}
    assert finding(doc, "numpy-abi")["fix"]["commands"][0][-1] == "numpy==1.26.2"
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", "--fix", "--yes")
    assert rc == 0 and "numpy-abi" not in codes, doc
    assert doc["before"]["errors"] == 1 and doc["fixes"][0]["ok"]
    out = subprocess.run([str(webui / "venv/bin/python"), "-c",
                          "import importlib.metadata as m; print(m.version('numpy'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "1.26.2"


# --- env-broken ------------------------------------------------------------------------------


def broken_venv(prefix: Path, tmp_path: Path) -> Path:
    """A real venv made by a base Python that is then removed: pyvenv.cfg's home is gone
    and bin/python is a dangling link, as after uninstalling or moving that Python."""
    base = tmp_path / "base-python" / "bin"
    base.mkdir(parents=True)
    (base / "python3.10").symlink_to(os.path.realpath(PY310))
    subprocess.run([str(base / "python3.10"), "-m", "venv", "--without-pip", str(prefix)],
                   check=True)
    shutil.rmtree(tmp_path / "base-python")
    python = prefix / "bin" / "python"
    assert python.is_symlink() and not python.exists()
    with pytest.raises(OSError):  # the real interpreter cannot start
        subprocess.run([str(python), "-c", "pass"], check=True)
    return python


def test_env_broken_in_verify_and_healthy_twin(world, gpu_libs, cu121, tmp_path) -> None:
    python = broken_venv(tmp_path / "venv", tmp_path)
    rc, doc, codes = verify(world, python, machine(gpu_libs, GOOD))
    assert rc == 1 and set(codes) == {"env-broken"}
    msg = codes["env-broken"]["message"]
    assert "base Python is gone or moved" in msg and str(tmp_path / "base-python") in msg
    # the link named is the one that dangles (bin/python -> python3.10 is relative and there)
    chain = python
    while (chain.parent / os.readlink(chain)).is_symlink():
        chain = chain.parent / os.readlink(chain)
    assert chain != python and f"{chain} points at {os.readlink(chain)}, which is gone " \
        f"(reached from {python})" in msg
    rc, _, codes = verify(world, cu121, machine(gpu_libs, GOOD))
    assert rc == 0 and "env-broken" not in codes


def test_env_broken_reasons_on_disk(tmp_path) -> None:
    from sdboot.stack.broken_env import env_broken_reason

    conda = tmp_path / "conda-env"
    (conda / "conda-meta").mkdir(parents=True)
    assert "a conda env whose python is missing" in (env_broken_reason(conda) or "")
    (conda / "bin").mkdir()
    (conda / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    assert env_broken_reason(conda) is None  # the twin: its python is there
    moved = tmp_path / "moved"
    (moved / "bin").mkdir(parents=True)
    (moved / "pyvenv.cfg").write_text(f"home = {tmp_path / 'gone'}\nversion = 3.10.13\n")
    assert f"home = {tmp_path / 'gone'}" in (env_broken_reason(moved) or "")


def test_env_broken_doctor_then_fix(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    shutil.rmtree(webui / "venv")
    broken_venv(webui / "venv", tmp_path)
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 1 and errors(codes) == {"env-broken"}, codes
    fix = finding(doc, "env-broken")["fix"]
    assert fix["automatic"] and "lost: packages sdboot did not put there" in fix["summary"]
    assert fix["commands"][0][1:] == ["-m", "venv", "--clear", str(webui / "venv")]
    assert "--no-deps" not in fix["commands"][1]
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", "--fix", "--yes")
    assert rc == 0 and errors(codes) == set(), doc
    torch = next(c for c in doc["checks"] if c["id"] == "torch")
    assert torch["status"] == "pass" and "2.1.2+cu121" in torch["summary"]
    subprocess.run([str(webui / "venv/bin/python"), "-c", "import torch"], check=True)
    # the rebuild keeps NumPy 1.x beside torch 2.1.2 (numpy<2), though 2.1.0 is the newest
    assert subprocess.run([str(webui / "venv/bin/python"), "-c", "import numpy; print("
                           "numpy.__version__)"], capture_output=True, text=True,
                          check=True).stdout.strip() == "1.26.2"


# --- torch-missing: the fix brings the dependencies ------------------------------------------


def test_torch_missing_fix_installs_with_dependencies(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    shutil.rmtree(webui / "venv")
    make_env(world, webui / "venv", None)
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert errors(codes) == {"torch-missing"}
    commands = finding(doc, "torch-missing")["fix"]["commands"]
    assert all("--no-deps" not in c and "--force-reinstall" not in c for c in commands)
    assert "torch==2.1.2+cu121" in commands[0] and "xformers==0.0.23.post1" in commands[1]
    assert "torch==2.1.2+cu121" in commands[1]  # no constraints file: torch pinned beside it
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", "--fix", "--yes")
    assert rc == 0 and errors(codes) == set(), doc


# --- the doctor and the launch guard share the verdict ---------------------------------------


def test_webui_user_export_hides_the_gpu(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    rc, _, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 0 and "gpu-not-visible" not in codes  # the twin
    with (webui / "webui-user.sh").open("a") as fh:
        fh.write("export CUDA_VISIBLE_DEVICES=-1\n")
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 1 and errors(codes) == {"gpu-not-visible"}
    assert "(from webui-user)" in finding(doc, "gpu-not-visible")["message"]
    res = run_cli("launch", str(webui), "--dry-run", env=world.env(gpu_libs.env(GOOD)))
    assert res.returncode == 1 and "gpu-not-visible" in res.stdout


def test_launch_guard_refuses_each_and_allow_cpu_only_for_the_gpu(world, gpu_libs,
                                                                   numpy_index,
                                                                   tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")

    def launch(scenario: Scenario | None, *args: str):
        env = world.env(gpu_libs.env(scenario) if scenario else {})
        return run_cli("launch", str(webui), "--dry-run", *args, env=env)

    res = launch(GOOD)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "cached verdict" in launch(GOOD).stdout
    unloaded = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,), init_rc=9)
    res = launch(unloaded)
    assert res.returncode == 1 and "gpu-not-visible" in res.stdout
    assert "not started" in res.stderr and "launch.py" not in res.stdout
    hidden = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,), visible="-1")
    res = launch(hidden)  # the GPU facts are unchanged, but the cached verdict is not used
    assert res.returncode == 1 and "gpu-not-visible" in res.stdout
    res = launch(unloaded, "--allow-cpu")
    assert res.returncode == 0, res.stdout + res.stderr
    argv = res.stdout.strip().splitlines()[-1]
    assert "--skip-torch-cuda-test" in argv and "gpu-not-visible" in res.stdout
    install(world, webui / "venv/bin/python", "numpy==2.1.0")
    for args in ((), ("--allow-cpu",)):
        res = launch(GOOD, *args)
        assert res.returncode == 1 and "numpy-abi" in res.stdout, res.stdout
    shutil.rmtree(webui / "venv")
    broken_venv(webui / "venv", tmp_path)
    res = launch(GOOD, "--allow-cpu")
    assert res.returncode == 1 and "env-broken" in res.stdout, res.stdout + res.stderr
    guard = json.loads((webui / ".sdboot/guard.json").read_text())
    assert guard["ok"] is False
