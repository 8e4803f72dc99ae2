"""ModelScope (魔搭) sources: every URL shape parsed, a loopback server in ModelScope's shape
(file list with Sha256/Size, the download endpoint with Range) reached via
MODELSCOPE_DOMAIN: download, resume after a cut, a hash mismatch refused, hostile names
refused, and the cn preference for a Hugging Face repo with a ModelScope twin."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from sdboot.addons import modelscope
from sdboot.addons.sources import plan_source
from sdboot.errors import SdbootError
from tests.conftest import run_cli
from tests.doctor.test_doctor import LORA_KEYS, safetensors
from tests.world.launchfiles import write_webui


class MsServer:
    """/api/v1/models/O/R/repo/files and /api/v1/models/O/R/repo?FilePath=P; the first
    download of each file is cut halfway; `lie` makes the listed Sha256 wrong."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.lie, self.cut_done, self.seen = files, False, set(), []
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                q = parse_qs(parts.query)
                srv.seen.append((self.path, self.headers.get("Range")))
                if parts.path.endswith("/repo/files"):
                    listing = [{"Path": p, "Size": len(d), "Type": "blob",
                                "Sha256": "0" * 64 if srv.lie else
                                hashlib.sha256(d).hexdigest()} for p, d in srv.files.items()]
                    body = json.dumps({"Code": 200, "Data": {"Files": listing}}).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                data = srv.files.get((q.get("FilePath") or [""])[0])
                if data is None or not parts.path.endswith("/repo"):
                    self.send_error(404)
                    return
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) \
                    if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                key = q["FilePath"][0]
                if key not in srv.cut_done:
                    srv.cut_done.add(key)
                    self.wfile.write(data[start:][: (len(data) - start) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data[start:])

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture()
def ms(tmp_path: Path):
    lora = safetensors(tmp_path / "src.safetensors", LORA_KEYS)
    server = MsServer({"loras/style.safetensors": lora.read_bytes() + os.urandom(1 << 20),
                       "sd_xl_base_1.0.safetensors": lora.read_bytes()})
    yield server
    server.httpd.shutdown()


ENV = {"MODELSCOPE_URL_SCHEME": "http://"}


def test_every_shape_parses_to_the_same_file() -> None:
    want = modelscope.MsRef("AI-ModelScope/some-repo", "sub/a.safetensors", "master")
    for text in ("modelscope:AI-ModelScope/some-repo/sub/a.safetensors",
                 "modelscope:AI-ModelScope/some-repo/sub/a.safetensors@master",
                 "https://modelscope.cn/models/AI-ModelScope/some-repo/file/view/master/"
                 "sub/a.safetensors",
                 "https://www.modelscope.cn/models/AI-ModelScope/some-repo/resolve/master/"
                 "sub/a.safetensors",
                 "https://www.modelscope.cn/api/v1/models/AI-ModelScope/some-repo/repo?"
                 "Revision=master&FilePath=sub%2Fa.safetensors"):
        assert modelscope.parse(text, {}) == want, text
    assert modelscope.parse("modelscope:o/r/f.ckpt@v1.0.9", {}).revision == "v1.0.9"
    assert modelscope.parse("https://example.com/models/o/r/resolve/master/f", {}) is None
    for bad in ("modelscope:o/r", "modelscope:o/r/../x.safetensors",
                "https://modelscope.cn/models/o/r/tree/master/x"):
        with pytest.raises(SdbootError):
            modelscope.parse(bad, {})


def test_hostile_names_are_refused() -> None:
    for bad in ("modelscope:o/r/a/..%2F..%2Fx.safetensors",
                "https://modelscope.cn/models/o/r/resolve/master/..%2F..%2Fetc%2Fx"):
        with pytest.raises(SdbootError) as info:
            plan_source(bad, {})
        assert info.value.exit_code == 2
    with pytest.raises(SdbootError):
        plan_source("modelscope:o/r/x.safetensors", {}, name="../x.safetensors")


def test_download_resumes_and_is_verified_against_the_listing(ms: MsServer,
                                                              tmp_path: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    env = {**ENV, "MODELSCOPE_DOMAIN": ms.host}
    res = run_cli("models", "add", "modelscope:o/r/loras/style.safetensors", "--webui",
                  str(webui), env=env)
    assert res.returncode == 0, res.stderr
    assert "resumed 1 time" in res.stdout and "verified" in res.stdout
    placed = webui / "models/Lora/style.safetensors"
    assert placed.read_bytes() == ms.files["loras/style.safetensors"]
    ranges = [r for p, r in ms.seen if "FilePath=loras%2Fstyle" in p]
    assert ranges[0] is None and ranges[1] and ranges[1] != "bytes=0-"
    assert not list((webui / ".sdboot/downloads").glob("*.part"))


def test_a_hash_mismatch_leaves_nothing(ms: MsServer, tmp_path: Path) -> None:
    ms.lie = True
    ms.cut_done.add("loras/style.safetensors")
    webui = write_webui(tmp_path / "webui")
    res = run_cli("models", "add", f"http://{ms.host}/models/o/r/resolve/master/loras/"
                  "style.safetensors", "--webui", str(webui),
                  env={**ENV, "MODELSCOPE_DOMAIN": ms.host})
    assert res.returncode == 1 and "does not match" in res.stderr
    assert not list((webui / ".sdboot/downloads").glob("style*"))
    assert not (webui / "models/Lora/style.safetensors").exists()


def test_cn_prefers_the_modelscope_twin_default_does_not(ms: MsServer) -> None:
    hf = ("https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/"
          "sd_xl_base_1.0.safetensors")
    env = {**ENV, "MODELSCOPE_DOMAIN": ms.host}
    assert plan_source(hf, env).kind == "huggingface"
    src = plan_source(hf, env, lambda url, h: _get_json(url), prefer_modelscope=True)
    assert src.kind == "modelscope" and src.name == "sd_xl_base_1.0.safetensors"
    assert "/api/v1/models/AI-ModelScope/stable-diffusion-xl-base-1.0/repo?" in src.url
    assert src.sha256 == hashlib.sha256(ms.files["sd_xl_base_1.0.safetensors"]).hexdigest()
    other = "https://huggingface.co/o/r/resolve/main/x.safetensors"
    assert plan_source(other, env, prefer_modelscope=True).kind == "huggingface"


def _get_json(url: str) -> object:
    from sdboot.cli.models_cmd import _fetch_json

    return _fetch_json(url, {})
