"""ModelScope (魔搭) model files: the URL shapes and the short form `modelscope:`, planned
into a Source (download URL, expected sha256 and size) before anything is downloaded.

ModelScope's real shapes (those its Python SDK, modelscope/hub/api.py and file_download.py,
builds, and what its web pages show):
  page      https://modelscope.cn/models/OWNER/REPO/file/view/REV/PATH
  resolve   https://modelscope.cn/models/OWNER/REPO/resolve/REV/PATH
  download  https://www.modelscope.cn/api/v1/models/OWNER/REPO/repo?Revision=REV&FilePath=PATH
  file list https://www.modelscope.cn/api/v1/models/OWNER/REPO/repo/files?Revision=REV
            &Recursive=true  -> {"Data": {"Files": [{"Path", "Sha256", "Size", ...}]}}
The SDK reads the host from MODELSCOPE_DOMAIN (a bare host name, scheme from
MODELSCOPE_URL_SCHEME); sdboot does the same, and also takes a full URL there."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sdboot.errors import SdbootError
from sdboot.i18n import t

DEFAULT_ENDPOINT = "https://www.modelscope.cn"
HOSTS = ("modelscope.cn", "www.modelscope.cn")
PREFIX = "modelscope:"
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# Hugging Face repos with a ModelScope twin holding the same files (same paths): the cn
# preset fetches these from ModelScope. Only ids seen in public use are listed: the SDXL
# base repo (AI-ModelScope/stable-diffusion-xl-base-1.0, e.g. .../resolve/master/
# sd_xl_base_1.0.safetensors). Extend it here, or pass a modelscope: source directly.
TWINS: dict[str, str] = {
    "stabilityai/stable-diffusion-xl-base-1.0": "AI-ModelScope/stable-diffusion-xl-base-1.0",
}


@dataclass(frozen=True)
class MsRef:
    model_id: str  # OWNER/REPO
    path: str  # the file inside the repo (may hold folders)
    revision: str = "master"


def _bad(text: str) -> SdbootError:
    from sdboot.io.mask import mask

    return SdbootError(t("'{url}' is not a ModelScope file", url=mask(text)),
                       t("give modelscope:OWNER/REPO/FILE[@REVISION], or the file's URL "
                         "(…/models/OWNER/REPO/resolve/master/FILE)"))


def _ref(owner: str, repo: str, path: str, revision: str, text: str) -> MsRef:
    path = path.strip("/")
    if not (_PART.fullmatch(owner) and _PART.fullmatch(repo) and path and revision
            and re.fullmatch(r"[A-Za-z0-9._/-]{1,128}", revision)
            and all(seg not in ("", ".", "..") for seg in path.split("/"))):
        raise _bad(text)
    return MsRef(f"{owner}/{repo}", path, revision)


def endpoint(env: dict[str, str]) -> str:
    """The ModelScope base URL: MODELSCOPE_DOMAIN (as the SDK reads it) or the default."""
    from sdboot.io.http_rules import DownloadError, check_url
    from sdboot.io.mask import mask

    domain = env.get("MODELSCOPE_DOMAIN", "").strip()
    if not domain:
        return DEFAULT_ENDPOINT
    value = domain if "://" in domain else \
        f"{env.get('MODELSCOPE_URL_SCHEME', 'https://').strip() or 'https://'}{domain}"
    try:
        return check_url(value).rstrip("/")
    except DownloadError:
        raise SdbootError(t("MODELSCOPE_DOMAIN={value} is not an http(s) host",
                            value=repr(mask(domain))),
                          t("set it to a host name like www.modelscope.cn, or unset it")
                          ) from None


def parse(text: str, env: dict[str, str]) -> MsRef | None:
    """The file a ModelScope URL or `modelscope:OWNER/REPO/FILE[@REV]` names; None when
    text is neither; SdbootError (exit 2) when it is one but malformed."""
    if text.startswith(PREFIX):
        body = text[len(PREFIX):]
        body, _, revision = body.partition("@")
        parts = body.split("/", 2)
        if len(parts) < 3:
            raise _bad(text)
        return _ref(parts[0], parts[1], parts[2], revision or "master", text)
    try:
        split = urlsplit(text)
        host = (split.hostname or "").lower()
        own = urlsplit(endpoint(env))
        own_host = f"{own.hostname}:{own.port}" if own.port else (own.hostname or "")
        here = f"{host}:{split.port}" if split.port else host
    except ValueError:
        return None
    if split.scheme not in ("http", "https") or (host not in HOSTS and here != own_host):
        return None
    segs = split.path.split("/")
    if split.path.startswith("/api/v1/models/"):
        query = parse_qs(split.query)
        file_path = (query.get("FilePath") or [""])[0]
        if len(segs) < 7 or segs[6] != "repo" or not file_path:
            raise _bad(text)
        return _ref(segs[4], segs[5], file_path, (query.get("Revision") or ["master"])[0],
                    text)
    if len(segs) >= 4 and segs[1] == "models":
        rest = segs[4:]
        if rest[:2] == ["file", "view"]:
            rest = rest[2:]
        elif rest[:1] == ["resolve"]:
            rest = rest[1:]
        else:
            raise _bad(text)
        if len(rest) < 2:
            raise _bad(text)
        return _ref(segs[2], segs[3], unquote("/".join(rest[1:])), unquote(rest[0]), text)
    return None


def download_url(base: str, ref: MsRef) -> str:
    return (f"{base}/api/v1/models/{ref.model_id}/repo?Revision={quote(ref.revision, '')}"
            f"&FilePath={quote(ref.path, '')}")


def files_url(base: str, ref: MsRef) -> str:
    return (f"{base}/api/v1/models/{ref.model_id}/repo/files?Revision="
            f"{quote(ref.revision, '')}&Recursive=true")


def listed(doc: Any, path: str) -> tuple[str | None, int | None]:
    """(sha256, size) of path in a file-list answer; (None, None) when it is not there."""
    data = doc.get("Data") if isinstance(doc, dict) else None
    files = data.get("Files") if isinstance(data, dict) else None
    for entry in files if isinstance(files, list) else []:
        if isinstance(entry, dict) and entry.get("Path") == path:
            sha, size = entry.get("Sha256"), entry.get("Size")
            sha = sha.lower() if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}",
                                                                       sha) else None
            return sha, size if type(size) is int and size >= 0 else None
    return None, None


def twin(hf_url: str) -> MsRef | None:
    """The ModelScope twin of a huggingface.co …/resolve/REV/PATH URL, when TWINS lists
    its repo (the file keeps its path; the revision becomes ModelScope's master)."""
    split = urlsplit(hf_url)
    segs = split.path.split("/")
    if split.hostname != "huggingface.co" or len(segs) < 6 or segs[3] != "resolve":
        return None
    found = TWINS.get(f"{segs[1]}/{segs[2]}")
    if found is None:
        return None
    owner, repo = found.split("/")
    try:
        return _ref(owner, repo, unquote("/".join(segs[5:])), "master", hf_url)
    except SdbootError:
        return None


def plan(ref: MsRef, env: dict[str, str], fetch_json: Callable[[str, dict[str, str]], Any]
         | None, name: str | None) -> tuple[str, str, str | None, int | None]:
    """(download URL, plain file name, sha256, size) of a ModelScope file; the name is the
    path's last segment (or --name), proven plain by io.files.safe_name."""
    from sdboot.io.files import safe_name

    base = endpoint(env)
    picked = safe_name(name, "--name") if name is not None else \
        safe_name(ref.path.rsplit("/", 1)[-1], "file name in the ModelScope path")
    sha, size = listed(fetch_json(files_url(base, ref), {}), ref.path) if fetch_json \
        else (None, None)
    return download_url(base, ref), picked, sha, size
