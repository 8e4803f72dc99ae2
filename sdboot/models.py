"""Model files: what kind a file is, from its header only (safetensors: the JSON header's
tensor names; .ckpt / .pt: the names in the pickle, read with pickletools without running
it), which WebUI folder each kind belongs in, and the short hash the WebUI shows."""

from __future__ import annotations

import hashlib
import json
import os
import pickletools
import re
import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sdboot.errors import SdbootError
from sdboot.fsutil import atomic_write
from sdboot.model import StrEnum

MAX_HEADER = 100 * 1024 * 1024  # safetensors caps its header at 100 MB
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


class ModelType(StrEnum):
    CHECKPOINT = "checkpoint"
    VAE = "vae"
    LORA = "lora"
    EMBEDDING = "embedding"
    HYPERNETWORK = "hypernetwork"
    UNKNOWN = "unknown"


# Where the WebUI looks for each type, relative to its folder.
FOLDERS = {
    ModelType.CHECKPOINT: "models/Stable-diffusion",
    ModelType.VAE: "models/VAE",
    ModelType.LORA: "models/Lora",
    ModelType.EMBEDDING: "embeddings",
    ModelType.HYPERNETWORK: "models/hypernetworks",
}


def read_safetensors_keys(path: Path) -> list[str] | None:
    """The tensor names of a safetensors file, reading only its header (8 + N bytes)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                return None
            (size,) = struct.unpack("<Q", raw)
            if size <= 1 or size > MAX_HEADER:
                return None
            header = json.loads(fh.read(size))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    return [k for k in header if k != "__metadata__"]


def read_pickle_names(path: Path, limit: int = 64 * 1024 * 1024) -> list[str] | None:
    """The strings in a torch pickle (a zip holding */data.pkl, or a legacy raw pickle),
    found by walking its opcodes with pickletools: nothing is imported or executed."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                name = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                if name is None or zf.getinfo(name).file_size > limit:
                    return None
                data = zf.read(name)
        else:
            with path.open("rb") as fh:
                data = fh.read(limit)
        names = []
        for op, arg, _ in pickletools.genops(data):
            if isinstance(arg, str) and op.name in ("SHORT_BINUNICODE", "BINUNICODE",
                                                     "UNICODE", "BINUNICODE8", "STRING",
                                                     "SHORT_BINSTRING", "BINSTRING"):
                names.append(arg)
        return names
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError):
        return None


def classify_keys(keys: list[str]) -> ModelType:
    """Pure: the model type from tensor names (the names the WebUI's loaders expect)."""
    def has(*prefixes: str) -> bool:
        return any(k.startswith(prefixes) for k in keys)

    def contains(*parts: str) -> bool:
        return any(p in k for k in keys for p in parts)

    if contains("lora_up", "lora_down", "lora_A", "lora_B", "hada_w1_a", "lokr_w1",
                ".lora.", "lora_unet_", "lora_te"):
        return ModelType.LORA
    if has("model.diffusion_model.") or has("double_blocks.", "joint_blocks."):
        return ModelType.CHECKPOINT
    if has("encoder.down", "decoder.up", "encoder.conv_in", "decoder.conv_in") or (
            has("first_stage_model.") and not has("model.diffusion_model.")):
        return ModelType.VAE
    if "layer_structure" in keys or "activation_func" in keys or any(
            k.split(".")[0].isdigit() and ".linear." in k for k in keys):
        return ModelType.HYPERNETWORK
    if "string_to_param" in keys or (has("emb_params", "clip_l", "clip_g") and len(keys) <= 4):
        return ModelType.EMBEDDING
    return ModelType.UNKNOWN


def classify_file(path: Path) -> ModelType:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        keys = read_safetensors_keys(path)
    elif suffix in (".ckpt", ".pt", ".pth"):
        keys = read_pickle_names(path)
    else:
        keys = None
    return classify_keys(keys) if keys else ModelType.UNKNOWN


