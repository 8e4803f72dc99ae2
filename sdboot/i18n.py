"""The user's language: Simplified Chinese when the locale asks for it, English otherwise.

Standard gettext: the message catalogs live in sdboot/locale/<lang>/LC_MESSAGES/*.po (one
file per part of the code, all merged); the wheel carries them compiled to .mo, and a
checkout without .mo files compiles the .po files in memory.

Three ways to mark text (the extraction test finds every one):

    _("text")                        translated now: help, progress lines, notes
    t("{n} files", n=3)              English as the str value (JSON, logs, codes stay
                                     English), the translation in .localized (humans)
    N_("text")                       marked for extraction only (module constants);
                                     translate later with _() or t()

Placeholders are named (`{name}`), formatted after the lookup, never inside an f-string.
Human output goes through `local()`, which picks the translation of a `t()` text.

The language: SDBOOT_LANG (zh_CN | en) overrides; else the first of LANGUAGE, LC_ALL,
LC_MESSAGES, LANG that is set (a value starting with "zh" means Chinese; C and POSIX mean
English); on Windows the user's UI language. Only Simplified Chinese is shipped: zh_TW, zh_HK
and every other Chinese locale get it too."""

from __future__ import annotations

import gettext
import io
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN_LANGS = ("zh_CN",)


def language() -> str:
    """'zh_CN' or 'en', from the environment (read at each call: cheap)."""
    forced = os.environ.get("SDBOOT_LANG", "").strip()
    if forced:
        return "zh_CN" if forced.lower().startswith("zh") else "en"
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "").strip()
        if value:
            first = value.split(":", 1)[0].lower()
            return "zh_CN" if first.startswith("zh") else "en"
    if sys.platform == "win32":
        return _windows_language()
    return "en"


def _windows_language() -> str:
    try:
        import ctypes

        langid = ctypes.windll.kernel32.GetUserDefaultUILanguage()  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return "en"
    return "zh_CN" if (int(langid) & 0x3FF) == 0x04 else "en"  # LANG_CHINESE


def _unquote(text: str) -> str:
    import ast

    return str(ast.literal_eval(text))


def parse_po(text: str) -> dict[str, str]:
    """msgid -> msgstr of a .po file (fuzzy and empty entries left out; the header kept)."""
    entries: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    fuzzy = current_fuzzy = False
    target: list[str] | None = None

    def flush() -> None:
        if msgid is not None and msgstr is not None:
            key, value = "".join(msgid), "".join(msgstr)
            if value and not current_fuzzy:
                entries[key] = value

    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        elif line.startswith("msgid "):
            flush()
            current_fuzzy, fuzzy = fuzzy, False
            msgid, msgstr = [_unquote(line[6:])], None
            target = msgid
        elif line.startswith("msgstr "):
            msgstr = [_unquote(line[7:])]
            target = msgstr
        elif line.startswith('"') and target is not None:
            target.append(_unquote(line))
        elif not line:
            flush()
            msgid = msgstr = target = None
    flush()
    return entries


def compile_po(text: str) -> bytes:
    """The .mo bytes (GNU format, little-endian) of a .po file's translations."""
    import struct

    entries = sorted((k.encode(), v.encode()) for k, v in parse_po(text).items())
    ids = b"".join(k + b"\0" for k, _v in entries)
    strs = b"".join(v + b"\0" for _k, v in entries)
    start = 7 * 4 + 16 * len(entries)
    offsets_ids, offsets_strs, pos_i, pos_s = [], [], 0, 0
    for k, _v in entries:
        offsets_ids += [len(k), start + pos_i]
        pos_i += len(k) + 1
    for _k, v in entries:
        offsets_strs += [len(v), start + len(ids) + pos_s]
        pos_s += len(v) + 1
    header = struct.pack("<7I", 0x950412DE, 0, len(entries), 7 * 4,
                         7 * 4 + 8 * len(entries), 0, 0)
    return (header + struct.pack(f"<{len(offsets_ids)}I", *offsets_ids)
            + struct.pack(f"<{len(offsets_strs)}I", *offsets_strs) + ids + strs)


@cache
def _catalog(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    merged: gettext.NullTranslations | None = None
    if folder.is_dir():
        for po in sorted(folder.glob("*.po")):
            mo = po.with_suffix(".mo")
            data = mo.read_bytes() if mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime \
                else compile_po(po.read_text(encoding="utf-8"))
            cat = gettext.GNUTranslations(io.BytesIO(data))
            if merged is None:
                merged = cat
            else:
                merged.add_fallback(cat)
        if merged is None:  # a wheel: only the compiled catalogs
            for mo in sorted(folder.glob("*.mo")):
                cat = gettext.GNUTranslations(io.BytesIO(mo.read_bytes()))
                if merged is None:
                    merged = cat
                else:
                    merged.add_fallback(cat)
    return merged or gettext.NullTranslations()


def _(message: str) -> str:
    return _catalog(language()).gettext(message)


def N_(message: str) -> str:
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return _catalog(language()).ngettext(singular, plural, n)


class Text(str):
    """English as the string; the translation, formatted the same way, in .localized."""

    localized: str

    def __new__(cls, english: str, localized: str) -> Text:
        obj = super().__new__(cls, english)
        obj.localized = localized
        return obj


def t(message: str, **values: Any) -> Text:
    """`message` formatted with `values`: the English as the str, the translation in
    .localized (a value that is itself a Text is shown translated there)."""
    english = message.format(**values) if values else message
    translated = _(message)
    shown = {k: v.localized if isinstance(v, Text) else v for k, v in values.items()}
    try:
        localized = translated.format(**shown) if values else translated
    except (KeyError, IndexError, ValueError):  # a broken translation never breaks output
        localized = english
    return Text(english, localized)


def local(text: object) -> str:
    """What a human reads: the translation of a t() text, else the text itself."""
    if isinstance(text, Text):
        return text.localized
    return str(text)


def local_or_lookup(text: str) -> str:
    """local() for a t() text; a plain string is looked up as a msgid (the N_() constants
    that reach a human unformatted), and shown as it is when the catalog lacks it."""
    if isinstance(text, Text):
        return text.localized
    return _(text) if text else text
