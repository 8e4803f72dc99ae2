"""The mirror table (shipped mirrors.yaml plus the user's overlay), what `--mirror` selects,
and the pure URL mapping: original URL -> mirrored URL, recognising URLs that already sit
behind a proxy so that switching mirrors replaces a prefix and never stacks one."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sdboot.datafile import LineDict, bad_data, config_dir, data_dir, line_of, load_yaml, present
from sdboot.errors import SdbootError
from sdboot.model import StrEnum


class MirrorKind(StrEnum):
    GITHUB_PREFIX = "github-prefix"  # PREFIX + https://github.com/... (ghproxy style)
    GITHUB_CLONE = "github-clone"  # BASE + O/R.git, clones only (gitclone.com)
    GITHUB_HOST = "github-host"  # github.com replaced by another host (kkgithub)
    PYPI = "pypi"
    TORCH_INDEX = "torch-index"
    TORCH_FIND_LINKS = "torch-find-links"
    HF = "hf"
    CONDA = "conda"


# The groups `--mirror`, presets and `mirror test --kind` speak of.
GROUPS = ("github", "pypi", "torch", "hf", "conda")
GROUP_OF = {
    MirrorKind.GITHUB_PREFIX: "github", MirrorKind.GITHUB_CLONE: "github",
    MirrorKind.GITHUB_HOST: "github", MirrorKind.PYPI: "pypi",
    MirrorKind.TORCH_INDEX: "torch", MirrorKind.TORCH_FIND_LINKS: "torch",
    MirrorKind.HF: "hf", MirrorKind.CONDA: "conda",
}

GITHUB = "https://github.com/"
GITHUB_STARTS = (GITHUB, "https://raw.githubusercontent.com/")
_GITHUB_START_RE = re.compile(r"https://(?:github\.com|raw\.githubusercontent\.com)/")
# Characters that end a URL inside a string literal. A mirror URL may not contain them,
# so that a prefix can always be found again (and replaced) by the same rule.
_STOP = frozenset(" \t\r\n\f\v'\"\\{}()<>,;`")
_PREFIX_TAIL_RE = re.compile(r"https?://[^\s]*/\Z")
_REPO_RE = re.compile(r"^https://github\.com/([\w.-]+)/([\w.-]+?)(\.git)?(@[\w./-]+)?/?$")


@dataclass(frozen=True)
class Mirror:
    name: str
    kind: MirrorKind
    url: str
    region: str | None = None
    dead_since: str | None = None
    notes: str | None = None
    source: str = "shipped"  # shipped | user
    where: str = ""  # file:line, for messages

    @property
    def group(self) -> str:
        return GROUP_OF[self.kind]

    def url_for(self, variant: str | None) -> str:
        """The URL with {variant} filled in (torch kinds)."""
        if "{variant}" in self.url:
            if not variant:
                raise SdbootError(f"mirror '{self.name}' needs a torch variant (cu121, cpu, ...)",
                                  "choose a profile first (sdboot resolve)")
            return self.url.replace("{variant}", variant)
        return self.url

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": str(self.kind), "url": self.url,
                "region": self.region, "dead_since": self.dead_since, "notes": self.notes,
                "source": self.source}


@dataclass(frozen=True)
class Substitution:
    """An upstream repository that is gone, and the copy that replaces it."""

    from_url: str
    to_url: str


@dataclass(frozen=True)
class MirrorTable:
    mirrors: dict[str, Mirror]
    presets: dict[str, dict[str, str]]
    substitutions: tuple[Substitution, ...]
    upstreams: dict[str, str] = field(default_factory=dict)
    probes: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, group: str | None = None) -> Mirror:
        mirror = self.mirrors.get(name)
        if mirror is None or (group is not None and mirror.group != group):
            known = sorted(m.name for m in self.mirrors.values()
                           if group is None or m.group == group)
            what = f"{group} mirror" if group else "mirror"
            raise SdbootError(f"unknown {what} '{name}'",
                              f"known: {', '.join(known)} (see sdboot mirror list)")
        return mirror

    def of_group(self, group: str) -> list[Mirror]:
        return [m for m in self.mirrors.values() if m.group == group]

    def host_bases(self) -> tuple[str, ...]:
        """Bases of clone-only and host-replacement mirrors, longest first: each stands for
        https://github.com/ when a URL is brought back to its upstream form."""
        bases = [m.url for m in self.mirrors.values()
                 if m.kind in (MirrorKind.GITHUB_CLONE, MirrorKind.GITHUB_HOST)]
        return tuple(sorted(bases, key=len, reverse=True))


