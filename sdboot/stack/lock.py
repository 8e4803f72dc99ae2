"""The lock: what one install ended with (Python, platform, profile, index, the WebUI's
commit, the commits under repositories/, every distribution's exact version), as a text
file that is at the same time a valid pip / uv requirements and constraints file.

    # sdboot lock
    # python: 3.10.13
    # platform: linux-x86_64
    # profile: cu121
    # index: https://mirror.example/simple
    # webui: https://github.com/AUTOMATIC1111/stable-diffusion-webui@<40 hex>
    # repository: stable-diffusion-stability-ai <hex>
    # created: 2026-12-02T19:00:00+00:00
    # sha256: name <64 hex>
    clip @ https://github.com/openai/CLIP/archive/<hex>.zip  # version: 1.0
    numpy==1.26.2
    ...

A distribution installed from a direct URL (CLIP from a zip, by the WebUI's own launch
file) is a `name @ URL` line with its version in a trailing comment; the URL is kept in
its upstream form (a GitHub mirror's prefix taken off when the lock is written, put back
for the mirror of the install that follows the lock). Only http(s) and git+https URLs
without credentials are accepted.

Hashes stay in comments: one `--hash=` line would make pip require hashes for every line.
Everything here is pure except `freeze`, which asks the environment's Python through the
runner."""

from __future__ import annotations

import json
import platform as _platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.mask import mask
from sdboot.io.runner import Runner

LOCK_FILE = ".sdboot/lock.txt"
HEADER = "# sdboot lock"
FREEZE_TIMEOUT_S = 60.0
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_HEX = re.compile(r"[0-9a-f]{7,64}")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_PY = re.compile(r"\d+\.\d+(?:\.\d+)?(?:[a-z]+\d*)?\+?")
_PLATFORM = re.compile(r"[a-z0-9]+-[A-Za-z0-9_]+")
_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_URLISH = re.compile(r"[A-Za-z0-9+.-]+://[^\s\\]+|[^\s\\:]+")
_REPO_DIR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class Lock:
    python: str
    platform: str
    profile: str
    index: str | None
    webui_repo: str
    webui_commit: str
    repositories: dict[str, str] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    created: str = ""
    urls: dict[str, str] = field(default_factory=dict)  # name -> direct URL (upstream form)


def here_platform() -> str:
    """sys.platform + '-' + machine, as a lock records it ('linux-x86_64', 'win32-AMD64')."""
    return f"{sys.platform}-{_platform.machine() or 'unknown'}"


def render_lock(lock: Lock) -> str:
    lines = [HEADER,
             "# This file is a pip / uv constraints file: pip install -c lock.txt ...",
             f"# python: {lock.python}",
             f"# platform: {lock.platform}",
             f"# profile: {lock.profile}",
             f"# index: {mask(lock.index) if lock.index else '-'}",
             f"# webui: {mask(lock.webui_repo)}@{lock.webui_commit}"]
    lines += [f"# repository: {name} {commit}"
              for name, commit in sorted(lock.repositories.items())]
    if lock.created:
        lines.append(f"# created: {lock.created}")
    lines += [f"# sha256: {name} {digest.removeprefix('sha256:')}"
              for name, digest in sorted(lock.hashes.items())]
    lines += [f"{name} @ {lock.urls[name]}  # version: {version}" if name in lock.urls
              else f"{name}=={version}" for name, version in sorted(lock.packages.items())]
    return "\n".join(lines) + "\n"


_DIRECT = re.compile(r"(?:git\+)?https?://[A-Za-z0-9.-]+(?::\d{1,5})?/[A-Za-z0-9._~/%+=@!:-]*"
                     r"(?:#[A-Za-z0-9._=&-]*)?")


