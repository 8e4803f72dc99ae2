"""The WebUI's own list of disabled extensions: `disabled_extensions` (folder names) and
`disable_all_extensions` ("none" | "extra" | "all") in WEBUI/config.json, the file the
WebUI's settings page writes (AUTOMATIC1111 modules/shared_options.py, read at start by
modules/launch_utils.py list_extensions and modules/extensions.py). A config.json that is
not a JSON object, or whose two keys have other types, is an exit-2 error naming the file,
with nothing changed: the WebUI itself would move such a file to tmp/ and start from
defaults. A change is written whole (io.files.atomic_write), in the WebUI's own format
(indent 4, UTF-8), after the previous file is copied to config.json.sdboot-backup."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.files import atomic_write, inside, refuse_symlink

CONFIG = "config.json"
BACKUP = CONFIG + ".sdboot-backup"
DISABLE_ALL = ("none", "extra", "all")


@dataclass(frozen=True)
class WebuiConfig:
    path: Path
    doc: dict[str, Any]  # {} when there is no config.json yet
    data: bytes | None  # the file's bytes as read (None: no file)

    @property
    def disabled(self) -> list[str]:
        return list(self.doc.get("disabled_extensions") or [])

    @property
    def disable_all(self) -> str:
        return str(self.doc.get("disable_all_extensions") or "none")


def _broken(path: Path, problem: str) -> SdbootError:
    return SdbootError(t("{path} {problem}; nothing was changed", path=path, problem=problem),
                       t("fix the file (or move it away: the WebUI then starts with default "
                         "settings), then run the command again"), exit_code=2)


def read_config(root: Path) -> WebuiConfig:
    """config.json validated for what sdboot reads and writes in it."""
    path = root / CONFIG
    if not os.path.lexists(path):
        return WebuiConfig(path, {}, None)
    refuse_symlink(path, CONFIG)
    if not path.is_file():
        raise _broken(path, t("is not a file"))
    inside(root, path, CONFIG)
    data = path.read_bytes()
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _broken(path, t("is not valid JSON ({error})", error=str(exc)[:120])) from None
    if not isinstance(doc, dict):
        raise _broken(path, t("is not a JSON object"))
    names = doc.get("disabled_extensions", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _broken(path, t("has a 'disabled_extensions' that is not a list of names"))
    if doc.get("disable_all_extensions", "none") not in DISABLE_ALL:
        raise _broken(path, t("has a 'disable_all_extensions' other than none, extra or all"))
    return WebuiConfig(path, doc, data)


def plan_disabled(disabled: list[str], name: str, disable: bool) -> list[str]:
    """The new disabled list (pure): name added once at the end, or every copy taken out."""
    if disable:
        return disabled if name in disabled else [*disabled, name]
    return [n for n in disabled if n != name]


def write_disabled(root: Path, config: WebuiConfig, names: list[str]) -> Path | None:
    """Write config.json with this disabled list (every other key as it was); returns the
    backup's path when there was a file to back up. The file must not have changed since
    it was read (a running WebUI saving its settings): then nothing is written."""
    if config.data is not None:
        now = config.path.read_bytes() if config.path.is_file() else None
        if now != config.data:
            raise SdbootError(t("{path} changed while sdboot was reading it; nothing was "
                                "changed", path=config.path),
                              t("stop the WebUI (it writes its settings there), then run the "
                                "command again"), exit_code=1)
    doc = {**config.doc, "disabled_extensions": names}
    backup = None
    if config.data is not None:
        backup = root / BACKUP
        atomic_write(backup, config.data, root=root)
    atomic_write(config.path, (json.dumps(doc, indent=4, ensure_ascii=False)).encode("utf-8"),
                 root=root)
    return backup