def is_pickle(path: Path) -> bool:
    return path.suffix.lower() in (".ckpt", ".pt", ".pth", ".bin")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def short_hash(sha256: str) -> str:
    """What the WebUI and Civitai show: the first 10 hex digits of the sha256."""
    return sha256[:10]


def model_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and p.suffix.lower() in MODEL_SUFFIXES)


# --- placing files (effects through the file and network funnels) -------------------------



CIVITAI_API = "https://civitai.com/api"
CIVITAI_TOKEN_VARS = ("CIVITAI_TOKEN", "CIVITAI_API_KEY")
HF_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
HASH_CACHE = ".sdboot/hashes.json"
PICKLE_WARNING = ("{name} is a pickle (.ckpt/.pt): loading it can run code. Prefer the "
                  ".safetensors version of the same model where there is one")


@dataclass(frozen=True)
class ModelEntry:
    path: str  # relative to the WebUI
    type: ModelType
    folder: str
    size: int
    sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "type": str(self.type), "folder": self.folder,
                "size": self.size, "sha256": self.sha256,
                "short_hash": short_hash(self.sha256) if self.sha256 else None}


@dataclass(frozen=True)
class Source:
    url: str  # what is fetched
    name: str  # the file name
    sha256: str | None  # what the source publishes
    headers: dict[str, str]
    kind: str  # huggingface | civitai | url


def parse_civitai(url: str) -> str | None:
    """The model-version id of a Civitai URL (models/<id>?modelVersionId=V, or
    api/download/models/V)."""
    parts = urlsplit(url)
    if not (parts.hostname or "").endswith("civitai.com"):
        return None
    version = parse_qs(parts.query).get("modelVersionId", [None])[0]
    if version:
        return version
    match = re.search(r"/api/download/models/(\d+)", parts.path)
    return match.group(1) if match else None


def plan_source(url: str, env: dict[str, str] | None = None,
                fetch_json: Callable[[str, dict[str, str]], Any] | None = None) -> Source:
    """Where a model URL is fetched from, with which headers. Hugging Face goes through
    HF_ENDPOINT (a mirror) and then gets no token; a token goes only to its own service."""
    from sdboot.mirrors import map_hf_url
    from sdboot.net import auth_headers

    env = dict(os.environ if env is None else env)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SdbootError(f"'{url}' is not an http(s) URL or an existing file",
                          "give a local path, or a Hugging Face / Civitai URL")
    tokens = {k: env[k] for k in (*HF_TOKEN_VARS, *CIVITAI_TOKEN_VARS) if env.get(k)}
    civitai_id = parse_civitai(url)
    if civitai_id is not None:
        meta = fetch_json(f"{CIVITAI_API}/v1/model-versions/{civitai_id}",
                          auth_headers(CIVITAI_API, tokens)) if fetch_json else None
        files = (meta or {}).get("files") or [{}]
        primary = next((f for f in files if f.get("primary")), files[0])
        name = primary.get("name") or f"civitai-{civitai_id}.safetensors"
        sha = ((primary.get("hashes") or {}).get("SHA256") or "").lower() or None
        target = f"{CIVITAI_API}/download/models/{civitai_id}"
        return Source(target, name, sha, auth_headers(target, tokens), "civitai")
    if parts.hostname == "huggingface.co" and "/resolve/" in parts.path:
        target = map_hf_url(url, env.get("HF_ENDPOINT"))
        return Source(target, unquote(parts.path.rsplit("/", 1)[-1]), None,
                      auth_headers(target, tokens), "huggingface")
    return Source(url, unquote(parts.path.rsplit("/", 1)[-1]) or "download.bin", None, {},
                  "url")


