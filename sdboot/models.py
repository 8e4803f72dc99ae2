"""Model files: what kind a file is, from its header only (safetensors: the JSON header's
tensor names; .ckpt / .pt: the names in the pickle, read with pickletools without running
it), which WebUI folder each kind belongs in, and the short hash the WebUI shows."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pickletools
import re
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from sdboot.errors import SdbootError, keep_on_interrupt
from sdboot.fsutil import atomic_write, inside, move_no_clobber
from sdboot.model import StrEnum

MAX_HEADER = 100 * 1024 * 1024  # safetensors caps its header at 100 MB
SNIFF_BYTES = 512  # what is read from every model file to tell what it really is
LFS_MAGIC = b"version https://git-lfs.github.com/spec/"
MAX_ZIP_ENTRIES = 200_000  # a torch zip holds one entry per tensor storage: thousands
MAX_ZIP_DIRECTORY = 64 * 1024 * 1024
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


class _Corrupt(Exception):
    """Internal: what a file in a model folder really is, when the WebUI cannot load it."""


@dataclass(frozen=True)
class Inspection:
    """What a model file is, from its size, first bytes and header (or zip directory)."""

    type: ModelType
    keys: tuple[str, ...] = ()
    problem: str | None = None  # set when the WebUI cannot load the file, and why
    lfs_sha256: str | None = None  # a git-LFS pointer's oid: the sha256 of the real file


def _text_start(raw: bytes, limit: int = 40) -> str:
    return raw[:limit].decode("utf-8", "replace").split("\n")[0].strip()


def _is_text(raw: bytes) -> bool:
    return bool(raw) and all(32 <= b < 127 or b in (9, 10, 13) for b in raw)


def _sniff(head: bytes, size: int) -> tuple[str | None, str | None]:
    """A problem any model file can have, from its first bytes: (problem, LFS sha256)."""
    if size == 0:
        return "an empty file (0 bytes): the download or copy never wrote anything", None
    if head.startswith(LFS_MAGIC) and size <= 1024:
        text = head.decode("ascii", "replace")
        oid = re.search(r"^oid sha256:([0-9a-f]{64})\s*$", text, re.M)
        real = re.search(r"^size (\d+)\s*$", text, re.M)
        of = f" of a {int(real.group(1)):,}-byte file" if real else ""
        return (f"a git-LFS pointer{of} ({size} bytes of text), not the model: it was "
                "cloned or downloaded without git-lfs", oid.group(1) if oid else None)
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return ("an HTML page saved as a model (a login, error or download page), not the "
                "model: the real file was never fetched"), None
    if lowered.startswith(b"<?xml"):
        return ("an XML page saved as a model (often an 'Access denied' or expired-link "
                "error), not the model"), None
    return None, None


def _safetensors_keys(fh: BinaryIO, head: bytes, size: int) -> list[str]:
    """The tensor names from a safetensors header, read with at most MAX_HEADER bytes and
    never more than the file holds; raises _Corrupt when the WebUI could not load it."""
    if size < 8 or len(head) < 8:
        raise _Corrupt(f"truncated: {size} bytes, less than a safetensors header")
    (length,) = struct.unpack("<Q", head[:8])
    if length > MAX_HEADER:
        if _is_text(head[:64]):
            raise _Corrupt(f"a text file ('{_text_start(head)}...'), not a safetensors")
        raise _Corrupt(f"not a safetensors: its header length field says {length:,} bytes "
                       "(the format allows at most 100 MB)")
    if length < 2:
        raise _Corrupt("not a safetensors: its header is empty")
    if 8 + length > size:
        raise _Corrupt(f"truncated, or not a safetensors: the header alone needs {length:,} "
                       f"bytes and the file holds {size - 8:,} after the length field")
    fh.seek(8)
    raw = fh.read(length)
    if len(raw) != length or not raw.lstrip(b" ").startswith(b"{"):
        raise _Corrupt("not a safetensors: its header is not a JSON object")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _Corrupt("not a safetensors: its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _Corrupt("not a safetensors: its header is not a JSON object")
    end = 0
    keys = []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int and o >= 0 for o in offsets)
                and offsets[0] <= offsets[1]):
            raise _Corrupt(f"a damaged safetensors header: tensor {key[:60]!r} has no valid "
                           "data_offsets")
        end = max(end, offsets[1])
        keys.append(key)
    need = 8 + length + end
    if need > size:
        raise _Corrupt(f"truncated: its header promises {need:,} bytes, the file holds "
                       f"{size:,} ({100 * size // need}%): the download broke off")
    return keys


def _zip_directory(fh: BinaryIO, size: int) -> tuple[int, int, int]:
    """(entries, directory size, directory offset) from a zip's end records, reading only
    the file's last 64 KiB (and the zip64 record it points to)."""
    tail_len = min(size, 22 + 65535)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise _Corrupt("a truncated zip (its end, the central directory, is missing): the "
                       "download or copy broke off")
    _, _, _, _, entries, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", tail[at:at + 22])
    if entries == 0xFFFF or 0xFFFFFFFF in (cd_size, cd_offset):
        loc = at - 20
        if loc < 0 or tail[loc:loc + 4] != b"PK\x06\x07":
            raise _Corrupt("a damaged zip: its zip64 end record is missing")
        (z64_at,) = struct.unpack("<Q", tail[loc + 8:loc + 16])
        if z64_at + 56 > size:
            raise _Corrupt("a damaged zip: its zip64 end record points past the file")
        fh.seek(z64_at)
        rec = fh.read(56)
        if len(rec) != 56 or rec[:4] != b"PK\x06\x06":
            raise _Corrupt("a damaged zip: its zip64 end record is missing")
        entries, cd_size, cd_offset = struct.unpack("<3Q", rec[32:56])
    if cd_offset + cd_size > size:
        raise _Corrupt("a truncated or damaged zip: its directory points past the end of "
                       "the file")
    if entries > MAX_ZIP_ENTRIES or cd_size > MAX_ZIP_DIRECTORY:
        raise _Corrupt(f"not a torch file: its zip directory claims {entries:,} entries in "
                       f"{cd_size:,} bytes")
    return entries, cd_size, cd_offset


