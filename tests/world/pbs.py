"""A python-build-standalone release, as uv downloads it, served over loopback in a python
mirror's shape (`<base>/<release tag>/<asset>`, what UV_PYTHON_INSTALL_MIRROR points at).

The archive is an `install_only` one (everything under `python/`: bin/pythonX.Y,
lib/libpython*, lib/pythonX.Y) made from a CPython already on this machine, the tests and
site-packages left out. uv knows which archive to fetch from its download list; the tests
hand it one that names this archive (UV_PYTHON_DOWNLOADS_JSON_URL, the way a company
mirror is set up: https://github.com/astral-sh/uv/pull/10939), with the archive's URL in the
GitHub form, so that it is the mirror variable that sends uv to the loopback server."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TAG = "20990101"  # a release tag no real uv pins
GITHUB_RELEASES = "https://github.com/astral-sh/python-build-standalone/releases/download"
MIRROR_PATH = "/pbs/releases"  # where the loopback server keeps the release folders
_LEFT_OUT = {"test", "tests", "site-packages", "idlelib", "tkinter", "turtledemo", "lib2to3",
             "ensurepip", "__pycache__", "pydoc_data"}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class Cpython:
    """A CPython on this machine that can be packed: its prefix and exact version."""

    prefix: Path
    version: tuple[int, int, int]

    @property
    def minor(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


def packable(python: str | Path) -> Cpython | None:
    """The interpreter's base prefix when it has the Unix layout an install_only archive
    has (bin/pythonX.Y, lib/pythonX.Y); None elsewhere (Windows, odd builds)."""
    if sys.platform == "win32":
        return None
    res = subprocess.run([str(python), "-c", "import sys; print(sys.base_prefix); "
                          "print('%d %d %d' % sys.version_info[:3])"],
                         capture_output=True, text=True, timeout=30, check=False)
    lines = res.stdout.split("\n")
    if res.returncode != 0 or len(lines) < 2:
        return None
    prefix = Path(lines[0])
    major, minor, micro = (int(p) for p in lines[1].split())
    if not (prefix / "bin" / f"python{major}.{minor}").is_file() or \
            not (prefix / "lib" / f"python{major}.{minor}" / "os.py").is_file():
        return None
    return Cpython(prefix, (major, minor, micro))


def _keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = Path(info.name).parts
    if any(p in _LEFT_OUT or p.startswith("config-") for p in parts):
        return None
    return info


def _triple() -> str:
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if sys.platform == "darwin":
        return f"{arch}-apple-darwin"
    return f"{arch}-unknown-linux-gnu"


def asset_name(py: Cpython) -> str:
    v = ".".join(map(str, py.version))
    return f"cpython-{v}+{TAG}-{_triple()}-install_only.tar.gz"


def build_release(py: Cpython, root: Path) -> Path:
    """The release folder <root>/pbs/releases/<TAG>/ with the archive; returns the archive."""
    folder = root / MIRROR_PATH.strip("/") / TAG
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / asset_name(py)
    minor = py.minor
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        exe = py.prefix / "bin" / f"python{minor}"
        tar.add(exe, f"python/bin/python{minor}")
        tar.add(exe, "python/bin/python3")
        for lib in sorted((py.prefix / "lib").glob("libpython*")):
            tar.add(lib, f"python/lib/{lib.name}")
        tar.add(py.prefix / "lib" / f"python{minor}", f"python/lib/python{minor}", filter=_keep)
    return archive


def downloads_json(py: Cpython, archive: Path, dest: Path) -> Path:
    """uv's download list (its download-metadata.json shape) with this one archive, at its
    GitHub URL (+ as %2B, as uv writes it)."""
    os_name = {"darwin": "darwin"}.get(sys.platform, "linux")
    family = _triple().split("-")[0]
    major, minor, patch = py.version
    url = f"{GITHUB_RELEASES}/{TAG}/{archive.name.replace('+', '%2B')}"
    key = f"cpython-{major}.{minor}.{patch}-{os_name}-{family}-" + \
        ("none" if os_name == "darwin" else "gnu")
    doc = {key: {"name": "cpython", "arch": {"family": family, "variant": None},
                 "os": os_name, "libc": "none" if os_name == "darwin" else "gnu",
                 "major": major, "minor": minor, "patch": patch, "prerelease": "",
                 "url": url, "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
                 "variant": None, "build": TAG}}
    dest.write_text(json.dumps(doc), encoding="utf-8")
    return dest


class ReleaseServer:
    """Serves <root> read-only on 127.0.0.1; records the paths asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        seen = self.requests

        class Handler(_Quiet):
            def do_GET(self) -> None:
                seen.append(self.path)
                super().do_GET()

        handler = functools.partial(Handler, directory=str(root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def mirror_url(self) -> str:
        """What UV_PYTHON_INSTALL_MIRROR gets: the folder that holds the release tags."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{MIRROR_PATH}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