def _load_hash_cache(root: Path) -> dict[str, Any]:
    try:
        doc = json.loads((root / HASH_CACHE).read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def list_models(root: Path, hashes: bool = True) -> list[ModelEntry]:
    """Every model file in the WebUI's model folders; sha256 cached by size and mtime."""
    cache = _load_hash_cache(root)
    changed = False
    out = []
    for kind, rel in FOLDERS.items():
        for path in model_files(root / rel):
            st = path.stat()
            key = path.relative_to(root).as_posix()
            found = classify_file(path)
            digest = None
            if hashes:
                hit = cache.get(key) or {}
                if hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
                    digest = hit.get("sha256")
                else:
                    digest = sha256_file(path)
                    cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                  "sha256": digest}
                    changed = True
            out.append(ModelEntry(key, found if found != ModelType.UNKNOWN else kind, rel,
                                  st.st_size, digest))
    if changed:
        try:
            atomic_write(root / HASH_CACHE, json.dumps(cache).encode())
        except OSError:
            pass
    return out


def place(root: Path, file: Path, wanted: ModelType | None, move: bool,
          expected_sha256: str | None = None) -> tuple[Path, ModelType, list[str]]:
    """Put a local model file into its folder (copy, or move with move=True), after
    checking its type and, when given, its sha256."""
    notes: list[str] = []
    if not file.is_file():
        raise SdbootError(f"{file} is not a file", "give the path of a model file or a URL")
    found = classify_file(file)
    kind = wanted or found
    if kind == ModelType.UNKNOWN:
        raise SdbootError(f"cannot tell what kind of model {file.name} is from its header",
                          "say it with --type checkpoint|vae|lora|embedding|hypernetwork")
    if wanted is not None and found not in (ModelType.UNKNOWN, wanted):
        notes.append(f"{file.name} looks like a {found}, placed as a {wanted} as asked")
    if is_pickle(file):
        notes.append(PICKLE_WARNING.format(name=file.name))
    if expected_sha256:
        actual = sha256_file(file)
        if actual != expected_sha256.lower():
            raise SdbootError(f"{file.name} has sha256 {actual}, expected {expected_sha256}",
                              "the file is damaged or not the one you meant", exit_code=1)
    target = root / FOLDERS[kind] / file.name
    if target.exists():
        if target.stat().st_size == file.stat().st_size and \
                sha256_file(target) == sha256_file(file):
            notes.append(f"{target.relative_to(root)} is already there (same file)")
            return target, kind, notes
        raise SdbootError(f"{target.relative_to(root)} exists and is a different file",
                          "rename one of them, or remove the old one")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.sdboot-tmp")
    if move:
        shutil.move(str(file), str(tmp))  # a rename on the same disk
    else:
        shutil.copyfile(file, tmp)
    os.replace(tmp, target)
    return target, kind, notes


def fetch(root: Path, source: Source, expected_sha256: str | None,
          on_progress: Callable[[int, int | None], None] | None = None,
          ) -> tuple[Path, str | None, int]:
    """Download into WEBUI/.sdboot/downloads/NAME (resuming a .part left by a cut-off run),
    verify the sha256 when one is known, and return (file, sha256 or None, times
    resumed). A mismatch deletes the download."""
    from sdboot.net import DownloadError, download

    folder = root / ".sdboot" / "downloads"
    final = folder / source.name
    part = folder / (source.name + ".part")
    known = (expected_sha256 or source.sha256 or "").lower() or None
    try:
        got = download(source.url, part, headers=source.headers, on_progress=on_progress,
                       verify=True if known else None)
    except DownloadError as exc:
        raise SdbootError(f"download failed: {exc}", "run the same command again to resume "
                          "(a mirror may help: HF_ENDPOINT / sdboot mirror test)",
                          exit_code=1) from None
    want = known or got.remote_sha256
    if want and got.sha256 != want:
        part.unlink(missing_ok=True)
        raise SdbootError(f"{source.name}: sha256 {got.sha256} does not match the expected "
                          f"{want}; the download was deleted",
                          "check --sha256, or download again (a mirror may serve a "
                          "damaged file)", exit_code=1)
    os.replace(part, final)
    return final, got.sha256 if want else None, got.resumed
