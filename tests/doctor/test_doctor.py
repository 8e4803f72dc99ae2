"""`sdboot doctor`: a corpus of scenarios, each a WebUI folder and environment built from
real parts (stub wheels from the loopback index on a simulated GPU, the real CPU torch
wheel, a venv without pip, a Python 3.12 venv, launch files pinning other versions,
synthetic safetensors files) with the exact findings asserted; healthy ones must have no
error. --fix scenarios assert the state after the re-check."""

from __future__ import annotations

import ensurepip
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from sdboot.doctor import ALL_CODES, path_masker
from sdboot.doctor.engine import Check, Outcome, Status, run_one
from tests.conftest import run_cli
from tests.world.githost import closed_port
from tests.world.gpu import RTX_3060, RTX_5090, FakeGpu, Scenario
from tests.world.launchfiles import write_webui
from tests.world.wheels import STACKS, build_wheel

pytestmark = pytest.mark.slow
UV = shutil.which("uv")
GOOD = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
PIP_WHEEL = next((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))


def _python310() -> str:
    from sdboot.io.runner import Runner
    from sdboot.machine.envs.venv import find_python

    return str(find_python("3.10", Runner()))  # the WebUI's tested Python


PY310 = _python310()
CONTRACT_CODES = {
    "cpu-torch", "pip-missing", "torch-drift", "xformers-mismatch", "driver-too-old",
    "gpu-arch-unsupported", "torch-import-error", "torch-missing", "python-version",
    "git-missing", "env-missing", "webui-missing", "launch-file-rewritten", "mirror-dead",
    "upstream-repo-dead", "network-unreachable", "disk-low", "vram-low", "no-checkpoint",
    "model-misplaced"}


# --- building blocks -------------------------------------------------------------------------


def make_env(world, path: Path, variant: str | None = "cu121", *, pip: bool = True,
             python: str = PY310, xformers: str | None = "auto") -> Path:
    """A venv (uv: fast) with pip from Python's own bundled wheel and a stub stack."""
    env = world.env()
    subprocess.run([UV, "venv", "-q", "--python", python, str(path)], check=True, env=env)
    py = path / "bin" / "python"
    if pip:
        subprocess.run([UV, "pip", "install", "-q", "--python", str(py), str(PIP_WHEEL)],
                       check=True, env=env)
    # what the WebUI's first start built from source (CLIP_PACKAGE, OPENCLIP_PACKAGE)
    built = [build_wheel(path.parent / "built", name, "1.0", {f"{mod}/__init__.py": ""})
             for name, mod in (("clip", "clip"), ("open_clip_torch", "open_clip"))]
    subprocess.run([UV, "pip", "install", "-q", "--no-deps", "--python", str(py),
                    *map(str, built)], check=True, env=env)
    if variant:
        stack = STACKS[variant]
        subprocess.run([UV, "pip", "install", "-q", "--python", str(py),
                        f"torch=={stack.torch}", f"torchvision=={stack.torchvision}",
                        "--index-url", world.index.index_url(variant.split("-")[0])],
                       check=True, env=env)
        wanted = stack.xformers if xformers == "auto" else xformers
        if wanted:
            subprocess.run([UV, "pip", "install", "-q", "--no-deps", "--python", str(py),
                            f"xformers=={wanted}"], check=True, env=env)
    return py


def safetensors(path: Path, keys: list[str]) -> Path:
    """A tiny but valid safetensors file with these tensor names (one float each)."""
    header = {k: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
              for i, k in enumerate(keys)}
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4 * len(keys))
    return path


CHECKPOINT_KEYS = ["model.diffusion_model.input_blocks.0.0.weight",
                   "first_stage_model.decoder.conv_in.weight",
                   "cond_stage_model.transformer.text_model.embeddings.position_ids"]
LORA_KEYS = ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
             "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight",
             "lora_unet_down_blocks_0_attentions_0_proj_in.alpha"]
VAE_KEYS = ["encoder.conv_in.weight", "decoder.conv_in.weight", "quant_conv.weight"]
EMBEDDING_KEYS = ["emb_params"]


def healthy_webui(world, root: Path, layout: str = "post-v1.3") -> Path:
    """A WebUI with its venv (cu121 stack), a checkpoint, and the dead upstream substituted
    (what sdboot mirror apply / install write)."""
    webui = write_webui(root, layout)
    make_env(world, webui / "venv", "cu121-forge" if layout == "forge" else "cu121")
    safetensors(webui / "models/Stable-diffusion/v1-5.safetensors", CHECKPOINT_KEYS)
    res = run_cli("mirror", "apply", str(webui), "--mirror", "none", env=world.env())
    assert res.returncode == 0, res.stderr
    return webui


