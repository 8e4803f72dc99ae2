"""The mirror table's types (a mirror, the table, what `--mirror` selects; loading.py reads
them from mirrors.yaml and the user's overlay) and the pure URL mapping: original URL ->
mirrored URL, recognising URLs that already sit behind a proxy so that switching mirrors
replaces a prefix and never stacks one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.values import StrEnum


class MirrorKind(StrEnum):
    GITHUB_PREFIX = "github-prefix"  # PREFIX + https://github.com/... (ghproxy style)
    GITHUB_CLONE = "github-clone"  # BASE + O/R.git, clones only (gitclone.com)
    GITHUB_HOST = "github-host"  # github.com replaced by another host (kkgithub)
    PYPI = "pypi"
    TORCH_INDEX = "torch-index"
    TORCH_FIND_LINKS = "torch-find-links"
    HF = "hf"
    CONDA = "conda"
    PYTHON = "python"  # python-build-standalone releases, for `uv python install`


# The groups `--mirror`, presets and `mirror test --kind` speak of.
GROUPS = ("github", "pypi", "torch", "hf", "conda", "python")
GROUP_OF = {
    MirrorKind.GITHUB_PREFIX: "github", MirrorKind.GITHUB_CLONE: "github",
    MirrorKind.GITHUB_HOST: "github", MirrorKind.PYPI: "pypi",
    MirrorKind.TORCH_INDEX: "torch", MirrorKind.TORCH_FIND_LINKS: "torch",
    MirrorKind.HF: "hf", MirrorKind.CONDA: "conda", MirrorKind.PYTHON: "python",
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
                raise SdbootError(t("mirror '{name}' needs a torch variant (cu121, cpu, ...)",
                                    name=self.name),
                                  t("choose a profile first (sdboot resolve)"))
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
            message = t("unknown {group} mirror '{name}'", group=group, name=name) if group \
                else t("unknown mirror '{name}'", name=name)
            raise SdbootError(message, t("known: {names} (see sdboot mirror list)",
                                         names=", ".join(known)))
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
    python: Mirror | None = None
    label: str = "none"  # the preset or mirror name the user gave, or auto / none

    def get(self, group: str) -> Mirror | None:
        value: Mirror | None = getattr(self, group)
        return value

    def chosen(self) -> dict[str, str]:
        return {g: m.name for g in GROUPS if (m := self.get(g)) is not None}

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, **{g: (m.name if (m := self.get(g)) else None)
                                        for g in GROUPS}}



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


# What UV_PYTHON_INSTALL_MIRROR replaces in the URLs uv downloads Python from (uv's
# environment reference: https://docs.astral.sh/uv/reference/environment/#uv_python_install_mirror).
# A python mirror serves <its url>/<release tag>/<asset>, like this folder.
PBS_RELEASES = "https://github.com/astral-sh/python-build-standalone/releases/download"


def python_install_mirror(selection: Selection) -> str | None:
    """Pure: UV_PYTHON_INSTALL_MIRROR for a selection: the python mirror's URL; without one,
    a GitHub prefix proxy in front of the release folder (a proxy that serves GitHub
    releases serves these too); else None (uv's own default source)."""
    if selection.python is not None:
        return selection.python.url.rstrip("/")
    github = selection.github
    if github is not None and github.kind == MirrorKind.GITHUB_PREFIX:
        return github.url + PBS_RELEASES
    return None


def variant_of(index_url: str | None) -> str | None:
    """.../whl/cu121 -> cu121 (the torch variant a mirror's {variant} stands for)."""
    if not index_url:
        return None
    tail = index_url.rstrip("/").rsplit("/", 1)[-1]
    return tail if re.fullmatch(r"(cu\d+|cpu|rocm[\d.]+|xpu)", tail) else None
