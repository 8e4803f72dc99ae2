"""Known-good constraints for a WebUI release: its requirements resolved as of the release
date, so that a fresh install years later gets the set the release was made with, not
today's packages (uvicorn, huggingface_hub, ... at 2026 versions beside a 2024 WebUI).

How a file is made (tools/release_constraints.py runs this for the catalogued releases):

    uv pip compile --universal --exclude-newer <release date + grace> --python-version 3.10
        <the release's requirements file> <the launch file's extra packages' requirements>

with the default index, then the torch stack and what only it pulls in (nvidia-*, triton,
sympy, ...) dropped, because the profile decides those. The result ships as
constraints/<webui>/<ref>.txt (sdboot/_data/constraints in the wheel); sdboot's requirements
install passes it with `-c`. It is a constraints file, not a requirements file: only what is
asked for is installed, at the version of the release.

Everything here is pure except `resolve`, which runs uv through the runner."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.runner import Runner

TORCH_STACK = frozenset({"torch", "torchvision", "torchaudio", "xformers"})
GRACE = timedelta(days=7)  # fixes released in the week after the WebUI's own release
_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(;\s*(.+?))?\s*$")


@dataclass
class Entry:
    name: str  # canonical
    version: str
    marker: str | None = None
    via: set[str] = field(default_factory=set)  # canonical names; "" = asked for directly

    def line(self) -> str:
        return f"{self.name}=={self.version}" + (f" ; {self.marker}" if self.marker else "")


def cutoff(released: datetime, grace: timedelta = GRACE) -> str:
    """The --exclude-newer value: the release time plus the grace, in UTC (RFC 3339)."""
    if released.tzinfo is None:
        released = released.replace(tzinfo=timezone.utc)
    return (released + grace).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def compile_argv(uv: str, inputs: Sequence[Path], exclude_newer: str,
                 python_version: str = "3.10", index_url: str | None = None,
                 constraints: Sequence[Path] = (), exempt: Sequence[str] = (),
                 exempt_until: str | None = None) -> list[str]:
    """`uv pip compile` as of `exclude_newer`; the names in `exempt` (the profile's torch
    stack: the profile decides it, whatever its date) get `exempt_until` instead."""
    argv = [uv, "pip", "compile", "--quiet", "--universal", "--no-header",
            "--annotation-style", "split", "--exclude-newer", exclude_newer,
            "--python-version", python_version]
    if exempt_until:
        for name in exempt:
            argv += ["--exclude-newer-package", f"{name}={exempt_until}"]
    if index_url:
        argv += ["--index-url", index_url]
    for path in constraints:
        argv += ["-c", str(path)]
    return argv + [str(path) for path in inputs]


def parse_compiled(text: str) -> list[Entry]:
    """uv pip compile's output (split annotations): `name==version [; marker]` lines, each
    followed by `# via` comments naming what needs it (`-r FILE` = asked for directly)."""
    entries: list[Entry] = []
    current: Entry | None = None
    in_via = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            body = line.lstrip("#").strip()
            if current is None:
                continue
            if body.startswith("via"):
                in_via = True
                body = body[3:].strip()
                if not body:
                    continue
            if in_via and body:
                current.via.add("" if body.startswith(("-r ", "-c ")) else
                                str(canonicalize_name(body.split()[0])))
            continue
        match = _LINE.match(line)
        if match is None:
            raise SdbootError(t("uv pip compile printed a line sdboot cannot read: {line}",
                                line=line[:200]),
                              t("run the tool again with a uv that supports "
                                "--annotation-style split"), 1)
        current = Entry(str(canonicalize_name(match.group(1))), match.group(2),
                        match.group(4))
        entries.append(current)
        in_via = False
    return entries


def drop_closure(entries: Iterable[Entry], roots: Iterable[str] = TORCH_STACK) -> list[Entry]:
    """The entries without the roots and everything that is there only because of them
    (nvidia-*, triton, sympy, ... under torch): the profile decides those."""
    items = list(entries)
    dropped: set[str] = {str(canonicalize_name(r)) for r in roots}
    changed = True
    while changed:
        changed = False
        for entry in items:
            if entry.name not in dropped and entry.via and entry.via <= dropped:
                dropped.add(entry.name)
                changed = True
    return [e for e in items if e.name not in dropped]


def render(entries: Iterable[Entry], header: Sequence[str]) -> str:
    lines = [f"# {h}" if h else "#" for h in header]
    return "\n".join([*lines, *(e.line() for e in sorted(entries, key=lambda e: e.name))]) + "\n"


def resolve(uv: str, inputs: Sequence[Path], exclude_newer: str, runner: Runner,
            python_version: str = "3.10", index_url: str | None = None,
            env: dict[str, str] | None = None, timeout: float = 900,
            constraints: Sequence[Path] = (), exempt: Sequence[str] = (),
            exempt_until: str | None = None) -> list[Entry]:
    """Run the resolution; the entries without the torch stack's closure."""
    argv = compile_argv(uv, inputs, exclude_newer, python_version, index_url, constraints,
                        exempt, exempt_until)
    result = runner.run(argv, timeout=timeout, env=env)
    if not result.ok:
        raise SdbootError(t("the resolution as of {date} failed: {detail}", date=exclude_newer,
                            detail=result.tail(5)),
                          t("check the index and the requirements files, then run it again"),
                          1)
    return drop_closure(parse_compiled(result.stdout))


