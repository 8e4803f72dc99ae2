"""Loading the mirror table: mirrors.yaml and the user overlay, every URL validated as plain
data (no shell meaning), and select() for a --mirror preset or name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sdboot.errors import SdbootError
from sdboot.i18n import N_, Text, local_or_lookup, t
from sdboot.io.datafile import LineDict, bad_data, config_dir, data_dir, line_of, load_yaml, present
from sdboot.io.http_rules import is_loopback_host
from sdboot.mirrors.table import (
    _GITHUB_START_RE,
    _REPO_RE,
    _STOP,
    GROUP_OF,
    GROUPS,
    Mirror,
    MirrorKind,
    MirrorTable,
    Selection,
    Substitution,
    _repo_key,
)

# --- loading ---------------------------------------------------------------------------------

# What a mirror or index URL may contain: these values end up in TORCH_COMMAND, INDEX_URL,
# GIT_CONFIG_* and pip/git command lines, which the WebUI's scripts hand to a shell
# (launch.py runs TORCH_COMMAND through one, unquoted). So a URL is plain data: RFC 3986
# unreserved characters and the few delimiters a mirror needs, '%' only as a %XX escape
# (a password with other characters is written percent-encoded), brackets only around an
# IPv6 host. Nothing here means anything to sh, bash or cmd.
_URL_CHAR = re.compile(r"[A-Za-z0-9\-._:/@%+=\[\]]")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CHAR_NAMES = {" ": N_("a space"), "\t": N_("a tab"), "\n": N_("a newline"),
               "\r": N_("a carriage return")}


_MUST_BE_LIST = N_("'{key}' must be a list")


def shown_value(text: str) -> str:
    """A value as quoted in a message: one line, control characters escaped."""
    return text.encode("unicode_escape").decode("ascii")


def url_problem(url: str, *, variant: bool = False, schemes: tuple[str, ...] = ("http", "https"),
                ) -> str | None:
    """Why `url` is not acceptable as a mirror / index URL (None: it is). `variant`: the
    url may hold {variant}. Plain http is judged later (require_secure), not here."""
    text = url.replace("{variant}", "") if variant else url
    bad = list(dict.fromkeys(ch for ch in text if not _URL_CHAR.fullmatch(ch)))
    if bad:
        shown = [_CHAR_NAMES.get(ch) for ch in bad[:4]]
        names = Text(", ".join(n or repr(ch) for n, ch in zip(shown, bad, strict=False)),
                     "、".join(local_or_lookup(n) if n else repr(ch)
                              for n, ch in zip(shown, bad, strict=False)))
        return t("url '{url}' contains {names}: a URL here may hold only letters, digits and "
                 "- . _ : / @ % + = (percent-encode anything else, e.g. a password)",
                 url=shown_value(url), names=names)
    if _BAD_PERCENT.search(text):
        return t("url '{url}' has a '%' that is not a %XX escape", url=url)
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return t("url '{url}' is not a valid URL ({error})", url=url, error=exc)
    if parts.scheme not in schemes or not host:
        return t("url '{url}' is not an http(s) URL", url=url)
    if "[" in parts.path or "]" in parts.path:
        return t("url '{url}' has brackets outside an IPv6 host", url=url)
    if url.startswith("-"):
        return t("url '{url}' starts with '-'", url=url)
    return None


def local_http_problem(url: str) -> str | None:
    """Profiles and pip arguments: https, or plain http only to this machine (loopback)."""
    if urlsplit(url).scheme == "http" and not is_loopback(url):
        return t("url '{url}' uses plain http:// to another machine (use https)", url=url)
    return None



def is_loopback(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def require_secure(mirror: Mirror, insecure: bool = False) -> None:
    """Mirrors are untrusted: https only, plain http for loopback or with --insecure."""
    scheme = urlsplit(mirror.url).scheme
    if scheme == "https" or is_loopback(mirror.url) or insecure:
        return
    raise SdbootError(t("mirror '{name}' uses plain {scheme}:// ({url})", name=mirror.name,
                        scheme=scheme, url=mirror.url),
                      t("use an https mirror, or pass --insecure if you trust this network"))


def _parse_mirror(doc: Any, path: Path, source: str) -> Mirror:
    if not isinstance(doc, dict):
        raise bad_data(path, line_of(doc), t("a mirror entry must be a mapping"))

    def text(key: str, required: bool = False) -> str | None:
        value = doc.get(key)
        if value is None:
            if required:
                raise bad_data(path, line_of(doc), t("mirror entry lacks '{key}'", key=key))
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise bad_data(path, line_of(doc, key), t("'{key}' must be a string", key=key))
        return str(value)

    unknown = set(doc) - {"name", "kind", "url", "region", "dead_since", "notes"}
    if unknown:
        raise bad_data(path, line_of(doc, sorted(unknown)[0]),
                       t("unknown key '{key}' in mirror entry", key=sorted(unknown)[0]))
    name = text("name", True) or ""
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
        raise bad_data(path, line_of(doc, "name"), t("bad mirror name '{name}'", name=name))
    kind_text = text("kind", True) or ""
    try:
        kind = MirrorKind(kind_text)
    except ValueError:
        raise bad_data(path, line_of(doc, "kind"),
                       t("unknown mirror kind '{kind}' (one of: {kinds})", kind=kind_text,
                         kinds=", ".join(k.value for k in MirrorKind))) from None
    url = text("url", True) or ""
    where = f"{path}:{line_of(doc, 'url')}"
    problem = url_problem(url, variant=True)
    if problem:
        raise bad_data(path, line_of(doc, "url"), t("mirror {problem}", problem=problem))
    if any(ch in _STOP for ch in url.replace("{variant}", "")):
        raise bad_data(path, line_of(doc, "url"),
                       t("mirror url '{url}' contains spaces, quotes or braces", url=url))
    if "{variant}" in url and GROUP_OF[kind] != "torch":
        raise bad_data(path, line_of(doc, "url"), t("only torch mirrors may use {variant}",
                                                    variant="{variant}"))
    if kind in (MirrorKind.GITHUB_PREFIX, MirrorKind.GITHUB_CLONE, MirrorKind.GITHUB_HOST):
        if not url.endswith("/"):
            raise bad_data(path, line_of(doc, "url"),
                           t("a {kind} url must end with '/' (got '{url}')", kind=str(kind),
                             url=url))
        if _GITHUB_START_RE.search(url):
            raise bad_data(path, line_of(doc, "url"),
                           t("a GitHub mirror url must not contain https://github.com/ "
                             "itself"))
    dead = text("dead_since")
    if dead is not None and not re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", dead):
        raise bad_data(path, line_of(doc, "dead_since"),
                       t("dead_since must look like 2023-11 (got '{value}')", value=dead))
    return Mirror(name=name, kind=kind, url=url, region=text("region"), dead_since=dead,
                  notes=text("notes"), source=source, where=where)


def _merge_layer(doc: Any, path: Path, source: str, mirrors: dict[str, Mirror],
                 presets: dict[str, dict[str, str]], subs: dict[str, Substitution],
                 extra: dict[str, dict[str, str]]) -> None:
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise bad_data(path, 1, t("mirrors.yaml must be a mapping with mirrors / presets / "
                                  "substitutions"))
    unknown = set(doc) - {"mirrors", "presets", "substitutions", "upstreams", "probes",
                          "replace_shipped"}
    if unknown:
        key = sorted(unknown)[0]
        raise bad_data(path, line_of(doc, key), t("unknown top-level key '{key}'", key=key))
    if doc.get("replace_shipped") is True:  # "only our own mirrors" (a company network)
        if source == "shipped":
            raise bad_data(path, line_of(doc, "replace_shipped"),
                           t("only an overlay may replace the shipped table"))
        mirrors.clear()
        presets.clear()
        subs.clear()
        extra.pop("_preset_lines", None)
    entries = doc.get("mirrors") or []
    if not isinstance(entries, list):
        raise bad_data(path, line_of(doc, "mirrors"), t(_MUST_BE_LIST, key="mirrors"))
    seen: set[str] = set()
    for entry in entries:
        mirror = _parse_mirror(entry, path, source)
        if mirror.name in seen:
            raise bad_data(path, line_of(entry, "name"),
                           t("mirror '{name}' appears twice", name=mirror.name))
        seen.add(mirror.name)
        mirrors[mirror.name] = mirror
    raw_presets = doc.get("presets") or {}
    if not isinstance(raw_presets, dict):
        raise bad_data(path, line_of(doc, "presets"), t("'{key}' must be a mapping",
                                                        key="presets"))
    for pname, choice in raw_presets.items():
        if not isinstance(choice, dict) or not all(isinstance(v, str) for v in choice.values()):
            raise bad_data(path, line_of(raw_presets, pname),
                           t("preset '{name}' must map groups to mirror names", name=pname))
        bad = set(choice) - set(GROUPS)
        if bad:
            raise bad_data(path, line_of(raw_presets, pname),
                           t("preset '{name}': unknown group '{group}' (one of: {groups})",
                             name=pname, group=sorted(bad)[0], groups=", ".join(GROUPS)))
        presets[str(pname)] = {str(k): str(v) for k, v in choice.items()}
        if isinstance(choice, LineDict):
            extra.setdefault("_preset_lines", {})[str(pname)] = f"{path}:{choice.line}"
    raw_subs = doc.get("substitutions") or []
    if not isinstance(raw_subs, list):
        raise bad_data(path, line_of(doc, "substitutions"),
                       t(_MUST_BE_LIST, key="substitutions"))
    for sub in raw_subs:
        if not isinstance(sub, dict) or not isinstance(sub.get("from"), str) \
                or not isinstance(sub.get("to"), str):
            raise bad_data(path, line_of(sub), t("a substitution needs 'from' and 'to' URLs"))
        for key in ("from", "to"):
            if not _REPO_RE.match(sub[key]):
                raise bad_data(path, line_of(sub, key),
                               t("'{url}' is not a https://github.com/OWNER/REPO URL",
                                 url=sub[key]))
        subs[_repo_key(sub["from"])] = Substitution(sub["from"], sub["to"])
    for key in ("upstreams", "probes"):
        value = doc.get(key) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise bad_data(path, line_of(doc, key), t("'{key}' must map names to strings",
                                                      key=key))
        for name, text in value.items():
            problem = _probe_problem(str(name), text) if key == "probes" else \
                (url_problem(text, variant=True) if text else None)
            if problem:
                raise bad_data(path, line_of(value, name), t("{key}: {problem}",
                                                             key=f"{key}.{name}",
                                                             problem=problem))
        extra.setdefault(key, {}).update({str(k): str(v) for k, v in value.items()})


_PROBE_SHAPES = {"pypi_project": re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*"),
                 "github_repo": re.compile(r"[\w.-]+/[\w.-]+"),
                 "hf_file": re.compile(r"[\w-][\w.-]*(/[\w-][\w.-]*)*"),
                 "torch_variant": re.compile(r"cu\d+|cpu|rocm[\d.]+|xpu"),
                 # a small file of a python-build-standalone release: TAG/ASSET
                 "python_file": re.compile(r"\d{8}/[\w.%+-]+")}


def _probe_problem(name: str, text: str) -> str | None:
    """probes.* name what the health check asks for: a project name (it goes to pip's
    argv), a repository, a file path; never an option, a URL or a way up (..)."""
    shape = _PROBE_SHAPES.get(name)
    if shape is None:
        return t("unknown probe (one of: {probes})", probes=", ".join(_PROBE_SHAPES))
    if not shape.fullmatch(text) or ".." in text:
        return t("'{value}' is not a plain {what}", value=shown_value(text),
                 what=name.replace("_", " "))
    return None


def load_mirrors(extra_files: tuple[Path, ...] = ()) -> MirrorTable:
    """The shipped table, then $SDBOOT_CONFIG_DIR/mirrors.yaml: entries of the same name
    replace shipped ones. Presets must name mirrors of their group."""
    mirrors: dict[str, Mirror] = {}
    presets: dict[str, dict[str, str]] = {}
    subs: dict[str, Substitution] = {}
    extra: dict[str, dict[str, str]] = {}
    layers = [(data_dir() / "mirrors.yaml", "shipped"), (config_dir() / "mirrors.yaml", "user")]
    layers += [(p, "user") for p in extra_files]
    for path, source in layers:
        if present(path):
            _merge_layer(load_yaml(path), path, source, mirrors, presets, subs, extra)
    where = extra.get("_preset_lines", {})
    for pname, choice in presets.items():
        for group, mname in choice.items():
            mirror = mirrors.get(mname)
            if mirror is None or mirror.group != group:
                loc = where.get(pname, "mirrors.yaml:1")
                file, _, line = loc.rpartition(":")
                what = t("unknown mirror") if mirror is None else \
                    t("a {group} mirror", group=mirror.group)
                raise bad_data(file, int(line), t("preset '{name}' sets {group} to '{mirror}', "
                                                  "which is {what}", name=pname, group=group,
                                                  mirror=mname, what=what))
    return MirrorTable(mirrors, presets, tuple(subs.values()), extra.get("upstreams", {}),
                       extra.get("probes", {}))


def select(table: MirrorTable, spec: str | None, insecure: bool = False,
           **overrides: str | None) -> Selection:
    """--mirror NAME: a preset, a single mirror name, or none. `overrides` (github=NAME, ...)
    replace single groups. `auto` is resolved by the health check, not here."""
    chosen: dict[str, Mirror | None] = {g: None for g in GROUPS}
    label = spec or "none"
    if spec and spec != "none":
        if spec in table.presets:
            for group, name in table.presets[spec].items():
                chosen[group] = table.get(name, group)
        elif spec in table.mirrors:
            single = table.mirrors[spec]
            chosen[single.group] = single
        else:
            raise SdbootError(t("unknown mirror or preset '{name}'", name=spec),
                              t("presets: {presets}; also auto, none, or a mirror name from "
                                "sdboot mirror list",
                                presets=", ".join(sorted(table.presets)) or "none"))
    for group, override in overrides.items():
        if override:
            chosen[group] = None if override == "none" else table.get(override, group)
    for picked in chosen.values():
        if picked is not None:
            require_secure(picked, insecure)
    return Selection(label=label, **chosen)
