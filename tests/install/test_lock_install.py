"""`sdboot install --lock FILE` on the local world: an install, its lock (with a distribution
installed from a direct URL through the GitHub mirror), a second install from that lock alone
with the same packages at the same versions; locks for another machine and tampered locks
refused before anything is created; a lock the install cannot end as fails naming why."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from sdboot.io.runner import Runner
from sdboot.stack.lock import freeze, read_lock
from tests.world.local import LocalWorld, build_local_world, sdboot_argv
from tests.world.wheels import build_wheel

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# a GitHub release asset, as the WebUI's launch file installs CLIP from a GitHub archive
ASSET = "https://github.com/sdb/url-pkg/releases/download/v1.0/sdb_url_pkg-1.0-py3-none-any.whl"


def sdboot(lw: LocalWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sdboot_argv(*args), env=lw.env(), capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def lw(tmp_path_factory: pytest.TempPathFactory) -> LocalWorld:
    world = build_local_world(tmp_path_factory.mktemp("lock-world"))
    # the asset, where GitHub (and so the prefix proxy) serves it
    wheel = build_wheel(world.root / "assets", "sdb-url-pkg", "1.0", {"sdb_url_pkg.py": ""})
    target = world.root / "github" / ASSET.removeprefix("https://github.com/")
    target.parent.mkdir(parents=True)
    target.write_bytes(wheel.read_bytes())
    yield world
    world.stop()


@pytest.fixture(scope="module")
def first(lw: LocalWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An install through the mirror, plus a distribution from a direct URL (through the
    prefix proxy, as the WebUI's launch file would fetch it), then its lock written again."""
    webui = tmp_path_factory.mktemp("first") / "webui"
    res = sdboot(lw, "install", str(webui), "--mirror", "world", "--json")
    assert res.returncode == 0, res.stderr
    proxied = lw.github.url + ASSET
    done = subprocess.run(["uv", "pip", "install", "-q", "--no-deps", "--python",
                           str(webui / "venv/bin/python"), f"sdb-url-pkg @ {proxied}"],
                          capture_output=True, text=True, env=lw.env())
    assert done.returncode == 0, done.stderr
    (webui / ".sdboot/lock.txt").unlink()
    again = sdboot(lw, "install", str(webui), "--json")
    assert again.returncode == 0, again.stderr
    return webui


