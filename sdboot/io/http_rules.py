"""HTTP rules that need no network: which hosts may see which token, what a valid
URL is, what a download error says, when a download counts as stalled, and how to read
Content-Disposition and Content-Range."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from sdboot.i18n import t
from sdboot.io.mask import mask

# A download that gets fewer than STALL_MIN_BYTES in STALL_TIMEOUT_S seconds is given up
# (a server dripping a byte now and then would otherwise hold it forever).
STALL_TIMEOUT_S = 60.0
STALL_MIN_BYTES = 16 * 1024
STALL_ENV = "SDBOOT_STALL_TIMEOUT"
# Which hosts may see which token (their own services and subdomains only).
TOKEN_HOSTS = {
    "HF_TOKEN": ("huggingface.co",),
    "HUGGING_FACE_HUB_TOKEN": ("huggingface.co",),
    "CIVITAI_TOKEN": ("civitai.com",),
    "CIVITAI_API_KEY": ("civitai.com",),
}


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


class DownloadError(Exception):
    """A download that cannot go on; `hint` says what the user can do."""

    def __init__(self, message: str, hint: str = "", retry: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.retry = retry  # a cut-off worth resuming in the same run


def is_loopback_host(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str = "URL") -> str:
    """url unchanged when it is an absolute http(s) URL with a host; DownloadError when not
    (`htp:/x`, `https://`, a bad port)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a bad port
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise DownloadError(t("{what} {url} is not a valid http(s) URL", what=what,
                              url=repr(mask(url))),
                            t("give an https://HOST/... URL (check HF_ENDPOINT and mirror "
                              "settings too)"))
    return url


def same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, (pa.hostname or "").lower(), pa.port) == \
        (pb.scheme, (pb.hostname or "").lower(), pb.port)


_CD_EXT = re.compile(r"""filename\*\s*=\s*([\w!#$%&+^`{}~-]+)'[^']*'([^;\s]+)""", re.I)
_CD_QUOTED = re.compile(r'filename\s*=\s*"((?:[^"\\]|\\.)*)"', re.I)
_CD_TOKEN = re.compile(r"filename\s*=\s*([^\";\s]+)", re.I)


def disposition_filename(value: str | None) -> str | None:
    """The file name a Content-Disposition header gives, decoded (RFC 6266: filename*
    first, then filename), or None. UNTRUSTED: it may hold `../`, a full path or control
    characters; the caller must pass it through io.files.safe_name."""
    if not value:
        return None
    ext = _CD_EXT.search(value)
    if ext:
        charset = ext.group(1).lower()
        try:
            return unquote(ext.group(2), encoding=charset, errors="strict")
        except (LookupError, UnicodeDecodeError):
            return unquote(ext.group(2), encoding="latin-1")
    quoted = _CD_QUOTED.search(value)
    if quoted:
        return re.sub(r"\\(.)", r"\1", quoted.group(1))
    token = _CD_TOKEN.search(value)
    return token.group(1) if token else None


RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.I)
RANGE_416_RE = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.I)


def stall_timeout() -> float:
    """STALL_TIMEOUT_S, or SDBOOT_STALL_TIMEOUT (seconds) when set to a positive number."""
    try:
        value = float(os.environ.get(STALL_ENV, ""))
    except ValueError:
        return STALL_TIMEOUT_S
    return value if value > 0 else STALL_TIMEOUT_S
