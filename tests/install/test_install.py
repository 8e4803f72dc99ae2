"""`sdboot install` end to end on the local world (tests/world/local.py): a full install,
the no-op second run, an install killed at every step and resumed, --dry-run, and the bad
inputs and faults of the issue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sdboot.install.run import disk_verdict
from sdboot.install.steps.verify import TORCH_UNCHANGED
from sdboot.io.files import exclusive_lock
from tests.world.githost import git
from tests.world.local import LocalWorld, build_local_world, sdboot_argv

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
STEPS = ["clone", "env", "torch", "verify", "requirements", "prepare", "reverify", "webui-user",
         "record"]


@pytest.fixture(scope="module")
def lw(tmp_path_factory: pytest.TempPathFactory) -> LocalWorld:
    world = build_local_world(tmp_path_factory.mktemp("local-world"))
    yield world
    world.stop()


def sdboot(lw: LocalWorld, *args: str, env: dict[str, str] | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sdboot_argv(*args), env=env or lw.env(), capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


def _assert_verified(lw: LocalWorld, webui: Path) -> dict:
    res = sdboot(lw, "verify", str(webui), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["ok"] and doc["probe"]["torch"]["version"] == "2.1.2+cu121"
    return doc


def test_full_install_then_noop(lw: LocalWorld, tmp_path: Path) -> None:
    webui = tmp_path / "webui"
    res = sdboot(lw, "install", str(webui), "--mirror", "world", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["schema"] == "sdboot.install/1" and doc["complete"]
    assert [s["name"] for s in doc["steps"]] == STEPS
    assert all(s["status"] == "done" for s in doc["steps"])
    # the preparation left the verified stack alone: the second probe does not run
    notes = {s["name"]: s["note"] for s in doc["steps"]}
    assert notes["reverify"] == TORCH_UNCHANGED and notes["verify"] != TORCH_UNCHANGED
    assert doc["profile"] == "torch2.1.2-cu121"
    assert doc["webui_args"] == ["--medvram-sdxl", "--xformers"]  # a 12 GB RTX 3060
    assert doc["next"] == f"sdboot launch {webui}"
    _assert_verified(lw, webui)
    # the venv made by uv, pip seeded (the WebUI runs `python -m pip`)
    assert "\nuv = " in (webui / "venv/pyvenv.cfg").read_text()
    # the build cap holds for the seeded setuptools too (uv seeds the newest)
    assert any("pip install --python" in line and "setuptools<82" in line
               for line in Path(doc["log"]).read_text().splitlines())
    assert subprocess.run([str(webui / "venv/bin/python"), "-m", "pip", "--version"],
                          capture_output=True).returncode == 0
    # the WebUI cloned through the proxy, at the pinned commit
    record = json.loads((webui / ".sdboot/install.json").read_text())
    assert record["clone_url"].startswith(lw.github.url + "https://github.com/")
    assert record["commit"] == lw.commits["webui"]
    # the WebUI's own preparation: repositories at their pinned commits, the dead upstream
    # substituted, requirements installed without touching torch
    assert git("rev-parse", "HEAD", cwd=webui / "repositories/stable-diffusion-stability-ai") \
        == lw.commits["sd"]
    assert record["versions"]["torch"] == "2.1.2+cu121"
    # sdboot installed the requirements and CLIP in one uv run before launch.py, which then
    # found everything in place: it installed nothing and cloned nothing
    notes = {s["name"]: s["note"] for s in doc["steps"]}
    assert "one uv run" in notes["requirements"] and "2 repositories cloned" in notes[
        "requirements"]
    launch_out = _launch_output(Path(doc["log"]))
    assert "Exiting because of --exit argument" in launch_out
    assert "Installing" not in launch_out and "Cloning" not in launch_out, launch_out
    freeze = _freeze(webui)
    assert freeze["clip"] == "1.0" and freeze["sdb-webui-dep"] == "1.0.0"
    assert freeze["setuptools"] == "65.5.0"  # the cap held, for the seeds and the builds
    # the WebUI's own pins joined the constraints its processes get: a later `pip install -U`
    # (an extension's installer) cannot move them, though a newer version is on the index
    constraints = webui / ".sdboot/constraints.txt"
    assert "\nsdb-webui-dep==1.0.0\n" in constraints.read_text()
    upgrade = ["-m", "pip", "install", "-q", "-U", "sdb-webui-dep"]
    newer = subprocess.run(["uv", "pip", "install", "--dry-run", "-U", "--python",
                            str(webui / "venv/bin/python"), "sdb-webui-dep"],
                           capture_output=True, text=True, env=lw.env())
    assert "sdb-webui-dep==2.0.0" in newer.stderr, newer.stderr  # without the pins: moved
    kept = subprocess.run([str(webui / "venv/bin/python"), *upgrade], capture_output=True,
                          text=True, env=lw.env(PIP_CONSTRAINT=str(constraints)))
    assert kept.returncode == 0, kept.stderr
    assert _freeze(webui)["sdb-webui-dep"] == "1.0.0"
    for repo in ("k-diffusion", "stable-diffusion-stability-ai"):  # origins stay upstream
        assert git("config", "--get", "remote.origin.url",
                   cwd=webui / "repositories" / repo).startswith("https://github.com/")
    sh = (webui / "webui-user.sh").read_text()
    assert "export venv_dir=venv" in sh and "--medvram-sdxl --xformers" in sh
    assert f"export PIP_CONSTRAINT={webui / '.sdboot/constraints.txt'}" in sh
    assert "export TORCH_COMMAND='pip install torch==2.1.2+cu121" in sh
    bat = (webui / "webui-user.bat").read_bytes().decode()
    assert bat.index('set "COMMANDLINE_ARGS=') < bat.index("call webui.bat")

    seen = len(lw.github.requests)
    again = sdboot(lw, "install", str(webui), "--json")
    assert again.returncode == 0, again.stderr
    doc2 = json.loads(again.stdout)
    assert doc2["nothing_to_do"] and all(s["status"] == "skipped" for s in doc2["steps"])
    assert len(lw.github.requests) == seen  # no network on a complete install
    plain = sdboot(lw, "install", str(webui))
    assert "Everything is in place" in plain.stdout


def _launch_output(log: Path) -> str:
    """What launch.py --exit printed, from the install log."""
    text = log.read_text()
    start = text.index("launch.py --exit\n")
    return text[start:text.index("[exit ", start)]


def _freeze(webui: Path) -> dict[str, str]:
    from sdboot.io.runner import Runner
    from sdboot.stack.lock import freeze

    return freeze(webui / "venv/bin/python", Runner())


def test_with_pip_the_same_requirements_step_and_guard(lw: LocalWorld, tmp_path: Path) -> None:
    """pip is the fallback: the same one-resolution install, CLIP built under the guard
    (the venv's pip 23 reads PIP_CONSTRAINT in its build environments)."""
    webui = tmp_path / "webui"
    res = sdboot(lw, "install", str(webui), "--mirror", "world", "--json",
                 env=lw.env(SDBOOT_INSTALLER="pip"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    doc = json.loads(res.stdout)
    notes = {s["name"]: s["note"] for s in doc["steps"]}
    assert "one pip run" in notes["requirements"]
    assert "Installing" not in _launch_output(Path(doc["log"]))
    freeze = _freeze(webui)
    assert freeze["clip"] == "1.0" and freeze["torch"] == "2.1.2+cu121"


def test_the_worlds_clip_needs_the_guard(lw: LocalWorld, tmp_path: Path) -> None:
    """The world is honest: its CLIP archive does not build with today's setuptools."""
    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True,
                   env=lw.env())
    res = subprocess.run(["uv", "pip", "install", "--python", str(venv / "bin/python"),
                          "--no-deps", lw.env()["CLIP_PACKAGE"]],
                         capture_output=True, text=True, env=lw.env())
    assert res.returncode != 0 and "pkg_resources" in res.stderr, res.stderr


def test_lock_written_with_commits_profile_and_upstream_urls(lw: LocalWorld,
                                                            tmp_path: Path) -> None:
    """The lock records every distribution, the commits and the profile, and the upstream
    URL of what came from one."""
    from sdboot.io.runner import Runner
    from sdboot.stack.lock import freeze, read_lock

    webui = tmp_path / "webui"
    res = sdboot(lw, "install", str(webui), "--mirror", "world", "--json")
    assert res.returncode == 0, res.stderr
    lock = read_lock(webui / ".sdboot/lock.txt")
    assert lock.profile == "torch2.1.2-cu121" and lock.webui_commit == lw.commits["webui"]
    assert lock.repositories["stable-diffusion-stability-ai"] == lw.commits["sd"]
    assert lock.packages["torch"] == "2.1.2+cu121" and "sdb-webui-dep" in lock.packages
    assert lock.index == lw.index.index_url("simple")
    installed = freeze(webui / "venv/bin/python", Runner())
    assert installed == lock.packages
    # CLIP came from GitHub's archive: the lock keeps its upstream URL (no proxy, no
    # password), so `sdboot install --lock` can fetch it again through any mirror
    # (the round trip through the CLI: tests/install/test_lock_install.py)
    assert lock.urls["clip"].startswith("https://github.com/openai/CLIP/archive/")
    assert lw.github.url not in (webui / ".sdboot/lock.txt").read_text()


def test_without_a_mirror_the_dead_upstream_is_substituted(lw: LocalWorld,
                                                            tmp_path: Path) -> None:
    webui = tmp_path / "webui"
    res = sdboot(lw, "install", str(webui), "--mirror", "none")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "mirrors: none (upstreams)" in res.stdout
    assert (webui / "repositories/stable-diffusion-stability-ai/ldm/__init__.py").is_file()
    _assert_verified(lw, webui)


def _kill_at(lw: LocalWorld, webui: Path, step: int) -> None:
    """Start an install and SIGKILL it as soon as step `step` begins."""
    proc = subprocess.Popen(sdboot_argv("install", str(webui), "--mirror", "world"),
                            env=lw.env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    killed = False
    for line in proc.stdout:
        if line.startswith(f"[{step}/{len(STEPS)}]") and line.rstrip().endswith("..."):
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait(timeout=120)
    assert killed, f"step {step} never started"


@pytest.mark.parametrize("step", range(1, len(STEPS) + 1), ids=STEPS)
def test_killed_at_each_step_then_resumed(lw: LocalWorld, tmp_path: Path, step: int) -> None:
    webui = tmp_path / "webui"
    _kill_at(lw, webui, step)
    # the same command again; after the clone the record even remembers the options
    again = ["--mirror", "world"] if step == 1 else []
    res = sdboot(lw, "install", str(webui), *again, "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["complete"], doc
    statuses = {s["name"]: s["status"] for s in doc["steps"]}
    if step > 1:  # the clone was finished before the kill
        assert statuses["clone"] == "skipped"
    assert doc["mirror"]["github"] == "world-gh"  # the interrupted run's mirror is kept
    _assert_verified(lw, webui)
    assert not (tmp_path / ".webui.sdboot-partial").exists()


def test_dry_run_changes_nothing(lw: LocalWorld, tmp_path: Path) -> None:
    webui = tmp_path / "webui"
    res = sdboot(lw, "install", str(webui), "--mirror", "world", "--dry-run", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert all(s["status"] == "planned" for s in doc["steps"])
    commands = {s["name"]: s["commands"] for s in doc["steps"]}
    # the upstream URL is cloned (origin stays upstream), through the proxy's insteadOf
    assert (f"-c url.{lw.github.url}https://github.com/.insteadOf=https://github.com/ clone "
            "--branch v1.10.1 https://github.com/AUTOMATIC1111/") in commands["clone"][0]
    assert "torch==2.1.2+cu121" in commands["torch"][0]
    assert "launch.py --exit" in commands["prepare"][0]
    assert list(tmp_path.iterdir()) == []  # no folder, no lock, no record


def test_dry_run_in_chinese_json_unchanged(lw: LocalWorld, tmp_path: Path) -> None:
    """The step titles, the plan, the notes and the summary in the user's language; --json
    keeps the English (the same document in both languages, its timings and log aside)."""
    args = ("install", str(tmp_path / "webui"), "--mirror", "world", "--dry-run")
    zh, en = sdboot(lw, *args, env=lw.env(SDBOOT_LANG="zh_CN")), sdboot(lw, *args)
    assert zh.returncode == en.returncode == 0, zh.stderr
    assert "[1/9] 获取 WebUI ..." in zh.stdout and "[9/9] 记录这次安装 ..." in zh.stdout
    assert "[4/9] 在这块显卡上验证 CUDA 版 torch ..." in zh.stdout
    assert "演练模式（dry run）：没有检查 GitHub" in zh.stdout
    assert zh.stdout.rstrip().endswith("演练模式（dry run）：没有做任何更改。"
                                       "上面的命令就是安装计划。")
    assert "get the WebUI" not in zh.stdout and "record the install" not in zh.stdout
    assert "[1/9] get the WebUI ..." in en.stdout and "[4/9] verify CUDA torch on this GPU ..." \
        in en.stdout and "Dry run: nothing was changed." in en.stdout

    def doc(env: dict[str, str]) -> dict:
        res = sdboot(lw, *args, "--json", env=env)
        assert res.returncode == 0, res.stderr
        found = json.loads(res.stdout)
        found.pop("log")
        for step in found["steps"]:
            step.pop("elapsed_s")
        return found

    english = doc(lw.env())
    assert doc(lw.env(SDBOOT_LANG="zh_CN")) == english
    assert english["steps"][0]["title"] == "get the WebUI"
    assert list(tmp_path.iterdir()) == []


def test_existing_checkout_is_completed_not_cloned(lw: LocalWorld, tmp_path: Path) -> None:
    webui = tmp_path / "mine"
    git("clone", "-q", lw.github_url + "AUTOMATIC1111/stable-diffusion-webui.git", str(webui))
    (webui / "my-notes.txt").write_text("mine")
    res = sdboot(lw, "install", str(webui), "--mirror", "world", "--json")
    assert res.returncode == 0, res.stderr
    steps = {s["name"]: s["status"] for s in json.loads(res.stdout)["steps"]}
    assert steps["clone"] == "skipped" and steps["torch"] == "done"
    assert (webui / "my-notes.txt").read_text() == "mine"


def test_a_planted_repositories_link_is_refused(lw: LocalWorld, tmp_path: Path) -> None:
    """repositories/ as a symlink out of the WebUI folder: the requirements step clones
    nothing through it (exit 2), and nothing lands outside."""
    webui = tmp_path / "mine"
    outside = tmp_path / "outside"
    outside.mkdir()
    git("clone", "-q", lw.github_url + "AUTOMATIC1111/stable-diffusion-webui.git", str(webui))
    (webui / "repositories").symlink_to(outside)
    res = sdboot(lw, "install", str(webui), "--mirror", "world", "--json")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "repositories" in json.loads(res.stdout)["error"]["message"]
    assert list(outside.iterdir()) == []


# --- bad input and faults --------------------------------------------------------------------


def _two_lines(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith(("error:", "hint:"))]
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    assert "Traceback" not in res.stderr
    return lines[0]


def test_not_empty_and_not_a_webui(lw: LocalWorld, tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "a.txt").write_text("x")
    res = sdboot(lw, "install", str(tmp_path / "stuff"))
    assert res.returncode == 2
    assert "is not empty and holds no WebUI" in _two_lines(res)
    (tmp_path / "file").write_text("x")
    res = sdboot(lw, "install", str(tmp_path / "file"))
    assert res.returncode == 2 and "is a file" in _two_lines(res)


def test_unknown_ref_and_not_a_webui_repo(lw: LocalWorld, tmp_path: Path) -> None:
    res = sdboot(lw, "install", str(tmp_path / "w1"), "--mirror", "world", "--ref", "v9.9.9")
    assert res.returncode == 1
    assert "git clone" in _two_lines(res) and "full log:" in res.stderr
    assert not (tmp_path / "w1").exists()
    res = sdboot(lw, "install", str(tmp_path / "w2"), "--mirror", "world", "--webui-repo",
                 "https://github.com/crowsonkb/k-diffusion.git", "--ref", "master")
    assert res.returncode == 2
    assert "is not a Stable Diffusion WebUI repository" in _two_lines(res)
    assert not (tmp_path / "w2").exists() and not (tmp_path / ".w2.sdboot-partial").exists()


def test_git_missing(lw: LocalWorld, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    res = sdboot(lw, "install", str(tmp_path / "w"), env=lw.env(PATH=str(empty)))
    assert res.returncode == 1 and "git is not installed" in _two_lines(res)


def test_dead_mirror(lw: LocalWorld, tmp_path: Path) -> None:
    res = sdboot(lw, "install", str(tmp_path / "w"), "--mirror", "dead")
    assert res.returncode == 1
    assert "git clone" in _two_lines(res)
    assert "mirror" in res.stderr
    assert not (tmp_path / "w").exists()


def test_failed_pip_step_then_fixed(lw: LocalWorld, tmp_path: Path) -> None:
    webui = tmp_path / "w"
    # a profile whose wheels the index does not have: the torch step fails, cleanly
    res = sdboot(lw, "install", str(webui), "--mirror", "world", "--profile",
                 "torch2.10.0-cu130")
    assert res.returncode == 1
    assert "could not install" in _two_lines(res) and "full log:" in res.stderr
    record = json.loads((webui / ".sdboot/install.json").read_text())
    assert "torch" not in record["steps"] and "env" in record["steps"]
    assert not (tmp_path / ".w.sdboot.lock").exists()  # a failed run leaves no lock behind
    res = sdboot(lw, "install", str(webui), "--mirror", "world", "--profile",
                 "torch2.10.0-cu130", "--json")
    doc = json.loads(res.stdout)  # --json prints a document on failure too
    assert res.returncode == 1 and doc["complete"] is False
    assert "could not install" in doc["error"]["message"] and doc["error"]["exit_code"] == 1
    res = sdboot(lw, "install", str(webui), "--profile", "torch2.1.2-cu121", "--json")
    assert res.returncode == 0, res.stderr
    steps = {s["name"]: s["status"] for s in json.loads(res.stdout)["steps"]}
    assert steps["env"] == "skipped" and steps["torch"] == "done"


def test_second_install_into_the_same_folder_is_refused(lw: LocalWorld, tmp_path: Path) -> None:
    with exclusive_lock(tmp_path / ".w.sdboot.lock") as held:
        assert held
        res = sdboot(lw, "install", str(tmp_path / "w"), "--mirror", "world")
    assert res.returncode == 1
    assert "another sdboot install is running" in _two_lines(res)


def test_disk_verdicts() -> None:
    gb = 1024**3
    assert disk_verdict(5 * gb, "cuda")[0] == "stop"
    assert disk_verdict(9 * gb, "cuda")[0] == "warn"
    assert disk_verdict(50 * gb, "cuda")[0] == "ok"
    assert disk_verdict(4 * gb, "cpu")[0] == "warn"
    assert "needs about 8 GB" in disk_verdict(5 * gb, "cuda")[1]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_read_only_parent(lw: LocalWorld, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere: run as a normal user to exercise this")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    res = sdboot(lw, "install", str(ro / "w"))
    ro.chmod(0o755)
    assert res.returncode == 2 and "cannot write" in _two_lines(res)


def test_conda_install_from_environment_wsl2(lw: LocalWorld, tmp_path: Path) -> None:
    from tests.world.fake_conda import install_fake_conda

    bin_dir = install_fake_conda(tmp_path / "conda")
    env = lw.env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    webui = tmp_path / "webui"
    res = sdboot(lw, "install", str(webui), "--mirror", "world", "--env", "conda", "--json",
                 env=env)
    assert res.returncode == 0, res.stderr
    record = json.loads((webui / ".sdboot/install.json").read_text())
    assert record["env"]["kind"] == "conda"
    assert record["env"]["prefix"] == str(webui / "conda-env")
    calls = [json.loads(ln) for ln in (tmp_path / "conda/calls.jsonl").read_text().splitlines()]
    assert calls[0][:3] == ["conda", "env", "create"]
    derived = (webui / ".sdboot/environment.yaml").read_text()
    assert "pytorch" not in derived.split("dependencies:")[1] and "python=3.10" in derived
    sh = (webui / "webui-user.sh").read_text()
    assert "export venv_dir=-" in sh
    _assert_verified(lw, webui)


def test_a_mirrored_install_keeps_upstream_origins(lw: LocalWorld, tmp_path: Path) -> None:
    """Origins stay upstream (issue 14): the WebUI and every repositories/* clone keep the
    upstream URL, the proxy applying through insteadOf only. The world's own rule that plays
    github.com is dropped (https://github.com goes to a closed port), so only sdboot's rule
    through the proxy can make this install work."""
    from tests.world.githost import closed_port

    env = {**lw.env(), "GIT_CONFIG_KEY_0": f"url.http://127.0.0.1:{closed_port()}.insteadOf",
           "GIT_CONFIG_VALUE_0": "https://github.com"}
    webui = tmp_path / "webui"
    before = len(lw.github.requests)
    res = sdboot(lw, "install", str(webui), "--mirror", "world", "--json", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert any(r.startswith("/https://github.com/") for r in lw.github.requests[before:])
    proxy = lw.github.url
    origins = {p.name: git("config", "--get", "remote.origin.url", cwd=p)
               for p in [webui, *sorted((webui / "repositories").iterdir())]}
    assert len(origins) > 1
    assert origins["webui"] == "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git"
    assert origins["stable-diffusion-stability-ai"] == \
        "https://github.com/w-e-w/stablediffusion.git"  # the dead upstream's copy
    for name, url in origins.items():
        assert url.startswith("https://github.com/") and proxy not in url, (name, url)
    # the WebUI's own clones (*_REPO) get the upstream too; archives pip downloads
    # (CLIP_PACKAGE), which insteadOf never sees, are the only URLs through the proxy
    exported = [line for line in (webui / "webui-user.sh").read_text().splitlines()
                if line.startswith("export ") and proxy in line]
    assert exported and all(line.startswith(("export CLIP_PACKAGE=", "export GIT_CONFIG_KEY_"))
                            for line in exported), exported
