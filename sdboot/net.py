"""The network funnel: every HTTP request sdboot makes goes through here, with a timeout,
a user agent, and the rule that a token is only ever sent to the service that issued it
(never to a mirror or proxy). Functions return results; they do not raise on network
failures."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from sdboot import __version__

USER_AGENT = f"sdboot/{__version__}"
# Which hosts may see which token (their own services and subdomains only).
TOKEN_HOSTS = {
    "HF_TOKEN": ("huggingface.co",),
    "HUGGING_FACE_HUB_TOKEN": ("huggingface.co",),
    "CIVITAI_TOKEN": ("civitai.com",),
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