def direct_url_problem(url: str) -> str | None:
    """Why a direct URL may not stand in a lock (None: it may): http(s) or git+http(s)
    only, a host and a path of plain characters, no credentials (user@, a masked '***')."""
    from urllib.parse import urlsplit

    try:
        netloc = urlsplit(url.removeprefix("git+")).netloc
    except ValueError:
        netloc = ""
    if "@" in netloc or "***" in url:
        return t("'{value}' carries credentials (or their mask)", value=mask(url)[:120])
    if not _DIRECT.fullmatch(url):
        return t("'{value}' is not an http(s) URL of plain characters", value=url[:120])
    return None


def _bad(source: str, number: int, what: str) -> SdbootError:
    return SdbootError(
        t("{source}:{line}: {what}", source=source, line=number, what=what),
        t("give a lock file that sdboot wrote (WEBUI/.sdboot/lock.txt), unchanged"))


def _version(text: str, source: str, number: int) -> str:
    try:
        Version(text)
    except InvalidVersion:
        raise _bad(source, number, t("'{value}' is not a version", value=text)) from None
    if text != text.strip() or not re.fullmatch(r"[A-Za-z0-9.+!_-]+", text):
        raise _bad(source, number, t("'{value}' is not a version", value=text))
    return text


def _name(text: str, source: str, number: int) -> str:
    if not _NAME.fullmatch(text):
        raise _bad(source, number, t("'{value}' is not a package name", value=text))
    return canonicalize_name(text)


def _commit(text: str, source: str, number: int) -> str:
    if not _HEX.fullmatch(text):
        raise _bad(source, number, t("'{value}' is not a commit hash", value=text))
    return text


def _meta(lock: dict[str, object], key: str, value: str, source: str, number: int) -> None:
    if key in ("python", "platform", "profile", "index", "webui", "created") and key in lock:
        raise _bad(source, number, t("'{key}' given twice", key=key))
    if key == "python":
        if not _PY.fullmatch(value):
            raise _bad(source, number, t("'{value}' is not a Python version", value=value))
        lock[key] = value
    elif key == "platform":
        if not _PLATFORM.fullmatch(value):
            raise _bad(source, number, t("'{value}' is not a platform", value=value))
        lock[key] = value
    elif key == "profile":
        if not _PROFILE.fullmatch(value):
            raise _bad(source, number, t("'{value}' is not a profile name", value=value))
        lock[key] = value
    elif key == "index":
        if value != "-" and not re.fullmatch(r"https?://[^\s\\]+", value):
            raise _bad(source, number, t("'{value}' is not an index URL", value=value))
        lock[key] = None if value == "-" else value
    elif key == "webui":
        repo, sep, commit = value.rpartition("@")
        if not sep or not repo or not _URLISH.fullmatch(repo) or ".." in repo.split("/"):
            raise _bad(source, number, t("'{value}' is not repo@commit", value=value))
        lock["webui_repo"], lock["webui_commit"] = repo, _commit(commit, source, number)
        lock[key] = True
    elif key == "repository":
        parts = value.split()
        if len(parts) != 2 or not _REPO_DIR.fullmatch(parts[0]) or parts[0] in (".", ".."):
            raise _bad(source, number, t("'{value}' is not 'folder commit'", value=value))
        repos = lock.setdefault("repositories", {})
        assert isinstance(repos, dict)
        repos[parts[0]] = _commit(parts[1], source, number)
    elif key == "sha256":
        parts = value.split()
        if len(parts) != 2 or not _SHA256.fullmatch("sha256:" + parts[1]):
            raise _bad(source, number, t("'{value}' is not 'name sha256'", value=value))
        hashes = lock.setdefault("hashes", {})
        assert isinstance(hashes, dict)
        hashes[_name(parts[0], source, number)] = "sha256:" + parts[1]
    elif key == "created":
        if not re.fullmatch(r"[0-9T:.+Z-]{10,40}", value):
            raise _bad(source, number, t("'{value}' is not a date", value=value))
        lock[key] = value