def _pickle_strings(data: bytes) -> list[str]:
    """The strings in a pickle, walking its opcodes: nothing is imported or executed."""
    names = []
    for op, arg, _ in pickletools.genops(data):
        if isinstance(arg, str) and op.name in _STRING_OPS:
            names.append(arg)
    return names


_STRING_OPS = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "STRING",
               "SHORT_BINSTRING", "BINSTRING")
_ZIP_ERRORS = (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError,
               struct.error, zipfile.BadZipFile, zlib.error)


def _torch_zip_names(fh: BinaryIO, size: int, limit: int) -> list[str] | None:
    """The strings in a torch zip's data.pkl, after proving from the zip directory that
    torch could open it (not truncated, not encrypted, a method torch reads)."""
    _zip_directory(fh, size)
    fh.seek(0)
    try:
        zf = zipfile.ZipFile(fh)
    except _ZIP_ERRORS as exc:
        raise _Corrupt(f"a damaged zip ({exc})") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            if info.flag_bits & 0x1:
                raise _Corrupt(f"an encrypted zip ({info.filename[:60]} needs a password): "
                               "torch cannot read it")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _Corrupt(f"a zip with compression method {info.compress_type}, "
                               "which torch cannot read")
            if info.header_offset + info.compress_size > size:
                raise _Corrupt("a truncated zip: its entries run past the end of the file")
        pkl = next((i for i in infos if i.filename.endswith("data.pkl")), None)
        if pkl is None:
            raise _Corrupt("a zip without data.pkl: not a file saved by torch")
        if pkl.file_size > limit:
            return None
        try:
            data = zf.read(pkl)
        except _ZIP_ERRORS as exc:
            raise _Corrupt(f"a damaged zip: {pkl.filename[:60]} cannot be read "
                           f"({exc})") from None
    try:
        return _pickle_strings(data)
    except ValueError:
        raise _Corrupt("a damaged torch file: its data.pkl is not a complete pickle") from None


