"""The CLI as users meet it: help, errors in two lines, JSON only on stdout, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.world.gpu import K80, RTX_3060, Scenario


def test_help_lists_the_commands():
    res = run_cli("--help")
    assert res.returncode == 0
    for word in ("gpu", "profiles", "resolve"):
        assert word in res.stdout


def test_usage_error_is_two_lines_exit_2():
    res = run_cli("gpu", "--jsn")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "--jsn" in lines[0]
    assert lines[1].startswith("hint: ")


def test_json_goes_to_stdout_and_parses(gpu_libs):
    sc = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
    res = run_cli("resolve", "--webui-version", "1.10.1", "--json", env=gpu_libs.env(sc))
    doc = json.loads(res.stdout)
    assert doc["schema"] == "sdboot.resolve/1"
    assert (doc["torch"], doc["torchvision"], doc["xformers"], doc["cuda"]) == (
        "2.1.2+cu121", "0.16.2+cu121", "0.0.23.post1", "12.1")
    assert doc["index_url"] == "https://download.pytorch.org/whl/cu121"


def test_nothing_fits_is_exit_1_with_advice(gpu_libs):
    sc = Scenario(driver="470.57.02", cuda=11040, gpus=(K80,))
    res = run_cli("resolve", env=gpu_libs.env(sc, old=True))
    assert res.returncode == 1
    assert "error: no profile fits this machine" in res.stderr
    assert "update the driver to >= 515.43.04 or use --profile cpu" in res.stderr
    doc = run_cli("resolve", "--json", env=gpu_libs.env(sc, old=True)).json()
    assert doc["profile"] is None and doc["advice"]


def test_explain_lists_rejections(gpu_libs):
    sc = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
    res = run_cli("resolve", "--explain", env=gpu_libs.env(sc))
    assert "rejected:" in res.stdout
    assert "torch2.10.0-cu130: driver 531.18 supports CUDA 12.1; this build needs CUDA 13.0" \
        in res.stdout


def test_bad_python_version():
    res = run_cli("resolve", "--python-version", "three")
    assert res.returncode == 2 and "not a Python version" in res.stderr


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag(flag):
    res = run_cli(flag)
    assert res.returncode == 0 and res.stdout.startswith("sdboot ")
    lines = res.stdout.splitlines()
    assert lines[1].startswith("python 3.") and lines[2].startswith("platform ")
    assert re.fullmatch(r"data profiles \(\d+\): [0-9a-f]{12}", lines[-1]), lines


def test_a_pipe_gets_whole_lines_and_a_dry_run_needs_no_network(tmp_path):
    """Into a pipe nothing is wrapped at 80 columns: URLs and commands stay copyable. And
    a dry run plans without the network (it says what it did not check)."""
    target = tmp_path / ("a-rather-long-folder-name-" * 3) / "webui"
    res = run_cli("install", str(target), "--dry-run", "--profile", "cpu", "--mirror", "none")
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    clone = next(line for line in out.splitlines() if "planned:" in line and "clone" in line)
    assert clone.rstrip().endswith(str(target)) and len(clone) > 80
    assert "were not checked" in out
    assert not target.exists()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell"])
def test_completion_scripts_generate(shell):
    res = run_cli("--show-completion", shell)
    assert res.returncode == 0, res.stderr
    assert "_SDBOOT_COMPLETE" in res.stdout


def test_a_completion_request_is_answered():
    """What the installed bash script asks on <TAB>: the commands that fit."""
    res = run_cli(env={"_SDBOOT_COMPLETE": "complete_bash", "COMP_WORDS": "sdboot mo",
                       "COMP_CWORD": "1"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["models"]
    res = run_cli(env={"_SDBOOT_COMPLETE": "complete_bash", "COMP_WORDS": "sdboot mirror ",
                       "COMP_CWORD": "2"})
    assert {"list", "test", "apply", "status", "revert"} <= set(res.stdout.split())


@pytest.mark.parametrize(("command", "usage"), [
    (["mirror", "apply"], "Usage: sdboot mirror apply [OPTIONS] WEBUI_DIR"),
    (["models", "add"], "Usage: sdboot models add [OPTIONS] PATH_OR_URL"),
    (["profiles", "show"], "Usage: sdboot profiles show [OPTIONS] NAME"),
    (["install"], "Usage: sdboot install [OPTIONS] [WEBUI_DIR]"),
])
def test_usage_lines_name_arguments_plainly(command, usage):
    res = run_cli(*command, "--help")
    assert res.returncode == 0 and res.stdout.splitlines()[0] == usage, res.stdout


def test_mirror_apply_without_a_mirror_is_a_usage_error(tmp_path):
    """No --mirror and no --github/--pypi/--torch/--hf: exit 2, nothing written; --mirror none
    is the way to ask for no mirror on purpose."""
    from tests.world.launchfiles import write_webui

    root = write_webui(tmp_path / "webui")
    before = sorted(p.name for p in root.iterdir())
    res = run_cli("mirror", "apply", str(root))
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: no mirror given\nhint: ") and "--mirror none" in \
        res.stderr
    assert sorted(p.name for p in root.iterdir()) == before
    res = run_cli("mirror", "apply", str(root), "--mirror", "none")
    assert res.returncode == 0, res.stderr
    assert "sdboot" in (root / "webui-user.sh").read_text()


def test_ext_add_failure_hint_names_only_what_ext_add_takes(tmp_path):
    """ext add has no --ref: a failed clone's hint must not send the user to one."""
    from tests.world.githost import closed_port
    from tests.world.launchfiles import write_webui

    root = write_webui(tmp_path / "webui")
    url = f"http://127.0.0.1:{closed_port()}/someone/sd-webui-thing.git"
    res = run_cli("ext", "add", url, "--webui", str(root))
    assert res.returncode == 1, res.stderr
    error, hint = res.stderr.splitlines()
    assert error.startswith(f"error: git clone {url} failed")
    assert hint.startswith("hint: check the URL") and "--ref" not in hint
    assert "zh-cn" in hint and "sdboot mirror test" in hint
    assert not (root / "extensions" / "sd-webui-thing").exists()
    assert not list((root / "extensions").glob(".*partial"))