@dataclass(frozen=True)
class Selection:
    """One mirror (or none: the upstream) per group: what --mirror NAME resolves to."""

    github: Mirror | None = None
    pypi: Mirror | None = None
    torch: Mirror | None = None
    hf: Mirror | None = None
    conda: Mirror | None = None
    label: str = "none"  # the preset or mirror name the user gave, or auto / none

    def get(self, group: str) -> Mirror | None:
        value: Mirror | None = getattr(self, group)
        return value

    def chosen(self) -> dict[str, str]:
        return {g: m.name for g in GROUPS if (m := self.get(g)) is not None}

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, **{g: (m.name if (m := self.get(g)) else None)
                                        for g in GROUPS}}


# --- loading ---------------------------------------------------------------------------------

# What a mirror or index URL may contain: these values end up in TORCH_COMMAND, INDEX_URL,
# GIT_CONFIG_* and pip/git command lines, which the WebUI's scripts hand to a shell
# (launch.py runs TORCH_COMMAND through one, unquoted). So a URL is plain data: RFC 3986
# unreserved characters and the few delimiters a mirror needs, '%' only as a %XX escape
# (a password with other characters is written percent-encoded), brackets only around an
# IPv6 host. Nothing here means anything to sh, bash or cmd.
_URL_CHAR = re.compile(r"[A-Za-z0-9\-._:/@%+=\[\]]")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CHAR_NAMES = {" ": "a space", "\t": "a tab", "\n": "a newline", "\r": "a carriage return"}


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
        names = ", ".join(_CHAR_NAMES.get(ch, repr(ch)) for ch in bad[:4])
        return (f"url '{shown_value(url)}' contains {names}: a URL here may hold only letters, "
                "digits and - . _ : / @ % + = (percent-encode anything else, e.g. a password)")
    if _BAD_PERCENT.search(text):
        return f"url '{url}' has a '%' that is not a %XX escape"
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return f"url '{url}' is not a valid URL ({exc})"
    if parts.scheme not in schemes or not host:
        return f"url '{url}' is not an http(s) URL"
    if "[" in parts.path or "]" in parts.path:
        return f"url '{url}' has brackets outside an IPv6 host"
    if url.startswith("-"):
        return f"url '{url}' starts with '-'"
    return None


def local_http_problem(url: str) -> str | None:
    """Profiles and pip arguments: https, or plain http only to this machine (loopback)."""
    if urlsplit(url).scheme == "http" and not is_loopback(url):
        return f"url '{url}' uses plain http:// to another machine (use https)"
    return None



def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure(mirror: Mirror, insecure: bool = False) -> None:
    """Mirrors are untrusted: https only, plain http for loopback or with --insecure."""
    scheme = urlsplit(mirror.url).scheme
    if scheme == "https" or is_loopback(mirror.url) or insecure:
        return
    raise SdbootError(f"mirror '{mirror.name}' uses plain {scheme}:// ({mirror.url})",
                      "use an https mirror, or pass --insecure if you trust this network")


