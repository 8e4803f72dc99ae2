"""Hostile servers and hostile disks for `sdboot models add URL` (issue 11): loopback HTTP
servers that answer a resume with the wrong Content-Range (or a 200), drip bytes, loop
redirects, redirect to file:// or from https down to http, send broken gzip, refuse
connections; symlinks planted at the .part, at the download's name and at the target;
an existing model that must not be replaced without --force; a full disk (a 64 KiB
tmpfs where this may mount one) and a folder it may not write. Every test checks what the
user is promised: the exit code, the two `error:` / `hint:` lines, and victim files
outside (and inside) the target folder byte-identical afterwards."""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import http.server
import json
import os
import shutil
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult, run_cli
from tests.doctor.test_doctor import LORA_KEYS
from tests.world.githost import closed_port

Handler = http.server.BaseHTTPRequestHandler
Route = Callable[[Handler], None]


def lora_bytes(floats: int = 32 * 1024) -> bytes:
    """A valid LoRA safetensors file with `floats` float32 values of tensor data."""
    header: dict[str, object] = {}
    offset = 0
    for i, key in enumerate(LORA_KEYS):
        count = floats if i == 0 else 1
        header[key] = {"dtype": "F32", "shape": [count],
                       "data_offsets": [offset, offset + 4 * count]}
        offset += 4 * count
    raw = json.dumps(header).encode()
    body = bytes((i * 7 + 3) % 251 for i in range(offset))
    return struct.pack("<Q", len(raw)) + raw + body


class Hostile:
    """A loopback HTTP server whose answers the test writes: path (without query) ->
    route ("*": any other path). Bounded: handler threads are daemons and every slow
    route stops when the server does."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.stopping = threading.Event()
        server = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path.split("?", 1)[0]) or \
                    server.routes.get("*")
                if route is None:
                    self.send_error(404)
                    return
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    route(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def send(h: Handler, status: int, body: bytes, headers: dict[str, str] | None = None,
         length: bool = True) -> None:
    h.send_response(status)
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    if length:
        h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def serve_file(data: bytes, headers: dict[str, str] | None = None) -> Route:
    """An honest server with Range support."""
    def route(h: Handler) -> None:
        rng = h.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                send(h, 416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            send(h, 206, data[start:], {
                "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}",
                **(headers or {})})
            return
        send(h, 200, data, headers)
    return route


def snapshot(scene: dict[str, Path]) -> dict[str, bytes]:
    return {k: p.read_bytes() for k, p in scene.items() if p.is_file()} | {
        "bashrc": (scene["home"] / ".bashrc").read_bytes()}


def add(scene: dict[str, Path], url: str, *args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> CliResult:
    return run_cli("models", "add", url, "--webui", str(scene["webui"]), *args,
                   env={"HOME": str(scene["home"]), **(env or {})}, timeout=timeout)


def two_lines(res: CliResult, code: int, *words: str) -> str:
    """The command failed with `code` and exactly the two lines error/hint."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2, res.stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    for word in words:
        assert word.lower() in res.stderr.lower(), (word, res.stderr)
    return res.stderr


def placed(scene: dict[str, Path]) -> list[Path]:
    return sorted(p for p in (scene["webui"] / "models").rglob("*") if p.is_file()
                  and p != scene["inner"])


# --- integrity of resumed downloads -----------------------------------------------------------


def _wrong_start(data: bytes) -> Route:
    """Answers a Range request with 206 but the whole file (Content-Range from 0)."""
    def route(h: Handler) -> None:
        if h.headers.get("Range"):
            send(h, 206, data, {"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"})
        else:
            send(h, 200, data)
    return route


def _no_content_range(data: bytes) -> Route:
    def route(h: Handler) -> None:
        if h.headers.get("Range"):
            send(h, 206, data)
        else:
            send(h, 200, data)
    return route


def _ignores_range(data: bytes) -> Route:
    def route(h: Handler) -> None:
        send(h, 200, data)
    return route


