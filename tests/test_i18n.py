"""The user's language: how it is chosen, the catalogs, and the CLI in Chinese with the same
exit codes and the same (English) JSON."""

from __future__ import annotations

import gettext
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdboot.i18n import LOCALE_DIR, Text, compile_po, language, local, parse_po, t
from tests.conftest import clean_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("env", "want"), [
    ({"SDBOOT_LANG": "zh_CN", "LANG": "en_US.UTF-8"}, "zh_CN"),
    ({"SDBOOT_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LANGUAGE": "zh_CN:en", "LANG": "en_US.UTF-8"}, "zh_CN"),
    ({"LC_ALL": "zh_TW.UTF-8"}, "zh_CN"),  # Simplified is what sdboot ships
    ({"LC_MESSAGES": "de_DE.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({}, "en"),
])
def test_language_order(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                        want: str) -> None:
    for var in ("SDBOOT_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert language() == want


def test_compiled_catalog_reads_with_the_standard_gettext() -> None:
    po = ('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
          'msgid "{n} files"\nmsgstr "{n} 个文件"\n\n'
          '#, fuzzy\nmsgid "old"\nmsgstr "旧"\n\n'
          'msgid "empty"\nmsgstr ""\n')
    assert parse_po(po).keys() == {"", "{n} files"}  # fuzzy and empty entries left out
    cat = gettext.GNUTranslations(io.BytesIO(compile_po(po)))
    assert cat.gettext("{n} files") == "{n} 个文件" and cat.gettext("old") == "old"


def test_every_shipped_entry_keeps_its_placeholders() -> None:
    import re

    field = re.compile(r"\{(\w*)\}")
    for po in sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po")):
        for msgid, msgstr in parse_po(po.read_text(encoding="utf-8")).items():
            if msgid:
                assert set(field.findall(msgid)) == set(field.findall(msgstr)), (po, msgid)


def test_a_text_is_english_for_json_and_translated_for_people(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDBOOT_LANG", "zh_CN")
    text = t("{dir} does not exist", dir="/x")
    assert isinstance(text, Text) and str(text) == "/x does not exist"
    assert local(text) == "/x 不存在"
    assert json.loads(json.dumps({"m": text})) == {"m": "/x does not exist"}


def _doctor(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sdboot", "doctor", str(tmp_path / "none")],
                          capture_output=True, text=True, cwd=ROOT,
                          env=clean_env(SDBOOT_LANG="", **env), timeout=60)


def test_the_cli_in_chinese_same_exit_code(tmp_path: Path) -> None:
    zh = _doctor(tmp_path, LANG="zh_CN.UTF-8")
    en = _doctor(tmp_path, LANG="C.UTF-8")
    assert zh.returncode == en.returncode == 2
    assert zh.stderr.splitlines()[0] == f"error: {tmp_path / 'none'} 不存在"
    assert zh.stderr.splitlines()[1].startswith("hint: 请指定 WebUI 文件夹")
    assert en.stderr.splitlines()[0] == f"error: {tmp_path / 'none'} does not exist"


# --- the catalogs against the code (tests/i18n_scan.py lists what is missing) ---------------

def test_every_message_id_has_a_translation_and_none_is_stale() -> None:
    from tests.i18n_scan import catalog, duplicates, scan

    found, cat = scan(), catalog()
    missing = sorted(k for k in found.ids if k not in cat)
    stale = sorted(set(cat) - set(found.ids))
    assert not missing, f"{len(missing)} untranslated (python -m tests.i18n_scan PATH): " \
        f"{[(m, found.ids[m][0]) for m in missing[:5]]}"
    assert not stale, f"{len(stale)} catalog entries no code uses: {stale[:5]}"
    assert not duplicates()
    assert not found.bad, f"ids built inside _()/t() never match the catalog: {found.bad}"


def _english_literal(node: object) -> bool:
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return any(c.isalpha() for c in node.value)
    return isinstance(node, ast.JoinedStr)


def test_errors_and_help_texts_are_marked() -> None:
    """An error, hint or --help text written as a bare literal never reaches the catalog:
    SdbootError's message and hint are t() texts, help= is _() text, and a command's help is
    its help= (typer would show a docstring as it is, in English)."""
    import ast

    bare = []
    for path in sorted((ROOT / "sdboot").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and ast.get_docstring(node) and any(
                    isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                    and d.func.attr in ("command", "callback")
                    and not any(k.arg == "help" for k in d.keywords)
                    for d in node.decorator_list):
                bare.append(f"{rel}:{node.lineno} (a command's docstring as its help)")
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else \
                getattr(node.func, "id", "")
            checked = []
            if name == "SdbootError":
                checked += node.args[:2] + [k.value for k in node.keywords if k.arg == "hint"]
            checked += [k.value for k in node.keywords if k.arg in ("help", "epilog")]
            bare += [f"{rel}:{node.lineno}" for arg in checked if _english_literal(arg)]
    assert not bare, f"{len(bare)} unmarked: {bare[:10]}"


# --- the CLI in Chinese: errors, hints and help translated; exit codes and JSON unchanged ---

def _cli(tmp_path: Path, lang: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(SDBOOT_LANG="", LANGUAGE="", LC_ALL="", LC_MESSAGES="", LANG=lang,
                    SDBOOT_CONFIG_DIR=str(tmp_path / "config"),
                    SDBOOT_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "sdboot", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=60)


def _both(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                              subprocess.CompletedProcess[str]]:
    return _cli(tmp_path, "zh_CN.UTF-8", *args), _cli(tmp_path, "C.UTF-8", *args)


def test_launch_on_a_missing_folder_says_it_in_chinese(tmp_path: Path) -> None:
    zh, en = _both(tmp_path, "launch", str(tmp_path / "none"))
    assert zh.returncode == en.returncode == 2
    assert zh.stderr.splitlines() == [
        f"error: {tmp_path / 'none'} 不是 Stable Diffusion WebUI 的代码目录",
        "hint: 请指定 WEBUI_DIR，或先运行 sdboot install"]
    assert en.stderr.splitlines()[0] == \
        f"error: {tmp_path / 'none'} is not a Stable Diffusion WebUI checkout"


def test_bad_input_to_models_add_and_an_unknown_profile_in_chinese(tmp_path: Path) -> None:
    webui = tmp_path / "webui"
    webui.mkdir()
    for name in ("launch.py", "webui.py"):
        (webui / name).write_text("", encoding="utf-8")
    zh, en = _both(tmp_path, "models", "add", "x.safetensors", "--webui", str(webui),
                   "--sha256", "12")
    assert zh.returncode == en.returncode == 2
    assert zh.stderr.splitlines() == ["error: --sha256 必须是 64 位十六进制",
                                      "hint: 请从模型页面复制"]
    assert en.stderr.splitlines()[0] == "error: --sha256 must be 64 hex digits"
    zh, en = _both(tmp_path, "profiles", "show", "nosuch")
    assert zh.returncode == en.returncode == 2
    assert zh.stderr.splitlines()[0] == "error: 未知的配置档 'nosuch'"
    assert zh.stderr.splitlines()[1].startswith("hint: 已有的配置档：")
    assert en.stderr.splitlines()[1].startswith("hint: known profiles: ")


def test_usage_errors_in_chinese(tmp_path: Path) -> None:
    """click writes its usage errors in English only; they are translated for people, the
    English stays as click words it."""
    for args, want in ((("launch", "--nosuch"), "error: 没有这个选项：--nosuch"),
                       (("launch", "--port", "70000"),
                        "error: '--port' 的值无效：70000 不在范围 1<=x<=65535 内。"),
                       (("profiles", "show"), "error: 缺少参数 'NAME'。")):
        zh, en = _both(tmp_path, *args)
        assert zh.returncode == en.returncode == 2, args
        assert zh.stderr.splitlines()[0] == want
        assert zh.stderr.splitlines()[1].startswith("hint: 运行 'sdboot ")
    assert en.stderr.splitlines()[0] == "error: Missing argument 'NAME'."


def test_help_is_translated_when_the_command_runs(tmp_path: Path) -> None:
    zh, en = _both(tmp_path, "launch", "--help")
    assert zh.returncode == en.returncode == 0
    assert "最省显存（4 GB 显卡；速度慢）。" in zh.stdout and "Least VRAM" not in zh.stdout
    assert "Least VRAM (4 GB cards; slow)." in en.stdout
    # typer's own words too (sdboot.cli.click_text)
    assert zh.stdout.startswith("用法：sdboot launch") and "显示本帮助并退出。" in zh.stdout
    assert en.stdout.startswith("Usage: sdboot launch") and "Show this message and exit." \
        in en.stdout and "\nOptions:\n" in en.stdout


def test_json_is_the_same_in_both_languages(tmp_path: Path) -> None:
    """--json is for programs: the same bytes whatever the locale, while the human output of
    the same command is translated (the resolver's reasons are t() texts)."""
    for args in (("profiles", "list", "--json"),
                 ("resolve", "--webui-version", "1.10.1", "--explain", "--json")):
        zh, en = _both(tmp_path, *args)
        assert zh.returncode == en.returncode, args
        assert zh.stdout == en.stdout and json.loads(en.stdout), args
    zh, en = _both(tmp_path, "resolve", "--webui-version", "1.10.1")
    assert zh.returncode == en.returncode
    assert "默认按 Python 3.10" in zh.stdout + zh.stderr
    assert "Python 3.10 assumed" in en.stdout + en.stderr


def test_chinese_help_fits_80_columns_in_cells() -> None:
    """click counts characters; a Chinese character takes two cells: --help in Chinese is
    wrapped by cells (between characters, punctuation kept with its text), English as click
    wraps it."""
    import subprocess
    import sys

    from rich.cells import cell_len

    for args in (["--help"], ["install", "--help"], ["doctor", "--help"]):
        for lang in ("zh_CN", "en"):
            res = subprocess.run([sys.executable, "-m", "sdboot", *args], capture_output=True,
                                 text=True, env={**clean_env(), "SDBOOT_LANG": lang,
                                                 "COLUMNS": "80"}, timeout=60)
            assert res.returncode == 0, res.stderr
            wide = [line for line in res.stdout.splitlines() if cell_len(line) > 80]
            assert not wide, (lang, args, wide)
            if lang == "zh_CN":
                assert "用法" in res.stdout
                assert not any(line.lstrip().startswith(("，", "。", "）", "：", "；"))
                               for line in res.stdout.splitlines()), res.stdout