def _parse_mirror(doc: Any, path: Path, source: str) -> Mirror:
    if not isinstance(doc, dict):
        raise bad_data(path, line_of(doc), "a mirror entry must be a mapping")

    def text(key: str, required: bool = False) -> str | None:
        value = doc.get(key)
        if value is None:
            if required:
                raise bad_data(path, line_of(doc), f"mirror entry lacks '{key}'")
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise bad_data(path, line_of(doc, key), f"'{key}' must be a string")
        return str(value)

    unknown = set(doc) - {"name", "kind", "url", "region", "dead_since", "notes"}
    if unknown:
        raise bad_data(path, line_of(doc, sorted(unknown)[0]),
                       f"unknown key '{sorted(unknown)[0]}' in mirror entry")
    name = text("name", True) or ""
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
        raise bad_data(path, line_of(doc, "name"), f"bad mirror name '{name}'")
    kind_text = text("kind", True) or ""
    try:
        kind = MirrorKind(kind_text)
    except ValueError:
        raise bad_data(path, line_of(doc, "kind"),
                       f"unknown mirror kind '{kind_text}' (one of: "
                       f"{', '.join(k.value for k in MirrorKind)})") from None
    url = text("url", True) or ""
    where = f"{path}:{line_of(doc, 'url')}"
    problem = url_problem(url, variant=True)
    if problem:
        raise bad_data(path, line_of(doc, "url"), f"mirror {problem}")
    if any(ch in _STOP for ch in url.replace("{variant}", "")):
        raise bad_data(path, line_of(doc, "url"),
                       f"mirror url '{url}' contains spaces, quotes or braces")
    if "{variant}" in url and GROUP_OF[kind] != "torch":
        raise bad_data(path, line_of(doc, "url"), "only torch mirrors may use {variant}")
    if kind in (MirrorKind.GITHUB_PREFIX, MirrorKind.GITHUB_CLONE, MirrorKind.GITHUB_HOST):
        if not url.endswith("/"):
            raise bad_data(path, line_of(doc, "url"),
                           f"a {kind} url must end with '/' (got '{url}')")
        if _GITHUB_START_RE.search(url):
            raise bad_data(path, line_of(doc, "url"),
                           "a GitHub mirror url must not contain https://github.com/ itself")
    dead = text("dead_since")
    if dead is not None and not re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", dead):
        raise bad_data(path, line_of(doc, "dead_since"),
                       f"dead_since must look like 2023-11 (got '{dead}')")
    return Mirror(name=name, kind=kind, url=url, region=text("region"), dead_since=dead,
                  notes=text("notes"), source=source, where=where)