def parse_lock(text: str, source: str) -> Lock:
    """The lock in `text` (`source` names it in errors), validated line by line: anything
    that is not a metadata comment, a plain comment or `name==version` is refused (exit 2),
    so a lock can never smuggle an option, a path or a URL into pip's arguments."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise SdbootError(t("{source} is not an sdboot lock (no '{header}' first line)",
                            source=source, header=HEADER),
                          t("give a lock file that sdboot wrote (WEBUI/.sdboot/lock.txt)"))
    meta: dict[str, object] = {}
    packages: dict[str, str] = {}
    urls: dict[str, str] = {}
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line:
            continue
        if any(ord(c) < 32 and c != "\t" for c in raw) or "\x7f" in raw:
            raise _bad(source, number, t("a control character"))
        if line.startswith("#"):
            key, sep, value = line[1:].strip().partition(":")
            if sep and re.fullmatch(r"[a-z0-9]+", key.strip()):
                _meta(meta, key.strip(), value.strip(), source, number)
            continue
        name, sep, version = line.partition("==")
        url = None
        if not sep and " @ " in line:
            name, _, rest = line.partition(" @ ")
            url, _, comment = rest.partition("  # version: ")
            url, version = url.strip(), comment.strip()
            problem = direct_url_problem(url) if version else t(
                "'{value}' has no '  # version: V' comment", value=line[:120])
            if problem:
                raise _bad(source, number, problem)
        elif not sep:
            raise _bad(source, number, t("'{value}' is not name==version", value=line))
        canonical = _name(name.strip(), source, number)
        if canonical in packages:
            raise _bad(source, number, t("'{key}' given twice", key=canonical))
        packages[canonical] = _version(version.strip(), source, number)
        if url:
            urls[canonical] = url
    for key in ("python", "platform", "profile", "webui"):
        if key not in meta:
            raise SdbootError(t("{source} has no '# {key}:' line", source=source, key=key),
                              t("give a lock file that sdboot wrote (WEBUI/.sdboot/lock.txt), "
                                "unchanged"))
    repos = meta.get("repositories") or {}
    hashes = meta.get("hashes") or {}
    assert isinstance(repos, dict) and isinstance(hashes, dict)
    index = meta.get("index")
    return Lock(python=str(meta["python"]), platform=str(meta["platform"]),
                profile=str(meta["profile"]), index=str(index) if index else None,
                webui_repo=str(meta["webui_repo"]), webui_commit=str(meta["webui_commit"]),
                repositories=dict(repos), packages=packages, hashes=dict(hashes),
                created=str(meta.get("created") or ""), urls=urls)


def read_bounded(path: Path, limit: int, hint: str) -> str:
    """A plain UTF-8 file of at most `limit` bytes, or SdbootError (exit 2) with `hint`."""
    try:
        if not path.is_file() or path.stat().st_size > limit:
            raise OSError(f"not a plain file of at most {limit // 1024} KB")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SdbootError(t("cannot read {path}: {reason}", path=path, reason=exc), hint
                          ) from None


def read_lock(path: Path) -> Lock:
    """parse_lock of a file; a missing or unreadable file is exit 2 too."""
    text = read_bounded(path, 4 * 1024 * 1024,
                        t("give a lock file that sdboot wrote (WEBUI/.sdboot/lock.txt)"))
    return parse_lock(text, str(path))


_FREEZE = (
    "import json, importlib.metadata as m\n"
    "out = {}\n"
    "for d in m.distributions():\n"
    "    n = d.metadata['Name']\n"
    "    if not n: continue\n"
    "    h = url = None\n"
    "    try:\n"
    "        u = json.loads(d.read_text('direct_url.json') or 'null') or {}\n"
    "        a, v = u.get('archive_info'), u.get('vcs_info') or {}\n"
    "        h = (a or {}).get('hashes', {}).get('sha256')\n"
    "        h = h or ((a or {}).get('hash') or '').partition('sha256=')[2] or None\n"
    "        if a is not None: url = u.get('url')\n"
    "        elif v.get('vcs') == 'git' and v.get('commit_id'):\n"
    "            url = 'git+' + u['url'] + '@' + v['commit_id']\n"
    "    except Exception: pass\n"
    "    out.setdefault(n, [d.version, h, url])\n"
    "print(json.dumps(out))\n"
)


def _freeze_raw(python: Path, runner: Runner) -> dict[str, list[str | None]]:
    res = runner.run([str(python), "-I", "-c", _FREEZE], timeout=FREEZE_TIMEOUT_S)
    data: object = None
    if res.ok:
        try:
            data = json.loads(res.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            data = None
    if not isinstance(data, dict):
        raise SdbootError(t("cannot list the packages of {python}", python=python),
                          t("run it by hand: {python} -m pip list", python=python),
                          exit_code=1)
    return data


def freeze(python: Path, runner: Runner) -> dict[str, str]:
    """Every distribution in that interpreter's environment: canonical name -> version."""
    return {canonicalize_name(str(n)): str(v[0]) for n, v in _freeze_raw(python, runner).items()}


