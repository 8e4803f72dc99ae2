"""Reading sdboot's YAML data files (shipped and overlay) with line numbers, so that a
bad entry is reported as `file:line: what is wrong`. Also where the data lives."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

from sdboot.errors import SdbootError


class LineDict(dict[str, Any]):
    """A mapping from YAML that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def bad_data(path: Path | str, line: int, what: str) -> SdbootError:
    return SdbootError(
        f"{path}:{line}: {what}",
        "fix or remove that entry (overlay files live in $SDBOOT_CONFIG_DIR)",
        exit_code=2,
    )


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SdbootError(f"cannot read {path}: {exc.strerror}",
                          "check the file's permissions") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise bad_data(path, line, f"malformed YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise bad_data(path, 1, f"malformed YAML: {exc}") from None


def line_of(obj: Any, key: str | None = None) -> int:
    if isinstance(obj, LineDict):
        if key is not None and key in obj.key_lines:
            return obj.key_lines[key]
        return obj.line
    return 1


def data_dir() -> Path:
    """Shipped data: inside the wheel (sdboot/_data), or the source tree's top level."""
    here = Path(__file__).resolve().parent
    packaged = here / "_data"
    return packaged if packaged.is_dir() else here.parent


def config_dir() -> Path:
    """The user overlay: $SDBOOT_CONFIG_DIR, else the platform's user config folder."""
    explicit = os.environ.get("SDBOOT_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "sdboot"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "sdboot"
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "sdboot"


def cache_dir() -> Path:
    """Throwaway state (the mirror health ranking): $SDBOOT_CACHE_DIR, else the platform's
    user cache folder."""
    explicit = os.environ.get("SDBOOT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) \
            / "sdboot" / "cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "sdboot"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sdboot"