def _pickle_names(fh: BinaryIO, head: bytes, size: int, limit: int) -> list[str] | None:
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _torch_zip_names(fh, size, limit)
    if head.startswith(b"\x80"):  # a raw pickle (the legacy torch format)
        fh.seek(0)
        data = fh.read(min(limit, 1 << 20))  # the first pickle ends early, mostly
        try:
            return _pickle_strings(data)
        except ValueError:
            if len(data) < min(limit, 1 << 20):
                return None
        try:
            return _pickle_strings(data + fh.read(limit - len(data)))
        except ValueError:
            return None
    if _is_text(head):  # "Not Found", "Access denied": unless a protocol-0 pickle
        fh.seek(0)
        try:
            return _pickle_strings(fh.read(min(limit, 1 << 20)))
        except ValueError:
            raise _Corrupt(f"a text file ('{_text_start(head)}'), not a torch "
                           "file") from None
    return None


def inspect_model(path: Path, limit: int = 64 * 1024 * 1024) -> Inspection:
    """What kind of model a file is, and whether the WebUI could load it at all, from its
    size, its first 512 bytes and its header (safetensors) or zip directory and pickle
    opcodes (.ckpt/.pt/.pth). Nothing is loaded or unpickled; never raises on content."""
    suffix = path.suffix.lower()
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(SNIFF_BYTES)
            problem, oid = _sniff(head, size)
            if problem:
                return Inspection(ModelType.UNKNOWN, (), problem, oid)
            keys: list[str] | None = None
            if suffix == ".safetensors":
                keys = _safetensors_keys(fh, head, size)
            elif suffix in (".ckpt", ".pt", ".pth"):
                keys = _pickle_names(fh, head, size, limit)
    except _Corrupt as exc:
        return Inspection(ModelType.UNKNOWN, (), str(exc))
    except (OSError, MemoryError, ValueError, RecursionError, struct.error):
        return Inspection(ModelType.UNKNOWN)  # unreadable, or changing while read
    return Inspection(classify_keys(keys) if keys else ModelType.UNKNOWN, tuple(keys or ()))


def read_safetensors_keys(path: Path) -> list[str] | None:
    """The tensor names of a safetensors file, reading only its header (8 + N bytes);
    None when it is no loadable safetensors."""
    found = inspect_model(path)
    return None if found.problem or not found.keys else list(found.keys)


def read_pickle_names(path: Path, limit: int = 64 * 1024 * 1024) -> list[str] | None:
    """The strings in a torch pickle (a zip holding */data.pkl, or a legacy raw pickle),
    found by walking its opcodes with pickletools: nothing is imported or executed."""
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            return _pickle_names(fh, fh.read(SNIFF_BYTES), size, limit)
    except (_Corrupt, OSError, MemoryError):
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
    return inspect_model(path).type


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


# --- damaged files and doctor's moves (through the file funnel) ---------------------------

QUARANTINE = ".sdboot/quarantine"


def real_file_hint(found: Inspection) -> str:
    """How to get the real file in place of a damaged one."""
    if found.lfs_sha256:
        return (f"get the real file: sdboot models add URL --sha256 {found.lfs_sha256} (the "
                "pointer's sha256; in a git clone: git lfs pull)")
    return ("get the real file: sdboot models add URL --sha256 HEX (the URL and sha256 from "
            "the model's page)")


def refuse_damaged(file: Path) -> None:
    """Raise (exit 1) when file is something the WebUI cannot load: a git-LFS pointer, an
    HTML page, an empty, truncated or malformed model file."""
    found = inspect_model(file)
    if found.problem:
        raise SdbootError(f"{file.name} is {found.problem}", real_file_hint(found),
                          exit_code=1)


