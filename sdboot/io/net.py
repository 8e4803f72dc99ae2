"""The network funnel: every HTTP request sdboot makes goes through here, with a timeout,
a user agent, and the rule that a token is only ever sent to the service that issued it
(never to a mirror or proxy). Functions return results; they do not raise on network
failures (download raises DownloadError, with a message and a hint for the user).

Redirects are followed here, not by requests, so every hop is checked: http(s) only (a
`file://` or other scheme is refused), no https -> http downgrade except to a loopback
address, at most MAX_REDIRECTS hops, and the Authorization header only ever goes to the
host it was made for. URLs in messages pass through sdboot.io.mask."""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from sdboot import __version__
from sdboot.i18n import N_, t
from sdboot.io.files import open_nofollow, refuse_symlink
from sdboot.io.http_rules import (
    RANGE_416_RE,
    RANGE_RE,
    STALL_ENV,
    STALL_MIN_BYTES,
    DownloadError,
    check_url,
    disposition_filename,
    is_loopback_host,
    same_origin,
    stall_timeout,
)
from sdboot.io.mask import mask

USER_AGENT = f"sdboot/{__version__}"
MAX_REDIRECTS = 10
CHUNK = 1 << 20

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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ReadTimeout
                  | urllib3.exceptions.ReadTimeoutError):
        return t("timed out")
    if isinstance(exc, requests.exceptions.SSLError | urllib3.exceptions.SSLError):
        return t("TLS error (certificate or interception)")
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return t("too many redirects")
    if isinstance(exc, requests.exceptions.ContentDecodingError | urllib3.exceptions.DecodeError):
        return t("the server sent a damaged compressed (Content-Encoding) answer")
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "Name or service not known" in text or "getaddrinfo" in text or "resolve" in text:
            return t("host name does not resolve")
        if "refused" in text.lower():
            return t("connection refused")
        return t("connection failed")
    if isinstance(exc, urllib3.exceptions.ProtocolError | requests.exceptions.ChunkedEncodingError):
        return t("the connection broke off")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema
                  | requests.exceptions.MissingSchema | ValueError):
        return t("not a valid http(s) URL")
    return mask(f"{type(exc).__name__}: {exc}")


def open_url(url: str, headers: Mapping[str, str], timeout: tuple[float, float]
             ) -> tuple[requests.Response, list[requests.Response]]:
    """GET url (streamed), following redirects ourselves so that each hop is checked.
    Returns the final response (to be closed by the caller) and the redirect answers.
    Raises DownloadError for a refused redirect or a bad URL, and requests' own
    exceptions for network trouble."""
    check_url(url)
    first = url
    history: list[requests.Response] = []
    for _hop in range(MAX_REDIRECTS + 1):
        sent = dict(headers)
        if not same_origin(url, first):  # a token is for the host it was made for
            sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
        try:
            resp = requests.get(url, headers=sent, stream=True, timeout=timeout,
                                allow_redirects=False)
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema, ValueError) as exc:
            raise DownloadError(t("{url} is not a valid http(s) URL ({reason})",
                                  url=repr(mask(url)), reason=_describe(exc)),
                                t("check the URL (and HF_ENDPOINT / mirror settings)")) from None
        if not resp.is_redirect:
            return resp, history
        location = resp.headers.get("Location", "")
        resp.close()
        history.append(resp)
        try:
            target = urljoin(url, location)
            scheme = urlsplit(target).scheme.lower()
        except ValueError:
            target, scheme = location, ""
        if scheme not in ("http", "https"):
            raise DownloadError(t("{url} redirects to {target}: only http(s) redirects are "
                                  "followed", url=mask(url), target=repr(mask(target))),
                                t("the server (or a mirror) is misconfigured or hostile: use "
                                  "another source"))
        if urlsplit(url).scheme == "https" and scheme == "http" and \
                not is_loopback_host(urlsplit(target).hostname or ""):
            raise DownloadError(t("{url} redirects to plain http ({target}): refused",
                                  url=mask(url), target=mask(target)), t(
                "an https download never continues unencrypted: use another source or mirror"))
        check_url(target, t("redirect target"))
        url = target
    raise DownloadError(t("{url}: more than {limit} redirects (a loop?)", url=mask(first),
                          limit=MAX_REDIRECTS), t("the server (or a mirror) is misconfigured: "
                                                  "try another source"))


def fetch_head(url: str, timeout: float, max_bytes: int = 65536,
               headers: Mapping[str, str] | None = None) -> HttpResult:
    """GET url and read at most max_bytes of the body, within about `timeout` seconds in
    all. Never raises for network trouble: the error is in the result."""
    started = time.monotonic()
    sent = {"User-Agent": USER_AGENT, **(headers or {})}
    try:
        resp, _ = open_url(url, sent, (timeout, timeout))
        with resp:
            body = bytearray()
            for chunk in resp.iter_content(chunk_size=16384):
                body += chunk
                if len(body) >= max_bytes or time.monotonic() - started > timeout:
                    break
            return HttpResult(url, resp.status_code, bytes(body[:max_bytes]),
                              time.monotonic() - started)
    except DownloadError as exc:
        return HttpResult(url, None, b"", time.monotonic() - started, exc.message)
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        return HttpResult(url, None, b"", time.monotonic() - started, _describe(exc))


