"""The wheel carries profiles/ and mirrors.yaml, and the message catalogs compiled: installed
into a fresh venv, away from the source tree, `sdboot profiles list` must still find its data,
and a Chinese locale must get Chinese messages from the .mo files alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT, clean_env

pytestmark = pytest.mark.slow


def test_wheel_installs_and_finds_its_data(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(ROOT)], check=True, env=clean_env())
    wheel = next(dist.glob("sdboot-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "sdboot/_data/mirrors.yaml" in names
    assert "sdboot/_data/webuis.yaml" in names
    assert "sdboot/_data/profiles/torch1.13.1-cu117.yaml" in names
    assert "sdboot/_data/constraints/a1111/v1.10.1.txt" in names  # the releases' known-good sets
    sources = sorted(p.relative_to(ROOT).with_suffix(".mo").as_posix()
                     for p in (ROOT / "sdboot" / "locale").glob("*/LC_MESSAGES/*.po"))
    assert sources and sorted(n for n in names if n.endswith(".mo")) == sources
    assert not [n for n in names if n.endswith(".po")]  # compiled only: the .mo must work
    assert {"sdboot/_data/docs/troubleshooting.md",
            "sdboot/_data/docs/troubleshooting.zh-CN.md"} <= set(names)

    venv = tmp_path / "venv"
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        py = venv / "bin" / "python"
        # Install the wheel with its declared dependencies, as a user would.
        subprocess.run([uv, "pip", "install", "-q", "--python", str(py), str(wheel)],
                       check=True, env=clean_env())
    else:  # pragma: no cover - uv is a test dependency
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = venv / "bin" / "python"
        subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True)
    env = clean_env()
    env.pop("PYTHONPATH", None)
    work = tmp_path / "elsewhere"
    work.mkdir()
    res = subprocess.run([str(venv / "bin" / "sdboot"), "profiles", "list", "--json"],
                         capture_output=True, text=True, cwd=work, env=env, check=True)
    assert '"torch1.13.1-cu117"' in res.stdout
    where = subprocess.run([str(py), "-c", "import sdboot.io.datafile as d; print(d.data_dir())"],
                           capture_output=True, text=True, cwd=work, env=env, check=True)
    assert str(venv) in where.stdout and os.fspath(ROOT) not in where.stdout

    missing = str(work / "nowhere")
    zh = subprocess.run([str(venv / "bin" / "sdboot"), "doctor", missing], capture_output=True,
                        text=True, cwd=work, env={**env, "SDBOOT_LANG": "", "LANG": "zh_CN.UTF-8"})
    assert zh.returncode == 2
    assert zh.stderr.splitlines()[0] == f"error: {missing} 不存在", zh.stderr
    link = subprocess.run([str(py), "-c", "from sdboot.io.datafile import doc_link; "
                           "print(doc_link('troubleshooting'))"], capture_output=True, text=True,
                          cwd=work, env={**env, "SDBOOT_LANG": "zh_CN"}, check=True).stdout.strip()
    assert link.startswith("file://")
    assert link.endswith("/sdboot/_data/docs/troubleshooting.zh-CN.md")
    assert str(venv) in link
