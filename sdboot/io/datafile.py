"""Reading sdboot's YAML data files (shipped and overlay) with line numbers, so that a
bad entry is reported as `file:line: what is wrong`. Also where the data lives.

An overlay file is untrusted input, so reading one is bounded: a plain file only (never a
folder, a FIFO that would block, a device), at most 1 MB, UTF-8; aliases only as values,
never self-referring, expanding to at most MAX_ALIAS_NODES nodes (a YAML bomb is refused
while composing, before anything is built); at most MAX_DEPTH levels of nesting; mapping
keys are scalars, kept as written. Every refusal is a bad-input error with file:line."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

from sdboot.errors import SdbootError
from sdboot.i18n import N_, t


class LineDict(dict[str, Any]):
    """A mapping from YAML that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


# Limits that keep a hostile or broken data file from costing more than it is worth. The
# shipped files are a few KB and use no anchors; an overlay may use a few (`<<: *base`).
MAX_BYTES = 1 << 20  # a data file larger than this is not one of ours
MAX_DEPTH = 64  # nesting levels; deeper is refused before Python's recursion limit
MAX_ALIAS_NODES = 100_000  # nodes that aliases may add by repeating what they name


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts what aliases expand to while composing (before anything is
    built), refuses aliases as mapping keys and self-referring ones, and limits nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.sd_path: Path | str = "<data>"
        self._weights: dict[int, int] = {}  # id(node) -> nodes it expands to
        self._alias_nodes = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            line = event.start_mark.line + 1
            if isinstance(parent, yaml.MappingNode) and index is None:
                raise bad_data(self.sd_path, line,
                               t("the alias *{anchor} is used as a mapping key; aliases are "
                                 "allowed only as values", anchor=event.anchor))
            target = self.anchors.get(event.anchor or "")
            if target is not None:
                weight = self._weights.get(id(target))
                if weight is None:
                    raise bad_data(self.sd_path, line,
                                   t("the alias *{anchor} refers to itself",
                                     anchor=event.anchor))
                self._alias_nodes += weight
                if self._alias_nodes > MAX_ALIAS_NODES:
                    raise bad_data(self.sd_path, line,
                                   t("anchors and aliases expand to more than {limit} "
                                     "entries (a YAML bomb?)", limit=MAX_ALIAS_NODES))
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise bad_data(self.sd_path, event.start_mark.line + 1,
                               t("nested more than {limit} levels deep", limit=MAX_DEPTH))
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None:
            self._weights[id(node)] = 1 + sum(self._weights.get(id(child), 1)
                                              for child in _children(node))
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise bad_data(loader.sd_path, key_node.start_mark.line + 1,
                           t("a mapping key must be a plain name, not a list or a mapping"))
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = key_node.value  # 1.10, true, 2023: the text as written, never str() of it
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def bad_data(path: Path | str, line: int, what: str) -> SdbootError:
    return SdbootError(
        t("{path}:{line}: {what}", path=path, line=line, what=what),
        t("fix or remove that entry (overlay files live in $SDBOOT_CONFIG_DIR)"),
        exit_code=2,
    )


_KINDS = ((stat.S_ISDIR, N_("a folder")), (stat.S_ISFIFO, N_("a named pipe (FIFO)")),
          (stat.S_ISSOCK, N_("a socket")), (stat.S_ISCHR, N_("a device")),
          (stat.S_ISBLK, N_("a device")))


