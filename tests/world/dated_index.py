"""A package index that knows when each file was uploaded: the PEP 691 JSON form of the simple
API with PEP 700's `upload-time` per file, which is what uv's --exclude-newer reads, served on
loopback. The files are stub wheels (tests/world/wheels.py)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


class _Handler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {**SimpleHTTPRequestHandler.extensions_map,
                                                 ".json": JSON_TYPE}

    def send_head(self):  # type: ignore[no-untyped-def]
        # /simple/<project>/ answers with its index.json (the JSON form only)
        if self.path.startswith("/simple/") and self.path.endswith("/"):
            self.path += "index.json"
        return super().send_head()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class DatedIndex:
    root: Path
    files: dict[str, list[tuple[Path, str]]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    def add(self, wheel: Path, uploaded: str) -> None:
        """uploaded: RFC 3339, e.g. 2024-02-01T00:00:00Z."""
        (self.root / "files").mkdir(parents=True, exist_ok=True)
        target = self.root / "files" / wheel.name
        shutil.copy2(wheel, target)
        project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
        self.files.setdefault(project, []).append((target, uploaded))
        self._write(project)

    def _write(self, project: str) -> None:
        folder = self.root / "simple" / project
        folder.mkdir(parents=True, exist_ok=True)
        files = [{"filename": path.name, "url": f"../../files/{path.name}",
                  "hashes": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
                  "upload-time": uploaded}
                 for path, uploaded in self.files[project]]
        doc = {"meta": {"api-version": "1.1"}, "name": project, "files": files}
        (folder / "index.json").write_text(json.dumps(doc))

    def start(self) -> DatedIndex:
        handler = functools.partial(_Handler, directory=str(self.root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/simple/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