def doctor(world, gpu_libs, *args: str, scenario: Scenario | None = GOOD,
           extra: dict[str, str] | None = None) -> tuple[int, dict, dict[str, str]]:
    env = world.env({**(gpu_libs.env(scenario) if scenario else {}), **(extra or {})})
    res = run_cli("doctor", *args, "--json", env=env, timeout=120)
    assert "Traceback" not in res.stderr, res.stderr
    doc = json.loads(res.stdout)
    assert doc["schema"] == "sdboot.doctor/1"
    codes = {f["code"]: f["severity"] for c in doc["checks"] for f in c["findings"]}
    assert res.returncode == (1 if doc["summary"]["errors"] else 0)
    return res.returncode, doc, codes


def errors(codes: dict[str, str]) -> set[str]:
    return {c for c, s in codes.items() if s == "error"}


# --- healthy installs: no false alarms -------------------------------------------------------


@pytest.mark.parametrize("layout", ["post-v1.3", "forge"])
def test_healthy_install_has_no_error(world, gpu_libs, tmp_path, layout) -> None:
    webui = healthy_webui(world, tmp_path / "webui", layout)
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 0, doc
    assert codes == {"vram-low": "info"}  # 12 GB: --medvram-sdxl is advised, nothing else
    status = {c["id"]: c["status"] for c in doc["checks"]}
    assert status == {"system": "pass", "gpu": "pass", "environment": "pass", "torch": "pass",
                      "requirements": "pass", "webui": "pass", "network": "skip",
                      "models": "pass", "store": "skip"}
    assert doc["python"] == str(webui / "venv/bin/python")


def test_every_contract_code_exists() -> None:
    assert CONTRACT_CODES <= set(ALL_CODES)


# --- the torch stack -------------------------------------------------------------------------


