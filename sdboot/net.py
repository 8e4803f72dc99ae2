"""The network funnel: every HTTP request sdboot makes goes through here, with a timeout,
a user agent, and the rule that a token is only ever sent to the service that issued it
(never to a mirror or proxy). Functions return results; they do not raise on network
failures."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from sdboot import __version__

USER_AGENT = f"sdboot/{__version__}"
# Which hosts may see which token (their own services and subdomains only).
TOKEN_HOSTS = {
    "HF_TOKEN": ("huggingface.co",),
    "HUGGING_FACE_HUB_TOKEN": ("huggingface.co",),
    "CIVITAI_TOKEN": ("civitai.com",),
    "CIVITAI_API_KEY": ("civitai.com",),
}


@dataclass(frozen=True)
class HttpResult:
    url: str
    status: int | None
    body: bytes  # at most max_bytes of it
    elapsed_s: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


def token_allowed(url: str, token_var: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    allowed = TOKEN_HOSTS.get(token_var, ())
    return urlsplit(url).scheme == "https" and any(
        host == h or host.endswith("." + h) for h in allowed)


def auth_headers(url: str, tokens: Mapping[str, str]) -> dict[str, str]:
    """The Authorization header for `url`, from the first token that may go there."""
    for var, value in tokens.items():
        if value and token_allowed(url, var):
            return {"Authorization": f"Bearer {value}"}
    return {}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ReadTimeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error (certificate or interception)"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "Name or service not known" in text or "getaddrinfo" in text or "resolve" in text:
            return "host name does not resolve"
        if "refused" in text.lower():
            return "connection refused"
        return "connection failed"
    return f"{type(exc).__name__}: {exc}"


def fetch_head(url: str, timeout: float, max_bytes: int = 65536,
               headers: Mapping[str, str] | None = None) -> HttpResult:
    """GET url and read at most max_bytes of the body, within about `timeout` seconds in
    all. Never raises for network trouble: the error is in the result."""
    started = time.monotonic()
    sent = {"User-Agent": USER_AGENT, **(headers or {})}
    try:
        with requests.get(url, timeout=(timeout, timeout), stream=True, headers=sent,
                          allow_redirects=True) as resp:
            body = bytearray()
            for chunk in resp.iter_content(chunk_size=16384):
                body += chunk
                if len(body) >= max_bytes or time.monotonic() - started > timeout:
                    break
            return HttpResult(url, resp.status_code, bytes(body[:max_bytes]),
                              time.monotonic() - started)
    except requests.exceptions.RequestException as exc:
        return HttpResult(url, None, b"", time.monotonic() - started, _describe(exc))


@dataclass(frozen=True)
class Download:
    path: Path
    size: int
    sha256: str | None  # None: nothing to check it against, so it was not computed
    resumed: int  # how many times a cut-off transfer was resumed
    remote_sha256: str | None  # what the server said (Hugging Face's LFS etag)


class DownloadError(Exception):
    pass


def _expected_from_headers(resp: requests.Response) -> str | None:
    """Hugging Face answers a resolve URL of an LFS file with X-Linked-Etag: "<sha256>"."""
    for r in [*resp.history, resp]:
        etag = r.headers.get("X-Linked-Etag") or r.headers.get("x-linked-etag")
        if etag:
            value = etag.strip('"').removeprefix("W/").strip('"')
            if len(value) == 64 and all(c in "0123456789abcdef" for c in value.lower()):
                return value.lower()
    return None


def _hash_file(path: Path) -> Any:
    import hashlib

    digest = hashlib.sha256()
    if path.exists():
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest


def download(url: str, part: Path, *, headers: Mapping[str, str] | None = None,
             timeout: float = 30.0, retries: int = 5, verify: bool | None = None,
             on_progress: Callable[[int, int | None], None] | None = None) -> Download:
    """Stream url into `part` (appending to what a cut-off run left there, with HTTP Range).
    A transfer that breaks off is resumed up to `retries` times. The sha256 is computed
    while streaming when it will be checked: verify=True (the caller knows the hash), or
    verify=None and the server announces one (Hugging Face); otherwise not at all, so an
    unverifiable download costs no more than curl's."""
    sent = {"User-Agent": USER_AGENT, **(headers or {})}
    have = part.stat().st_size if part.exists() else 0
    digest: Any = None
    resumed = 0
    remote: str | None = None
    total: int | None = None
    while True:
        ask = dict(sent)
        if have:
            ask["Range"] = f"bytes={have}-"
        try:
            with requests.get(url, headers=ask, stream=True, timeout=(timeout, timeout),
                              allow_redirects=True) as resp:
                remote = remote or _expected_from_headers(resp)
                if resp.status_code == 416 and have:  # nothing left: it is all here
                    break
                if resp.status_code == 200 and have:  # no Range support: start again
                    have = 0
                    part.unlink(missing_ok=True)
                    digest = None
                elif resp.status_code not in (200, 206):
                    raise DownloadError(f"HTTP {resp.status_code} for {url}")
                if digest is None and (verify or (verify is None and remote)):
                    digest = _hash_file(part)  # what an earlier run left, then the rest
                length = resp.headers.get("Content-Length")
                total = have + int(length) if length and length.isdigit() else None
                part.parent.mkdir(parents=True, exist_ok=True)
                with part.open("ab") as fh:
                    for chunk in resp.iter_content(chunk_size=1 << 20):
                        fh.write(chunk)
                        if digest is not None:
                            digest.update(chunk)
                        have += len(chunk)
                        if on_progress is not None:
                            on_progress(have, total)
                if total is not None and have < total:
                    raise requests.exceptions.ChunkedEncodingError("transfer cut off")
                break
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ReadTimeout) as exc:
            if resumed >= retries:
                raise DownloadError(f"the download broke off {resumed + 1} times "
                                    f"({_describe(exc)}); {have} bytes are kept in {part}"
                                    ) from None
            resumed += 1
            on_disk = part.stat().st_size if part.exists() else 0
            if on_disk != have:  # the hash follows the file, never the other way round
                have = on_disk
                digest = _hash_file(part) if digest is not None else None
    if digest is None and remote and verify is not False:
        digest = _hash_file(part)  # announced only after a redirect we had not seen yet
    return Download(part, have, digest.hexdigest() if digest is not None else None, resumed,
                    remote)
