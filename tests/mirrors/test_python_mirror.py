"""The `python` mirror kind (python-build-standalone releases for `uv python install`): the
table, presets and overlay validation, the mirror each selection gives uv, the health probe
against a loopback mirror, and the URL real uv derives from UV_PYTHON_INSTALL_MIRROR."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from sdboot.mirrors.health import PYTHON_FILE, check_body, plan_candidates, run_health
from sdboot.mirrors.loading import load_mirrors, select
from sdboot.mirrors.table import PBS_RELEASES, Mirror, MirrorKind, python_install_mirror
from tests.conftest import run_cli
from tests.world.pbs import MIRROR_PATH, ReleaseServer

GHFAST_PBS = "https://ghfast.top/https://github.com/astral-sh/python-build-standalone/" \
    "releases/download"


@pytest.fixture(scope="module")
def table():
    return load_mirrors()


def test_the_shipped_table_has_python_mirrors_and_the_cn_presets_use_one(table) -> None:
    pythons = {m.name: m for m in table.of_group("python")}
    assert pythons["ghfast-python"].url == GHFAST_PBS
    assert pythons["ghfast-python"].kind == MirrorKind.PYTHON
    # NJU's folder keeps the old owner name and only the newest release: listed, no preset
    assert pythons["nju-python"].url == \
        "https://mirror.nju.edu.cn/github-release/indygreg/python-build-standalone"
    assert table.presets["cn"]["python"] == "ghfast-python"
    assert table.presets["cn-alt"]["python"] == "gh-proxy-python"
    assert all(p.get("python") != "nju-python" for p in table.presets.values())
    assert table.upstreams["python"] == PBS_RELEASES
    assert table.probes["python_file"] == PYTHON_FILE


def test_mirror_list_json_shows_the_python_kind_and_preset() -> None:
    doc = run_cli("mirror", "list", "--json").json()
    kinds = {e["name"]: e["kind"] for e in doc["mirrors"]}
    assert kinds["ghfast-python"] == "python" and kinds["python-standalone-org"] == "python"
    assert doc["presets"]["cn"]["python"] == "ghfast-python"


def test_an_overlay_python_mirror_and_preset_load_and_bad_ones_exit_2(config_dir: Path) -> None:
    (config_dir / "mirrors.yaml").write_text(
        "mirrors:\n"
        "  - name: corp-python\n    kind: python\n"
        "    url: https://user:s3cret@pbs.corp.example/releases/\n"
        "presets:\n  corp: {python: corp-python}\n")
    env = {"SDBOOT_CONFIG_DIR": str(config_dir)}
    doc = run_cli("mirror", "list", "--json", env=env).json()
    assert doc["presets"]["corp"] == {"python": "corp-python"}
    shown = run_cli("mirror", "list", env=env)
    assert "corp-python" in shown.stdout and "s3cret" not in shown.stdout
    sel = select(load_mirrors((config_dir / "mirrors.yaml",)), "corp")
    assert python_install_mirror(sel) == "https://user:s3cret@pbs.corp.example/releases"

    for body, what in [
        ("mirrors:\n  - name: x\n    kind: python\n    url: https://x.example/{variant}\n",
         "only torch mirrors may use {variant}"),
        ("presets:\n  mine: {python: tuna}\n", "which is a pypi mirror"),
        ("probes:\n  python_file: ../../etc/passwd\n", "is not a plain python file"),
    ]:
        (config_dir / "mirrors.yaml").write_text(body)
        res = run_cli("mirror", "list", env=env)
        assert res.returncode == 2 and what in res.stderr, res.stderr


def test_the_mirror_uv_gets_for_each_selection(table) -> None:
    assert python_install_mirror(select(table, "cn")) == GHFAST_PBS
    assert python_install_mirror(select(table, "cn-alt")) == \
        "https://gh-proxy.org/https://github.com/astral-sh/python-build-standalone/" \
        "releases/download"
    # a GitHub prefix proxy alone serves the release folder too
    assert python_install_mirror(select(table, "gh-proxy")) == \
        "https://gh-proxy.org/" + PBS_RELEASES
    # the python mirror wins over the derived one; a trailing / is dropped (uv drops it too)
    assert python_install_mirror(select(table, "cn", python="nju-python")) == \
        "https://mirror.nju.edu.cn/github-release/indygreg/python-build-standalone"
    # a clone-only mirror cannot serve releases; no mirror: uv's own default
    assert python_install_mirror(select(table, "gitclone")) is None
    assert python_install_mirror(select(table, "none")) is None
    assert python_install_mirror(select(table, "cn", python="none")) == GHFAST_PBS


def test_probe_plan_for_python(table) -> None:
    cands = {c.name: c for c in plan_candidates(table, ("python",))}
    assert cands["(upstream)"].probe_url == f"{PBS_RELEASES}/{PYTHON_FILE}"
    assert cands["ghfast-python"].probe_url == f"{GHFAST_PBS}/{PYTHON_FILE}"
    assert {c.expect for c in cands.values()} == {"sha256"}
    digest = hashlib.sha256(b"x").hexdigest().encode()
    assert check_body("sha256", 200, digest + b"  cpython.tar.zst\n") is None
    assert check_body("sha256", 200, digest) is None
    assert check_body("sha256", 200, b"<html>parked domain</html>") == \
        "answered, but not with a checksum"
    assert check_body("sha256", 404, b"") == "HTTP 404"


def test_health_probe_against_a_loopback_python_mirror(tmp_path: Path) -> None:
    """A mirror in the release-folder shape answers the probe; one without that release
    (the newest-only kind) is dead; `+` reaches the server as %2B, as uv sends it."""
    checksum = tmp_path / MIRROR_PATH.strip("/") / PYTHON_FILE.replace("%2B", "+")
    checksum.parent.mkdir(parents=True)
    checksum.write_text(hashlib.sha256(b"archive").hexdigest() + "\n")
    (tmp_path / "newest-only" / "20990101").mkdir(parents=True)
    server = ReleaseServer(tmp_path)
    try:
        base = server.mirror_url
        good = Mirror("loop", MirrorKind.PYTHON, base)
        gone = Mirror("newest", MirrorKind.PYTHON, base.replace(MIRROR_PATH, "/newest-only"))
        mine = replace(load_mirrors(), mirrors={"loop": good, "newest": gone}, upstreams={})
        results = {h.candidate.name: h for h in run_health(plan_candidates(mine, ("python",)),
                                                           5.0)}
        assert results["loop"].alive, results["loop"].error
        assert not results["newest"].alive and results["newest"].error == "HTTP 404"
        assert any("%2B20250115" in p for p in server.requests)
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not on PATH")
def test_real_uv_downloads_from_where_the_mirror_variable_points(tmp_path: Path) -> None:
    """uv's own download list, offline: with UV_PYTHON_INSTALL_MIRROR set as sdboot sets it,
    uv's URL for Python 3.10 is <mirror>/<release tag>/cpython-3.10...; this pins the
    variable's meaning to the uv that is installed."""
    from sdboot.machine.uv_python import plan_python_install

    plan = plan_python_install("3.10", "uv", GHFAST_PBS + "/")
    assert plan is not None
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("UV_PYTHON")},
           **plan.env}
    res = subprocess.run(["uv", "python", "list", "3.10", "--only-downloads", "--show-urls",
                          "--offline"], capture_output=True, text=True, env=env, timeout=60,
                         cwd=tmp_path, check=False)
    urls = [line.split()[-1] for line in res.stdout.splitlines()
            if line.startswith("cpython-3.10")]
    assert urls, res.stdout + res.stderr
    for url in urls:
        assert url.startswith(GHFAST_PBS + "/"), url
        tag, asset = url[len(GHFAST_PBS) + 1:].split("/")
        assert tag.isdigit() and asset.startswith("cpython-3.10.") and "%2B" + tag in asset
