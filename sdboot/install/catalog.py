"""The WebUIs `sdboot install` knows (webuis.yaml plus the user's overlay): repository,
default ref, and the commits of release tags, which a clone through a mirror must match."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdboot.i18n import t
from sdboot.io.datafile import bad_data, config_dir, data_dir, line_of, load_yaml, present
from sdboot.mirrors.table import canonical_url
from sdboot.stack.packages import DEFAULT_BUILD_CONSTRAINTS, is_requirement


@dataclass(frozen=True)
class KnownWebui:
    name: str
    repo: str
    default_ref: str
    commits: dict[str, str]
    # the constraints of build environments (setuptools<82: see stack/packages.py), and a
    # per-release override (ref -> list) for a release that needs other caps
    build_constraints: tuple[str, ...] = DEFAULT_BUILD_CONSTRAINTS
    build_constraints_by_ref: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def build_caps(self, ref: str | None) -> tuple[str, ...]:
        return self.build_constraints_by_ref.get(ref or "", self.build_constraints)


def _caps(value: Any, where: Path, line: int, name: str) -> tuple[str, ...]:
    """A list of requirement specifiers ("setuptools<82")."""
    if not (isinstance(value, list) and all(is_requirement(v) for v in value)):
        raise bad_data(where, line, t("webui '{name}': build_constraints must be a list of "
                                      "requirement specifiers (e.g. \"setuptools<82\")",
                                      name=name))
    return tuple(value)


def _parse(doc: Any, path: Path, found: dict[str, KnownWebui]) -> None:
    if doc is None:
        return
    entries = doc.get("webuis") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise bad_data(path, line_of(doc), "webuis.yaml needs a 'webuis' mapping")
    for name, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("repo"), str):
            raise bad_data(path, line_of(entries, name), f"webui '{name}' needs a repo URL")
        commits = entry.get("commits") or {}
        if not isinstance(commits, dict) or not all(
                isinstance(v, str) and len(v) == 40 for v in commits.values()):
            raise bad_data(path, line_of(entry, "commits"),
                           f"webui '{name}': commits must map tags to 40-hex hashes")
        caps = (_caps(entry["build_constraints"], path, line_of(entry, "build_constraints"),
                      name) if "build_constraints" in entry else DEFAULT_BUILD_CONSTRAINTS)
        by_ref = entry.get("build_constraints_by_ref") or {}
        if not isinstance(by_ref, dict):
            raise bad_data(path, line_of(entry, "build_constraints_by_ref"),
                           t("webui '{name}': build_constraints_by_ref must map refs to "
                             "lists", name=name))
        found[str(name)] = KnownWebui(str(name), entry["repo"],
                                      str(entry.get("default_ref") or "master"),
                                      {str(k): str(v) for k, v in commits.items()},
                                      caps,
                                      {str(k): _caps(v, path, line_of(by_ref, k), name)
                                       for k, v in by_ref.items()})


def load_catalog() -> dict[str, KnownWebui]:
    found: dict[str, KnownWebui] = {}
    for path in (data_dir() / "webuis.yaml", config_dir() / "webuis.yaml"):
        if present(path):
            _parse(load_yaml(path), path, found)
    return found


def _same_repo(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        return canonical_url(url).removesuffix("/").removesuffix(".git").lower()

    return norm(a) == norm(b)


def known_for(catalog: dict[str, KnownWebui], repo: str) -> KnownWebui | None:
    return next((w for w in catalog.values() if _same_repo(w.repo, repo)), None)


def pinned_commit(catalog: dict[str, KnownWebui], repo: str, ref: str) -> str | None:
    """The commit a release tag of a known repository must resolve to (None: not known)."""
    known = known_for(catalog, repo)
    return known.commits.get(ref) if known else None


def webui_build_caps(catalog: dict[str, KnownWebui], repo: str | None, ref: str | None,
                     ) -> tuple[str, ...]:
    """The build constraints of a WebUI (the default cap for one not in the catalog)."""
    known = known_for(catalog, repo) if repo else None
    return known.build_caps(ref) if known else DEFAULT_BUILD_CONSTRAINTS