@pytest.mark.parametrize("answer", [_wrong_start, _no_content_range, _ignores_range],
                         ids=["206-wrong-start", "206-no-content-range", "200-to-range"])
def test_a_resume_the_server_does_not_continue_starts_over(
        answer: Callable[[bytes], Route], server: Hostile, scene: dict[str, Path]) -> None:
    """A .part from a cut-off run (its bytes are not the file's start: appending the
    answer would make a corrupt model); no sha256 to catch it, so only the Content-Range
    check can. The placed file must be exactly the served one."""
    data = lora_bytes()
    server.routes["/m.safetensors"] = answer(data)
    part = scene["webui"] / ".sdboot/downloads/m.safetensors.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\xee" * 1000)
    res = add(scene, server.url("/m.safetensors"))
    assert res.returncode == 0, res.stderr
    assert (scene["webui"] / "models/Lora/m.safetensors").read_bytes() == data
    assert not part.exists()
    ranges = [h.get("Range") for _, h in server.seen]
    assert ranges[0] == "bytes=1000-"


def test_a_server_that_never_continues_correctly_fails_and_places_nothing(
        server: Hostile, scene: dict[str, Path]) -> None:
    data = lora_bytes()

    def route(h: Handler) -> None:  # a 206 from byte 5, whatever was asked
        send(h, 206, data[5:], {"Content-Range": f"bytes 5-{len(data) - 1}/{len(data)}"})
    server.routes["/m.safetensors"] = route
    before = snapshot(scene)
    res = add(scene, server.url("/m.safetensors"))
    two_lines(res, 1, "does not continue the file")
    assert placed(scene) == [] and snapshot(scene) == before
    assert not list((scene["webui"] / ".sdboot/downloads").glob("*.part")) or \
        (scene["webui"] / ".sdboot/downloads/m.safetensors.part").stat().st_size == 0


def test_a_dripping_server_is_given_up_and_the_part_is_kept(
        server: Hostile, scene: dict[str, Path]) -> None:
    def drip(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(1 << 20))
        h.end_headers()
        h.wfile.write(b"\0" * 100)
        h.wfile.flush()
        for _ in range(400):  # at most 20 s, and only while the server runs
            if server.stopping.wait(0.05):
                return
            h.wfile.write(b"\0")
            h.wfile.flush()
    server.routes["/slow.safetensors"] = drip
    started = time.monotonic()
    res = add(scene, server.url("/slow.safetensors"), env={"SDBOOT_STALL_TIMEOUT": "1"})
    assert time.monotonic() - started < 15
    two_lines(res, 1, "stalled", "resume", "SDBOOT_STALL_TIMEOUT")
    part = scene["webui"] / ".sdboot/downloads/slow.safetensors.part"
    assert part.is_file() and part.stat().st_size >= 100
    assert placed(scene) == []


# --- redirects, encodings, addresses ----------------------------------------------------------


def test_a_redirect_loop_is_a_clear_error(server: Hostile, scene: dict[str, Path]) -> None:
    server.routes["/a.safetensors"] = lambda h: send(h, 302, b"", {"Location": "/b"})
    server.routes["/b"] = lambda h: send(h, 302, b"", {"Location": "/a.safetensors"})
    two_lines(add(scene, server.url("/a.safetensors")), 1, "redirects")
    assert placed(scene) == []


@pytest.mark.parametrize("location", ["file://{victim}", "ftp://127.0.0.1/x.safetensors",
                                      "gopher://127.0.0.1/x"])
