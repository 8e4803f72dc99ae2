"""Tampered state files (issue 11): the install record (.sdboot/install.json) and the mirror
state (.sdboot/mirror.json) are validated before anything acts on them. An env prefix
outside the WebUI (or inside it, but not the environment sdboot makes), a record that is a
folder, a link, damaged JSON or of an unknown schema, a mirror state whose launch file or
saved original points anywhere but sdboot's own place: each is a two-line error (exit 2)
that changes nothing, and the victim outside the folder stays byte-identical. Planted
symlinks at the lock and at the hidden partial-clone folder are refused the same way.

One full install (through a mirror whose URL carries a password) serves the whole module:
tampering with a complete install must be refused before any step runs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.world.githost import git
from tests.world.launchfiles import write_webui
from tests.world.local import ROOT, LocalWorld, build_local_world, sdboot_argv

PASSWORD = "sdbSecretPw42"


@dataclass
class Installed:
    world: LocalWorld
    env: dict[str, str]
    webui: Path
    base: Path

    @property
    def record(self) -> Path:
        return self.webui / ".sdboot" / "install.json"

    def install(self, *args: str, target: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(sdboot_argv("install", str(target or self.webui), *args),
                              env=self.env, capture_output=True, text=True, cwd=ROOT,
                              timeout=300)


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("state")
    world = build_local_world(base / "world")
    config = base / "config"
    shutil.copytree(world.config_dir, config)
    table = (config / "mirrors.yaml").read_text()
    authed = world.github.url.replace("http://", f"http://sdbuser:{PASSWORD}@")
    table = table.replace("mirrors:\n", "mirrors:\n"
                          f"  - {{name: auth-gh, kind: github-prefix, url: '{authed}'}}\n", 1)
    table = table.replace("presets:\n", "presets:\n"
                          "  authworld: {github: auth-gh, pypi: world-pypi, torch: world-torch}\n",
                          1)
    (config / "mirrors.yaml").write_text(table)
    env = world.env(SDBOOT_CONFIG_DIR=str(config))
    installed = Installed(world, env, base / "webui", base)
    res = installed.install("--mirror", "authworld", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["complete"]
    yield installed
    world.stop()


def _two_lines(res: Any, code: int = 2) -> tuple[str, str]:
    assert res.returncode == code, (res.stdout, res.stderr)
    stderr: str = res.stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    assert "Traceback" not in stderr
    return lines[0], lines[1]


def _victim(base: Path, name: str = "victim") -> Path:
    victim = base / name
    victim.mkdir(exist_ok=True)
    (victim / "precious.txt").write_bytes(b"the user's data\n")
    return victim


def _assert_victim(victim: Path) -> None:
    assert (victim / "precious.txt").read_bytes() == b"the user's data\n"


@contextlib.contextmanager
def tampered(inst: Installed) -> Iterator[dict[str, Any]]:
    """The install record as a dict for the caller to tamper with; the original is put
    back afterwards, and the venv must have survived untouched (same inode and time)."""
    saved = inst.record.read_bytes()
    venv_cfg = inst.webui / "venv" / "pyvenv.cfg"
    before = os.stat(venv_cfg)
    try:
        yield json.loads(saved)
    finally:
        after = os.stat(venv_cfg)  # the environment was neither deleted nor rebuilt
        if inst.record.is_dir() and not inst.record.is_symlink():
            shutil.rmtree(inst.record)
        elif os.path.lexists(inst.record):
            inst.record.unlink()
        inst.record.write_bytes(saved)
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def _write(inst: Installed, doc: dict[str, Any]) -> None:
    inst.record.write_text(json.dumps(doc))


# --- the install record ----------------------------------------------------------------------


def test_the_record_holds_no_secret_and_the_install_is_complete(inst: Installed) -> None:
    text = inst.record.read_text()
    assert PASSWORD not in text and "sdbuser" not in text
    doc = json.loads(text)
    assert doc["clone_url"].startswith("http://***@127.0.0.1")
    assert doc["env"]["prefix"] == str(inst.webui / "venv")
    # the install's webui-user step kept the originals, and git does not see sdboot's files
    for name in ("webui-user.sh", "webui-user.bat"):
        original = subprocess.run(["git", "show", f"HEAD:{name}"], cwd=inst.webui,
                                  capture_output=True, check=True).stdout
        assert (inst.webui / f"{name}.sdboot-backup").read_bytes() == original
    status = git("status", "--porcelain", "--untracked-files=all", cwd=inst.webui)
    assert " M webui-user.sh" in status and "sdboot" not in status
    again = inst.install("--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["nothing_to_do"]


@pytest.mark.parametrize("where", ["victim-outside", "dotdot", "user-folder-inside",
                                   "the-webui-itself", "not-a-string"])
def test_record_env_prefix_that_is_not_sdboots_environment(inst: Installed, where: str) -> None:
    victim = _victim(inst.base)
    inside_user = inst.webui / "models"
    prefix: object = {"victim-outside": str(victim),
                      "dotdot": str(inst.webui / ".." / "victim"),
                      "user-folder-inside": str(inside_user),
                      "the-webui-itself": str(inst.webui),
                      "not-a-string": ["venv"]}[where]
    models = sorted(p.name for p in inside_user.rglob("*")) if inside_user.exists() else None
    with tampered(inst) as doc:
        doc["env"]["prefix"] = prefix
        doc["steps"].pop("env")  # the env step would run: sdboot would delete the prefix
        _write(inst, doc)
        error, hint = _two_lines(inst.install("--mirror", "authworld"))
        assert "install.json" in error
        assert "nothing was changed" in hint and "not redone" not in hint
    _assert_victim(victim)
    if models is not None:
        assert sorted(p.name for p in inside_user.rglob("*")) == models
    assert inst.webui.is_dir() and (inst.webui / "launch.py").is_file()


@pytest.mark.parametrize("damage", ["folder", "unknown-schema", "no-schema", "truncated",
                                    "not-an-object", "bad-steps", "symlink-outside"])
def test_a_record_that_cannot_be_trusted_changes_nothing(inst: Installed, damage: str) -> None:
    victim = _victim(inst.base, "victim-record")
    with tampered(inst) as doc:
        if damage == "folder":
            inst.record.unlink()
            inst.record.mkdir()
            (inst.record / "x").write_text("x")
        elif damage == "unknown-schema":
            _write(inst, {**doc, "schema": "sdboot.install-record/9"})
        elif damage == "no-schema":
            _write(inst, {k: v for k, v in doc.items() if k != "schema"})
        elif damage == "truncated":
            inst.record.write_bytes(json.dumps(doc).encode()[:57])
        elif damage == "not-an-object":
            inst.record.write_text("[1, 2]")
        elif damage == "bad-steps":
            _write(inst, {**doc, "steps": ["env"]})
        else:
            outside = victim / "install.json"
            outside.write_text(json.dumps(doc))
            inst.record.unlink()
            inst.record.symlink_to(outside)
        error, hint = _two_lines(inst.install())
        assert str(inst.record) in error
        assert "nothing was changed" in hint and "not redone" not in hint
        if damage == "folder":
            assert (inst.record / "x").read_text() == "x"
    _assert_victim(victim)


def test_an_environment_sdboot_did_not_record_is_never_deleted(inst: Installed) -> None:
    """A venv/ that the record does not say sdboot made (a user's own, from ./webui.sh)."""
    with tampered(inst) as doc:
        doc.pop("env")
        doc["steps"].pop("env")
        _write(inst, doc)
        error, hint = _two_lines(inst.install())
        assert "venv exists and sdboot did not make it" in error
        assert "move it away" in hint
    assert (inst.webui / "venv" / "pyvenv.cfg").is_file()


def test_a_state_folder_that_is_a_symlink_is_refused(inst: Installed) -> None:
    victim = _victim(inst.base, "victim-state")
    state = inst.webui / ".sdboot"
    moved = inst.base / "moved-state"
    state.rename(moved)
    try:
        shutil.copytree(moved, victim / ".sdboot-copy")
        state.symlink_to(victim / ".sdboot-copy")
        error, _hint = _two_lines(inst.install())
        assert "symbolic link" in error
    finally:
        state.unlink()
        moved.rename(state)
    _assert_victim(victim)
    assert sorted(p.name for p in victim.iterdir()) == [".sdboot-copy", "precious.txt"]


@pytest.mark.parametrize("kind", ["symlink", "folder"])
def test_a_planted_lock_is_refused(inst: Installed, kind: str) -> None:
    victim_file = inst.base / "victim-lock.txt"
    victim_file.write_bytes(b"keep me")
    lock = inst.base / ".webui.sdboot.lock"
    lock.unlink(missing_ok=True)  # a plain one left by an earlier failed run is harmless
    if kind == "symlink":
        lock.symlink_to(victim_file)
    else:
        lock.mkdir()
    try:
        error, _hint = _two_lines(inst.install())
        assert "lock file" in error
    finally:
        lock.unlink() if kind == "symlink" else lock.rmdir()
    assert victim_file.read_bytes() == b"keep me"


@pytest.mark.parametrize("kind", ["link-to-folder", "link-to-file", "file"])
def test_a_planted_partial_clone_path_is_refused(inst: Installed, kind: str) -> None:
    victim = _victim(inst.base, "victim-partial")
    target = inst.base / f"new-{kind}"
    partial = inst.base / f".new-{kind}.sdboot-partial"
    if kind == "link-to-folder":
        partial.symlink_to(victim)
    elif kind == "link-to-file":
        partial.symlink_to(victim / "precious.txt")
    else:
        partial.write_bytes(b"not sdboot's")
    try:
        error, _hint = _two_lines(inst.install("--mirror", "authworld", target=target))
        assert "sdboot-partial" in error
        assert not target.exists()
    finally:
        partial.unlink()
    _assert_victim(victim)


# --- the mirror state ------------------------------------------------------------------------


@pytest.fixture()
def rewritten(tmp_path: Path) -> tuple[Path, Path]:
    root = write_webui(tmp_path / "webui")
    res = run_cli("mirror", "apply", str(root), "--github", "ghfast", "--mode", "rewrite")
    assert res.returncode == 0, res.stderr
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"victim bytes\r\n")
    return root, victim


