"""hf-unreachable's fix names only a Hugging Face mirror that answered in the same doctor
run (the real check wrote a dead one and reported it fixed). Loopback servers: a dead mirror
(a closed port) listed first, a live one second; then only dead ones, where no automatic
fix is offered."""

from __future__ import annotations

import os
from pathlib import Path

from tests.doctor.test_diagnose_checkout import doctor_cli, found, gitenv, make_webui
from tests.world.githost import GitHost, closed_port

__all__ = ["gitenv"]  # the fixture, used by name


def hf_mirror_world(tmp_path: Path, gitenv: dict[str, str], live: bool):
    """A dead Hugging Face endpoint (a closed port), a dead hf mirror listed first and, with
    `live`, a mirror on loopback that serves the CLIP tokenizer's config.json."""
    files = tmp_path / "hf-files"
    config = files / "openai/clip-vit-large-patch14/resolve/main/config.json"
    config.parent.mkdir(parents=True)
    config.write_text("{}")
    server = GitHost({"/": files}).start()
    dead = f"http://127.0.0.1:{closed_port()}"
    mirrors = [f"  - {{name: hf-dead, kind: hf, url: '{dead}'}}\n"]
    if live:
        mirrors.append(f"  - {{name: hf-live, kind: hf, url: '{server.url.rstrip('/')}'}}\n")
    (tmp_path / "sdboot-config/mirrors.yaml").write_text(
        "replace_shipped: true\nmirrors:\n" + "".join(mirrors)
        + f"upstreams: {{github: '{dead}/', hf: '{dead}'}}\n")
    env = {**gitenv, "PIP_INDEX_URL": dead + "/simple", "PIP_CONFIG_FILE": os.devnull,
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return server, env


def _hf(doc: dict) -> dict:
    return next(f for c in doc["checks"] for f in c["findings"] if f["code"] == "hf-unreachable")


def test_fix_picks_the_mirror_that_answered(tmp_path: Path, gitenv: dict[str, str]) -> None:
    server, env = hf_mirror_world(tmp_path, gitenv, live=True)
    try:
        root = make_webui(tmp_path, clones=False)
        rc, doc = doctor_cli(root, env, "--only", "hf-unreachable")
        fix = _hf(doc)["fix"]
        assert fix["automatic"] and fix["commands"][0][-2:] == ["--hf", "hf-live"]
        assert "hf-dead" not in str(doc)  # a spare mirror that is down is not reported
        rc, doc = doctor_cli(root, env, "--only", "hf-unreachable", "--fix", "--yes")
        assert rc == 0 and found(doc) == {}, doc
        text = (root / "webui-user.sh").read_text()
        assert f"HF_ENDPOINT={server.url.rstrip('/')}" in text.replace("'", "").replace('"', "")
    finally:
        server.stop()


def test_no_mirror_answered_no_automatic_fix(tmp_path: Path, gitenv: dict[str, str]) -> None:
    server, env = hf_mirror_world(tmp_path, gitenv, live=False)
    try:
        root = make_webui(tmp_path, clones=False)
        rc, doc = doctor_cli(root, env, "--only", "hf-unreachable")
        finding = _hf(doc)
        assert not finding["fix"]["automatic"] and not finding["fix"].get("commands")
        assert "none of the known Hugging Face mirrors answered" in finding["fix"]["summary"]
        assert doc["summary"]["fixable"] == 0
        rc, doc = doctor_cli(root, env, "--only", "hf-unreachable", "--fix", "--yes")
        assert not (root / "webui-user.sh").exists()  # nothing written, nothing "fixed"
        assert found(doc) == {"hf-unreachable": "warning"}
    finally:
        server.stop()