def test_a_dry_run_probes_no_mirror_it_is_given(tmp_path):
    """install --dry-run --mirror NAME plans through the mirror without asking it anything
    (docs/install.md: a named mirror is not probed; a dry run probes nothing)."""
    from tests.world.githost import GitHost, closed_port

    proxy = GitHost({}).start()
    config = tmp_path / "config"
    config.mkdir()
    (config / "mirrors.yaml").write_text(
        f"mirrors:\n  - {{name: loop, kind: github-prefix, url: '{proxy.url}'}}\n"
        f"upstreams:\n  github: 'http://127.0.0.1:{closed_port()}/'\n")
    try:
        res = run_cli("install", str(tmp_path / "webui"), "--dry-run", "--profile", "cpu",
                      "--mirror", "loop", env={"SDBOOT_CONFIG_DIR": str(config),
                                               "SDBOOT_CACHE_DIR": str(tmp_path / "cache")})
        assert res.returncode == 0, res.stderr
        assert "were not checked" in res.stdout + res.stderr
        assert "loop" in res.stdout and proxy.requests == []
    finally:
        proxy.stop()


@pytest.mark.parametrize(("lang", "suffix"), [("en", ".md"), ("zh_CN", ".zh-CN.md")])
def test_pointers_to_the_docs_are_links_that_open(tmp_path, lang, suffix):
    """doctor's and profiles list's pointers are file:// links to docs that exist (the
    installed copy; tests/test_wheel.py checks the wheel's), in the reader's language."""
    from urllib.parse import unquote, urlsplit

    from tests.world.launchfiles import write_webui

    env = {"SDBOOT_LANG": lang}
    doctor = run_cli("doctor", str(write_webui(tmp_path / "webui")), "--offline", env=env)
    profiles = run_cli("profiles", "list", env=env)
    for res, name in ((doctor, "troubleshooting"), (profiles, "gpu-and-profiles")):
        links = re.findall(r"file://\S+", res.stdout)
        assert len(links) == 1, res.stdout
        path = Path(unquote(urlsplit(links[0]).path))
        assert path.name == name + suffix and path.is_file(), links


def test_doctor_mask_paths_covers_the_docs_link(tmp_path):
    """--mask-paths hides the home folder in every line, the link to the docs included."""
    from tests.conftest import ROOT
    from tests.world.launchfiles import write_webui

    home = ROOT.parent
    if home == Path(home.anchor):
        pytest.skip("the checkout sits at the top of the file system")
    res = run_cli("doctor", str(write_webui(tmp_path / "webui")), "--offline", "--mask-paths",
                  env={"HOME": str(home), "SDBOOT_LANG": "en"})
    assert "file://~/" in res.stdout and str(home) + "/" not in res.stdout, res.stdout
