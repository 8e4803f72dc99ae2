"""GPU detection through the real nvidia-ml-py loading fake driver libraries built in C."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sdboot.machine.gpu import format_cuda_version, parse_smi_csv, parse_smi_cuda_version
from tests.conftest import run_cli
from tests.world.gpu import GTX_1060, H100, K80, RTX_3060, RTX_4090, Scenario


def test_single_gpu_through_nvml(gpu_libs):
    sc = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
    doc = run_cli("gpu", "--json", env=gpu_libs.env(sc)).json()
    assert doc["schema"] == "sdboot.gpu/1"
    assert (doc["vendor"], doc["source"]) == ("nvidia", "nvml")
    assert doc["driver_version"] == "531.18"
    assert doc["cuda_driver_version"] == "12.1"
    assert doc["gpus"] == [{"index": 0, "name": "NVIDIA GeForce RTX 3060",
                            "memory_total_mib": 12288, "compute_capability": "8.6"}]


def test_two_gpus_are_both_listed(gpu_libs):
    sc = Scenario(driver="560.35.03", cuda=12060, gpus=(RTX_4090, H100))
    doc = run_cli("gpu", "--json", env=gpu_libs.env(sc)).json()
    assert [g["name"] for g in doc["gpus"]] == [RTX_4090.name, H100.name]
    assert [g["compute_capability"] for g in doc["gpus"]] == ["8.9", "9.0"]
    assert [g["index"] for g in doc["gpus"]] == [0, 1]


def test_old_driver_without_v2_entry_point(gpu_libs):
    sc = Scenario(driver="470.57.02", cuda=11040, gpus=(K80,))
    doc = run_cli("gpu", "--json", env=gpu_libs.env(sc, old=True)).json()
    assert doc["driver_version"] == "470.57.02"
    assert doc["cuda_driver_version"] == "11.4"
    assert doc["gpus"][0]["compute_capability"] == "3.7"


def test_init_failure_is_a_note_not_a_crash(gpu_libs):
    sc = Scenario(gpus=(RTX_3060,), init_rc=9)
    res = run_cli("gpu", "--json", env=gpu_libs.env(sc))
    assert res.returncode == 0
    doc = res.json()
    assert doc["vendor"] == "none" and doc["gpus"] == []
    assert any("Driver Not Loaded" in n for n in doc["notes"])


def test_nvml_failure_falls_back_to_nvidia_smi(gpu_libs):
    sc = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060, GTX_1060))
    doc = run_cli("gpu", "--json", env=gpu_libs.env(sc, nvml=False, smi=True)).json()
    assert (doc["vendor"], doc["source"]) == ("nvidia", "nvidia-smi")
    assert doc["cuda_driver_version"] == "12.1"
    assert doc["driver_version"] == "531.18"
    assert [g["compute_capability"] for g in doc["gpus"]] == ["8.6", "6.1"]
    assert any("NVML not found" in n for n in doc["notes"])


def test_wsl2_driver_folder(gpu_libs, tmp_path):
    # NVML is not on the loader path, but the WSL2 folder holds it (as /usr/lib/wsl/lib does).
    sc = Scenario(driver="546.33", cuda=12030, gpus=(RTX_4090,))
    env = gpu_libs.env(sc, nvml=False)
    env["SDBOOT_WSL_LIB_DIR"] = str(gpu_libs.current)
    doc = run_cli("gpu", "--json", env=env).json()
    assert (doc["vendor"], doc["source"], doc["driver_version"]) == ("nvidia", "nvml", "546.33")
    assert any("WSL2" in n for n in doc["notes"])


def test_hanging_driver_is_bounded(gpu_libs):
    sc = Scenario(gpus=(RTX_3060,), sleep_s=60)
    start = time.monotonic()
    res = run_cli("gpu", "--json", env=gpu_libs.env(sc), timeout=40)
    assert time.monotonic() - start < 20
    assert res.returncode == 0
    assert any("did not answer" in n for n in res.json()["notes"])


def test_this_machine_without_gpu():
    res = run_cli("gpu", "--json")
    assert res.returncode == 0
    doc = res.json()
    assert doc["gpus"] == [] and doc["vendor"] == "none"
    assert doc["notes"], "every skipped source leaves a note"


def test_human_view_is_a_table(gpu_libs):
    sc = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
    res = run_cli("gpu", env=gpu_libs.env(sc))
    assert res.returncode == 0
    assert "NVIDIA GeForce RTX 3060" in res.stdout and "12.0 GiB" in res.stdout
    assert "supports CUDA 12.1" in res.stdout


def _fake_sysfs(root: Path, cards: list[tuple[str, str, int | None]]) -> Path:
    for i, (vendor, device, vram) in enumerate(cards):
        dev = root / "class" / "drm" / f"card{i}" / "device"
        dev.mkdir(parents=True)
        (dev / "vendor").write_text(vendor + "\n")
        (dev / "device").write_text(device + "\n")
        if vram is not None:
            (dev / "mem_info_vram_total").write_text(str(vram * 1024 * 1024))
    return root


def test_amd_gpu_from_sysfs(tmp_path):
    root = _fake_sysfs(tmp_path / "sys", [("0x8086", "0x4680", None),
                                           ("0x1002", "0x744c", 24560)])
    doc = run_cli("gpu", "--json", env={"SDBOOT_SYSFS_ROOT": str(root)}).json()
    assert (doc["vendor"], doc["source"]) == ("amd", "sysfs")
    assert doc["gpus"][0]["memory_total_mib"] == 24560


def test_nvidia_card_without_driver_is_reported(tmp_path):
    root = _fake_sysfs(tmp_path / "sys", [("0x10de", "0x2504", None)])
    doc = run_cli("gpu", "--json", env={"SDBOOT_SYSFS_ROOT": str(root)}).json()
    assert doc["vendor"] == "nvidia" and doc["source"] == "sysfs"
    assert any("driver did not answer" in n for n in doc["notes"])


@pytest.mark.parametrize(("code", "text"), [(12010, "12.1"), (11040, "11.4"), (13000, "13.0"),
                                            (12080, "12.8")])
def test_cuda_version_encoding(code, text):
    assert format_cuda_version(code) == text


def test_parse_smi_output():
    driver, devs = parse_smi_csv("0, NVIDIA GeForce RTX 3060, 12288, 8.6, 531.18\n"
                                 "1, Tesla K80, 11441, 3.7, 531.18\n")
    assert driver == "531.18" and [d.compute_capability for d in devs] == ["8.6", "3.7"]
    assert parse_smi_cuda_version("| NVIDIA-SMI 531.18   Driver Version: 531.18   "
                                  "CUDA Version: 12.1     |") == "12.1"


ROCMINFO = """*******
Agent 1
*******
  Name:                    AMD Ryzen 9 7950X 16-Core Processor
  Marketing Name:          AMD Ryzen 9 7950X 16-Core Processor
  Device Type:             CPU
*******
Agent 2
*******
  Name:                    gfx1100
  Marketing Name:          AMD Radeon RX 7900 XTX
  Device Type:             GPU
"""


def test_parse_rocminfo_keeps_gpu_agents_only():
    from sdboot.machine.gpu import parse_rocminfo

    devs = parse_rocminfo(ROCMINFO)
    assert [d.name for d in devs] == ["AMD Radeon RX 7900 XTX (gfx1100)"]
