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