def read_data_file(path: Path) -> bytes:
    """The bytes of a data file: a regular file (never a FIFO that would block, a folder or
    a device) of at most MAX_BYTES, checked before anything is read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), N_("not a file"))
            raise SdbootError(t("{path} is {kind}, not a data file", path=path, kind=t(kind)),
                              t("move it away: sdboot reads its data only from plain files"))
        if st.st_size > MAX_BYTES:
            raise SdbootError(t("{path} is {size} bytes; a data file may have at most {limit} "
                                "(1 MB)", path=path, size=st.st_size, limit=MAX_BYTES),
                              t(_NOT_DATA))
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES and (chunk := os.read(fd, MAX_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:  # it grew while we looked
        raise SdbootError(t("{path} is larger than {limit} bytes (1 MB)", path=path,
                            limit=MAX_BYTES), t(_NOT_DATA))
    return data


_NOT_DATA = N_("this is not an sdboot data file: move it away or trim it")


def _unreadable(path: Path, exc: OSError) -> SdbootError:
    return SdbootError(t("cannot read {path}: {reason}", path=path, reason=describe_errno(exc)),
                       t("make it a readable plain file, or remove it"))


def describe_errno(exc: OSError) -> str:
    """The OS reason in plain words, e.g. 'No such file or directory'."""
    return exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))


def load_yaml(path: Path) -> Any:
    """Parse one YAML data file safely (see read_data_file and _Loader); every problem is a
    bad-input error naming the file and, where it has one, the line."""
    data = read_data_file(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SdbootError(t("{path}:{line}: not UTF-8 text (byte {byte})", path=path, line=line,
                            byte=f"0x{data[exc.start]:02x}"),
                          t("save the file as UTF-8 (most editors offer it under "
                            "'Save as' / 'Encoding')")) from None
    loader = _Loader(text)
    loader.sd_path = path
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise bad_data(path, line, t("malformed YAML: {problem}",
                                     problem=exc.problem or exc)) from None
    except yaml.YAMLError as exc:
        raise bad_data(path, 1, t("malformed YAML: {problem}", problem=exc)) from None
    except RecursionError:
        raise bad_data(path, loader.line + 1, t("nested too deeply")) from None
    finally:
        loader.dispose()


def present(path: Path) -> bool:
    """Whether anything is at path: a file, or what should have been one (a folder, a pipe, a
    dangling link), which load_yaml then refuses by name instead of skipping it silently."""
    return os.path.lexists(path)


def line_of(obj: Any, key: str | None = None) -> int:
    if isinstance(obj, LineDict):
        if key is not None and key in obj.key_lines:
            return obj.key_lines[key]
        return obj.line
    return 1


def data_dir() -> Path:
    """Shipped data: inside the wheel (sdboot/_data), or the source tree's top level."""
    package = Path(__file__).resolve().parent.parent  # sdboot/ (this file is sdboot/io/)
    packaged = package / "_data"
    return packaged if packaged.is_dir() else package.parent


def doc_link(name: str) -> str:
    """Where a human reads docs/<name>.md: the installed copy (the wheel carries docs/ in
    sdboot/_data/docs; a checkout has docs/), its zh-CN twin for a Chinese reader, as a
    file:// link terminals can open; the plain relative name when neither is there."""
    from sdboot.i18n import language

    folder = data_dir() / "docs"
    names = ([f"{name}.zh-CN.md"] if language() == "zh_CN" else []) + [f"{name}.md"]
    for candidate in names:
        path = folder / candidate
        if path.is_file():
            return path.resolve().as_uri()
    return f"docs/{name}.md"


def config_dir() -> Path:
    """The user overlay: $SDBOOT_CONFIG_DIR, else the platform's user config folder."""
    explicit = os.environ.get("SDBOOT_CONFIG_DIR")
    if explicit:
        folder = Path(explicit).expanduser()
    elif sys.platform == "win32":
        folder = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "sdboot"
    elif sys.platform == "darwin":
        folder = Path.home() / "Library" / "Application Support" / "sdboot"
    else:
        folder = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "sdboot"
    try:
        st = folder.stat()
    except OSError:
        return folder  # nothing there (or not reachable): no overlay
    if not stat.S_ISDIR(st.st_mode):
        where = "SDBOOT_CONFIG_DIR" if explicit else t("the sdboot config folder")
        raise SdbootError(t("{where} {folder} is not a folder", where=where, folder=folder),
                          t("point SDBOOT_CONFIG_DIR at a folder (or unset it), or move the "
                            "file away"))
    return folder


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