@dataclass(frozen=True)
class Download:
    path: Path
    size: int
    sha256: str | None  # None: nothing to check it against, so it was not computed
    resumed: int  # how many times a cut-off transfer was resumed
    remote_sha256: str | None  # what the server said (Hugging Face's LFS etag)
    filename: str | None = None  # the server's Content-Disposition name, UNTRUSTED (decoded)


def _expected_from_headers(responses: list[requests.Response]) -> str | None:
    """Hugging Face answers a resolve URL of an LFS file with X-Linked-Etag: "<sha256>"."""
    for r in responses:
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



def _size(n: int) -> str:
    return f"{n / 1024**3:.2f} GB" if n >= 1024**3 else f"{n / 1024**2:.1f} MB"


class _Restart(Exception):
    """The server's answer does not continue the file: start again from byte 0."""


class _Stalled(Exception):
    pass


def download(url: str, part: Path, *, headers: Mapping[str, str] | None = None,
             timeout: float = 30.0, retries: int = 5, verify: bool | None = None,
             on_progress: Callable[[int, int | None], None] | None = None,
             stall_s: float | None = None) -> Download:
    """Stream url into `part` (appending to what a cut-off run left there, with HTTP Range).
    A transfer that breaks off is resumed up to `retries` times. The sha256 is computed
    while streaming when it will be checked: verify=True (the caller knows the hash), or
    verify=None and the server announces one (Hugging Face); otherwise not at all, so an
    unverifiable download costs no more than curl's.

    Integrity: a 206 is appended only when its Content-Range starts exactly where the file
    ends; a 200 to a Range request, a 206 from elsewhere or a 416 that does not say the
    file is complete start again from byte 0 (once; a second time is an error). `part` is
    opened without following a symlink. Less than STALL_MIN_BYTES in `stall_s` seconds
    (default: stall_timeout()) gives up, keeping the partial file. Raises DownloadError."""
    stall = stall_s if stall_s is not None else stall_timeout()
    sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    shown = mask(url)
    refuse_symlink(part, t("download file"))
    if part.is_dir():
        raise DownloadError(t("{path} is a folder, not a download", path=part),
                            t("remove it and run the command again"))
    have = part.stat().st_size if part.exists() else 0
    digest: Any = None
    resumed = 0
    restarted = False
    remote: str | None = None
    filename: str | None = None
    total: int | None = None
    answered = False
    while True:
        ask = dict(sent)
        if have:
            ask["Range"] = f"bytes={have}-"
        try:
            resp, history = open_url(url, ask, (timeout, min(timeout, stall)))
            with resp:
                answered = True
                remote = remote or _expected_from_headers([*history, resp])
                filename = filename or disposition_filename(
                    resp.headers.get("Content-Disposition"))
                status = resp.status_code
                length = resp.headers.get("Content-Length")
                if resp.headers.get("Content-Encoding", "identity").lower() not in (
                        "", "identity"):
                    length = None  # the length of the encoded body, not of the file
                if status == 416 and have:
                    m = RANGE_416_RE.match(resp.headers.get("Content-Range", ""))
                    if m and int(m.group(1)) == have:  # nothing left: it is all here
                        total = have
                        break
                    raise _Restart(f"HTTP 416 with Content-Range "
                                   f"{resp.headers.get('Content-Range')!r}")
                if status == 200:
                    if have:  # no Range support: start again
                        have = 0
                        digest = None
                        _truncate(part)
                    total = int(length) if length and length.isdigit() else None
                elif status == 206:
                    rng = RANGE_RE.match(resp.headers.get("Content-Range", ""))
                    if rng is None or int(rng.group(1)) != have:
                        raise _Restart(f"HTTP 206 with Content-Range "
                                       f"{resp.headers.get('Content-Range')!r} for a "
                                       f"request from byte {have}")
                    total = int(rng.group(3)) if rng.group(3).isdigit() else (
                        have + int(length) if length and length.isdigit() else None)
                else:
                    raise DownloadError(
                        t("HTTP {status} from {url}", status=status, url=shown),
                        t("check the URL (a token for a gated model: HF_TOKEN / "
                          "CIVITAI_TOKEN), or try a mirror (sdboot mirror test)"))
                if digest is None and (verify or (verify is None and remote)):
                    digest = _hash_file(part)  # what an earlier run left, then the rest
                have = _stream(resp, part, have, total, digest, stall, on_progress)
                if total is not None and have > total:
                    raise _Restart(f"the server sent {have} bytes, more than the {total} "
                                   "it announced")
                if total is not None and have < total:
                    raise requests.exceptions.ChunkedEncodingError("transfer cut off")
                break
        except _Restart as exc:
            if restarted:
                _truncate(part)
                raise DownloadError(
                    t("{url}: the server does not continue the file correctly ({reason}); "
                      "the partial download was deleted", url=shown, reason=exc),
                    t(_AGAIN_OR_SOURCE)) from None
            restarted = True
            have, digest = 0, None
            _truncate(part)
        except _Stalled:
            raise DownloadError(
                t("the download from {url} stalled: less than {kib} KiB in {seconds} s; "
                  "{have} bytes are kept in {path}", url=shown, kib=STALL_MIN_BYTES // 1024,
                  seconds=f"{stall:g}", have=have, path=part),
                t("run the same command again to resume (the limit is {var}, in seconds), "
                  "or try a mirror", var=STALL_ENV)) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ReadTimeout, urllib3.exceptions.ProtocolError,
                urllib3.exceptions.ReadTimeoutError) as exc:
            if resumed >= retries or not answered:
                if not answered:
                    raise DownloadError(t(_CANNOT_DOWNLOAD, url=shown, reason=_describe(exc)),
                                        t("check the address and your network, or try a "
                                          "mirror (sdboot mirror test)")) from None
                raise DownloadError(t("the download broke off {times} times ({reason}); "
                                      "{have} bytes are kept in {path}", times=resumed + 1,
                                      reason=_describe(exc), have=have, path=part),
                                    t("run the same command again to resume (a mirror may "
                                      "help: HF_ENDPOINT / sdboot mirror test)")) from None
            resumed += 1
            on_disk = part.stat().st_size if part.exists() else 0
            if on_disk != have:  # the hash follows the file, never the other way round
                have = on_disk
                digest = _hash_file(part) if digest is not None else None
        except (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError) as exc:
            raise DownloadError(t("{url}: {reason}; {have} bytes are kept in {path}", url=shown,
                                  reason=_describe(exc), have=have, path=part),
                                t(_AGAIN_OR_SOURCE)) from None
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise DownloadError(t(_CANNOT_DOWNLOAD, url=shown, reason=_describe(exc)),
                                t("check the URL and your network")) from None
    if digest is None and remote and verify is not False:
        digest = _hash_file(part)  # announced only after a redirect we had not seen yet
    return Download(part, have, digest.hexdigest() if digest is not None else None, resumed,
                    remote, filename)