def test_cpu_torch_then_fix(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    shutil.rmtree(webui / "venv")
    make_env(world, webui / "venv", "cpu")
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 1 and errors(codes) == {"cpu-torch"}
    fix = next(f["fix"] for c in doc["checks"] for f in c["findings"] if f["code"] == "cpu-torch")
    assert fix["automatic"] and "torch==2.1.2+cu121" in fix["commands"][0]
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", "--fix", "--yes")
    assert rc == 0, doc
    assert doc["before"]["errors"] == 1 and doc["fixes"][0]["ok"]
    assert errors(codes) == set()


def test_torch_missing_and_import_error(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    shutil.rmtree(webui / "venv")
    py = make_env(world, webui / "venv", None)
    rc, _, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert errors(codes) == {"torch-missing"}
    broken = build_wheel(tmp_path / "w", "torch", "2.1.2+cu121", {
        "torch/__init__.py": "raise ImportError('DLL load failed while importing _C: "
                             "The specified module could not be found.')\n"})
    subprocess.run([UV, "pip", "install", "-q", "--python", str(py), str(broken)], check=True,
                   env=world.env())
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert errors(codes) == {"torch-import-error"}
    message = next(f["message"] for c in doc["checks"] for f in c["findings"]
                   if f["code"] == "torch-import-error")
    assert "DLL load failed" in message


def test_torch_drift_from_the_launch_file_pins(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")  # the launch file pins 2.1.2
    shutil.rmtree(webui / "venv")
    make_env(world, webui / "venv", "cu118")  # a later install replaced it with 2.0.1
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 1 and errors(codes) == {"torch-drift"}
    torch = next(c for c in doc["checks"] if c["id"] == "torch")
    assert "expected torch2.1.2-cu121 (webui-pins)" in torch["summary"]


def test_xformers_built_for_another_torch(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    shutil.rmtree(webui / "venv")
    make_env(world, webui / "venv", "cu121", xformers="0.0.20")  # built for 2.0.1
    rc, _, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 1 and errors(codes) == {"xformers-mismatch"}


def test_driver_too_old_and_rtx50(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    old = Scenario(driver="516.94", cuda=11070, gpus=(RTX_3060,))
    _, _, codes = doctor(world, gpu_libs, str(webui), "--offline", scenario=old)
    assert errors(codes) == {"driver-too-old"}
    rtx50 = Scenario(driver="572.16", cuda=12080, gpus=(RTX_5090,))
    _, _, codes = doctor(world, gpu_libs, str(webui), "--offline", scenario=rtx50)
    assert errors(codes) == {"gpu-arch-unsupported"}


def test_real_cpu_torch_wheel(world, gpu_libs, tmp_path) -> None:
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the local CPU torch wheel is built for Python 3.11")
    webui = write_webui(tmp_path / "webui")
    venv = tmp_path / "webui" / "venv"
    subprocess.run([UV, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    wheel = next(Path("/opt/wheels").glob("torch-2.13.0+cpu-*.whl"), None)
    if wheel is None:
        pytest.skip("the machine's local CPU torch wheel is not here")
    res = subprocess.run([UV, "pip", "install", "-q", "--python", str(venv / "bin/python"),
                          str(PIP_WHEEL), str(wheel)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip("torch==2.13.0 cannot be installed here: " + res.stderr[-300:])
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", "--only", "cpu-torch")
    assert rc == 1 and codes == {"cpu-torch": "error"}
    assert [c["id"] for c in doc["checks"]] == ["torch"]


# --- the environment -------------------------------------------------------------------------


def test_pip_missing_then_fix(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    shutil.rmtree(webui / "venv")
    make_env(world, webui / "venv", "cu121", pip=False)
    rc, _, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 1 and errors(codes) == {"pip-missing"}
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", "--fix", "--yes")
    assert rc == 0 and "pip-missing" not in codes, doc
    assert doc["fixes"][0]["command"][-3:] == ["-m", "ensurepip", "--upgrade"]


def test_python_312_is_an_error(world, gpu_libs, tmp_path) -> None:
    from sdboot.errors import SdbootError
    from sdboot.io.runner import Runner
    from sdboot.machine.envs.venv import find_python

    try:
        py312 = str(find_python("3.12", Runner()))
    except SdbootError:
        pytest.skip("no Python 3.12 here")
    webui = healthy_webui(world, tmp_path / "webui")
    shutil.rmtree(webui / "venv")
    make_env(world, webui / "venv", "cu121", python=py312)
    rc, _, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert codes.get("python-version") == "error"


def test_env_missing_webui_missing_and_git_missing(world, gpu_libs, tmp_path) -> None:
    webui = write_webui(tmp_path / "webui")
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline")
    # a bare checkout: no environment, and the dead upstream not substituted yet
    assert rc == 1 and errors(codes) == {"env-missing", "upstream-repo-dead"}
    assert next(c for c in doc["checks"] if c["id"] == "torch")["status"] == "skip"
    not_webui = tmp_path / "empty"
    not_webui.mkdir()
    py = make_env(world, tmp_path / "env", "cu121")
    _, _, codes = doctor(world, gpu_libs, str(not_webui), "--python", str(py), "--offline")
    assert errors(codes) == {"webui-missing"}
    nogit = tmp_path / "nogit-bin"
    nogit.mkdir()
    _, _, codes = doctor(world, gpu_libs, "--python", str(py), "--offline",
                         extra={"PATH": str(nogit)})
    assert errors(codes) == {"git-missing"}


def test_webui_user_venv_dir_is_followed(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    shutil.move(webui / "venv", tmp_path / "elsewhere")
    with (webui / "webui-user.sh").open("a") as fh:
        fh.write(f'venv_dir="{tmp_path / "elsewhere"}"\n')
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 0 and doc["python"] == str(tmp_path / "elsewhere/bin/python")


# --- the checkout, network and models --------------------------------------------------------


def test_launch_file_rewritten_then_fix(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    original = (webui / "modules/launch_utils.py").read_bytes()
    assert run_cli("mirror", "apply", str(webui), "--github", "ghfast", "--mode", "rewrite",
                   env=world.env()).returncode == 0
    rc, _, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 0 and codes.get("launch-file-rewritten") == "warning"
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", "--fix", "--yes")
    assert "launch-file-rewritten" not in codes, doc
    assert (webui / "modules/launch_utils.py").read_bytes() == original


def test_upstream_repo_dead_then_fix(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    assert run_cli("mirror", "revert", str(webui), env=world.env()).returncode == 0
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline")
    assert rc == 1 and errors(codes) == {"upstream-repo-dead"}
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", "--fix", "--yes")
    assert rc == 0 and "upstream-repo-dead" not in codes, doc
    assert "w-e-w/stablediffusion" in (webui / "webui-user.sh").read_text()


def test_network_unreachable_and_mirror_dead(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    config = tmp_path / "config"
    shutil.copytree(world.config_dir, config)
    dead = f"http://127.0.0.1:{closed_port()}/"
    (config / "mirrors.yaml").write_text(
        "replace_shipped: true\n"
        f"mirrors:\n  - {{name: deadgh, kind: github-prefix, url: '{dead}'}}\n"
        f"upstreams: {{github: '{dead}', torch: '{dead}whl/{{variant}}/', hf: '{dead}hf'}}\n")
    extra = {"SDBOOT_CONFIG_DIR": str(config)}
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--only",
                            "network-unreachable,mirror-dead", extra=extra)
    assert rc == 0 and codes == {"network-unreachable": "warning"}
    messages = [f["message"] for c in doc["checks"] for f in c["findings"]]
    assert any(m.startswith("GitHub cannot be reached") for m in messages)
    res = run_cli("mirror", "apply", str(webui), "--github", "deadgh", env=world.env(extra))
    assert res.returncode == 0, res.stderr
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--only", "mirror-dead", extra=extra)
    assert codes == {"mirror-dead": "warning"}


def test_vram_low_and_disk_low(world, gpu_libs, tmp_path, monkeypatch) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    small = Scenario(driver="531.18", cuda=12010,
                     gpus=(FakeGpu("NVIDIA GeForce GTX 1650", 4096, "7.5"),))
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", scenario=small)
    assert rc == 0 and codes.get("vram-low") == "warning"
    assert "--lowvram" in next(f["message"] for c in doc["checks"] for f in c["findings"]
                               if f["code"] == "vram-low")
    # disk-low: the threshold logic, on a disk that reports 3 GB free
    from sdboot.doctor import system
    from sdboot.doctor.facts import DoctorFacts

    monkeypatch.setattr(system.shutil, "disk_usage",
                        lambda p: shutil._ntuple_diskusage(100 * 1024**3, 97 * 1024**3,
                                                           3 * 1024**3))
    outcome = system.run(DoctorFacts(webui))
    assert [f.code for f in outcome.findings] == ["disk-low"]


def test_models_no_checkpoint_and_misplaced_then_fix(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    (webui / "models/Stable-diffusion/v1-5.safetensors").unlink()
    lora = safetensors(webui / "models/Stable-diffusion/detail-tweaker.safetensors", LORA_KEYS)
    safetensors(webui / "models/Lora/my-vae.safetensors", VAE_KEYS)
    safetensors(webui / "embeddings/easynegative.safetensors", EMBEDDING_KEYS)
    (webui / "models/VAE").mkdir(parents=True)
    (webui / "models/VAE/old.pt").write_bytes(b"\x80\x02a pickle: never loaded")
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", "--only",
                            "no-checkpoint,model-misplaced")
    assert rc == 0 and codes == {"no-checkpoint": "warning", "model-misplaced": "warning"}
    misplaced = [f["message"] for c in doc["checks"] for f in c["findings"]
                 if f["code"] == "model-misplaced"]
    assert len(misplaced) == 2
    assert any("detail-tweaker.safetensors is a lora, not a checkpoint" in m for m in misplaced)
    rc, doc, codes = doctor(world, gpu_libs, str(webui), "--offline", "--fix", "--yes",
                            "--only", "model-misplaced")
    assert codes == {}
    assert (webui / "models/Lora/detail-tweaker.safetensors").is_file() and not lora.exists()
    assert (webui / "models/VAE/my-vae.safetensors").is_file()


# --- the engine and the output ---------------------------------------------------------------


def test_a_crashing_check_is_a_result_not_a_crash() -> None:
    def boom(facts: object) -> Outcome:
        raise RuntimeError("disk on fire")

    res = run_one(Check("x", "x", boom, ("x",)), None, None)  # type: ignore[arg-type]
    assert res.status == Status.CRASH and "disk on fire" in res.summary


def test_human_output_marks_and_footer(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    shutil.rmtree(webui / "venv")
    make_env(world, webui / "venv", "cpu")
    res = run_cli("doctor", str(webui), "--offline", env=world.env(gpu_libs.env(GOOD)))
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert any(ln.startswith("✗ torch stack") for ln in lines)
    assert any(ln.startswith("✓ system") for ln in lines)
    assert "error cpu-torch:" in res.stdout and "fix (--fix runs it):" in res.stdout
    assert "1 error(s), 0 warning(s), 1 fixable; run sdboot doctor --fix" in res.stdout
    assert "docs/troubleshooting.md" in run_cli("doctor", "--help").stdout


def test_fix_without_yes_on_a_pipe_is_refused(world, gpu_libs, tmp_path) -> None:
    webui = healthy_webui(world, tmp_path / "webui")
    shutil.rmtree(webui / "venv")
    make_env(world, webui / "venv", "cu121", pip=False)
    res = run_cli("doctor", str(webui), "--offline", "--fix", env=world.env(gpu_libs.env(GOOD)))
    assert res.returncode == 2 and "add --yes" in res.stderr


@pytest.mark.parametrize("shape", ["missing", "file"])
def test_a_webui_path_that_is_no_folder_is_bad_input(tmp_path: Path, shape: str) -> None:
    target = tmp_path / "webui"
    if shape == "file":
        target.write_text("not a folder\n")
    res = run_cli("doctor", str(target), "--offline")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 2, res.stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    assert "sdboot install" in lines[1]
    assert ("does not exist" if shape == "missing" else "is not a folder") in lines[0]


def test_bad_only_code_and_masking() -> None:
    res = run_cli("doctor", "--python", sys.executable, "--only", "nope")
    assert res.returncode == 2 and "unknown finding code 'nope'" in res.stderr
    mask = path_masker(Path("/home/alice"), "alice")
    assert mask("/home/alice/sd/venv/bin/python") == "~/sd/venv/bin/python"
    assert mask("/data/alice/sd and /data/alice2") == "/data/<user>/sd and /data/alice2"
