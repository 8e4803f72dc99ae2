"""Reading a WebUI folder: version from git tags or CHANGELOG.md, pins from its launch file.
The launch-file snippets are written here to reproduce the shapes of the real files
(CRLF endings, f-strings, the Intel/macOS branches after the CUDA default)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sdboot.webui.folder import parse_git_describe, parse_launch_pins, parse_webui_version
from tests.conftest import run_cli
from tests.world.gpu import RTX_3060, Scenario

PRE_V13 = (
    "def prepare_environment():\r\n"
    "    torch_command = os.environ.get('TORCH_COMMAND', \"pip install torch==1.13.1+cu117 "
    "torchvision==0.14.1+cu117 --extra-index-url https://download.pytorch.org/whl/cu117\")\r\n"
    "    requirements_file = os.environ.get('REQS_FILE', \"requirements_versions.txt\")\r\n"
    "    xformers_package = os.environ.get('XFORMERS_PACKAGE', 'xformers==0.0.16rc425')\r\n"
)
POST_V13 = (
    "def prepare_environment():\r\n"
    "    torch_index_url = os.environ.get('TORCH_INDEX_URL', "
    "\"https://download.pytorch.org/whl/cu121\")\r\n"
    "    torch_command = os.environ.get('TORCH_COMMAND', f\"pip install torch==2.1.2 "
    "torchvision==0.16.2 --extra-index-url {torch_index_url}\")\r\n"
    "    if args.use_ipex:\r\n"
    "        torch_command = os.environ.get('TORCH_COMMAND', f\"pip install torch==2.0.0a0 "
    "intel-extension-for-pytorch==2.0.110 --extra-index-url {torch_index_url}\")\r\n"
    "    xformers_package = os.environ.get('XFORMERS_PACKAGE', 'xformers==0.0.23.post1')\r\n"
)


def test_pins_before_v1_3():
    pins = parse_launch_pins(PRE_V13)
    assert (pins.torch, pins.torchvision, pins.xformers) == (
        "1.13.1+cu117", "0.14.1+cu117", "0.0.16rc425")
    assert pins.index_url == "https://download.pytorch.org/whl/cu117"


def test_pins_after_v1_3_follow_the_index_variable():
    pins = parse_launch_pins(POST_V13)
    assert (pins.torch, pins.torchvision, pins.xformers) == ("2.1.2", "0.16.2", "0.0.23.post1")
    assert pins.index_url == "https://download.pytorch.org/whl/cu121"


@pytest.mark.parametrize(("text", "expected"), [
    ("v1.10.1\n", ("1.10.1", True)),
    ("v1.0.0-pre", ("1.0.0-pre", True)),
    ("v1.10.1-42-gdeadbee", ("1.10.1", False)),
    ("something-else", (None, False)),
])
def test_git_describe(text, expected):
    assert parse_git_describe(text) == expected


def test_webui_version_option_values():
    assert parse_webui_version("v1.10.1").version == "1.10.1"
    assert parse_webui_version("forge").flavor == "forge"
    assert parse_webui_version("dev").flavor == "a1111-dev"


def make_webui(root: Path, launch_utils: str | None, launch: str = "", tag: str | None = None,
               forge: bool = False) -> Path:
    (root / "modules").mkdir(parents=True)
    (root / "webui.py").write_text("")
    (root / "launch.py").write_bytes(launch.encode())
    if launch_utils is not None:
        (root / "modules" / "launch_utils.py").write_bytes(launch_utils.encode())
    if forge:
        (root / "modules_forge").mkdir()
    if tag:
        git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "init"], check=True)
        subprocess.run([*git, "tag", tag], check=True)
    return root


def test_resolve_reads_a_webui_checkout(tmp_path, gpu_libs):
    webui = make_webui(tmp_path / "sd", POST_V13, tag="v1.10.1")
    sc = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
    doc = run_cli("resolve", "--webui", str(webui), "--json", env=gpu_libs.env(sc)).json()
    assert doc["profile"] == "torch2.1.2-cu121"
    assert doc["webui"] == {"flavor": "a1111", "version": "1.10.1", "source": "git-tag",
                            "torch_pin": "2.1.2"}


def test_resolve_reads_pins_without_git(tmp_path, gpu_libs):
    webui = make_webui(tmp_path / "sd", None, launch=PRE_V13)
    sc = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
    doc = run_cli("resolve", "--webui", str(webui), "--json", env=gpu_libs.env(sc)).json()
    assert doc["profile"] == "torch1.13.1-cu117"
    assert "launch file pins torch 1.13.1+cu117" in doc["reasons"][0]


def test_forge_is_recognised(tmp_path, gpu_libs):
    webui = make_webui(tmp_path / "forge", POST_V13.replace("2.1.2", "2.3.1"), forge=True)
    sc = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
    doc = run_cli("resolve", "--webui", str(webui), "--json", env=gpu_libs.env(sc)).json()
    assert doc["webui"]["flavor"] == "forge"
    assert doc["profile"] == "torch2.3.1-cu121"


def test_not_a_webui_is_bad_input(tmp_path):
    res = run_cli("resolve", "--webui", str(tmp_path))
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "not a Stable Diffusion WebUI" in res.stderr
