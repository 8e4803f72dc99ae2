"""Profiles on disk: the shipped set, the user overlay, and errors that name file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import ROOT, run_cli

SHIPPED = ROOT / "profiles"


def test_the_human_list_is_sorted_by_torch_version_and_lines_stay_whole():
    from packaging.version import Version

    res = run_cli("profiles", "list")
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines() if "  torch " in line]
    assert len(rows) == len(list(SHIPPED.glob("*.yaml")))
    versions = [Version(Version(row[2]).public) for row in rows]
    assert versions == sorted(versions)  # oldest torch first
    assert rows[0][0] == "torch1.13.1-cu117"


def test_list_shows_every_shipped_profile():
    res = run_cli("profiles", "list", "--json")
    assert res.returncode == 0
    doc = res.json()
    assert doc["schema"] == "sdboot.profiles-list/1"
    names = {p["name"] for p in doc["profiles"]}
    assert {p.stem for p in SHIPPED.glob("*.yaml")} == names
    assert {"cpu", "mps", "rocm", "torch1.13.1-cu117", "torch2.1.2-cu121",
            "torch2.3.1-cu121", "torch2.7.0-cu128"} <= names


def test_show_the_seed_profile():
    res = run_cli("profiles", "show", "torch1.13.1-cu117", "--json")
    doc = res.json()
    assert (doc["torch"], doc["torchvision"], doc["xformers"]) == (
        "1.13.1+cu117", "0.14.1+cu117", "0.0.16rc425")
    assert doc["index_mode"] == "extra"
    human = run_cli("profiles", "show", "torch1.13.1-cu117")
    assert "--extra-index-url" in human.stdout


def test_unknown_profile_lists_the_known_ones():
    res = run_cli("profiles", "show", "torch9")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines[0] == "error: unknown profile 'torch9'"
    assert lines[1].startswith("hint: known profiles: cpu, mps")
    assert "Traceback" not in res.stderr
    res = run_cli("resolve", "--profile", "nope")
    assert res.returncode == 2 and "known profiles" in res.stderr


def test_overlay_adds_and_replaces(config_dir: Path):
    (config_dir / "profiles").mkdir()
    text = (SHIPPED / "cpu.yaml").read_text()
    (config_dir / "profiles" / "cpu.yaml").write_text(
        text.replace("torch: 2.1.2+cpu", "torch: 2.3.1+cpu"))
    (config_dir / "profiles" / "mine.yaml").write_text(
        text.replace("name: cpu", "name: my-cpu"))
    doc = run_cli("profiles", "list", "--json", env={"SDBOOT_CONFIG_DIR": str(config_dir)}).json()
    by_name = {p["name"]: p for p in doc["profiles"]}
    assert by_name["cpu"]["torch"] == "2.3.1+cpu" and by_name["cpu"]["source"] == "user"
    assert by_name["my-cpu"]["source"] == "user"
    assert by_name["mps"]["source"] == "shipped"


def _overlay_error(config_dir: Path, text: str) -> list[str]:
    (config_dir / "profiles").mkdir(exist_ok=True)
    path = config_dir / "profiles" / "broken.yaml"
    path.write_text(text)
    res = run_cli("profiles", "list", env={"SDBOOT_CONFIG_DIR": str(config_dir)})
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("hint: ")
    assert str(path) in lines[0]
    return lines


def test_malformed_yaml_names_file_and_line(config_dir: Path):
    lines = _overlay_error(config_dir, "name: x\nbackend: cuda\ntorch: [1.0\n")
    assert ":4: malformed YAML" in lines[0] or ":3: malformed YAML" in lines[0]


def test_bad_value_names_its_line(config_dir: Path):
    text = (SHIPPED / "torch2.1.2-cu121.yaml").read_text().replace(
        'arch: ["5.0"', 'arch: ["five"')
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("arch:"))
    lines = _overlay_error(config_dir, text)
    assert f"broken.yaml:{line}: bad compute capability 'five'" in lines[0]


def test_unknown_key_and_missing_key(config_dir: Path):
    text = (SHIPPED / "cpu.yaml").read_text()
    lines = _overlay_error(config_dir, text + "torchh: 1\n")
    assert "unknown key 'torchh'" in lines[0]
    shutil.rmtree(config_dir / "profiles")
    lines = _overlay_error(config_dir, text.replace("python:", "pythn:"))
    assert "missing required key 'python'" in lines[0] or "unknown key 'pythn'" in lines[0]


def test_cuda_profile_needs_its_cuda_version(config_dir: Path):
    text = (SHIPPED / "torch2.1.2-cu121.yaml").read_text().replace('cuda: "12.1"\n', "")
    lines = _overlay_error(config_dir, text)
    assert "needs 'cuda'" in lines[0]