def model_folder(root: Path, folder: Path, what: str = "the model folder") -> Path:
    """`folder` resolved and proven to be where it belongs. Under WEBUI/models/, a folder
    (or models/ itself) may be a symbolic link the user made to another disk or to a shared
    model store: such a link is followed when it points at a folder. Every other path, and
    every name below a model folder, must stay inside the WebUI (fsutil.inside)."""
    try:
        rel = folder.relative_to(root)
    except ValueError:
        return inside(root, folder, what)
    if not rel.parts or rel.parts[0] != "models" or ".." in rel.parts:
        return inside(root, folder, what)
    current = inside(root, ".", what)
    for part in rel.parts:
        step = current / part
        if step.is_symlink():
            target = step.resolve()
            if not target.is_dir():
                raise SdbootError(f"{step} is a link to {target}, which is not a folder",
                                  "point the link at your models folder, or remove it",
                                  exit_code=2)
            current = target
        else:
            current = step
    return current


def _move_inside(root: Path, src: Path, dst: Path) -> None:
    """Move src to dst, both proven inside their folders, never replacing an existing
    file. A symbolic link is moved as a link (what it points to is not touched)."""
    base = model_folder(root, src.parent, "the model's folder")
    if not src.is_symlink():
        inside(base, src, "the model file")
    model_folder(root, dst.parent, "the destination")  # before mkdir: never outside
    dst.parent.mkdir(parents=True, exist_ok=True)
    model_folder(root, dst.parent, "the destination")
    if src.is_symlink():
        target = os.readlink(src)
        if not os.path.isabs(target):
            target = os.path.join(os.path.dirname(os.path.abspath(src)), target)
        try:
            os.symlink(target, dst)  # fails when dst exists: nothing is replaced
        except FileExistsError:
            raise SdbootError(f"{dst} already exists: not replacing it",
                              "move or rename that file yourself first",
                              exit_code=1) from None
        os.unlink(src)
        return
    move_no_clobber(src, dst)


def move_model(root: Path, src: Path, dst: Path) -> Path:
    """doctor's model-misplaced fix: src to dst inside the WebUI, refusing when dst exists."""
    if os.path.lexists(dst):
        raise SdbootError(f"{dst} already exists: not replacing it with {src.name}",
                          "compare the two files (sdboot models list), then remove or "
                          "rename one of them", exit_code=1)
    _move_inside(root, src, dst)
    return dst


def quarantine(root: Path, src: Path) -> Path:
    """doctor's model-corrupt fix: src into WEBUI/.sdboot/quarantine/, as NAME or, when a
    file of that name is there already, NAME-1, NAME-2, ... (nothing is replaced)."""
    folder = root / QUARANTINE
    stem, suffix = os.path.splitext(src.name)
    for n in range(1000):
        dst = folder / (src.name if n == 0 else f"{stem}-{n}{suffix}")
        if os.path.lexists(dst):
            continue
        try:
            _move_inside(root, src, dst)
        except SdbootError:
            if os.path.lexists(dst) and os.path.lexists(src):
                continue  # taken meanwhile: the next name
            raise
        return dst
    raise SdbootError(f"{folder} holds 1000 files named like {src.name}",
                      "empty the quarantine folder", exit_code=1)


def fix_command(argv: list[str]) -> int:
    """What doctor's model fixes run (`python -c`, through the runner): `move ROOT SRC DST`
    or `quarantine ROOT SRC`. Errors are the two lines every sdboot error is."""
    import sys

    try:
        if len(argv) == 4 and argv[0] == "move":
            root, src, dst = (Path(a) for a in argv[1:])
            move_model(root, src, dst)
            print(f"moved {src} to {dst}")
        elif len(argv) == 3 and argv[0] == "quarantine":
            root, src = Path(argv[1]), Path(argv[2])
            if not os.path.lexists(src):
                print(f"{src} is gone already")
                return 0
            if not inspect_model(src).problem:
                print(f"{src} is no longer damaged: left where it is")
                return 0
            print(f"moved {src} to {quarantine(root, src)}")
        else:
            raise SdbootError(f"bad arguments {argv!r}", "move ROOT SRC DST | quarantine ROOT "
                              "SRC", exit_code=2)
    except SdbootError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: {exc}\nhint: nothing was replaced; check the folder's permissions",
              file=sys.stderr)
        return 1
    return 0


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
    problem: str | None = None  # why the WebUI cannot load it (a git-LFS pointer, ...)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "type": str(self.type), "folder": self.folder,
                "size": self.size, "sha256": self.sha256,
                "short_hash": short_hash(self.sha256) if self.sha256 else None,
                "problem": self.problem}