def freeze_hashes(python: Path, runner: Runner) -> tuple[dict[str, str], dict[str, str]]:
    """freeze, plus 'sha256:...' for the distributions installed from a known archive."""
    versions, hashes, _ = freeze_full(python, runner)
    return versions, hashes


def freeze_full(python: Path, runner: Runner,
                ) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """freeze, the archive hashes, and the direct URL of each distribution installed from
    one (an archive URL, or git+URL@commit; a local folder has none)."""
    raw = _freeze_raw(python, runner)
    versions: dict[str, str] = {canonicalize_name(str(n)): str(v[0]) for n, v in raw.items()}
    hashes: dict[str, str] = {canonicalize_name(str(n)): f"sha256:{v[1]}"
              for n, v in raw.items()
              if len(v) > 1 and isinstance(v[1], str) and re.fullmatch(r"[0-9a-f]{64}", v[1])}
    urls: dict[str, str] = {canonicalize_name(str(n)): v[2] for n, v in raw.items()
            if len(v) > 2 and isinstance(v[2], str) and v[2]}
    return versions, hashes, urls


def lock_requirements(lock: Lock, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The lock's `name==version` lines, less the canonical names in `exclude`."""
    skip: set[str] = {canonicalize_name(n) for n in exclude}
    return [f"{name}=={version}" for name, version in sorted(lock.packages.items())
            if name not in skip]


def render_lock_constraints(lock: Lock) -> str:
    """The lock as a plain constraints file, every distribution at its exact version (a
    direct-URL one too, by its version): what an install with --lock passes with -c."""
    return ("# Written by sdboot from the lock this install follows (sdboot install --lock).\n"
            + "\n".join(lock_requirements(lock)) + "\n")


def lock_differences(lock: Lock, installed: dict[str, str]) -> list[str]:
    """Human lines: what the lock has that the environment lacks, what the environment has
    in addition, and what is at another version (empty: the environment is the lock)."""
    have: dict[str, str] = {canonicalize_name(n): v for n, v in installed.items()}
    out: list[str] = []
    for name, version in sorted(lock.packages.items()):
        if name not in have:
            out.append(t("missing: {name}=={version}", name=name, version=version))
        elif _same(have[name], version) is False:
            out.append(t("other version: {name} {have} (the lock has {version})",
                         name=name, have=have[name], version=version))
    out += [t("extra: {name}=={version}", name=name, version=version)
            for name, version in sorted(have.items()) if name not in lock.packages]
    return out


def _same(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def check_lock_fits(lock: Lock, python_version: str, platform: str) -> None:
    """A lock reproduces only on the Python minor and the platform it was made on."""
    if _minor(lock.python) != _minor(python_version) or lock.platform != platform:
        raise SdbootError(
            t("this lock was made for Python {python} on {platform}",
              python=lock.python, platform=lock.platform),
            t("here is Python {here_python} on {here_platform}: use the lock on a machine "
              "like the one that made it, or install without --lock",
              here_python=python_version, here_platform=platform))