def _state(root: Path) -> Path:
    return root / ".sdboot" / "mirror.json"


@pytest.mark.parametrize("field,value", [
    ("backup", "ABS"),                                            # any file on the machine
    ("backup", ".sdboot/backup/../../../victim.txt"),             # climbing out with ..
    ("file", "../victim.txt"),                                    # the file revert writes
    ("file", "ABS"),
    ("original_sha256", "not-a-hash"),
])
def test_mirror_state_paths_outside_are_refused(rewritten: tuple[Path, Path], field: str,
                                                value: str) -> None:
    root, victim = rewritten
    doc = json.loads(_state(root).read_text())
    doc["rewrite"][field] = str(victim) if value == "ABS" else value
    _state(root).write_text(json.dumps(doc))
    lf = root / "modules/launch_utils.py"
    before = lf.read_bytes()
    for args in (("revert",), ("revert", "--force"),
                 ("apply", "--github", "gh-proxy", "--mode", "rewrite")):
        res = run_cli("mirror", *args[:1], str(root), *args[1:])
        error, hint = _two_lines(res)
        assert "mirror.json" in error and "nothing was changed" in hint
    assert victim.read_bytes() == b"victim bytes\r\n"
    assert lf.read_bytes() == before


def test_a_saved_original_replaced_by_a_symlink_is_refused(
        rewritten: tuple[Path, Path]) -> None:
    root, victim = rewritten
    backup = root / ".sdboot/backup/modules/launch_utils.py.orig"
    backup.unlink()
    backup.symlink_to(victim)
    for args in (("revert", "--force"), ("apply", "--github", "gh-proxy", "--mode", "rewrite")):
        _two_lines(run_cli("mirror", *args[:1], str(root), *args[1:]))
    assert victim.read_bytes() == b"victim bytes\r\n"
    assert backup.is_symlink()


