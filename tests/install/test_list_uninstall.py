"""`sdboot list` and `sdboot uninstall`: a full install on the local world is listed (profile,
the install's verify verdict, then the launch guard's, sizes), and uninstall takes away only
what sdboot made (the environment, .sdboot/, its blocks in webui-user.sh / .bat with the
files given back byte for byte, the launch file's mirror rewrite, the list entry), keeps
models and outputs, and with --all removes the folder. Also the registry read tolerantly, and
folders whose environment sdboot did not make."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from sdboot.install.registry import GUARD_FILE, human_size, tree_size
from tests.conftest import run_cli
from tests.world.githost import git
from tests.world.launchfiles import write_webui
from tests.world.local import LocalWorld, build_local_world, sdboot_argv

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lw(tmp_path_factory: pytest.TempPathFactory) -> LocalWorld:
    world = build_local_world(tmp_path_factory.mktemp("local-world"))
    yield world
    world.stop()


def sdboot(lw: LocalWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sdboot_argv(*args), env=lw.env(), capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def listed(lw: LocalWorld) -> dict[str, dict]:
    res = sdboot(lw, "list", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["schema"] == "sdboot.list/1"
    return {i["path"]: i for i in doc["installs"]}


@pytest.mark.slow
def test_install_list_uninstall(lw: LocalWorld, tmp_path: Path) -> None:
    webui = tmp_path / "webui"
    assert sdboot(lw, "install", str(webui), "--mirror", "world").returncode == 0
    entry = listed(lw)[str(webui)]
    assert entry["exists"] and entry["webui"] == "a1111" and entry["version"] == "1.10.1"
    assert entry["profile"] == "torch2.1.2-cu121" and entry["env"] == str(webui / "venv")
    assert entry["verify"]["verdict"] == "pass" and entry["verify"]["source"] == "install"
    assert entry["size"]["env"] == tree_size(webui / "venv") > 0
    assert entry["size"]["total"] >= entry["size"]["env"] + entry["size"]["models"]
    # the launch guard's verdict is newer: it is the one shown
    guard = webui / GUARD_FILE
    guard.write_text(json.dumps({"fingerprint": "x", "gpu": "y", "ok": False, "facts": {}}))
    assert listed(lw)[str(webui)]["verify"] == {
        "verdict": "fail", "source": "launch-guard", "at": listed(lw)[str(webui)]["verify"]["at"]}
    human = sdboot(lw, "list").stdout
    assert str(webui) in human and "verify FAILED" in human and "environment" in human

    # what the user has: a model, an output, a line of their own in webui-user.bat
    (webui / "models/Stable-diffusion").mkdir(parents=True, exist_ok=True)
    (webui / "models/Stable-diffusion/mine.safetensors").write_bytes(b"\0" * 4096)
    with (webui / "webui-user.bat").open("ab") as fh:
        fh.write(b"rem mine\r\n")
    (webui / "outputs/txt2img-images").mkdir(parents=True)
    (webui / "outputs/txt2img-images/00001.png").write_bytes(b"png")
    # the launch file rewritten for a mirror (its original is kept in .sdboot/backup/)
    launch = webui / "modules/launch_utils.py"
    original_launch = launch.read_bytes()
    assert sdboot(lw, "mirror", "apply", str(webui), "--github", "world-gh", "--mode",
                  "rewrite").returncode == 0
    assert launch.read_bytes() != original_launch

    dry = sdboot(lw, "uninstall", str(webui), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["schema"] == "sdboot.uninstall/1" and plan["dry_run"] and not plan["done"]
    gone = {Path(r["path"]).name: r["what"] for r in plan["remove"]}
    assert gone == {"venv": "environment", ".sdboot": "state",
                    "webui-user.sh.sdboot-backup": "backup"}
    assert any("webui-user.bat.sdboot-backup is kept" in n for n in plan["notes"])
    assert set(plan["restore"]) == {"modules/launch_utils.py", "webui-user.sh",
                                    "webui-user.bat"}
    assert plan["registry_entry"] and plan["kept"]["models"] >= 4096
    assert (webui / "venv").is_dir() and (webui / ".sdboot").is_dir()  # nothing changed

    refused = sdboot(lw, "uninstall", str(webui))  # no terminal, no --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert (webui / "venv").is_dir()

    res = sdboot(lw, "uninstall", str(webui), "--yes")
    assert res.returncode == 0, res.stderr
    assert not (webui / "venv").exists() and not (webui / ".sdboot").exists()
    assert launch.read_bytes() == original_launch
    def checkout(name: str) -> bytes:
        return subprocess.run(["git", "-C", str(webui), "show", f"HEAD:{name}"],
                              capture_output=True, check=True).stdout

    assert (webui / "webui-user.sh").read_bytes() == checkout("webui-user.sh")
    assert not (webui / "webui-user.sh.sdboot-backup").exists()
    # the user's line stays; sdboot's copy of the file before it is kept to compare
    assert (webui / "webui-user.bat").read_bytes() == checkout("webui-user.bat") + \
        b"rem mine\r\n"
    assert (webui / "webui-user.bat.sdboot-backup").read_bytes() == checkout("webui-user.bat")
    assert git("status", "--porcelain", "--untracked-files=no", "--", ":!webui-user.bat",
               cwd=webui) == ""
    assert (webui / "models/Stable-diffusion/mine.safetensors").is_file()
    assert (webui / "outputs/txt2img-images/00001.png").is_file()
    assert str(webui) not in listed(lw)
    again = sdboot(lw, "uninstall", str(webui), "--yes")
    assert again.returncode == 0 and "Nothing of sdboot's" in again.stdout


@pytest.mark.slow
def test_uninstall_all_removes_the_folder(lw: LocalWorld, tmp_path: Path) -> None:
    webui = tmp_path / "w2"
    assert sdboot(lw, "install", str(webui), "--mirror", "world").returncode == 0
    outside = tmp_path / "store"
    outside.mkdir()
    (outside / "big.safetensors").write_text("kept")
    (webui / "models").mkdir(exist_ok=True)
    os.symlink(outside, webui / "models/linked-store")  # a link: it goes, not its target
    res = sdboot(lw, "uninstall", str(webui), "--all", "--yes", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["all"] and doc["done"] and doc["remove"][0]["what"] == "webui"
    assert not webui.exists() and (outside / "big.safetensors").read_text() == "kept"
    assert str(webui) not in listed(lw)
    assert not (tmp_path / ".w2.sdboot.lock").exists()


# --- without a full install ---------------------------------------------------------------------


def _env(config_dir: Path) -> dict[str, str]:
    return {"SDBOOT_CONFIG_DIR": str(config_dir)}


def test_a_venv_sdboot_did_not_make_is_kept(tmp_path: Path, config_dir: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    (webui / "venv/bin").mkdir(parents=True)
    (webui / ".sdboot").mkdir()
    res = run_cli("uninstall", str(webui), "--yes", "--json", env=_env(config_dir))
    assert res.returncode == 0, res.stderr
    doc = res.json()
    assert [Path(r["path"]).name for r in doc["remove"]] == [".sdboot"]
    assert any("venv/ is kept" in n for n in doc["notes"])
    assert (webui / "venv/bin").is_dir() and not (webui / ".sdboot").exists()


def test_a_record_that_points_elsewhere_is_refused(tmp_path: Path, config_dir: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    mine = tmp_path / "my-env"
    (mine / "bin").mkdir(parents=True)
    (webui / ".sdboot").mkdir()
    (webui / ".sdboot/install.json").write_text(json.dumps(
        {"schema": "sdboot.install-record/1", "env": {"kind": "venv", "prefix": str(mine)}}))
    res = run_cli("uninstall", str(webui), "--yes", env=_env(config_dir))
    assert res.returncode == 2 and "install.json" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 2
    assert (mine / "bin").is_dir() and (webui / ".sdboot/install.json").is_file()
    assert run_cli("uninstall", str(tmp_path / "nowhere"), env=_env(config_dir)).returncode == 2
    other = write_webui(tmp_path / "not-sdboots")  # --all: only a folder sdboot installed
    res = run_cli("uninstall", str(other), "--all", "--yes", env=_env(config_dir))
    assert res.returncode == 2 and "sdboot did not install" in res.stderr
    assert (other / "launch.py").is_file()
    (tmp_path / "plain").mkdir()
    assert run_cli("uninstall", str(tmp_path / "plain"), env=_env(config_dir)).returncode == 2


@pytest.mark.parametrize("content", [b"{broken", b"[]", json.dumps(
    {"schema": "sdboot.installs/1", "installs": "x"}).encode(), b"\xff\xfe"])
def test_a_damaged_registry_never_crashes_list(tmp_path: Path, config_dir: Path,
                                               content: bytes) -> None:
    (config_dir / "installs.json").write_bytes(content)
    res = run_cli("list", "--json", env=_env(config_dir))
    assert res.returncode == 0, res.stderr
    assert res.json()["installs"] == [] and "note:" in res.stderr


def test_hand_edited_entries(tmp_path: Path, config_dir: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    (webui / "models/Lora").mkdir(parents=True)
    (webui / "models/Lora/x.safetensors").write_bytes(b"\0" * 2048)
    (config_dir / "installs.json").write_text(json.dumps({"schema": "sdboot.installs/1",
        "installs": [
            {"path": str(webui), "profile": 5, "installed_at": "yesterday"},
            {"path": str(tmp_path / "gone"), "webui": "forge"},
            {"path": "relative/path"}, {"nopath": 1}, "junk",
            {"path": str(webui)}]}))
    res = run_cli("list", "--json", env=_env(config_dir))
    assert res.returncode == 0, res.stderr
    rows = {i["path"]: i for i in res.json()["installs"]}
    assert set(rows) == {str(webui), str(tmp_path / "gone")}
    assert rows[str(webui)]["profile"] is None and rows[str(webui)]["size"]["models"] == 2048
    assert rows[str(webui)]["verify"]["verdict"] == "unknown"
    assert rows[str(tmp_path / "gone")]["exists"] is False
    assert "4 damaged or repeated entries skipped" in res.stderr
    human = run_cli("list", env=_env(config_dir))
    assert "missing" in human.stdout and "never verified" in human.stdout


def test_the_guard_file_name_is_the_launch_guards() -> None:
    from sdboot.launch.guard import GUARD_FILE as LAUNCH_GUARD_FILE

    assert GUARD_FILE == LAUNCH_GUARD_FILE


def test_tree_size_counts_files_once_and_follows_no_link(tmp_path: Path) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "a/b/f").write_bytes(b"x" * 1000)
    os.link(tmp_path / "a/b/f", tmp_path / "a/hard")
    (tmp_path / "big").write_bytes(b"y" * 5000)
    os.symlink(tmp_path / "big", tmp_path / "a/link")
    os.symlink(tmp_path, tmp_path / "a/loop")
    assert tree_size(tmp_path / "a") == 1000
    assert tree_size(tmp_path / "big") == 5000 and tree_size(tmp_path / "none") == 0
    assert human_size(1536) == "1.5 KB" and human_size(None) == "-"