def _merge_layer(doc: Any, path: Path, source: str, mirrors: dict[str, Mirror],
                 presets: dict[str, dict[str, str]], subs: dict[str, Substitution],
                 extra: dict[str, dict[str, str]]) -> None:
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise bad_data(path, 1, "mirrors.yaml must be a mapping with mirrors / presets / "
                       "substitutions")
    unknown = set(doc) - {"mirrors", "presets", "substitutions", "upstreams", "probes",
                          "replace_shipped"}
    if unknown:
        key = sorted(unknown)[0]
        raise bad_data(path, line_of(doc, key), f"unknown top-level key '{key}'")
    if doc.get("replace_shipped") is True:  # "only our own mirrors" (a company network)
        if source == "shipped":
            raise bad_data(path, line_of(doc, "replace_shipped"), "only an overlay may "
                           "replace the shipped table")
        mirrors.clear()
        presets.clear()
        subs.clear()
        extra.pop("_preset_lines", None)
    entries = doc.get("mirrors") or []
    if not isinstance(entries, list):
        raise bad_data(path, line_of(doc, "mirrors"), "'mirrors' must be a list")
    seen: set[str] = set()
    for entry in entries:
        mirror = _parse_mirror(entry, path, source)
        if mirror.name in seen:
            raise bad_data(path, line_of(entry, "name"), f"mirror '{mirror.name}' appears twice")
        seen.add(mirror.name)
        mirrors[mirror.name] = mirror
    raw_presets = doc.get("presets") or {}
    if not isinstance(raw_presets, dict):
        raise bad_data(path, line_of(doc, "presets"), "'presets' must be a mapping")
    for pname, choice in raw_presets.items():
        if not isinstance(choice, dict) or not all(isinstance(v, str) for v in choice.values()):
            raise bad_data(path, line_of(raw_presets, pname),
                           f"preset '{pname}' must map groups to mirror names")
        bad = set(choice) - set(GROUPS)
        if bad:
            raise bad_data(path, line_of(raw_presets, pname),
                           f"preset '{pname}': unknown group '{sorted(bad)[0]}' "
                           f"(one of: {', '.join(GROUPS)})")
        presets[str(pname)] = {str(k): str(v) for k, v in choice.items()}
        if isinstance(choice, LineDict):
            extra.setdefault("_preset_lines", {})[str(pname)] = f"{path}:{choice.line}"
    raw_subs = doc.get("substitutions") or []
    if not isinstance(raw_subs, list):
        raise bad_data(path, line_of(doc, "substitutions"), "'substitutions' must be a list")
    for sub in raw_subs:
        if not isinstance(sub, dict) or not isinstance(sub.get("from"), str) \
                or not isinstance(sub.get("to"), str):
            raise bad_data(path, line_of(sub), "a substitution needs 'from' and 'to' URLs")
        for key in ("from", "to"):
            if not _REPO_RE.match(sub[key]):
                raise bad_data(path, line_of(sub, key),
                               f"'{sub[key]}' is not a https://github.com/OWNER/REPO URL")
        subs[_repo_key(sub["from"])] = Substitution(sub["from"], sub["to"])
    for key in ("upstreams", "probes"):
        value = doc.get(key) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise bad_data(path, line_of(doc, key), f"'{key}' must map names to strings")
        for name, text in value.items():
            problem = _probe_problem(str(name), text) if key == "probes" else \
                (url_problem(text, variant=True) if text else None)
            if problem:
                raise bad_data(path, line_of(value, name), f"{key}.{name}: {problem}")
        extra.setdefault(key, {}).update({str(k): str(v) for k, v in value.items()})


_PROBE_SHAPES = {"pypi_project": re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*"),
                 "github_repo": re.compile(r"[\w.-]+/[\w.-]+"),
                 "hf_file": re.compile(r"[\w-][\w.-]*(/[\w-][\w.-]*)*"),
                 "torch_variant": re.compile(r"cu\d+|cpu|rocm[\d.]+|xpu")}


def _probe_problem(name: str, text: str) -> str | None:
    """probes.* name what the health check asks for: a project name (it goes to pip's
    argv), a repository, a file path; never an option, a URL or a way up (..)."""
    shape = _PROBE_SHAPES.get(name)
    if shape is None:
        return f"unknown probe (one of: {', '.join(_PROBE_SHAPES)})"
    if not shape.fullmatch(text) or ".." in text:
        return f"'{shown_value(text)}' is not a plain {name.replace('_', ' ')}"
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
                what = "unknown mirror" if mirror is None else f"a {mirror.group} mirror"
                raise bad_data(file, int(line), f"preset '{pname}' sets {group} to "
                               f"'{mname}', which is {what}")
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
            raise SdbootError(f"unknown mirror or preset '{spec}'",
                              f"presets: {', '.join(sorted(table.presets)) or 'none'}; also "
                              "auto, none, or a mirror name from sdboot mirror list")
    for group, override in overrides.items():
        if override:
            chosen[group] = None if override == "none" else table.get(override, group)
    for picked in chosen.values():
        if picked is not None:
            require_secure(picked, insecure)
    return Selection(label=label, **chosen)


# --- URL mapping (pure) ----------------------------------------------------------------------


def _repo_key(url: str) -> str:
    match = _REPO_RE.match(url)
    if not match:
        return url.rstrip("/")
    return f"{match.group(1)}/{match.group(2)}".lower()