def test_a_redirect_to_another_scheme_is_refused(location: str, server: Hostile,
                                                 scene: dict[str, Path]) -> None:
    target = location.format(victim=scene["victim"])
    server.routes["/m.safetensors"] = lambda h: send(h, 302, b"", {"Location": target})
    before = snapshot(scene)
    two_lines(add(scene, server.url("/m.safetensors")), 1, "only http(s) redirects")
    assert snapshot(scene) == before and placed(scene) == []
    assert not list((scene["webui"] / ".sdboot/downloads").glob("m.safetensors*"))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a loopback certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_https_to_plain_http_is_refused_except_to_loopback(
        tls: tuple[Path, Path], server: Hostile, scene: dict[str, Path]) -> None:
    secure = Hostile(tls)
    try:
        data = lora_bytes(64)
        server.routes["/m.safetensors"] = serve_file(data)
        secure.routes["/away.safetensors"] = lambda h: send(
            h, 302, b"", {"Location": "http://example.invalid/m.safetensors"})
        secure.routes["/loop.safetensors"] = lambda h: send(
            h, 302, b"", {"Location": server.url("/m.safetensors")})
        env = {"REQUESTS_CA_BUNDLE": str(tls[0])}
        two_lines(add(scene, secure.url("/away.safetensors"), env=env), 1, "plain http",
                  "refused")
        assert placed(scene) == []
        res = add(scene, secure.url("/loop.safetensors"), env=env)  # loopback: allowed
        assert res.returncode == 0, res.stderr
        assert (scene["webui"] / "models/Lora/loop.safetensors").read_bytes() == data
    finally:
        secure.stop()


def test_garbage_gzip_is_a_clear_error(server: Hostile, scene: dict[str, Path]) -> None:
    server.routes["/m.safetensors"] = lambda h: send(
        h, 200, b"\x1f\x8b\x08\x00garbage, not deflate" * 50, {"Content-Encoding": "gzip"})
    two_lines(add(scene, server.url("/m.safetensors")), 1, "damaged compressed")
    assert placed(scene) == []


def test_honest_gzip_still_works(server: Hostile, scene: dict[str, Path]) -> None:
    data = lora_bytes(64)
    server.routes["/g.safetensors"] = lambda h: send(h, 200, gzip.compress(data),
                                                     {"Content-Encoding": "gzip"})
    res = add(scene, server.url("/g.safetensors"))
    assert res.returncode == 0, res.stderr
    assert (scene["webui"] / "models/Lora/g.safetensors").read_bytes() == data


@pytest.mark.parametrize("endpoint", ["htp:/x", "https://", "ftp://mirror.example", "x"])
def test_a_malformed_hf_endpoint_is_bad_input(endpoint: str, scene: dict[str, Path]) -> None:
    res = add(scene, "https://huggingface.co/o/r/resolve/main/v.safetensors",
              env={"HF_ENDPOINT": endpoint})
    two_lines(res, 2, "HF_ENDPOINT")


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/x.safetensors",
                                 "http://[::1/x.safetensors", "https:///x.safetensors"])
def test_a_malformed_url_is_bad_input_not_a_crash(url: str, scene: dict[str, Path]) -> None:
    res = add(scene, url)
    assert res.returncode in (1, 2)
    two_lines(res, res.returncode)


def test_connection_refused_is_a_clear_error(scene: dict[str, Path]) -> None:
    res = add(scene, f"http://127.0.0.1:{closed_port()}/m.safetensors")
    two_lines(res, 1, "connection refused")


# --- planted symbolic links, existing files -----------------------------------------------------


def test_a_symlink_at_the_part_is_never_followed(server: Hostile,
                                                 scene: dict[str, Path]) -> None:
    server.routes["/m.safetensors"] = serve_file(lora_bytes(64))
    downloads = scene["webui"] / ".sdboot/downloads"
    downloads.mkdir(parents=True)
    (downloads / "m.safetensors.part").symlink_to(scene["home"] / ".bashrc")
    before = snapshot(scene)
    two_lines(add(scene, server.url("/m.safetensors")), 2, "symbolic link")
    assert snapshot(scene) == before and placed(scene) == []


