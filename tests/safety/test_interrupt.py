"""Ctrl-C: a real `python -m sdboot` is sent SIGINT while it waits on a loopback server
that never answers (or drips bytes); it exits 130 with `error: interrupted` and a hint that
says what the interruption kept, and no traceback."""

from __future__ import annotations

import contextvars
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, clean_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")


class Stall:
    """A loopback TCP server that accepts, optionally sends `first` (an HTTP head and a few
    bytes), then holds every connection open without another byte."""

    def __init__(self, first: bytes = b"") -> None:
        self.first = first
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self.reached = threading.Event()  # a client is connected (and got `first`)
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.first:
                try:
                    conn.recv(65536)  # the request
                    conn.sendall(self.first)
                except OSError:
                    continue
            self.reached.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture()
def stall() -> Iterator[Stall]:
    server = Stall()
    yield server
    server.close()


def interrupt(args: list[str], env: dict[str, str], ready: threading.Event,
              cwd: Path | None = None) -> tuple[int, str, str]:
    """Start sdboot, wait until it is stuck on the server, send SIGINT, collect."""
    proc = subprocess.Popen([sys.executable, "-m", "sdboot", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env(env),
                            cwd=cwd or ROOT)
    try:
        assert ready.wait(30), "sdboot never reached the server"
        time.sleep(0.3)  # let it settle into the wait
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def assert_interrupted(rc: int, err: str, hint: str) -> None:
    assert rc == 130, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert err.strip().splitlines() == ["error: interrupted", f"hint: {hint}"], err


def test_mirror_test_interrupted_changes_nothing(tmp_path: Path, stall: Stall) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "mirrors.yaml").write_text(
        "replace_shipped: true\n"
        "mirrors:\n"
        f"  - {{name: stalled, kind: github-prefix, url: '{stall.url}'}}\n"
        "upstreams:\n"
        f"  github: '{stall.url}gh/'\n"
        f"  pypi: '{stall.url}simple/'\n"
        f"  torch: '{stall.url}whl/{{variant}}/'\n"
        "  hf: ''\n")
    cache = tmp_path / "cache"
    rc, out, err = interrupt(["mirror", "test", "--timeout", "60"],
                             {"SDBOOT_CONFIG_DIR": str(config), "SDBOOT_CACHE_DIR": str(cache)},
                             stall.reached)
    assert_interrupted(rc, err, "nothing was changed")
    assert not (cache / "mirror-health.json").exists()


def test_install_interrupted_keeps_finished_steps(tmp_path: Path, stall: Stall) -> None:
    """The clone hangs on a mirror that never answers; Ctrl-C stops git too."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    config = tmp_path / "config"
    config.mkdir()
    (config / "mirrors.yaml").write_text(
        "mirrors:\n"
        f"  - {{name: stalled-gh, kind: github-prefix, url: '{stall.url}'}}\n"
        "presets:\n  stalled: {github: stalled-gh}\n"
        "upstreams:\n"
        f"  pypi: 'http://127.0.0.1:{port}/simple/'\n"
        f"  torch: 'http://127.0.0.1:{port}/whl/{{variant}}/'\n"
        "  hf: ''\n")
    env = {"SDBOOT_CONFIG_DIR": str(config), "SDBOOT_CACHE_DIR": str(tmp_path / "cache"),
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_TERMINAL_PROMPT": "0"}
    webui = tmp_path / "webui"
    rc, out, err = interrupt(["install", str(webui), "--mirror", "stalled", "--yes"], env,
                             stall.reached)
    assert_interrupted(rc, err, "finished steps are kept; run the same command again to resume")
    assert not webui.exists()  # the clone goes to a side folder; the target is never half


def test_models_add_interrupted_keeps_the_part(tmp_path: Path) -> None:
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 100000000\r\n\r\n" + b"\0" * 4096)
    server = Stall(first=head)
    webui = tmp_path / "webui"
    (webui / "models" / "Stable-diffusion").mkdir(parents=True)
    (webui / "launch.py").write_text("")
    (webui / "webui.py").write_text("")
    try:
        rc, out, err = interrupt(["models", "add", f"{server.url}files/model.safetensors",
                                  "--webui", str(webui), "--type", "checkpoint"],
                                 {"SDBOOT_CACHE_DIR": str(tmp_path / "cache")}, server.reached)
    finally:
        server.close()
    assert rc == 130, err
    lines = err.strip().splitlines()
    assert lines[0] == "error: interrupted" and len(lines) == 2, err
    assert lines[1].startswith("hint: what was downloaded is kept in ")
    assert ".part" in lines[1] and "run the same command again to resume" in lines[1]
    assert "Traceback" not in err
    assert not list((webui / "models" / "Stable-diffusion").iterdir())  # nothing half-placed


def test_the_innermost_note_is_what_the_hint_says() -> None:
    """The API long-running commands use: on_interrupt stamps the note on the Ctrl-C that
    leaves its block, so the CLI still knows it after the block has been left."""
    contextvars.copy_context().run(_notes)  # keep_on_interrupt stays inside this test


def _notes() -> None:
    from sdboot.errors import interrupt_note, keep_on_interrupt, on_interrupt

    assert interrupt_note(None) is None
    keep_on_interrupt("outer")
    with pytest.raises(KeyboardInterrupt) as info:
        with on_interrupt("downloads kept"):
            with on_interrupt("the clone is kept"):
                raise KeyboardInterrupt
    assert interrupt_note(info.value) == "the clone is kept"
    assert interrupt_note(RuntimeError("abort")) == "outer"  # left the blocks: outer again
    wrapped = RuntimeError("click's Abort")
    wrapped.__context__ = info.value
    assert interrupt_note(wrapped) == "the clone is kept"