_AGAIN_OR_SOURCE = N_("run the command again; if it keeps happening, use another source or "
                      "mirror")
_CANNOT_DOWNLOAD = N_("cannot download {url}: {reason}")
_CANNOT_WRITE = N_("cannot write {path}: {reason}")


def _truncate(part: Path) -> None:
    try:
        open_nofollow(part, "wb").close()
    except OSError as exc:
        raise _file_error(exc, part, 0, None) from None


def _file_error(exc: OSError, part: Path, have: int, total: int | None) -> DownloadError:
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        need = t("{size} more", size=_size(total - have)) if total is not None and \
            total > have else t("more space")
        return DownloadError(t("the disk is full: {have} bytes are kept in {path} for resume",
                               have=have, path=part),
                             t("free {need} on the disk holding {folder}, then run the same "
                               "command again", need=need, folder=part.parent))
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DownloadError(t(_CANNOT_WRITE, path=part, reason=exc.strerror),
                             t("make {folder} writable for this user, then run the command "
                               "again", folder=part.parent))
    return DownloadError(t(_CANNOT_WRITE, path=part, reason=exc.strerror or exc),
                         t("check the disk, then run the command again"))


def _stream(resp: requests.Response, part: Path, have: int, total: int | None, digest: Any,
            stall: float, on_progress: Callable[[int, int | None], None] | None) -> int:
    """Append the body to part; returns the new size. A byte count below STALL_MIN_BYTES
    over `stall` seconds raises _Stalled."""
    raw = resp.raw
    read1 = getattr(raw, "read1", None)
    window_start, window_bytes = time.monotonic(), 0
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        fh = open_nofollow(part, "ab")
    except OSError as exc:
        raise _file_error(exc, part, have, total) from None
    try:
        while True:
            try:
                chunk = read1(CHUNK, decode_content=True) if read1 is not None \
                    else raw.read(64 * 1024, decode_content=True)
            except urllib3.exceptions.ReadTimeoutError:
                if time.monotonic() - window_start >= stall:
                    raise _Stalled() from None
                raise
            if not chunk:
                break
            try:
                fh.write(chunk)
            except OSError as exc:
                raise _file_error(exc, part, have, total) from None
            if digest is not None:
                digest.update(chunk)
            have += len(chunk)
            window_bytes += len(chunk)
            now = time.monotonic()
            if window_bytes >= STALL_MIN_BYTES:
                window_start, window_bytes = now, 0
            elif now - window_start > stall:
                raise _Stalled()
            if on_progress is not None:
                on_progress(have, total)
    finally:
        try:
            fh.close()
        except OSError as exc:  # the last buffered bytes did not fit
            raise _file_error(exc, part, have, total) from None
    return have
