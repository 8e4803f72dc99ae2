"""The lifecycle commands as a user meets them: on a real terminal (a pseudo-terminal) the
deleting ones ask, and "no" (the default) deletes nothing; help and errors in Chinese
keep the exit codes and the English JSON."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_terminal import in_pty
from tests.conftest import ROOT, clean_env, run_cli
from tests.world.launchfiles import write_webui


def on_terminal(args: list[str], answer: bytes, env: dict[str, str]) -> tuple[int, str]:
    """Run sdboot with a pseudo-terminal as stdin/stdout/stderr, typing `answer`."""
    rc, out, _screen = in_pty(args, 200, clean_env(env), ROOT, answer=answer)
    return rc, out


def _webui(tmp_path: Path) -> Path:
    webui = write_webui(tmp_path / "webui")
    (webui / "extensions/thing/models").mkdir(parents=True)
    (webui / "extensions/thing/models/cn.pth").write_bytes(b"\0" * 3000)
    (webui / ".sdboot").mkdir()
    return webui


def test_remove_and_uninstall_ask_on_a_terminal(tmp_path: Path, config_dir: Path) -> None:
    webui = _webui(tmp_path)
    env = {"SDBOOT_CONFIG_DIR": str(config_dir)}
    rc, out = on_terminal(["ext", "remove", "thing", "--webui", str(webui)], b"\n", env)
    assert rc == 1 and "Delete" in out and "2.9 KB" in out, out  # the default is no
    assert (webui / "extensions/thing/models/cn.pth").is_file()
    rc, out = on_terminal(["ext", "remove", "thing", "--webui", str(webui)], b"y\n", env)
    assert rc == 0 and not (webui / "extensions/thing").exists(), out
    rc, out = on_terminal(["uninstall", str(webui)], b"n\n", env)
    assert rc == 1 and (webui / ".sdboot").is_dir() and ".sdboot" in out, out
    rc, out = on_terminal(["uninstall", str(webui)], b"y\n", env)
    assert rc == 0 and not (webui / ".sdboot").exists(), out


def test_chinese_help_errors_and_english_json(tmp_path: Path, config_dir: Path) -> None:
    webui = _webui(tmp_path)
    zh = {"SDBOOT_CONFIG_DIR": str(config_dir), "SDBOOT_LANG": "zh_CN"}
    for args in (["ext", "update", "--help"], ["list", "--help"], ["uninstall", "--help"]):
        res = run_cli(*args, env=zh)
        assert res.returncode == 0 and any("\u4e00" <= c <= "\u9fff" for c in res.stdout)
    res = run_cli("ext", "disable", "nothing-here", "--webui", str(webui), env=zh)
    assert res.returncode == 2 and "没有扩展 nothing-here" in res.stderr
    assert res.stderr.startswith("error: ") and "\nhint: " in res.stderr
    en = run_cli("ext", "list", "--json", "--webui", str(webui),
                 env={"SDBOOT_CONFIG_DIR": str(config_dir)})
    assert run_cli("ext", "list", "--json", "--webui", str(webui), env=zh).stdout == en.stdout
    assert json.loads(en.stdout)["extensions"][0]["name"] == "thing"
    res = run_cli("uninstall", str(webui), "--dry-run", env=zh)
    assert res.returncode == 0 and "将会删除" in res.stdout and (webui / ".sdboot").is_dir()


def test_ext_without_webui_uses_the_last_install(tmp_path: Path, config_dir: Path) -> None:
    old, new = write_webui(tmp_path / "old"), _webui(tmp_path)
    (config_dir / "installs.json").write_text(json.dumps({
        "schema": "sdboot.installs/1", "installs": [
            {"path": str(new), "installed_at": 20}, {"path": str(old), "installed_at": 10},
            {"path": str(tmp_path / "gone"), "installed_at": 30}]}))
    env = {"SDBOOT_CONFIG_DIR": str(config_dir)}
    res = run_cli("ext", "list", "--json", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.json()["webui"] == str(new) and f"using {new}" in res.stderr
    (config_dir / "installs.json").unlink()
    res = run_cli("ext", "list", env=env, cwd=tmp_path)
    assert res.returncode == 2 and "is not a Stable Diffusion WebUI checkout" in res.stderr