@dataclass(frozen=True)
class Source:
    url: str  # what is fetched
    name: str | None  # the file name, already a plain one (fsutil.safe_name); None: the
    #                   server's answer (Content-Disposition) names it
    sha256: str | None  # what the source publishes
    headers: dict[str, str]
    kind: str  # huggingface | civitai | url
    fallback: str | None = None  # the (plain) name when the server's answer gives none


def parse_civitai(url: str) -> str | None:
    """The model-version id of a Civitai URL (models/<id>?modelVersionId=V, or
    api/download/models/V); digits only."""
    parts = urlsplit(url)
    if not (parts.hostname or "").endswith("civitai.com"):
        return None
    version = parse_qs(parts.query).get("modelVersionId", [None])[0]
    if version:
        return version if version.isdigit() else None
    match = re.search(r"/api/download/models/(\d+)", parts.path)
    return match.group(1) if match else None


def _url_name(url: str, what: str) -> str:
    """The last path segment of url, percent-decoded once, then proven a plain file name
    (`..%2F..%2Fx` and `%2Ftmp%2Fx` are refused, never joined to a folder)."""
    from sdboot.fsutil import safe_name

    segment = urlsplit(url).path.rsplit("/", 1)[-1]
    return safe_name(unquote(segment, errors="strict"), what) if segment else ""


def _check_endpoint(value: str) -> str:
    from sdboot.mask import mask
    from sdboot.net import DownloadError, check_url

    try:
        return check_url(value)
    except DownloadError:
        raise SdbootError(f"HF_ENDPOINT={mask(value)!r} is not an http(s) URL",
                          "set it to https://HOST of a Hugging Face mirror, or unset it"
                          ) from None