def substitute(url: str, subs: tuple[Substitution, ...]) -> str:
    """Replace a repository that is gone by its known copy (same commits)."""
    canonical = url[4:] if url.startswith("git+") else url
    match = _REPO_RE.match(canonical)
    if not match:
        return url
    key = f"{match.group(1)}/{match.group(2)}".lower()
    for sub in subs:
        if _repo_key(sub.from_url) == key:
            to = sub.to_url
            if match.group(4):  # keep an @ref
                to = to + match.group(4)
            return ("git+" if url.startswith("git+") else "") + to
    return url


def retarget(segment: str, prefix: str | None, host_bases: tuple[str, ...] = ()) -> str:
    """Put `prefix` (or nothing) in front of every GitHub URL in a piece of text, replacing
    any proxy prefix already there (so prefixes never stack). `git+` stays in front."""
    for base in host_bases:
        segment = segment.replace(base, GITHUB)
    out: list[str] = []
    pos = 0
    for match in _GITHUB_START_RE.finditer(segment):
        start = match.start()
        run_start = start
        while run_start > pos and segment[run_start - 1] not in _STOP:
            run_start -= 1
        run = segment[run_start:start]
        old = _PREFIX_TAIL_RE.search(run)
        keep = run[:old.start()] if old else run
        out.append(segment[pos:run_start] + keep + (prefix or ""))
        pos = start
    out.append(segment[pos:])
    return "".join(out)


def canonical_url(url: str, table: MirrorTable | None = None) -> str:
    """The upstream form of a possibly mirrored GitHub URL."""
    return retarget(url, None, table.host_bases() if table else ())


def map_url(url: str, mirror: Mirror | None, table: MirrorTable | None = None) -> str:
    """Original (or already mirrored) URL -> the URL through `mirror`; None gives the
    upstream URL. Forms a mirror cannot serve (archives through a clone-only mirror) stay
    upstream. Non-GitHub URLs are returned unchanged."""
    url = canonical_url(url, table)
    if mirror is None or not url.removeprefix("git+").startswith(GITHUB_STARTS):
        return url
    if mirror.kind == MirrorKind.GITHUB_PREFIX:
        return retarget(url, mirror.url)
    plus = "git+" if url.startswith("git+") else ""
    bare = url.removeprefix("git+")
    if mirror.kind == MirrorKind.GITHUB_CLONE:
        if _REPO_RE.match(bare):
            return plus + mirror.url + bare[len(GITHUB):]
        return url
    if mirror.kind == MirrorKind.GITHUB_HOST and bare.startswith(GITHUB):
        return plus + mirror.url + bare[len(GITHUB):]
    return url


def git_rewrites(mirror: Mirror | None, subs: tuple[Substitution, ...]) -> list[tuple[str, str]]:
    """(new base, original base) pairs for git's url.<new>.insteadOf=<original>: every clone
    of a GitHub URL goes through the mirror, and dead upstreams go to their copies."""
    rules: list[tuple[str, str]] = []
    for sub in subs:
        # git picks the longest matching insteadOf, so these win over the general rule.
        rules.append((map_url(sub.to_url, mirror), sub.from_url))
    if mirror is not None and mirror.group == "github":
        base = mirror.url + GITHUB if mirror.kind == MirrorKind.GITHUB_PREFIX else mirror.url
        rules.append((base, GITHUB))
    return rules


def map_hf_url(url: str, endpoint: str | None) -> str:
    """https://huggingface.co/<repo>/resolve/<rev>/<file> -> the same path on the endpoint."""
    if not endpoint:
        return url
    parts = urlsplit(url)
    if parts.hostname != "huggingface.co":
        return url
    return endpoint.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def variant_of(index_url: str | None) -> str | None:
    """.../whl/cu121 -> cu121 (the torch variant a mirror's {variant} stands for)."""
    if not index_url:
        return None
    tail = index_url.rstrip("/").rsplit("/", 1)[-1]
    return tail if re.fullmatch(r"(cu\d+|cpu|rocm[\d.]+|xpu)", tail) else None
