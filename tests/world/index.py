"""A local package world served over loopback HTTP: a PEP 503 "default" index at /simple/
(standing in for the package index) and PyTorch-style wheel indexes at /whl/<variant>/,
built from the stub wheels. Real pip and uv install from it."""

from __future__ import annotations

import functools
import hashlib
import html
import shutil
import threading
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.world.wheels import STACKS, build_numpy, build_stack


def _normalize(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalIndex:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = root / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        self._indexes: dict[str, dict[str, list[Path]]] = {}
        self._server: ThreadingHTTPServer | None = None

    # -- content -------------------------------------------------------------------------
    def add(self, wheel: Path, index: str) -> None:
        """index: "simple" (the default index) or a variant such as "cu121"."""
        target = self.files / wheel.name
        if not target.exists():
            shutil.copy2(wheel, target)
        project = _normalize(wheel.name.split("-")[0])
        self._indexes.setdefault(index, {}).setdefault(project, []).append(target)
        self._write(index)

    def _folder(self, index: str) -> Path:
        return self.root / ("simple" if index == "simple" else f"whl/{index}")

    def _write(self, index: str) -> None:
        folder = self._folder(index)
        projects = self._indexes[index]
        folder.mkdir(parents=True, exist_ok=True)
        links = "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(projects))
        (folder / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>")
        depth = "../" * (len(folder.relative_to(self.root).parts) + 1)
        for project, wheels in projects.items():
            (folder / project).mkdir(exist_ok=True)
            rows = []
            for w in sorted(set(wheels)):
                digest = hashlib.sha256(w.read_bytes()).hexdigest()
                href = depth + "files/" + urllib.parse.quote(w.name)
                rows.append(f'<a href="{href}#sha256={digest}">{html.escape(w.name)}</a><br/>')
            (folder / project / "index.html").write_text(
                "<!DOCTYPE html><html><body>\n" + "\n".join(rows) + "\n</body></html>")

    # -- serving -------------------------------------------------------------------------
    def start(self) -> str:
        handler = functools.partial(_Quiet, directory=str(self.root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def index_url(self, index: str) -> str:
        return f"{self.url}/simple/" if index == "simple" else f"{self.url}/whl/{index}/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def build_world_index(root: Path) -> LocalIndex:
    """Every stub stack: torch and torchvision on their variant's index, xformers on the
    default index (as on the real package index)."""
    index = LocalIndex(root)
    # numpy on every index, NumPy 2 the newest, as on the real ones (the PyTorch indexes carry
    # numpy too): the doctor's stack fixes install numpy<2 beside a torch older than 2.3
    numpy = [build_numpy(root / "build" / "numpy", v) for v in ("1.26.2", "2.1.0")]
    for key, stack in STACKS.items():
        variant = key.split("-")[0]
        wheels = build_stack(root / "build" / key, stack)
        index.add(wheels["torch"], variant)
        index.add(wheels["torchvision"], variant)
        if "xformers" in wheels:
            index.add(wheels["xformers"], "simple")
        for wheel in numpy:
            index.add(wheel, variant)
    for wheel in numpy:
        index.add(wheel, "simple")
    from tests.world.repack import seed_wheels

    for wheel in seed_wheels(root / "build" / "seed"):  # for `uv venv --seed`
        index.add(wheel, "simple")
    return index


def overlay_profiles(config_dir: Path, index: LocalIndex, shipped: Path) -> Path:
    """Copies of the shipped profiles whose index_url points at the local world: the user
    overlay mechanism, used the way a user with a private mirror would."""
    out = config_dir / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    for path in shipped.glob("*.yaml"):
        text = path.read_text()
        text = text.replace("https://download.pytorch.org/whl/", index.url + "/whl/")
        (out / path.name).write_text(text)
    return out