def plan_source(url: str, env: dict[str, str] | None = None,
                fetch_json: Callable[[str, dict[str, str]], Any] | None = None,
                name: str | None = None) -> Source:
    """Where a model URL is fetched from, with which headers, under which file name.
    Hugging Face goes through HF_ENDPOINT (a mirror) and then gets no token; a token goes
    only to its own service (a Civitai `?token=` becomes a header, never part of a URL or
    a file name). Every name, from the URL or Civitai's API, is decoded and then proven
    plain by fsutil.safe_name; `name` (--name) overrides them and is proven the same way."""
    from sdboot.fsutil import safe_name
    from sdboot.mask import mask
    from sdboot.mirrors import map_hf_url
    from sdboot.net import auth_headers

    env = dict(os.environ if env is None else env)
    try:
        parts = urlsplit(url)
        _ = parts.port  # a bad port or IPv6 literal raises ValueError
    except ValueError:
        raise SdbootError(f"'{mask(url)}' is not a valid URL or an existing file",
                          "give a local path, or a Hugging Face / Civitai URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SdbootError(f"'{mask(url)}' is not an http(s) URL or an existing file",
                          "give a local path, or a Hugging Face / Civitai URL")
    override = safe_name(name, "--name") if name is not None else None
    tokens = {k: env[k] for k in (*HF_TOKEN_VARS, *CIVITAI_TOKEN_VARS) if env.get(k)}
    civitai_id = parse_civitai(url)
    if civitai_id is None and (parts.hostname or "").endswith("civitai.com") and \
            "modelversionid=" in parts.query.lower():
        raise SdbootError(f"'{mask(url)}': modelVersionId must be a number",
                          "copy the URL from the model's page again")
    if civitai_id is not None:
        query_token = (parse_qs(parts.query).get("token") or [""])[0]
        if query_token and not any(tokens.get(k) for k in CIVITAI_TOKEN_VARS):
            tokens["CIVITAI_TOKEN"] = query_token
        meta = fetch_json(f"{CIVITAI_API}/v1/model-versions/{civitai_id}",
                          auth_headers(CIVITAI_API, tokens)) if fetch_json else None
        files = meta.get("files") if isinstance(meta, dict) else None
        entries = [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
        primary = next((f for f in entries if f.get("primary")), entries[0] if entries
                       else {})
        given = primary.get("name")
        picked = override or (safe_name(given, "file name from Civitai's answer")
                              if isinstance(given, str) and given else None)
        hashes = primary.get("hashes")
        sha = hashes.get("SHA256") if isinstance(hashes, dict) else None
        sha = sha.lower() if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha) \
            else None
        target = f"{CIVITAI_API}/download/models/{civitai_id}"
        return Source(target, picked, sha, auth_headers(target, tokens), "civitai",
                      f"civitai-{civitai_id}.safetensors")
    if parts.hostname == "huggingface.co" and "/resolve/" in parts.path:
        endpoint = env.get("HF_ENDPOINT")
        if endpoint:
            _check_endpoint(endpoint)
        target = map_hf_url(url, endpoint)
        picked = override or _url_name(url, "file name in the URL")
        if not picked:
            raise SdbootError(f"'{mask(url)}' names no file",
                              "give the URL of the file (…/resolve/main/NAME), or --name NAME")
        return Source(target, picked, None, auth_headers(target, tokens), "huggingface")
    if override:
        return Source(url, override, None, {}, "url")
    segment = _url_name(url, "file name in the URL")
    if segment.lower().endswith(MODEL_SUFFIXES):
        return Source(url, segment, None, {}, "url")
    # no model file name in the URL: the server's Content-Disposition may give one
    return Source(url, None, None, {}, "url", segment or None)

MAX_HASH_CACHE = 16 * 1024 * 1024  # a cache larger than this is ignored and rebuilt
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _cache_entry(value: Any) -> dict[str, Any] | None:
    """A hash-cache entry when it has exactly the expected shape, else None (dropped)."""
    if not isinstance(value, dict):
        return None
    size, mtime, digest = value.get("size"), value.get("mtime_ns"), value.get("sha256")
    if not (type(size) is int and size >= 0 and type(mtime) is int
            and isinstance(digest, str) and _SHA256.fullmatch(digest)):
        return None
    return {"size": size, "mtime_ns": mtime, "sha256": digest}


def _load_hash_cache(root: Path) -> dict[str, dict[str, Any]]:
    """WEBUI/.sdboot/hashes.json, entry by entry: a bad entry (wrong types, a value that
    is no dict), a file that is no JSON object or too large are dropped, never fatal."""
    try:
        with (root / HASH_CACHE).open("rb") as fh:
            raw = fh.read(MAX_HASH_CACHE + 1)
        if len(raw) > MAX_HASH_CACHE:
            return {}
        doc = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict):
        return {}
    out = {}
    for key, value in doc.items():
        entry = _cache_entry(value)
        if entry is not None:
            out[key] = entry
    return out


def _save_hash_cache(root: Path, cache: dict[str, dict[str, Any]]) -> None:
    """Atomically, and only inside the WebUI (a .sdboot linked elsewhere is not written)."""
    try:
        atomic_write(root / HASH_CACHE, json.dumps(cache, sort_keys=True).encode(), root=root)
    except (OSError, SdbootError):
        pass  # the cache only saves time: the listing itself is right without it


