"""`sdboot models add|list` and `sdboot ext add|list`: synthetic safetensors of every type,
a pickle that would run code if loaded (it must not run), downloads from a loopback server
that cuts the connection halfway and serves Range, a wrong hash, a 404, Hugging Face
through HF_ENDPOINT (no token sent to the mirror), and an extension cloned through a
loopback prefix proxy."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import threading
import zipfile
from pathlib import Path

import pytest

from sdboot.addons.models import ModelType, classify_file
from sdboot.addons.sources import parse_civitai, plan_source
from tests.conftest import run_cli
from tests.doctor.test_doctor import (
    CHECKPOINT_KEYS,
    EMBEDDING_KEYS,
    LORA_KEYS,
    VAE_KEYS,
    safetensors,
)
from tests.world.githost import GitHost, make_bare_repo
from tests.world.launchfiles import write_webui

HYPERNETWORK_KEYS = ["768.0.linear.0.weight", "768.0.linear.0.bias", "1024.1.linear.0.weight"]


class Evil:
    """Loading a pickle holding this runs a command: classification must never load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def torch_like_ckpt(path: Path, keys: list[str], marker: Path) -> Path:
    """A zip in torch's save format: archive/data.pkl holding a dict with these names."""
    state = {k: Evil(marker) for k in keys}
    data = pickle.dumps({"state_dict": state}, protocol=2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", data)
        zf.writestr("archive/version", "3\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


# --- classification and placing --------------------------------------------------------------


def test_classify_every_type(tmp_path: Path) -> None:
    cases = [(CHECKPOINT_KEYS, ModelType.CHECKPOINT), (VAE_KEYS, ModelType.VAE),
             (LORA_KEYS, ModelType.LORA), (EMBEDDING_KEYS, ModelType.EMBEDDING),
             (HYPERNETWORK_KEYS, ModelType.HYPERNETWORK)]
    for i, (keys, kind) in enumerate(cases):
        assert classify_file(safetensors(tmp_path / f"m{i}.safetensors", keys)) == kind
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    assert classify_file(tmp_path / "junk.safetensors") == ModelType.UNKNOWN


def test_a_pickle_is_classified_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    ckpt = torch_like_ckpt(tmp_path / "model.ckpt", CHECKPOINT_KEYS, marker)
    assert classify_file(ckpt) == ModelType.CHECKPOINT
    webui = write_webui(tmp_path / "webui")
    res = run_cli("models", "add", str(ckpt), "--webui", str(webui))
    assert res.returncode == 0, res.stderr
    assert "can run code" in res.stdout
    assert (webui / "models/Stable-diffusion/model.ckpt").is_file()
    assert not marker.exists()
    # and the legacy (non-zip) pickle format of textual-inversion embeddings
    legacy = tmp_path / "neg.pt"
    legacy.write_bytes(pickle.dumps({"string_to_param": {"*": Evil(marker)}, "name": "neg"}))
    assert classify_file(legacy) == ModelType.EMBEDDING and not marker.exists()


def test_models_add_places_each_type_and_list_shows_short_hashes(tmp_path: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    files = {"base.safetensors": (CHECKPOINT_KEYS, "models/Stable-diffusion"),
             "vae.safetensors": (VAE_KEYS, "models/VAE"),
             "detail.safetensors": (LORA_KEYS, "models/Lora"),
             "neg.safetensors": (EMBEDDING_KEYS, "embeddings"),
             "hn.safetensors": (HYPERNETWORK_KEYS, "models/hypernetworks")}
    for name, (keys, folder) in files.items():
        src = safetensors(tmp_path / "dl" / name, keys)
        res = run_cli("models", "add", str(src), "--webui", str(webui))
        assert res.returncode == 0, res.stderr
        assert (webui / folder / name).read_bytes() == src.read_bytes()
        assert src.exists()  # copied, not moved
    doc = run_cli("models", "list", "--webui", str(webui), "--json").json()
    assert doc["schema"] == "sdboot.models/1"
    by_path = {m["path"]: m for m in doc["models"]}
    base = by_path["models/Stable-diffusion/base.safetensors"]
    digest = hashlib.sha256((webui / base["path"]).read_bytes()).hexdigest()
    assert base["sha256"] == digest and base["short_hash"] == digest[:10]
    assert base["type"] == "checkpoint"
    assert by_path["models/Lora/detail.safetensors"]["type"] == "lora"
    assert (webui / ".sdboot/hashes.json").is_file()  # the next list reads hashes from here


def test_unknown_type_needs_type_and_wrong_hash_is_refused(tmp_path: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    odd = safetensors(tmp_path / "odd.safetensors", ["some.unknown.tensor"])
    res = run_cli("models", "add", str(odd), "--webui", str(webui))
    assert res.returncode == 2 and "--type" in res.stderr
    res = run_cli("models", "add", str(odd), "--webui", str(webui), "--type", "lora")
    assert res.returncode == 0 and (webui / "models/Lora/odd.safetensors").is_file()
    lora = safetensors(tmp_path / "l.safetensors", LORA_KEYS)
    res = run_cli("models", "add", str(lora), "--webui", str(webui), "--sha256", "0" * 64)
    assert res.returncode == 1 and "expected 000" in res.stderr
    assert not (webui / "models/Lora/l.safetensors").exists()


# --- downloads -------------------------------------------------------------------------------


class FileServer:
    """Serves files with Range; /cut/ cuts the first response off halfway; records the
    headers it got; sends X-Linked-Etag like Hugging Face for files under /hf/."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.cut_done: set[str] = set()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append((self.path, dict(self.headers)))
                rel = self.path.lstrip("/")
                cut = rel.startswith("cut/")
                path = server.root / rel.removeprefix("cut/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                if rel.startswith("hf/"):
                    self.send_header("X-Linked-Etag",
                                     f'"{hashlib.sha256(data).hexdigest()}"')
                self.end_headers()
                body = data[start:]
                if cut and self.path not in server.cut_done:
                    server.cut_done.add(self.path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def stop(self) -> None:
        self.httpd.shutdown()


@pytest.fixture()
def files(tmp_path: Path):
    root = tmp_path / "served"
    big = safetensors(root / "lora.safetensors", LORA_KEYS)
    big.write_bytes(big.read_bytes() + os.urandom(3 * 1024 * 1024))  # 3 MB of tensor data
    safetensors(root / "hf/org/repo/resolve/main/vae.safetensors", VAE_KEYS)
    server = FileServer(root)
    yield server
    server.stop()


def test_download_cut_halfway_is_resumed_and_verified(files: FileServer, tmp_path: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    data = (files.root / "lora.safetensors").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    res = run_cli("models", "add", files.url + "cut/lora.safetensors", "--webui", str(webui),
                  "--sha256", digest)
    assert res.returncode == 0, res.stderr
    assert "resumed 1 time" in res.stdout
    assert (webui / "models/Lora/lora.safetensors").read_bytes() == data
    ranges = [h.get("Range") for p, h in files.seen if p == "/cut/lora.safetensors"]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert not list((webui / ".sdboot/downloads").glob("*.part"))


def test_wrong_hash_deletes_the_download_and_404_fails(files: FileServer, tmp_path: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    res = run_cli("models", "add", files.url + "lora.safetensors", "--webui", str(webui),
                  "--sha256", "f" * 64)
    assert res.returncode == 1 and "does not match" in res.stderr
    assert not list((webui / ".sdboot/downloads").glob("lora*"))
    assert not (webui / "models/Lora/lora.safetensors").exists()
    res = run_cli("models", "add", files.url + "missing.safetensors", "--webui", str(webui))
    assert res.returncode == 1 and "HTTP 404" in res.stderr
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr


def test_hugging_face_through_the_mirror_without_the_token(files: FileServer,
                                                           tmp_path: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    url = "https://huggingface.co/org/repo/resolve/main/vae.safetensors"
    res = run_cli("models", "add", url, "--webui", str(webui),
                  env={"HF_ENDPOINT": files.url + "hf", "HF_TOKEN": "hf_secret"})
    assert res.returncode == 0, res.stderr
    assert (webui / "models/VAE/vae.safetensors").is_file()
    path, headers = files.seen[-1]
    assert path == "/hf/org/repo/resolve/main/vae.safetensors"
    assert "Authorization" not in headers  # the mirror is a third party
    assert "hf_secret" not in res.stdout + res.stderr


def test_source_planning_and_civitai_urls() -> None:
    assert parse_civitai("https://civitai.com/models/4201?modelVersionId=130072") == "130072"
    assert parse_civitai("https://civitai.com/api/download/models/130072") == "130072"
    assert parse_civitai("https://example.com/models/1?modelVersionId=2") is None
    meta = {"files": [{"name": "realistic.safetensors", "primary": True,
                       "hashes": {"SHA256": "AB" * 32}}]}
    seen = {}

    def fake_api(url: str, headers: dict[str, str]):
        seen["url"], seen["headers"] = url, headers
        return meta

    src = plan_source("https://civitai.com/models/4201?modelVersionId=130072",
                      {"CIVITAI_TOKEN": "civ"}, fake_api)
    assert src.url == "https://civitai.com/api/download/models/130072"
    assert src.name == "realistic.safetensors" and src.sha256 == "ab" * 32
    assert src.headers == {"Authorization": "Bearer civ"}
    assert seen["url"].endswith("/v1/model-versions/130072")
    hf = plan_source("https://huggingface.co/a/b/resolve/main/c.safetensors",
                     {"HF_TOKEN": "t"})
    assert hf.headers == {"Authorization": "Bearer t"}  # huggingface.co itself may see it


# --- extensions ------------------------------------------------------------------------------


def test_ext_add_clones_through_the_mirror(tmp_path: Path, config_dir: Path) -> None:
    repos = tmp_path / "repos"
    commit = make_bare_repo(repos, "someone/sd-webui-thing", {"install.py": "print('hi')\n"})
    proxy = GitHost({"/https://github.com/": repos}).start()
    try:
        (config_dir / "mirrors.yaml").write_text(
            "replace_shipped: true\n"
            f"mirrors:\n  - {{name: loop, kind: github-prefix, url: '{proxy.url}'}}\n")
        env = {"SDBOOT_CONFIG_DIR": str(config_dir), "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": os.devnull}
        webui = write_webui(tmp_path / "webui")
        assert run_cli("mirror", "apply", str(webui), "--github", "loop",
                       env=env).returncode == 0
        res = run_cli("ext", "add", "someone/sd-webui-thing", "--webui", str(webui), env=env)
        assert res.returncode == 0, res.stderr
        assert (webui / "extensions/sd-webui-thing/install.py").is_file()
        assert any(r.startswith("/https://github.com/someone/sd-webui-thing.git/")
                   for r in proxy.requests)
        listed = run_cli("ext", "list", "--webui", str(webui), env=env)
        assert "sd-webui-thing" in listed.stdout and commit[:10] in listed.stdout
        again = run_cli("ext", "add", "someone/sd-webui-thing", "--webui", str(webui), env=env)
        assert again.returncode == 2 and "already installed" in again.stderr
        bad = run_cli("ext", "add", "not a thing", "--webui", str(webui), env=env)
        assert bad.returncode == 2 and "known names" in bad.stderr
    finally:
        proxy.stop()
