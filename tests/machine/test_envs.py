"""Environment backends: the derived conda environment file (checked against the four real
upstream environment-wsl2.yaml files), conda/micromamba through a fake executable that
checks conda's real command line, venv creation and locating a WebUI's environment."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from sdboot.errors import SdbootError
from sdboot.io.runner import Runner
from sdboot.machine.envs import locate_env, parse_webui_user_bat, parse_webui_user_sh
from sdboot.machine.envs.conda import CondaEnv, derive_environment, python_of_environment
from sdboot.machine.envs.venv import VenvEnv, find_python
from tests.world.fake_conda import install_fake_conda


def _environment(python: str, pip: str, cuda: str, torch: str, vision: str, numpy: str,
                 tail: str = "\n") -> str:
    """An environment-wsl2.yaml in the shape the WebUI has shipped over the years (the
    `automatic` env, the pytorch channel, exact pins); the tests own these files."""
    deps = [f"python={python}", f"pip={pip}", f"cudatoolkit={cuda}", f"pytorch={torch}",
            f"torchvision={vision}", f"numpy={numpy}"]
    return ("name: automatic\nchannels:\n  - pytorch\n  - defaults\ndependencies:\n"
            + "\n".join(f"  - {d}" for d in deps) + tail)


ENV_TEXTS = {
    "py3.8-torch1.11": _environment("3.8.5", "20.3", "11.3", "1.11.0", "0.12.0", "1.19.2"),
    "py3.10-torch1.12-no-final-newline": _environment("3.10", "22.2.2", "11.3", "1.12.1",
                                                      "0.13.1", "1.23.1", tail=""),
    "py3.10-torch2.0": _environment("3.10", "23.0", "11.8", "2.0", "0.15", "1.23"),
    "py3.10-torch2.0-trailing-blanks": _environment("3.10", "23.0", "11.8", "2.0", "0.15",
                                                    "1.23", tail="\n  "),
}


@pytest.mark.parametrize("source", ENV_TEXTS.values(), ids=ENV_TEXTS.keys())
def test_derived_file_drops_torch_and_keeps_the_rest(source):
    original = yaml.safe_load(source)
    text, doc = derive_environment(source)
    assert yaml.safe_load(text) == doc
    names = [d.split("=")[0] for d in doc["dependencies"]]
    assert not {"pytorch", "torchvision", "cudatoolkit", "pytorch-cuda"} & set(names)
    kept = [d for d in original["dependencies"]
            if d.split("=")[0] not in ("pytorch", "torchvision", "cudatoolkit")]
    assert doc["dependencies"] == kept  # python, pip, numpy with their exact pins
    assert doc["name"] == "automatic"
    assert doc["channels"] == ["defaults"]  # the stale pytorch channel is gone
    assert python_of_environment(doc) in ("3.10", "3.8")


def test_channel_mirror_goes_first():
    text, doc = derive_environment(ENV_TEXTS["py3.10-torch2.0"],
                                   channel_mirror="https://mirrors.example.cn/anaconda/pkgs/main")
    assert doc["channels"] == ["https://mirrors.example.cn/anaconda/pkgs/main", "defaults"]


def test_pip_section_loses_torch_too():
    text = ("name: automatic\nchannels: [pytorch, defaults]\ndependencies:\n  - python=3.10\n"
            "  - pip:\n    - torch==2.0.1\n    - gradio==3.41.2\n")
    _, doc = derive_environment(text)
    assert doc["dependencies"] == ["python=3.10", {"pip": ["gradio==3.41.2"]}]


@pytest.mark.parametrize("flavour", ["conda", "micromamba"])
def test_conda_env_from_derived_file(tmp_path, flavour):
    bin_dir = install_fake_conda(tmp_path / "conda")
    text, _ = derive_environment(ENV_TEXTS["py3.10-torch2.0"])
    env_file = tmp_path / "environment-sdboot.yaml"
    env_file.write_text(text)
    env = CondaEnv(str(bin_dir / flavour), environment_file=env_file,
                   prefix=tmp_path / "webui" / "env")
    assert not env.exists()
    env.create(Runner())
    assert env.exists() and env.python().exists()
    calls = [json.loads(line) for line in (tmp_path / "conda" / "calls.jsonl").read_text()
             .splitlines()]
    if flavour == "conda":
        assert calls[0] == ["conda", "env", "create", "-f", str(env_file), "-p",
                            str(tmp_path / "webui" / "env")]
    else:
        assert calls[0][:4] == ["micromamba", "create", "-y", "-f"]
    recorded = yaml.safe_load((env.prefix / "conda-meta" / "environment.yaml").read_text())
    assert "pytorch=2.0" not in recorded["dependencies"]


def test_conda_env_by_name_is_found_after_creation(tmp_path):
    bin_dir = install_fake_conda(tmp_path / "conda")
    env_file = tmp_path / "e.yaml"
    env_file.write_text(derive_environment(ENV_TEXTS["py3.10-torch2.0"])[0])
    env = CondaEnv(str(bin_dir / "conda"), environment_file=env_file, name="automatic")
    env.create(Runner())
    assert env.prefix == tmp_path / "conda" / "envs" / "automatic"
    again = CondaEnv(str(bin_dir / "conda"), name="automatic")
    assert again.resolve_prefix(Runner()) == env.prefix


def test_conda_failure_is_an_error_with_hint(tmp_path):
    bin_dir = install_fake_conda(tmp_path / "conda")
    env = CondaEnv(str(bin_dir / "conda"), environment_file=tmp_path / "missing.yaml",
                   prefix=tmp_path / "env")
    with pytest.raises(SdbootError) as err:
        env.create(Runner())
    assert err.value.exit_code == 1 and "could not create" in err.value.message


def test_venv_backend(tmp_path):
    env = VenvEnv(tmp_path / "venv")
    assert not env.exists()
    env.create(Runner())
    assert env.exists() and env.python().exists()
    env.remove()
    assert not env.exists()


def test_find_python_finds_this_version_and_explains_a_missing_one():
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert find_python(here, Runner()).exists()
    with pytest.raises(SdbootError) as err:
        find_python("3.1", Runner())
    assert "Python 3.1 was not found" in err.value.message and err.value.hint


def test_locate_env_reads_webui_user(tmp_path):
    webui = tmp_path / "sd"
    (webui / "envs" / "sd").mkdir(parents=True)
    VenvEnv(webui / "envs" / "sd").create(Runner())
    (webui / "webui-user.sh").write_text('#!/bin/bash\n#venv_dir="venv"\nvenv_dir="envs/sd"\n')
    python, how = locate_env(webui)
    assert python == webui / "envs" / "sd" / "bin" / "python" and "webui-user" in how


def test_webui_user_parsers():
    assert parse_webui_user_sh('export COMMANDLINE_ARGS="--xformers"\n#python_cmd="x"\n') == {
        "COMMANDLINE_ARGS": "--xformers"}
    assert parse_webui_user_bat("@echo off\nset PYTHON=C:\\Py310\\python.exe\nset VENV_DIR=\n") \
        == {"PYTHON": "C:\\Py310\\python.exe", "VENV_DIR": ""}