def list_models(root: Path, hashes: bool = True) -> list[ModelEntry]:
    """Every model file in the WebUI's model folders; sha256 cached by size and mtime. A
    file the WebUI cannot load (see inspect_model) is listed with its problem."""
    cache = _load_hash_cache(root)
    kept: dict[str, dict[str, Any]] = {}
    changed = False
    out = []
    for kind, rel in FOLDERS.items():
        for path in model_files(root / rel):
            try:
                st = path.stat()
            except OSError:
                continue  # gone since the folder was read, or a dangling link
            key = path.relative_to(root).as_posix()
            found = inspect_model(path)
            digest = None
            if hashes:
                hit = cache.get(key)
                if hit and hit["size"] == st.st_size and hit["mtime_ns"] == st.st_mtime_ns:
                    digest = hit["sha256"]
                    kept[key] = hit
                else:
                    try:
                        digest = sha256_file(path)
                    except OSError:
                        digest = None
                    else:
                        kept[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                     "sha256": digest}
                    changed = True
            out.append(ModelEntry(key, found.type if found.type != ModelType.UNKNOWN else kind,
                                  rel, st.st_size, digest, found.problem))
    if hashes and (changed or kept.keys() != cache.keys()):
        _save_hash_cache(root, kept)
    return out


def shown_path(root: Path, path: Path) -> str:
    """path as shown to users: relative to the WebUI when it is inside (a model folder can
    be a link to another disk, then the full path)."""
    base = root.resolve()
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


def _exists_error(root: Path, target: Path, kept: Path | None) -> SdbootError:
    rel = shown_path(root, target)
    tail = (f"; the download is kept: sdboot models add {kept} --move --force"
            if kept is not None else "")
    return SdbootError(f"{rel} already exists: not replacing it",
                       f"pass --force to replace {target.name}, or --name NAME to keep both"
                       f"{tail}", exit_code=1)


