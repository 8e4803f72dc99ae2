"""`sdboot update`, `rollback` and `snapshots` end to end on the local world, with a WebUI
that has a history (tests/world/webui_versions.py): v1.9.4 -> v1.10.1 -> dev (a newer torch
line: the profile moves) with a rewritten launch file and sdboot's managed blocks in place;
the user's own change stops an update; a failed verify rolls back to the exact snapshot; an
update killed at each step converges on the old state or the new one; a hand-edited snapshot
is a two-line error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sdboot.install.snapshot import FILES
from sdboot.io.files import exclusive_lock
from tests.world.githost import git
from tests.world.gpu import RTX_3060, Scenario
from tests.world.local import LocalWorld, build_local_world, kill_at_line, sdboot_argv
from tests.world.webui_versions import add_webui_versions, history_repo

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# a driver new enough for the cu128 line (>= 570.26): dev's pins move the profile there
SCENARIO = Scenario(driver="570.86.10", cuda=12080, gpus=(RTX_3060,))
TOTAL = 12  # snapshot, fetch, checkout + the install's nine steps


@pytest.fixture(scope="module")
def lw(tmp_path_factory: pytest.TempPathFactory) -> Any:
    world = build_local_world(tmp_path_factory.mktemp("update-world"), SCENARIO)
    add_webui_versions(world)
    yield world
    world.stop()


def sdboot(lw: LocalWorld, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sdboot_argv(*args), env=lw.env(**extra), capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def _json(res: subprocess.CompletedProcess[str], code: int = 0) -> dict[str, Any]:
    assert res.returncode == code, res.stdout[-3000:] + res.stderr[-3000:]
    return dict(json.loads(res.stdout))


def _two_lines(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith(("error:", "hint:"))]
    assert len(lines) == 2 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def _freeze(webui: Path) -> dict[str, str]:
    from sdboot.io.runner import Runner
    from sdboot.stack.lock import freeze

    return freeze(webui / "venv/bin/python", Runner())


def state_of(webui: Path) -> dict[str, Any]:
    """Everything a rollback must give back: commits, the environment, the files' bytes."""
    repos = webui / "repositories"
    exts = webui / "extensions"
    return {"head": git("rev-parse", "HEAD", cwd=webui),
            "branch": git("branch", "--show-current", cwd=webui),
            "repos": {p.name: git("rev-parse", "HEAD", cwd=p) for p in sorted(repos.iterdir())
                      if (p / ".git").exists()},
            "exts": {p.name: (git("rev-parse", "HEAD", cwd=p), git("branch", "--show-current",
                                                                     cwd=p))
                     for p in sorted(exts.iterdir()) if (p / ".git").exists()},
            "env": _freeze(webui),
            "files": {rel: (webui / rel).read_bytes() if (webui / rel).is_file() else None
                      for rel in FILES}}


def _rewritten(lw: LocalWorld, webui: Path) -> bool:
    doc = _json(sdboot(lw, "mirror", "status", str(webui), "--json"))
    return bool(doc["rewrite"]) and doc["rewrite"]["state"] == "applied"


