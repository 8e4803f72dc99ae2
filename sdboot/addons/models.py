"""Model files: what kind a file is, from its header only (safetensors: the JSON header's
tensor names; .ckpt / .pt: the names in the pickle, read with pickletools without running
it), which WebUI folder each kind belongs in, and the short hash the WebUI shows."""

from __future__ import annotations

import hashlib
import json
import os
import pickletools
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sdboot.i18n import N_, t
from sdboot.values import StrEnum

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


_NOT_JSON_OBJECT = N_("not a safetensors: its header is not a JSON object")
_NO_ZIP64_END = N_("a damaged zip: its zip64 end record is missing")


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
        return t("an empty file (0 bytes): the download or copy never wrote anything"), None
    if head.startswith(LFS_MAGIC) and size <= 1024:
        text = head.decode("ascii", "replace")
        oid = re.search(r"^oid sha256:([0-9a-f]{64})\s*$", text, re.M)
        real = re.search(r"^size (\d+)\s*$", text, re.M)
        pointer = t("a git-LFS pointer of a {real}-byte file ({size} bytes of text), not the "
                  "model: it was cloned or downloaded without git-lfs",
                  real=f"{int(real.group(1)):,}", size=size) if real else \
            t("a git-LFS pointer ({size} bytes of text), not the model: it was cloned or "
              "downloaded without git-lfs", size=size)
        return pointer, oid.group(1) if oid else None
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return t("an HTML page saved as a model (a login, error or download page), not the "
                 "model: the real file was never fetched"), None
    if lowered.startswith(b"<?xml"):
        return t("an XML page saved as a model (often an 'Access denied' or expired-link "
                 "error), not the model"), None
    return None, None


def _safetensors_keys(fh: BinaryIO, head: bytes, size: int) -> list[str]:
    """The tensor names from a safetensors header, read with at most MAX_HEADER bytes and
    never more than the file holds; raises _Corrupt when the WebUI could not load it."""
    if size < 8 or len(head) < 8:
        raise _Corrupt(t("truncated: {size} bytes, less than a safetensors header", size=size))
    (length,) = struct.unpack("<Q", head[:8])
    if length > MAX_HEADER:
        if _is_text(head[:64]):
            raise _Corrupt(t("a text file ('{start}...'), not a safetensors",
                             start=_text_start(head)))
        raise _Corrupt(t("not a safetensors: its header length field says {length} bytes "
                         "(the format allows at most 100 MB)", length=f"{length:,}"))
    if length < 2:
        raise _Corrupt(t("not a safetensors: its header is empty"))
    if 8 + length > size:
        raise _Corrupt(t("truncated, or not a safetensors: the header alone needs {length} "
                         "bytes and the file holds {held} after the length field",
                         length=f"{length:,}", held=f"{size - 8:,}"))
    fh.seek(8)
    raw = fh.read(length)
    if len(raw) != length or not raw.lstrip(b" ").startswith(b"{"):
        raise _Corrupt(t(_NOT_JSON_OBJECT))
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _Corrupt(t("not a safetensors: its header is not valid JSON")) from None
    if not isinstance(header, dict):
        raise _Corrupt(t(_NOT_JSON_OBJECT))
    end = 0
    keys = []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int and o >= 0 for o in offsets)
                and offsets[0] <= offsets[1]):
            raise _Corrupt(t("a damaged safetensors header: tensor {key} has no valid "
                             "data_offsets", key=repr(key[:60])))
        end = max(end, offsets[1])
        keys.append(key)
    need = 8 + length + end
    if need > size:
        raise _Corrupt(t("truncated: its header promises {need} bytes, the file holds "
                         "{size} ({percent}%): the download broke off", need=f"{need:,}",
                         size=f"{size:,}", percent=100 * size // need))
    return keys


def _zip_directory(fh: BinaryIO, size: int) -> tuple[int, int, int]:
    """(entries, directory size, directory offset) from a zip's end records, reading only
    the file's last 64 KiB (and the zip64 record it points to)."""
    tail_len = min(size, 22 + 65535)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise _Corrupt(t("a truncated zip (its end, the central directory, is missing): the "
                         "download or copy broke off"))
    _, _, _, _, entries, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", tail[at:at + 22])
    if entries == 0xFFFF or 0xFFFFFFFF in (cd_size, cd_offset):
        loc = at - 20
        if loc < 0 or tail[loc:loc + 4] != b"PK\x06\x07":
            raise _Corrupt(t(_NO_ZIP64_END))
        (z64_at,) = struct.unpack("<Q", tail[loc + 8:loc + 16])
        if z64_at + 56 > size:
            raise _Corrupt(t("a damaged zip: its zip64 end record points past the file"))
        fh.seek(z64_at)
        rec = fh.read(56)
        if len(rec) != 56 or rec[:4] != b"PK\x06\x06":
            raise _Corrupt(t(_NO_ZIP64_END))
        entries, cd_size, cd_offset = struct.unpack("<3Q", rec[32:56])
    if cd_offset + cd_size > size:
        raise _Corrupt(t("a truncated or damaged zip: its directory points past the end of "
                         "the file"))
    if entries > MAX_ZIP_ENTRIES or cd_size > MAX_ZIP_DIRECTORY:
        raise _Corrupt(t("not a torch file: its zip directory claims {entries} entries in "
                         "{size} bytes", entries=f"{entries:,}", size=f"{cd_size:,}"))
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
        raise _Corrupt(t("a damaged zip ({error})", error=exc)) from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            if info.flag_bits & 0x1:
                raise _Corrupt(t("an encrypted zip ({name} needs a password): torch cannot "
                                 "read it", name=info.filename[:60]))
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _Corrupt(t("a zip with compression method {method}, which torch "
                                 "cannot read", method=info.compress_type))
            if info.header_offset + info.compress_size > size:
                raise _Corrupt(t("a truncated zip: its entries run past the end of the "
                                 "file"))
        pkl = next((i for i in infos if i.filename.endswith("data.pkl")), None)
        if pkl is None:
            raise _Corrupt(t("a zip without data.pkl: not a file saved by torch"))
        if pkl.file_size > limit:
            return None
        try:
            data = zf.read(pkl)
        except _ZIP_ERRORS as exc:
            raise _Corrupt(t("a damaged zip: {name} cannot be read ({error})",
                             name=pkl.filename[:60], error=exc)) from None
    try:
        return _pickle_strings(data)
    except ValueError:
        raise _Corrupt(t("a damaged torch file: its data.pkl is not a complete "
                         "pickle")) from None


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
            raise _Corrupt(t("a text file ('{start}'), not a torch file",
                             start=_text_start(head))) from None
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
    except _Corrupt as exc:  # its argument is a t() text: translated where people read it
        return Inspection(ModelType.UNKNOWN, (), exc.args[0])
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