def test_lock_round_trip(lw: LocalWorld, first: Path, tmp_path: Path) -> None:
    lock_file = first / ".sdboot/lock.txt"
    text = lock_file.read_text()
    # the direct URL in its upstream form (the proxy's prefix taken off), with its version
    assert f"sdb-url-pkg @ {ASSET}  # version: 1.0\n" in text
    assert lw.github.url not in text
    lock = read_lock(lock_file)
    second = tmp_path / "second"
    res = sdboot(lw, "install", str(second), "--lock", str(lock_file), "--mirror", "world",
                 "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["complete"] and doc["profile"] == lock.profile
    notes = {s["name"]: s["note"] for s in doc["steps"]}
    assert notes["torch"].startswith(f"the lock: {len(lock.packages)} distributions")
    runner = Runner()
    assert freeze(second / "venv/bin/python", runner) == freeze(first / "venv/bin/python",
                                                                runner) == lock.packages
    record = json.loads((second / ".sdboot/install.json").read_text())
    assert record["commit"] == lock.webui_commit
    # the second install's lock is the first one (up to when it was made)
    def same(t: str) -> str:
        return re.sub(r"# created: .*\n", "", t)
    assert same((second / ".sdboot/lock.txt").read_text()) == same(text)
    # the requirements install's -c: every pin of the lock, the URL one by its version
    extra = [p.name for p in _extra_constraints(second, lock_file)]
    assert extra == ["lock-constraints.txt"]
    pins = (second / ".sdboot/lock-constraints.txt").read_text()
    assert "sdb-url-pkg==1.0\n" in pins and "torch==2.1.2+cu121\n" in pins
    # a second run with the lock has nothing to do
    again = sdboot(lw, "install", str(second), "--lock", str(lock_file), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["nothing_to_do"], again.stderr


def test_an_interrupted_lock_install_resumes_with_the_lock(lw: LocalWorld, first: Path,
                                                           tmp_path: Path) -> None:
    """Killed while it installs the lock's packages, then run again WITHOUT --lock (as a
    user does): the record remembers the lock, so the resumed run still follows it and
    checks the end against it."""
    import os
    import signal

    lock_file = first / ".sdboot/lock.txt"
    second = tmp_path / "second"
    proc = subprocess.Popen(sdboot_argv("install", str(second), "--lock", str(lock_file),
                                        "--mirror", "world"),
                            env=lw.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT, start_new_session=True)
    assert proc.stdout is not None
    killed = False
    for line in proc.stdout:
        if line.startswith("[3/") and line.rstrip().endswith("..."):
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait(timeout=120)
    assert killed
    res = sdboot(lw, "install", str(second), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    titles = {s["name"]: s["title"] for s in doc["steps"]}
    assert titles["torch"] == "install exactly the lock's packages"
    runner = Runner()
    assert freeze(second / "venv/bin/python", runner) == read_lock(lock_file).packages
    # once complete, a later plain install is an install of its own (here: nothing changes)
    again = sdboot(lw, "install", str(second), "--json")
    assert again.returncode == 0, again.stderr
    assert freeze(second / "venv/bin/python", runner) == read_lock(lock_file).packages
    assert json.loads((second / ".sdboot/install.json").read_text())["lock"] is None


def _extra_constraints(webui: Path, lock_file: Path) -> list[Path]:
    from sdboot.install.context import InstallContext
    from sdboot.install.plan import InstallOptions

    class Quiet:
        def note(self, text: str, style: str = "") -> None: ...
        def begin(self, index: int, total: int, title: str) -> None: ...
        def detail(self, text: str) -> None: ...
        def end(self, status: str, elapsed_s: float, note: str = "") -> None: ...

    ctx = InstallContext(InstallOptions(webui, lock=lock_file), Quiet(), Runner())
    return ctx.extra_constraints()


def _edit(lock_file: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = lock_file.read_text()
    out = tmp_path / "edited.txt"
    out.write_text(re.sub(old, new, text, count=1, flags=re.M))
    assert out.read_text() != text
    return out


@pytest.mark.parametrize(("old", "new", "says"), [
    (r"^# platform: .*$", "# platform: win32-AMD64", "made for Python"),
    (r"^# python: .*$", "# python: 3.12.1", "made for Python"),
    (r"^sdb-clip-stub==.*$", "sdb-clip-stub==1.0.0 --index-url http://127.0.0.1:9/simple",
     "not a version"),
    (r"^sdb-webui-dep==.*$", "--extra-index-url http://127.0.0.1:9/simple", "name==version"),
    (r"^sdb-clip-stub==.*$", "sdb-clip-stub==1.0.0; os_name == 'nt'", "not a version"),
    (r"^sdb-url-pkg @ https://", "sdb-url-pkg @ https://user:secret@", "credentials"),
    (r"^sdb-url-pkg @ https://", "sdb-url-pkg @ https://***@", "credentials"),
    (r"^sdb-url-pkg @ https://", "sdb-url-pkg @ file:///etc/", "http(s) URL"),
    (r"^torch==.*$", "torch==latest", "not a version"),
    (r"^# sdboot lock$", "# my requirements", "not an sdboot lock"),
])
def test_foreign_or_tampered_lock_refused_before_anything(lw: LocalWorld, first: Path,
                                                          tmp_path: Path, old: str, new: str,
                                                          says: str) -> None:
    edited = _edit(first / ".sdboot/lock.txt", tmp_path, old, new)
    target = tmp_path / "w"
    res = sdboot(lw, "install", str(target), "--lock", str(edited), "--mirror", "world")
    assert res.returncode == 2, res.stdout + res.stderr
    assert says in res.stderr and "Traceback" not in res.stderr
    assert res.stderr.startswith("error: ") and "\nhint: " in res.stderr
    assert "secret" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.txt"]  # nothing created


def test_lock_and_other_choices_conflict(lw: LocalWorld, first: Path, tmp_path: Path) -> None:
    lock_file = first / ".sdboot/lock.txt"
    for args in (["--profile", "torch2.0.1-cu118"], ["--ref", "v1.10.1"]):
        res = sdboot(lw, "install", str(tmp_path / "w"), "--lock", str(lock_file), *args)
        assert res.returncode == 2 and "the lock decides" in res.stderr, res.stderr
    missing = sdboot(lw, "install", str(tmp_path / "w"), "--lock", str(tmp_path / "no.txt"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert sorted(tmp_path.iterdir()) == []


def test_an_install_that_ends_elsewhere_than_the_lock_fails(lw: LocalWorld, first: Path,
                                                           tmp_path: Path) -> None:
    """The lock without a package the WebUI's own preparation installs: the environment
    ends with one more distribution than the lock, and the install says which."""
    edited = _edit(first / ".sdboot/lock.txt", tmp_path, r"^sdb-webui-dep==.*\n", "")
    res = sdboot(lw, "install", str(tmp_path / "w"), "--lock", str(edited), "--mirror", "world")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "differs from the lock" in res.stderr and "extra: sdb-webui-dep==1.0.0" in res.stderr
    assert "Traceback" not in res.stderr
