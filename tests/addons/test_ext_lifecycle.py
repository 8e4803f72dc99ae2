"""`sdboot ext list --check | update | remove | disable | enable` on real parts: extensions
cloned from bare repositories served over loopback as a prefix proxy, with github.com itself
unreachable, so that every fetch that works went through sdboot's process-scoped insteadOf
rule (and the twin without a mirror fails). config.json is the WebUI's own format."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from sdboot.addons.ext_config import plan_disabled
from tests.conftest import run_cli
from tests.mirrors.test_origins import _no_github
from tests.world.githost import GitHost, git, make_bare_repo
from tests.world.launchfiles import write_webui

THING = "https://github.com/someone/sd-webui-thing.git"


def push_commit(repos: Path, slug: str, files: dict[str, str]) -> str:
    """One more commit on the bare repository's master (in make_bare_repo's work tree)."""
    work = repos.parent / "work" / slug.replace("/", "__")
    for rel, text in files.items():
        (work / rel).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "more", cwd=work)
    bare = repos / f"{slug}.git"
    git("push", "-q", str(bare), "master", cwd=work)
    git("update-server-info", cwd=bare)
    return git("rev-parse", "HEAD", cwd=work)


@pytest.fixture()
def world(tmp_path: Path, config_dir: Path):
    repos = tmp_path / "repos"
    first = make_bare_repo(repos, "someone/sd-webui-thing", {"install.py": "print('hi')\n"})
    make_bare_repo(repos, "someone/other-ext", {"scripts/x.py": "x = 1\n"})
    proxy = GitHost({"/https://github.com/": repos}).start()
    (config_dir / "mirrors.yaml").write_text(
        "replace_shipped: true\n"
        f"mirrors:\n  - {{name: loop, kind: github-prefix, url: '{proxy.url}'}}\n")
    env = {**_no_github(tmp_path), "SDBOOT_CONFIG_DIR": str(config_dir)}
    webui = write_webui(tmp_path / "webui")
    try:
        assert run_cli("mirror", "apply", str(webui), "--github", "loop",
                       env=env).returncode == 0
        for slug in ("someone/sd-webui-thing", "someone/other-ext"):
            res = run_cli("ext", "add", slug, "--webui", str(webui), env=env)
            assert res.returncode == 0, res.stderr
        yield {"repos": repos, "proxy": proxy, "env": env, "webui": webui, "first": first}
    finally:
        proxy.stop()


def ext(w: dict, *args: str, env: dict[str, str] | None = None):
    return run_cli("ext", *args, "--webui", str(w["webui"]), env=env or w["env"])


def test_check_then_update_through_the_mirror(world: dict) -> None:
    webui, proxy = world["webui"], world["proxy"]
    listed = ext(world, "list", "--json").json()
    assert listed["schema"] == "sdboot.ext-list/1"
    row = next(r for r in listed["extensions"] if r["name"] == "sd-webui-thing")
    assert row["commit"] == world["first"] and row["origin"] == THING
    assert row["branch"] == "master" and row["enabled"] is True
    assert row["checked"] is False and row["update_waiting"] is None  # offline by default
    new = push_commit(world["repos"], "someone/sd-webui-thing", {"install.py": "print(2)\n"})
    before = len(proxy.requests)
    checked = ext(world, "list", "--check", "--json").json()
    row = next(r for r in checked["extensions"] if r["name"] == "sd-webui-thing")
    assert row["update_waiting"] is True and row["behind"] == 1, row
    other = next(r for r in checked["extensions"] if r["name"] == "other-ext")
    assert other["update_waiting"] is False
    assert any(r.startswith("/https://github.com/someone/sd-webui-thing.git/")
               for r in proxy.requests[before:])
    res = ext(world, "update", "sd-webui-thing", "--json")
    assert res.returncode == 0, res.stderr
    result = res.json()["results"][0]
    assert result["status"] == "updated" and result["before"] == world["first"]
    assert result["after"] == new
    clone = webui / "extensions/sd-webui-thing"
    assert (clone / "install.py").read_text() == "print(2)\n"
    config = (clone / ".git/config").read_text()
    assert proxy.url not in config and "insteadOf" not in config  # nothing of the mirror kept
    assert git("config", "--get", "remote.origin.url", cwd=clone) == THING
    human = ext(world, "update", "--all")
    assert human.returncode == 0 and "up to date" in human.stdout
    assert not ext(world, "list", "--check", "--json").json()["extensions"][0]["update_waiting"]


def test_without_the_mirror_the_fetch_fails(world: dict) -> None:
    """The twin: with the mirror reverted, github.com is unreachable here, so the check
    and the update report the failure (exit 1), and the clone stays where it was."""
    assert run_cli("mirror", "revert", str(world["webui"]), env=world["env"]).returncode == 0
    push_commit(world["repos"], "someone/sd-webui-thing", {"install.py": "print(3)\n"})
    checked = ext(world, "list", "--check", "--json").json()
    assert all(r["update_waiting"] is None and r["check_error"] for r in checked["extensions"])
    res = ext(world, "update", "sd-webui-thing")
    assert res.returncode == 1 and "FAILED" in res.stdout
    head = git("rev-parse", "HEAD", cwd=world["webui"] / "extensions/sd-webui-thing")
    assert head == world["first"]


def test_update_never_merges_detached_or_diverged(world: dict) -> None:
    webui = world["webui"]
    push_commit(world["repos"], "someone/sd-webui-thing", {"install.py": "print(4)\n"})
    push_commit(world["repos"], "someone/other-ext", {"scripts/x.py": "x = 2\n"})
    mine = webui / "extensions/sd-webui-thing"
    (mine / "local.py").write_text("mine\n")
    git("add", "local.py", cwd=mine)
    git("commit", "-q", "-m", "mine", cwd=mine)
    mine_head = git("rev-parse", "HEAD", cwd=mine)
    pinned = webui / "extensions/other-ext"
    git("checkout", "-q", "--detach", "HEAD", cwd=pinned)
    (webui / "extensions/plain-folder").mkdir()
    res = ext(world, "update", "--all", "--json")
    assert res.returncode == 1
    status = {r["name"]: r["status"] for r in res.json()["results"]}
    assert status == {"sd-webui-thing": "failed", "other-ext": "skipped",
                      "plain-folder": "skipped"}
    assert git("rev-parse", "HEAD", cwd=mine) == mine_head
    usage = ext(world, "update")
    assert usage.returncode == 2 and usage.stderr.startswith("error:")
    assert ext(world, "update", "nope").returncode == 2


def test_disable_enable_in_the_webuis_config(world: dict) -> None:
    webui = world["webui"]
    (webui / "extensions-builtin/Lora").mkdir(parents=True)
    original = {"sd_model_checkpoint": "模型.safetensors", "disabled_extensions": ["gone"],
                "disable_all_extensions": "none", "CLIP_stop_at_last_layers": 2}
    (webui / "config.json").write_text(json.dumps(original, indent=4, ensure_ascii=False),
                                       encoding="utf-8")
    assert ext(world, "disable", "sd-webui-thing").returncode == 0
    doc = json.loads((webui / "config.json").read_text(encoding="utf-8"))
    assert doc["disabled_extensions"] == ["gone", "sd-webui-thing"]
    assert {k: v for k, v in doc.items() if k != "disabled_extensions"} == \
        {k: v for k, v in original.items() if k != "disabled_extensions"}
    assert "模型" in (webui / "config.json").read_text(encoding="utf-8")  # as the WebUI writes
    assert json.loads((webui / "config.json.sdboot-backup").read_text()) == original
    listed = {r["name"]: r for r in ext(world, "list", "--json").json()["extensions"]}
    assert listed["sd-webui-thing"]["enabled"] is False and listed["other-ext"]["enabled"]
    assert "(disabled)" in ext(world, "list").stdout
    again = ext(world, "disable", "sd-webui-thing", "--json").json()
    assert again["changed"] is False
    assert ext(world, "disable", "Lora").returncode == 0  # a built-in one
    assert ext(world, "enable", "gone").returncode == 0  # listed, folder long gone
    assert ext(world, "enable", "sd-webui-thing").returncode == 0
    doc = json.loads((webui / "config.json").read_text(encoding="utf-8"))
    assert doc["disabled_extensions"] == ["Lora"]
    unknown = ext(world, "disable", "no-such-ext")
    assert unknown.returncode == 2 and "no extension no-such-ext" in unknown.stderr


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"disabled_extensions": "x"}',
                                  '{"disable_all_extensions": "some"}'])
def test_a_broken_config_is_named_and_left_alone(world: dict, text: str) -> None:
    path = world["webui"] / "config.json"
    path.write_text(text)
    res = ext(world, "disable", "sd-webui-thing")
    assert res.returncode == 2, res.stderr
    assert str(path) in res.stderr and "nothing was changed" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 2
    assert path.read_text() == text and not (path.parent / "config.json.sdboot-backup").exists()
    listed = ext(world, "list", "--json")  # a list still lists
    assert listed.returncode == 0 and listed.json()["extensions"][0]["enabled"] is None


def test_remove_asks_and_never_follows_a_link(world: dict, tmp_path: Path) -> None:
    webui = world["webui"]
    res = ext(world, "remove", "other-ext")  # no terminal, no --yes: refused
    assert res.returncode == 2 and "--yes" in res.stderr
    assert (webui / "extensions/other-ext").is_dir()
    assert ext(world, "remove", "other-ext", "--yes").returncode == 0
    assert not (webui / "extensions/other-ext").exists()
    outside = tmp_path / "outside-ext"
    (outside / "models").mkdir(parents=True)
    (outside / "models/keep.pth").write_text("precious")
    os.symlink(outside, webui / "extensions/linked")
    assert ext(world, "remove", "linked", "--yes", "--json").json()["name"] == "linked"
    assert not os.path.lexists(webui / "extensions/linked")
    assert (outside / "models/keep.pth").read_text() == "precious"
    assert ext(world, "remove", "../webui", "--yes").returncode == 2


def test_plan_disabled() -> None:
    assert plan_disabled(["a"], "b", True) == ["a", "b"]
    assert plan_disabled(["a", "b"], "b", True) == ["a", "b"]
    assert plan_disabled(["b", "a", "b"], "b", False) == ["a"]


def test_git_sees_no_proxy_anywhere(world: dict) -> None:
    """After add + update, no file of any clone names the proxy."""
    push_commit(world["repos"], "someone/other-ext", {"scripts/x.py": "x = 5\n"})
    assert ext(world, "update", "--all").returncode == 0
    found = subprocess.run(["grep", "-rl", world["proxy"].url,
                            str(world["webui"] / "extensions")], capture_output=True, text=True)
    assert found.stdout == ""


def test_old_git_gets_the_rule_as_arguments(world: dict, tmp_path: Path) -> None:
    """git 2.30 ignores GIT_CONFIG_COUNT: the rule goes as `-c` arguments, still per
    process, and the update still comes through the proxy."""
    from tests.mirrors.test_origins import _old_git

    env = {**world["env"], "PATH": f"{_old_git(tmp_path / 'bin')}{os.pathsep}"
                                   f"{world['env']['PATH']}"}
    new = push_commit(world["repos"], "someone/sd-webui-thing", {"install.py": "print(5)\n"})
    before = len(world["proxy"].requests)
    res = ext(world, "update", "sd-webui-thing", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert res.json()["results"][0]["after"] == new
    assert any(r.startswith("/https://github.com/someone/sd-webui-thing.git/")
               for r in world["proxy"].requests[before:])
