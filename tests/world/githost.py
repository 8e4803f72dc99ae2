"""GitHub and its proxies on loopback: bare repositories made by the tests, served read-only
by a plain static HTTP server (git's "dumb HTTP" protocol needs nothing more). Mounts map
URL path prefixes to folders, so one server can act as GitHub (`/gh/O/R.git`) and as a
prefix proxy (`/https://github.com/O/R.git`, exactly what `PREFIX + URL` requests look
like). A server can also be slow, or serve other repositories (a lying proxy)."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}


def git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    full = {**os.environ, **GIT_ENV, "HOME": str(cwd or Path.cwd()), **(env or {})}
    proc = subprocess.run(["git", *args], cwd=cwd, env=full, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def make_bare_repo(repos: Path, slug: str, files: dict[str, str], tag: str | None = None,
                   work: Path | None = None) -> str:
    """repos/<slug>.git with one commit holding `files`; returns the commit hash."""
    work = work or repos.parent / "work" / slug.replace("/", "__")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    git("init", "-q", "-b", "master", cwd=work)
    for rel, text in files.items():
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", f"{slug} content", cwd=work)
    if tag:
        git("tag", tag, cwd=work)
    bare = repos / f"{slug}.git"
    if bare.exists():
        shutil.rmtree(bare)
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("clone", "-q", "--bare", str(work), str(bare))
    git("update-server-info", cwd=bare)  # what dumb HTTP serves: info/refs, objects/info/packs
    return git("rev-parse", "HEAD", cwd=work)


@dataclass
class GitHost:
    """A loopback static server. mounts: URL path prefix -> folder."""

    mounts: dict[str, Path]
    delay_s: float = 0.0
    requests: list[str] = field(default_factory=list)
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> GitHost:
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:  # uv asks before it fetches a wheel; GitHub answers
                self.do_GET(body=False)

            def do_GET(self, body: bool = True) -> None:
                host.requests.append(self.path)
                if host.delay_s:
                    time.sleep(host.delay_s)
                path = unquote(urlsplit(self.path).path) if not self.path.startswith(
                    "/http") else unquote(self.path.split("?", 1)[0])
                target = host.resolve(path)
                if target is None or not target.is_file():
                    self.send_error(404)
                    return
                data = target.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    if body:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def resolve(self, path: str) -> Path | None:
        for prefix in sorted(self.mounts, key=len, reverse=True):
            if path.startswith(prefix):
                rest = path[len(prefix):]
                if ".." in rest.split("/"):
                    return None
                candidate = self.mounts[prefix] / rest
                return candidate / "index.html" if candidate.is_dir() else candidate
        return None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def closed_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