def _copy_to_temp(src: Path, folder: Path, name: str) -> Path:
    """A copy of src as a new temp file in folder (O_EXCL: a planted link is never
    followed)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{name[:60]}.", suffix=".sdboot-tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as fh:
            shutil.copyfileobj(fh, out, 1 << 20)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def _put(src: Path, target: Path, move: bool, force: bool) -> None:
    """src to target: never replacing an existing file unless force (then a symlink at
    target is replaced, not followed); the source stays unless move."""
    if not force:
        if move:
            move_no_clobber(src, target)
            return
        tmp = _copy_to_temp(src, target.parent, target.name)
        try:
            move_no_clobber(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return
    if move:
        try:
            os.replace(src, target)  # a rename: replaces a link, never writes through it
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    tmp = _copy_to_temp(src, target.parent, target.name)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if move:
        os.unlink(src)


def place(root: Path, file: Path, wanted: ModelType | None, move: bool,
          expected_sha256: str | None = None, *, name: str | None = None,
          force: bool = False, downloaded: bool = False) -> tuple[Path, ModelType, list[str]]:
    """Put a local model file into its folder (copy, or move with move=True), after
    checking its type and, when given, its sha256. The name (`name`, else the file's) must
    be a plain file name (fsutil.safe_name) and the target is proven inside the WebUI. An
    existing file (or link) of that name is never replaced unless force: exit 1."""
    from sdboot.fsutil import safe_name

    notes: list[str] = []
    if not file.is_file():
        raise SdbootError(f"{file} is not a file", "give the path of a model file or a URL")
    plain = safe_name(name if name is not None else file.name, "model file name")
    refuse_damaged(file)
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
    folder = root / FOLDERS[kind]
    model_folder(root, folder)  # before mkdir: never a folder outside
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SdbootError(f"cannot create {folder}: {exc.strerror or exc}",
                          "make the WebUI folder writable for this user", exit_code=1) from None
    target = model_folder(root, folder) / plain
    if os.path.lexists(target):
        if target.is_dir() and not target.is_symlink():
            raise SdbootError(f"{shown_path(root, target)} is a folder",
                              "move it away, or give another name with --name NAME",
                              exit_code=1)
        if not target.is_symlink() and target.stat().st_size == file.stat().st_size and \
                sha256_file(target) == sha256_file(file):
            notes.append(f"{shown_path(root, target)} is already there (same file)")
            if move and not os.path.samefile(file, target):
                file.unlink()
            return target, kind, notes
        if not force:
            raise _exists_error(root, target, file if downloaded else None)
        notes.append(f"{shown_path(root, target)} replaced (--force)")
    try:
        _put(file, target, move, force)
    except SdbootError as exc:
        if exc.exit_code == 1 and "already exists" in exc.message:
            raise _exists_error(root, target, file if downloaded else None) from None
        raise
    except OSError as exc:
        raise SdbootError(f"cannot write {target}: {exc.strerror or exc}",
                          f"make {target.parent} writable for this user (and check the free "
                          "space), then run the command again", exit_code=1) from None
    return target, kind, notes


DOWNLOADS = ".sdboot/downloads"


def _downloads(root: Path) -> Path:
    folder = root / DOWNLOADS
    inside(root, folder, "the downloads folder")  # a planted .sdboot link: refused
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SdbootError(f"cannot create {folder}: {exc.strerror or exc}",
                          "make the WebUI folder writable for this user", exit_code=1) from None
    return inside(root, folder, "the downloads folder")


def part_name(source: Source) -> str:
    """The .part file a download streams into: the planned name, or (when the server's
    answer names the file) a name from the URL's hash, never from its query (a token)."""
    if source.name or source.fallback:
        return f"{source.name or source.fallback}.part"
    bare = urlsplit(source.url)._replace(query="", fragment="").geturl()
    return f"download-{hashlib.sha256(bare.encode()).hexdigest()[:16]}.part"


def fetch(root: Path, source: Source, expected_sha256: str | None,
          on_progress: Callable[[int, int | None], None] | None = None,
          ) -> tuple[Path, str | None, int]:
    """Download into WEBUI/.sdboot/downloads/NAME (resuming a .part left by a cut-off run),
    verify the sha256 when one is known, and return (file, sha256 or None, times
    resumed). A mismatch deletes the download. The .part is opened without following a
    link; a name from the server (Content-Disposition) is proven plain like any other."""
    from sdboot.fsutil import remove_tree, safe_name
    from sdboot.net import DownloadError, download

    folder = _downloads(root)
    part = folder / part_name(source)
    known = (expected_sha256 or source.sha256 or "").lower() or None
    keep_on_interrupt(f"what was downloaded is kept in {part}; run the same command again "
                      "to resume")
    try:
        got = download(source.url, part, headers=source.headers, on_progress=on_progress,
                       verify=True if known else None)
    except DownloadError as exc:
        raise SdbootError(f"download failed: {exc.message}", exc.hint or "run the same "
                          "command again to resume (a mirror may help: HF_ENDPOINT / sdboot "
                          "mirror test)", exit_code=1) from None
    want = known or got.remote_sha256
    if want and got.sha256 != want:
        part.unlink(missing_ok=True)
        shown = source.name or source.fallback or part.name
        raise SdbootError(f"{shown}: sha256 {got.sha256} does not match the expected "
                          f"{want}; the download was deleted",
                          "check --sha256, or download again (a mirror may serve a "
                          "damaged file)", exit_code=1)
    name = source.name or (safe_name(got.filename, "file name from the server's "
                                     "Content-Disposition") if got.filename else None) \
        or source.fallback
    if not name:
        raise SdbootError("the server's answer names no file (the URL ends in '/')",
                          f"give the name with --name NAME; the download is kept in "
                          f"{DOWNLOADS}/{part.name}", exit_code=2)
    final = folder / name  # a plain name (safe_name): it cannot leave the folder
    if final.is_dir() and not final.is_symlink():
        remove_tree(folder, final, "old download")
    os.replace(part, final)  # a rename: a link planted at `final` is replaced, not followed
    return final, got.sha256 if want else None, got.resumed
