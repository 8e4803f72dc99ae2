"""The WebUIs `sdboot install` knows (webuis.yaml plus the user's overlay): repository,
default ref, the commits its refs must land on, and what the WebUI is made of (launch file,
requirements file, tested Python, the profiles that fit, the repositories it clones).
`resolve_choice` turns --webui NAME / --webui-repo URL / --ref into one known WebUI, or
refuses (exit 2) before anything changes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.datafile import bad_data, config_dir, data_dir, line_of, load_yaml, present
from sdboot.mirrors.table import canonical_url
from sdboot.stack.packages import DEFAULT_BUILD_CONSTRAINTS, is_requirement

FLAVORS = ("a1111", "forge", "reforge", "neo")
_PYTHON = re.compile(r"3\.\d{1,2}")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


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
    title: str = ""
    flavor: str = "a1111"
    launch_file: str = "modules/launch_utils.py"
    requirements_file: str = "requirements_versions.txt"
    python: str = "3.10"
    profiles: tuple[str, ...] = ()  # empty: any profile
    clones: dict[str, str] = field(default_factory=dict)  # repositories/<folder> -> repo

    def build_caps(self, ref: str | None) -> tuple[str, ...]:
        return self.build_constraints_by_ref.get(ref or "", self.build_constraints)

    def tag_of(self, ref: str | None) -> str | None:
        """The catalogued tag a commit ref (a lock's, full or abbreviated) stands for."""
        if not ref or len(ref) < 7:
            return None
        ref = ref.lower()
        return next((tag for tag, commit in self.commits.items()
                     if commit.lower().startswith(ref)), None)


def _caps(value: Any, where: Any, line: int, name: str) -> tuple[str, ...]:
    """A list of requirement specifiers ("setuptools<82")."""
    if not (isinstance(value, list) and all(is_requirement(v) for v in value)):
        raise bad_data(where, line, t("webui '{name}': build_constraints must be a list of "
                                      "requirement specifiers (e.g. \"setuptools<82\")",
                                      name=name))
    return tuple(value)


def _rel_path(value: Any) -> bool:
    """A relative path inside the WebUI folder: no '..', not absolute, no backslashes."""
    if not isinstance(value, str) or not value or "\\" in value:
        return False
    path = PurePosixPath(value)
    return not path.is_absolute() and ".." not in path.parts


def _fields(entry: dict[str, Any], path: Any, name: str) -> dict[str, Any]:
    """The descriptive fields, checked: (field -> value) for KnownWebui."""
    out: dict[str, Any] = {}

    def bad(key: str, what: str) -> SdbootError:
        return bad_data(path, line_of(entry, key), t("webui '{name}': {field} {what}",
                                                     name=name, field=key, what=what))

    if "title" in entry:
        if not isinstance(entry["title"], str):
            raise bad("title", t("must be text"))
        out["title"] = entry["title"]
    flavor = entry.get("flavor", name if name in FLAVORS else "a1111")
    if flavor not in FLAVORS:
        raise bad("flavor", t("must be one of {names}", names=", ".join(FLAVORS)))
    out["flavor"] = flavor
    for key in ("launch_file", "requirements_file"):
        if key in entry:
            if not _rel_path(entry[key]):
                raise bad(key, t("must be a relative path inside the WebUI folder"))
            out[key] = entry[key]
    if "python" in entry:
        if not (isinstance(entry["python"], str) and _PYTHON.fullmatch(entry["python"])):
            raise bad("python", t("must be a Python version X.Y in quotes (e.g. \"3.10\")"))
        out["python"] = entry["python"]
    profiles = entry.get("profiles") or []
    if not (isinstance(profiles, list) and all(isinstance(p, str) and p for p in profiles)):
        raise bad("profiles", t("must be a list of profile names"))
    out["profiles"] = tuple(profiles)
    clones = entry.get("clones") or {}
    if not (isinstance(clones, dict) and all(
            isinstance(k, str) and _rel_path(k) and "/" not in k
            and isinstance(v, str) and "://" in v for k, v in clones.items())):
        raise bad("clones", t("must map folder names to repository URLs"))
    out["clones"] = {str(k): str(v) for k, v in clones.items()}
    return out


def _parse(doc: Any, path: Any, found: dict[str, KnownWebui]) -> None:
    if doc is None:
        return
    entries = doc.get("webuis") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise bad_data(path, line_of(doc), "webuis.yaml needs a 'webuis' mapping")
    for name, entry in entries.items():
        if not (isinstance(name, str) and _NAME.fullmatch(name)):
            raise bad_data(path, line_of(entries, name),
                           t("webui '{name}': a name is lowercase letters, digits, - and _",
                             name=name))
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
        found[name] = KnownWebui(name, entry["repo"],
                                 str(entry.get("default_ref") or "master"),
                                 {str(k): str(v) for k, v in commits.items()},
                                 caps,
                                 {str(k): _caps(v, path, line_of(by_ref, k), name)
                                  for k, v in by_ref.items()},
                                 **_fields(entry, path, name))


def load_catalog() -> dict[str, KnownWebui]:
    found: dict[str, KnownWebui] = {}
    for path in (data_dir() / "webuis.yaml", config_dir() / "webuis.yaml"):
        if present(path):
            _parse(load_yaml(path), path, found)
    return found


def same_repo(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        return canonical_url(url).removesuffix("/").removesuffix(".git").lower()

    return norm(a) == norm(b)


def known_for(catalog: dict[str, KnownWebui], repo: str) -> KnownWebui | None:
    return next((w for w in catalog.values() if same_repo(w.repo, repo)), None)


def pinned_commit(catalog: dict[str, KnownWebui], repo: str, ref: str) -> str | None:
    """The commit a ref of a known repository must land on: a release tag's, or a branch's
    known-good commit (None: not known)."""
    known = known_for(catalog, repo)
    return known.commits.get(ref) if known else None


def webui_build_caps(catalog: dict[str, KnownWebui], repo: str | None, ref: str | None,
                     ) -> tuple[str, ...]:
    """The build constraints of a WebUI (the default cap for one not in the catalog)."""
    known = known_for(catalog, repo) if repo else None
    return known.build_caps(ref) if known else DEFAULT_BUILD_CONSTRAINTS


def names_hint(catalog: dict[str, KnownWebui]) -> str:
    return t("use --webui {names}; or describe it in {path} (repo, default_ref, ...; see "
             "docs/webuis.md)", names="|".join(catalog), path=config_dir() / "webuis.yaml")


def resolve_choice(catalog: dict[str, KnownWebui], name: str | None, repo: str | None,
                   ) -> KnownWebui | None:
    """The known WebUI that --webui NAME and --webui-repo URL ask for (None: neither given).
    Exit 2 for an unknown name, a repository in no entry, or the two naming different
    WebUIs. Pure: nothing has changed yet when this refuses."""
    chosen = None
    if name is not None:
        chosen = catalog.get(name)
        if chosen is None:
            raise SdbootError(t("unknown WebUI '{name}' (known: {names})", name=name,
                                names=", ".join(catalog)), names_hint(catalog))
    if repo is None:
        return chosen
    by_repo = known_for(catalog, repo)
    if by_repo is None:
        raise SdbootError(
            t("{repo} is not a Stable Diffusion WebUI repository sdboot knows (not in the "
              "WebUI catalog); nothing was changed", repo=repo), names_hint(catalog))
    if chosen is not None and by_repo.name != chosen.name:
        raise SdbootError(t("--webui {name} and --webui-repo {repo} name different WebUIs",
                            name=chosen.name, repo=repo),
                          t("give one of them (--webui {name} alone installs {url})",
                            name=chosen.name, url=chosen.repo))
    return by_repo