@pytest.mark.parametrize("damage", ["folder", "unknown-schema", "truncated", "env-files"])
def test_a_damaged_mirror_state_changes_nothing(rewritten: tuple[Path, Path],
                                                damage: str) -> None:
    root, _victim_file = rewritten
    state = _state(root)
    doc = json.loads(state.read_text())
    if damage == "folder":
        state.unlink()
        state.mkdir()
    elif damage == "unknown-schema":
        state.write_text(json.dumps({**doc, "schema": "sdboot.mirror-state/2"}))
    elif damage == "truncated":
        state.write_bytes(state.read_bytes()[:40])
    else:
        state.write_text(json.dumps({**doc, "env": {"files": ["../../etc/passwd"]}}))
    lf = root / "modules/launch_utils.py"
    before = lf.read_bytes()
    sh = (root / "webui-user.sh").read_bytes()
    for args in (("revert",), ("apply", "--mirror", "cn"), ("status",)):
        _two_lines(run_cli("mirror", *args[:1], str(root), *args[1:]))
    assert lf.read_bytes() == before and (root / "webui-user.sh").read_bytes() == sh


def test_the_mirror_state_stays_out_of_git_status(tmp_path: Path) -> None:
    root = write_webui(tmp_path / "webui")
    git("init", "-q", cwd=root)
    assert run_cli("mirror", "apply", str(root), "--mirror", "cn").returncode == 0
    exclude = (root / ".git/info/exclude").read_text().split()
    assert "/.sdboot/" in exclude and "/webui-user.sh.sdboot-backup" in exclude
    assert "sdboot" not in git("status", "--porcelain", "--untracked-files=all", cwd=root)


# --- the launch guard's cached verdict ----------------------------------------------------------


@pytest.mark.parametrize("shape", ["link", "folder", "not-ok", "bad-types", "damaged"])
def test_an_untrustworthy_guard_cache_is_never_a_reason_to_skip_the_probe(
        tmp_path: Path, shape: str) -> None:
    from sdboot.launch.guard import GUARD_FILE, read_guard

    root = tmp_path / "webui"
    (root / ".sdboot").mkdir(parents=True)
    good = {"fingerprint": "f", "gpu": "g", "ok": True, "facts": {}}
    path = root / GUARD_FILE
    if shape == "link":
        elsewhere = tmp_path / "planted.json"
        elsewhere.write_text(json.dumps(good))
        path.symlink_to(elsewhere)
    elif shape == "folder":
        path.mkdir()
    elif shape == "not-ok":
        path.write_text(json.dumps({**good, "ok": "yes"}))
    elif shape == "bad-types":
        path.write_text(json.dumps({**good, "fingerprint": ["f"], "facts": "x"}))
    else:
        path.write_text('{"fingerprint": "f", "ok": tr')
    assert read_guard(root) == {}
    path.unlink() if not path.is_dir() or path.is_symlink() else path.rmdir()
    path.write_text(json.dumps(good))
    assert read_guard(root) == good  # the twin: a sound cache is used
