"""Where a model comes from: a URL, a Civitai page or a Hugging Face file, planned into a
Source (name, endpoint, headers) before anything is downloaded."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sdboot.addons.models import MODEL_SUFFIXES, ModelType, short_hash
from sdboot.errors import SdbootError
from sdboot.i18n import N_, t

# --- placing files (effects through the file and network funnels) -------------------------



CIVITAI_API = "https://civitai.com/api"
CIVITAI_TOKEN_VARS = ("CIVITAI_TOKEN", "CIVITAI_API_KEY")
HF_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
HASH_CACHE = ".sdboot/hashes.json"
PICKLE_WARNING = N_("{name} is a pickle (.ckpt/.pt): loading it can run code. Prefer the "
                  ".safetensors version of the same model where there is one")


@dataclass(frozen=True)
class ModelEntry:
    path: str  # relative to the WebUI
    type: ModelType
    folder: str
    size: int
    sha256: str | None
    problem: str | None = None  # why the WebUI cannot load it (a git-LFS pointer, ...)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "type": str(self.type), "folder": self.folder,
                "size": self.size, "sha256": self.sha256,
                "short_hash": short_hash(self.sha256) if self.sha256 else None,
                "problem": self.problem}


@dataclass(frozen=True)
class Source:
    url: str  # what is fetched
    name: str | None  # the file name, already a plain one (io.files.safe_name); None: the
    #                   server's answer (Content-Disposition) names it
    sha256: str | None  # what the source publishes
    headers: dict[str, str]
    kind: str  # huggingface | civitai | modelscope | url
    fallback: str | None = None  # the (plain) name when the server's answer gives none
    size: int | None = None  # the size the source publishes (ModelScope's file list)


def parse_civitai(url: str) -> str | None:
    """The model-version id of a Civitai URL (models/<id>?modelVersionId=V, or
    api/download/models/V); digits only."""
    parts = urlsplit(url)
    if not (parts.hostname or "").endswith("civitai.com"):
        return None
    version = parse_qs(parts.query).get("modelVersionId", [None])[0]
    if version:
        return version if version.isdigit() else None
    match = re.search(r"/api/download/models/(\d+)", parts.path)
    return match.group(1) if match else None


def _url_name(url: str, what: str) -> str:
    """The last path segment of url, percent-decoded once, then proven a plain file name
    (`..%2F..%2Fx` and `%2Ftmp%2Fx` are refused, never joined to a folder)."""
    from sdboot.io.files import safe_name

    segment = urlsplit(url).path.rsplit("/", 1)[-1]
    return safe_name(unquote(segment, errors="strict"), what) if segment else ""


def _check_endpoint(value: str) -> str:
    from sdboot.io.http_rules import DownloadError, check_url
    from sdboot.io.mask import mask

    try:
        return check_url(value)
    except DownloadError:
        raise SdbootError(t("HF_ENDPOINT={value} is not an http(s) URL", value=repr(mask(value))),
                          t("set it to https://HOST of a Hugging Face mirror, or unset it")
                          ) from None


def plan_source(url: str, env: dict[str, str] | None = None,
                fetch_json: Callable[[str, dict[str, str]], Any] | None = None,
                name: str | None = None, *, prefer_modelscope: bool = False) -> Source:
    """Where a model URL is fetched from, with which headers, under which file name.
    Hugging Face goes through HF_ENDPOINT (a mirror) and then gets no token; a token goes
    only to its own service (a Civitai `?token=` becomes a header, never part of a URL or
    a file name). Every name, from the URL or Civitai's API, is decoded and then proven
    plain by io.files.safe_name; `name` (--name) overrides them and is proven the same way."""
    from sdboot.io.files import safe_name
    from sdboot.io.http_rules import auth_headers
    from sdboot.io.mask import mask
    from sdboot.mirrors.table import map_hf_url

    env = dict(os.environ if env is None else env)
    from sdboot.addons import modelscope

    ms_ref = modelscope.parse(url, env) or (modelscope.twin(url) if prefer_modelscope
                                            else None)
    if ms_ref is not None:  # ModelScope (魔搭): a modelscope: source, its URL, or a twin
        ms_url, ms_name, ms_sha, ms_size = modelscope.plan(ms_ref, env, fetch_json, name)
        return Source(ms_url, ms_name, ms_sha, {}, "modelscope", size=ms_size)
    try:
        parts = urlsplit(url)
        _ = parts.port  # a bad port or IPv6 literal raises ValueError
    except ValueError:
        raise SdbootError(t("'{url}' is not a valid URL or an existing file", url=mask(url)),
                          t("give a local path, or a Hugging Face / Civitai URL")) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SdbootError(t("'{url}' is not an http(s) URL or an existing file", url=mask(url)),
                          t("give a local path, or a Hugging Face / Civitai URL"))
    override = safe_name(name, "--name") if name is not None else None
    tokens = {k: env[k] for k in (*HF_TOKEN_VARS, *CIVITAI_TOKEN_VARS) if env.get(k)}
    civitai_id = parse_civitai(url)
    if civitai_id is None and (parts.hostname or "").endswith("civitai.com") and \
            "modelversionid=" in parts.query.lower():
        raise SdbootError(t("'{url}': modelVersionId must be a number", url=mask(url)),
                          t("copy the URL from the model's page again"))
    if civitai_id is not None:
        query_token = (parse_qs(parts.query).get("token") or [""])[0]
        if query_token and not any(tokens.get(k) for k in CIVITAI_TOKEN_VARS):
            tokens["CIVITAI_TOKEN"] = query_token
        meta = fetch_json(f"{CIVITAI_API}/v1/model-versions/{civitai_id}",
                          auth_headers(CIVITAI_API, tokens)) if fetch_json else None
        files = meta.get("files") if isinstance(meta, dict) else None
        entries = [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
        primary = next((f for f in entries if f.get("primary")), entries[0] if entries
                       else {})
        given = primary.get("name")
        picked = override or (safe_name(given, t("file name from Civitai's answer"))
                              if isinstance(given, str) and given else None)
        hashes = primary.get("hashes")
        sha = hashes.get("SHA256") if isinstance(hashes, dict) else None
        sha = sha.lower() if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha) \
            else None
        target = f"{CIVITAI_API}/download/models/{civitai_id}"
        return Source(target, picked, sha, auth_headers(target, tokens), "civitai",
                      f"civitai-{civitai_id}.safetensors")
    if parts.hostname == "huggingface.co" and "/resolve/" in parts.path:
        endpoint = env.get("HF_ENDPOINT")
        if endpoint:
            _check_endpoint(endpoint)
        target = map_hf_url(url, endpoint)
        picked = override or _url_name(url, t("file name in the URL"))
        if not picked:
            raise SdbootError(t("'{url}' names no file", url=mask(url)),
                              t("give the URL of the file (…/resolve/main/NAME), or --name "
                                "NAME"))
        return Source(target, picked, None, auth_headers(target, tokens), "huggingface")
    if override:
        return Source(url, override, None, {}, "url")
    segment = _url_name(url, t("file name in the URL"))
    if segment.lower().endswith(MODEL_SUFFIXES):
        return Source(url, segment, None, {}, "url")
    # no model file name in the URL: the server's Content-Disposition may give one
    return Source(url, None, None, {}, "url", segment or None)