@pytest.fixture(scope="module")
def webui(lw: LocalWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An install of v1.9.4 through the world's proxy, its launch file rewritten, and an
    extension on its master branch."""
    path = tmp_path_factory.mktemp("w") / "webui"
    _json(sdboot(lw, "install", str(path), "--mirror", "world", "--ref", "v1.9.4", "--json"))
    ext = history_repo(lw.github.mounts["/gh/"], "someone/sd-webui-ext",
                       [({"scripts/ext.py": "# one\n"}, None), ({"scripts/ext.py": "# two\n"},
                                                                None)])
    lw.commits.update({"ext": ext[0], "ext-new": ext[1]})
    where = path / "extensions" / "sd-webui-ext"
    git("clone", "-q", lw.github_url + "someone/sd-webui-ext.git", str(where))
    git("reset", "-q", "--hard", ext[0], cwd=where)
    res = sdboot(lw, "mirror", "apply", str(path), "--github", "world-gh", "--mode", "rewrite")
    assert res.returncode == 0, res.stderr
    assert _rewritten(lw, path)
    return path


def test_update_story(lw: LocalWorld, webui: Path) -> None:
    c = lw.commits
    # without --ref: an install of a tag follows the releases (latest = v1.10.1 by version)
    dry = _json(sdboot(lw, "update", str(webui), "--dry-run", "--json"))
    assert dry["ref"] == "v1.10.1" and dry["dry_run"] and not dry["complete"]
    assert [s["status"] for s in dry["steps"]] == ["planned"] * 4
    assert git("rev-parse", "HEAD", cwd=webui) == c["v1.9.4"]
    assert not (webui / ".sdboot/snapshots").exists()

    # v1.9.4 -> latest (v1.10.1): same profile, one requirement more, the rewrite kept
    doc = _json(sdboot(lw, "update", str(webui), "--ref", "latest", "--yes", "--json"))
    assert doc["complete"] and doc["to"]["commit"] == c["v1.10.1"]
    assert doc["from"]["commit"] == c["v1.9.4"] and doc["snapshot"]
    steps = {s["name"]: s["status"] for s in doc["steps"]}
    assert steps["snapshot"] == steps["checkout"] == "done" and steps["torch"] == "skipped"
    assert doc["to"]["profile"] == "torch2.1.2-cu121"
    assert _freeze(webui)["sdb-webui-new"] == "1.0.0"
    assert _rewritten(lw, webui)
    assert "sdb-webui-new" in (webui / "requirements_versions.txt").read_text()
    assert "export venv_dir=venv" in (webui / "webui-user.sh").read_text()
    assert git("config", "--get", "remote.origin.url", cwd=webui).startswith(
        "https://github.com/")  # the proxy never written into origin
    at_v1101 = state_of(webui)

    # the user's own change stops the update, naming the file; nothing changes
    (webui / "webui.py").write_text("# my edit\n")
    res = sdboot(lw, "update", str(webui), "--ref", "dev", "--yes", "--json")
    assert "webui.py" in _two_lines(res)
    assert "webui.py" in _json(res, 1)["error"]["message"]  # a document on failure too
    assert git("rev-parse", "HEAD", cwd=webui) == c["v1.10.1"]
    assert len(_json(sdboot(lw, "snapshots", str(webui), "--json"))["snapshots"]) == 1

    # --force stashes it; v1.10.1 -> dev moves the profile to the cu128 line
    doc = _json(sdboot(lw, "update", str(webui), "--ref", "dev", "--force", "--yes", "--json"))
    assert doc["complete"] and doc["to"]["commit"] == c["dev"] and doc["stash"]
    assert doc["to"]["profile"] == "torch2.7.0-cu128"
    assert _freeze(webui)["torch"] == "2.7.0+cu128"
    assert git("rev-parse", "HEAD", cwd=webui / "repositories/k-diffusion") == c["kd-dev"]
    assert "my edit" in git("stash", "show", "-p", doc["stash"], cwd=webui)
    assert _rewritten(lw, webui)
    assert "torch==2.7.0" in (webui / "webui-user.sh").read_text()

    snaps = _json(sdboot(lw, "snapshots", str(webui), "--json"))
    assert snaps["schema"] == "sdboot.snapshots/1" and len(snaps["snapshots"]) == 2
    assert snaps["snapshots"][-1]["commit"] == c["v1.10.1"]

    # rollback by hand: the newest snapshot, exactly (the extension the user moved too)
    git("checkout", "-q", c["ext-new"], cwd=webui / "extensions/sd-webui-ext")
    res = sdboot(lw, "rollback", str(webui), "--yes", "--json")
    assert res.returncode == 0, res.stderr
    assert state_of(webui) == at_v1101

    # an update whose verify fails (CUDA cannot start) rolls back to the exact snapshot
    res = sdboot(lw, "update", str(webui), "--ref", "dev", "--yes", "--json",
                 FAKE_CUDA_INIT_RC="100")
    doc = _json(res, 1)
    assert doc["rolled_back"] and "verify" in doc["error"]["message"]
    assert "rolled back to snapshot" in doc["error"]["message"]
    assert state_of(webui) == at_v1101
    assert not (webui / ".sdboot/update.json").exists()
    assert _json(sdboot(lw, "verify", str(webui), "--json"))["ok"]

    # already there: nothing to do, no snapshot
    doc = _json(sdboot(lw, "update", str(webui), "--ref", "v1.10.1", "--json"))
    assert doc["nothing_to_do"]


def _kill_at(lw: LocalWorld, webui: Path, step: int) -> None:
    argv = sdboot_argv("update", str(webui), "--ref", "dev", "--yes")
    assert kill_at_line(argv, lw.env(), ROOT, f"[{step}/{TOTAL}]"), f"step {step} never started"


def test_killed_at_each_step_converges(lw: LocalWorld, webui: Path) -> None:
    """Killed at any step, `sdboot update` again finishes it (the new state, whole), or
    `sdboot rollback` gives the old one back, exactly; never a mix."""
    c = lw.commits
    if git("rev-parse", "HEAD", cwd=webui) != c["v1.10.1"]:  # run on its own
        _json(sdboot(lw, "update", str(webui), "--ref", "v1.10.1", "--yes", "--json"))
    before = state_of(webui)
    for step in range(1, TOTAL + 1):
        _kill_at(lw, webui, step)
        if step % 2:  # the same command again finishes it: the new state, whole
            doc = _json(sdboot(lw, "update", str(webui), "--ref", "dev", "--yes", "--json"))
            assert doc["complete"] and doc["to"]["commit"] == c["dev"], (step, doc)
            assert _freeze(webui)["torch"] == "2.7.0+cu128"
            assert git("rev-parse", "HEAD", cwd=webui / "repositories/k-diffusion") \
                == c["kd-dev"]
            assert not (webui / ".sdboot/update.json").exists()
            if step == 1:  # and the install is complete: nothing left to do
                assert _json(sdboot(lw, "install", str(webui), "--json"))["nothing_to_do"]
        if step == TOTAL - 1:  # a rollback killed part-way finishes when run again
            argv = sdboot_argv("rollback", str(webui), "--yes")
            assert kill_at_line(argv, lw.env(), ROOT, "[2/3]")
        res = sdboot(lw, "rollback", str(webui), "--yes")  # or rollback: the old state, whole
        assert res.returncode == 0, res.stderr
        assert state_of(webui) == before, step


def test_bad_snapshots_and_refs(lw: LocalWorld, webui: Path) -> None:
    snaps = _json(sdboot(lw, "snapshots", str(webui), "--json"))["snapshots"]
    if not snaps:  # run on its own: one update makes one
        _json(sdboot(lw, "update", str(webui), "--ref", "latest", "--yes", "--json"))
        snaps = _json(sdboot(lw, "snapshots", str(webui), "--json"))["snapshots"]
    snap = webui / ".sdboot/snapshots" / f"{snaps[0]['id']}.json"
    good = snap.read_bytes()
    try:
        doc = json.loads(good)
        doc["repositories"] = {"../../evil": {"commit": "0" * 40, "origin": None}}
        snap.write_text(json.dumps(doc))
        res = sdboot(lw, "rollback", str(webui), snaps[0]["id"], "--yes")
        assert res.returncode == 2 and "invalid field" in _two_lines(res)
        doc = json.loads(good)
        doc["webui"]["commit"] = "HEAD~1"
        snap.write_text(json.dumps(doc))
        assert sdboot(lw, "rollback", str(webui), snaps[0]["id"], "--yes").returncode == 2
        snap.write_text("{not json")
        res = sdboot(lw, "snapshots", str(webui))
        assert res.returncode == 2 and "damaged" in _two_lines(res)
    finally:
        snap.write_bytes(good)
    res = sdboot(lw, "rollback", str(webui), "../x", "--yes", "--json")
    assert "not a snapshot name" in _two_lines(res)
    assert _json(res, 2)["error"]["exit_code"] == 2
    res = sdboot(lw, "snapshots", str(webui.parent))
    assert res.returncode == 2 and "not a WebUI" in _two_lines(res)
    res = sdboot(lw, "update", str(webui), "--ref", "v9.9.9", "--yes")
    assert res.returncode == 2 and "no branch or tag v9.9.9" in _two_lines(res)
    res = sdboot(lw, "update", str(webui), "--ref", "--upload-pack=x")
    assert res.returncode == 2
    res = sdboot(lw, "update", str(webui.parent), "--yes")
    assert res.returncode == 2 and "not a WebUI git checkout" in _two_lines(res)
    with exclusive_lock(webui.parent / f".{webui.name}.sdboot.lock") as held:
        assert held
        res = sdboot(lw, "update", str(webui), "--ref", "dev", "--yes")
    assert res.returncode == 1 and "another sdboot install is running" in _two_lines(res)