def test_a_symlink_at_the_download_name_is_replaced_not_followed(
        server: Hostile, scene: dict[str, Path]) -> None:
    data = lora_bytes(64)
    server.routes["/m.safetensors"] = serve_file(data)
    downloads = scene["webui"] / ".sdboot/downloads"
    downloads.mkdir(parents=True)
    (downloads / "m.safetensors").symlink_to(scene["victim"])
    before = snapshot(scene)
    res = add(scene, server.url("/m.safetensors"))
    assert res.returncode == 0, res.stderr
    assert snapshot(scene) == before
    assert (scene["webui"] / "models/Lora/m.safetensors").read_bytes() == data


def test_a_planted_sdboot_folder_link_is_refused(server: Hostile,
                                                 scene: dict[str, Path]) -> None:
    server.routes["/m.safetensors"] = serve_file(lora_bytes(64))
    outside = scene["home"] / "elsewhere"
    outside.mkdir()
    (scene["webui"] / ".sdboot").symlink_to(outside)
    err = two_lines(add(scene, server.url("/m.safetensors")), 2)
    assert "outside" in err or "symbolic link" in err
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("planted", ["file", "symlink"])
def test_an_existing_model_is_not_replaced_without_force(
        planted: str, server: Hostile, scene: dict[str, Path]) -> None:
    data = lora_bytes(64)
    server.routes["/keep.safetensors"] = serve_file(data)
    if planted == "symlink":
        scene["inner"].unlink()
        scene["inner"].symlink_to(scene["victim"])
    before = snapshot(scene)
    res = add(scene, server.url("/keep.safetensors"))
    err = two_lines(res, 1, "keep.safetensors", "already exists", "--force")
    assert "models/Lora/keep.safetensors" in err
    assert snapshot(scene) == before
    assert scene["inner"].is_symlink() == (planted == "symlink")
    res = add(scene, server.url("/keep.safetensors"), "--force")
    assert res.returncode == 0, res.stderr
    assert not scene["inner"].is_symlink() and scene["inner"].read_bytes() == data
    assert scene["victim"].read_bytes() == before["victim"]  # the link was replaced


def test_a_local_file_is_not_copied_over_an_existing_one(scene: dict[str, Path],
                                                         tmp_path: Path) -> None:
    src = tmp_path / "keep.safetensors"
    src.write_bytes(lora_bytes(64))
    before = snapshot(scene)
    two_lines(add(scene, str(src)), 1, "already exists")
    assert snapshot(scene) == before
    assert add(scene, str(src), "--name", "other.safetensors").returncode == 0
    assert (scene["webui"] / "models/Lora/other.safetensors").read_bytes() == src.read_bytes()
    assert snapshot(scene) == before


# --- full and unwritable disks -------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(where: Path) -> Iterator[bool]:
    """A 64 KiB tmpfs mounted at `where` when this process may mount one (root on Linux);
    yields False otherwise."""
    where.mkdir(parents=True, exist_ok=True)
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        yield False
        return
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
                         capture_output=True, check=False)
    if res.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", str(where)], capture_output=True, check=False)


def _in_process_add(scene: dict[str, Path], url: str) -> tuple[int, str, str]:
    """`models add URL` in this process (for a fault only this process can inject)."""
    from sdboot.addons.placing import fetch
    from sdboot.addons.sources import plan_source
    from sdboot.errors import SdbootError

    try:
        fetch(scene["webui"].resolve(), plan_source(url, {}), None)
    except SdbootError as exc:
        return exc.exit_code, exc.message, exc.hint
    return 0, "", ""