# --- the shipped files ----------------------------------------------------------------------

CONSTRAINTS_DIR = "constraints"
# the header line that names the profiles whose torch stack cannot stand beside the set
CONFLICTS = "conflicts:"  # in the source tree's top level; sdboot/_data/ in the wheel
MAX_BYTES = 256 * 1024
_REF_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def shipped_path(base: Path, webui: str, ref: str | None,
                 commits: Mapping[str, str]) -> Path | None:
    """base/constraints/<webui>/<tag>.txt for a catalogued release (`ref` is its tag or its
    commit), when that file exists; None for any other ref (a branch moves: no known-good
    set)."""
    if not ref:
        return None
    tag = next((name for name, commit in commits.items() if ref in (name, commit)), None)
    if tag is None or not _REF_FILE.fullmatch(tag) or not _REF_FILE.fullmatch(webui):
        return None
    path = base / CONSTRAINTS_DIR / webui / f"{tag}.txt"
    return path if path.is_file() else None


def parse_release_constraints(text: str, source: str) -> list[Entry]:
    """A shipped constraints file: comments, blank lines and `name==version[ ; marker]`
    lines only, each version and marker valid, each name once per marker. Anything else (an
    option, a URL, a path, a range) is refused: the file goes to pip's / uv's argv as -c."""
    entries: list[Entry] = []
    seen: set[tuple[str, str | None]] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _LINE.match(line)
        problem = None if match else t("'{value}' is not name==version[ ; marker]",
                                      value=line[:120])
        if match:
            try:
                Version(match.group(2))
                if match.group(4):
                    Marker(match.group(4))
            except (InvalidVersion, InvalidMarker):
                problem = t("'{value}' is not name==version[ ; marker]", value=line[:120])
        if problem is None and match:
            key = (str(canonicalize_name(match.group(1))), match.group(4))
            if key in seen:
                problem = t("'{key}' given twice", key=key[0])
            seen.add(key)
        if problem is not None or match is None:
            raise SdbootError(t("{source}:{line}: {what}", source=source, line=number,
                                what=problem),
                              t("reinstall sdboot: its shipped constraints file is damaged"))
        entries.append(Entry(key[0], match.group(2), match.group(4)))
    return entries


def parse_conflicts(text: str) -> set[str]:
    """The profile names of the `# conflicts: a b` header line (none: every profile fits)."""
    for raw in text.splitlines():
        body = raw.lstrip("#").strip()
        if raw.startswith("#") and body.startswith(CONFLICTS):
            return set(body[len(CONFLICTS):].split())
    return set()


def read_release_constraints(path: Path) -> list[Entry]:
    """parse_release_constraints of a file (at most MAX_BYTES, UTF-8)."""
    from sdboot.stack.lock import read_bounded

    text = read_bounded(path, MAX_BYTES,
                        t("reinstall sdboot: its shipped constraints file is damaged"))
    return parse_release_constraints(text, str(path))


def fit_to_profile(entries: Iterable[Entry], profile_lines: Iterable[str]) -> list[Entry]:
    """The release's entries that agree with the profile's constraints (its torch stack
    pins, the numpy cap, the build caps): a release pin outside the profile's specifier for
    the same name is dropped, since the profile decides (numpy==1.26.2 stays beside
    numpy<2; torch pins never reach these files)."""
    specs: dict[str, list[SpecifierSet]] = {}
    for line in profile_lines:
        try:
            req = Requirement(line.split("#", 1)[0].strip())
        except InvalidRequirement:
            continue
        specs.setdefault(canonicalize_name(req.name), []).append(req.specifier)
    kept = []
    for entry in entries:
        if entry.name in TORCH_STACK:
            continue
        wanted = specs.get(canonicalize_name(entry.name), [])
        if all(spec.contains(entry.version, prereleases=True) for spec in wanted):
            kept.append(entry)
    return kept