def test_a_full_disk_keeps_the_part_and_says_how_much_is_needed(
        server: Hostile, scene: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    data = lora_bytes(64 * 1024)  # 256 KiB: more than the 64 KiB disk
    server.routes["/big.safetensors"] = serve_file(data)
    downloads = scene["webui"] / ".sdboot/downloads"
    part = downloads / "big.safetensors.part"
    with small_tmpfs(downloads) as mounted:
        if mounted:
            res = add(scene, server.url("/big.safetensors"))
            err = two_lines(res, 1, "disk is full", "kept", "resume", "more")
            assert str(part) in err or "big.safetensors.part" in err
            assert part.is_file() and 0 < part.stat().st_size < len(data)
        else:
            import sdboot.io.net

            real = sdboot.io.net.open_nofollow

            class Full:
                def __init__(self, fh: object) -> None:
                    self.fh = fh
                    self.room = 40000

                def write(self, chunk: bytes) -> int:
                    if len(chunk) > self.room:
                        raise OSError(errno.ENOSPC, "No space left on device")
                    self.room -= len(chunk)
                    return self.fh.write(chunk)  # type: ignore[attr-defined, no-any-return]

                def close(self) -> None:
                    self.fh.close()  # type: ignore[attr-defined]

            monkeypatch.setattr(sdboot.io.net, "open_nofollow",
                                lambda p, m="wb": Full(real(p, m)))
            code, message, hint = _in_process_add(scene, server.url("/big.safetensors"))
            assert code == 1 and "disk is full" in message and "kept" in message
            assert "more" in hint and part.is_file()
    assert placed(scene) == []


def test_an_unwritable_downloads_folder_is_a_clear_error(
        server: Hostile, scene: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/m.safetensors"] = serve_file(lora_bytes(64))
    downloads = scene["webui"] / ".sdboot/downloads"
    downloads.mkdir(parents=True)
    if getattr(os, "geteuid", lambda: 0)() != 0:
        downloads.chmod(0o500)
        try:
            res = add(scene, server.url("/m.safetensors"))
        finally:
            downloads.chmod(0o700)
        two_lines(res, 1, "cannot write", "writable")
    else:  # root ignores file modes: the OS error is injected where the file is opened
        import sdboot.io.net

        def denied(path: Path, mode: str = "wb") -> object:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

        monkeypatch.setattr(sdboot.io.net, "open_nofollow", denied)
        code, message, hint = _in_process_add(scene, server.url("/m.safetensors"))
        assert code == 1 and "cannot write" in message and "writable" in hint
    assert placed(scene) == []


# --- secrets -----------------------------------------------------------------------------------

TOKEN = "civ" + "Zz81Qm7Lp2Rt9YwE4nB"


def test_a_token_in_the_url_never_reaches_output_or_file_names(
        server: Hostile, scene: dict[str, Path]) -> None:
    data = lora_bytes(64)
    server.routes["/t.safetensors"] = serve_file(data)
    res = add(scene, server.url(f"/t.safetensors?token={TOKEN}"))
    assert res.returncode == 0, res.stderr
    assert TOKEN not in res.stdout + res.stderr
    names = [p.relative_to(scene["webui"]).as_posix() for p in scene["webui"].rglob("*")]
    assert "models/Lora/t.safetensors" in names
    assert not any(TOKEN in n or "token" in n for n in names)
    res = add(scene, server.url(f"/missing.safetensors?token={TOKEN}"))
    two_lines(res, 1, "HTTP 404")
    assert TOKEN not in res.stdout + res.stderr
    res = add(scene, f"http://example.invalid/x.safetensors?token={TOKEN}")  # plain http
    two_lines(res, 2, "plain http")
    assert TOKEN not in res.stdout + res.stderr


def test_a_civitai_query_token_becomes_a_header_for_civitai_only() -> None:
    from sdboot.addons.sources import plan_source

    seen: dict[str, object] = {}

    def api(url: str, headers: dict[str, str]) -> object:
        seen["url"], seen["headers"] = url, headers
        return {"files": [{"name": "good.safetensors", "primary": True}]}

    src = plan_source(f"https://civitai.com/api/download/models/77?token={TOKEN}", {}, api)
    assert TOKEN not in src.url and TOKEN not in (src.name or "")
    assert src.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert seen["headers"] == {"Authorization": f"Bearer {TOKEN}"}
    assert TOKEN not in str(seen["url"])
    assert hashlib.sha256(TOKEN.encode()).hexdigest()[:16] not in src.url
