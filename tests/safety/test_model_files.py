"""Hostile and damaged model files (issue 11): a safetensors header of 200000 `[`, a header
length of 2**63 or past the end of the file, git-LFS pointers, HTML and XML pages saved as
models, empty files, truncated / encrypted / oddly compressed .ckpt zips, and a hash cache
(.sdboot/hashes.json) that is garbage. Reading them must give a finding or a two-line
error, never a traceback, never a large allocation; the healthy twin of each must pass."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sdboot.addons.models import ModelType, inspect_model, read_pickle_names
from sdboot.addons.placing import list_models, place
from sdboot.errors import SdbootError
from tests.conftest import run_cli
from tests.doctor.test_doctor import (
    CHECKPOINT_KEYS,
    EMBEDDING_KEYS,
    LORA_KEYS,
    VAE_KEYS,
    safetensors,
)
from tests.world.launchfiles import write_webui

LFS_SHA = "4c" * 32


def _raw_st(path: Path, length: int, body: bytes) -> Path:
    """A file with a safetensors length field of `length` and then `body`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", length) + body)
    return path


def torch_zip(path: Path, keys: list[str], *, protocol: int = 2) -> Path:
    """A small .ckpt in torch's zip layout (archive/data.pkl holding these names as a dict
    of plain ints: nothing in it would run when loaded)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"state_dict": dict.fromkeys(keys, 0)},
                                                     protocol=protocol))
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/data/0", b"\0" * 64)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


def _patch_zip(path: Path, fn: Callable[[bytearray], None]) -> Path:
    raw = bytearray(path.read_bytes())
    fn(raw)
    path.write_bytes(bytes(raw))
    return path


def _headers(raw: bytearray, sig: bytes) -> list[int]:
    out, at = [], raw.find(sig)
    while at >= 0:
        out.append(at)
        at = raw.find(sig, at + 4)
    return out


def _encrypt_flag(raw: bytearray) -> None:
    for at in _headers(raw, b"PK\x03\x04"):
        raw[at + 6] |= 1
    for at in _headers(raw, b"PK\x01\x02"):
        raw[at + 8] |= 1


def _method_99(raw: bytearray) -> None:  # 99 is WinZip AES, which torch cannot read
    for at in _headers(raw, b"PK\x03\x04"):
        raw[at + 8:at + 10] = struct.pack("<H", 99)
    for at in _headers(raw, b"PK\x01\x02"):
        raw[at + 10:at + 12] = struct.pack("<H", 99)


def _directory_past_end(raw: bytearray) -> None:
    at = raw.rfind(b"PK\x05\x06")
    raw[at + 12:at + 16] = struct.pack("<L", 0x7FFFFFFF)  # central directory size


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _chop(path: Path, n: int) -> Path:
    """The file without its last n bytes (a download that broke off in the tensor data)."""
    os.truncate(path, path.stat().st_size - n)
    return path


def _text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               f"oid sha256:{LFS_SHA}\nsize 2132625894\n")
HTML_PAGE = ("<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
             "<body><form action=/login></form></body></html>\n")
XML_PAGE = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            "<Message>Request has expired</Message></Error>")

# kind -> (file name, builder(path) -> path, what the problem says)
HOSTILE: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    "brackets-header": ("deep.safetensors",
                        lambda p: _raw_st(p, 200000, b"[" * 200000), "not a JSON object"),
    "nested-header": ("nest.safetensors",
                      lambda p: _raw_st(p, 5 * 100000, b'{"a":' * 100000), "not valid JSON"),
    "length-2**63": ("huge.safetensors", lambda p: _raw_st(p, 2**63, b"{}"), "at most 100 MB"),
    "length-past-end": ("short.safetensors", lambda p: _raw_st(p, 99 * 1024 * 1024, b"{}"),
                        "header alone needs"),
    "header-not-object": ("list.safetensors",
                          lambda p: _raw_st(p, 8, b'{"a": 1}'), "no valid data_offsets"),
    "truncated-safetensors": ("cut.safetensors",
                              lambda p: _chop(safetensors(p, CHECKPOINT_KEYS), 4),
                              "truncated: its header promises"),
    "lfs-pointer": ("v1-5.safetensors", lambda p: _text(p, LFS_POINTER), "git-LFS pointer"),
    "html-page": ("civitai.safetensors", lambda p: _text(p, HTML_PAGE), "an HTML page"),
    "html-ckpt": ("login.ckpt", lambda p: _text(p, "\ufeff  <html><body>403</body></html>"),
                  "an HTML page"),
    "xml-error": ("expired.safetensors", lambda p: _text(p, XML_PAGE), "an XML page"),
    "json-error": ("api.safetensors", lambda p: _text(p, '{"error": "Unauthorized"}'),
                   "a text file"),
    "empty-safetensors": ("zero.safetensors", lambda p: _text(p, ""), "an empty file"),
    "empty-ckpt": ("zero.ckpt", lambda p: _text(p, ""), "an empty file"),
    "truncated-zip": ("half.ckpt",
                      lambda p: _truncate(torch_zip(p, CHECKPOINT_KEYS), 0.5),
                      "a truncated zip"),
    "encrypted-zip": ("locked.ckpt",
                      lambda p: _patch_zip(torch_zip(p, CHECKPOINT_KEYS), _encrypt_flag),
                      "an encrypted zip"),
    "unknown-method-zip": ("aes.ckpt",
                           lambda p: _patch_zip(torch_zip(p, CHECKPOINT_KEYS), _method_99),
                           "compression method 99"),
    "directory-past-end": ("dir.pt",
                           lambda p: _patch_zip(torch_zip(p, EMBEDDING_KEYS),
                                                _directory_past_end),
                           "past the end"),
    "text-pt": ("notfound.pt", lambda p: _text(p, "404: Not Found"), "a text file"),
}

# kind -> builder of a healthy file of the same format (must never be reported)
HEALTHY: dict[str, tuple[str, Callable[[Path], Path], ModelType]] = {
    "safetensors-checkpoint": ("base.safetensors",
                               lambda p: safetensors(p, CHECKPOINT_KEYS), ModelType.CHECKPOINT),
    "safetensors-lora": ("detail.safetensors", lambda p: safetensors(p, LORA_KEYS),
                         ModelType.LORA),
    "safetensors-metadata": ("meta.safetensors", lambda p: _with_metadata(p), ModelType.VAE),
    "ckpt-zip": ("small.ckpt", lambda p: torch_zip(p, CHECKPOINT_KEYS), ModelType.CHECKPOINT),
    "pt-legacy-pickle": ("neg.pt", lambda p: _legacy(p), ModelType.EMBEDDING),
}


def _with_metadata(path: Path) -> Path:
    header = {"__metadata__": {"format": "pt"},
              **{k: {"dtype": "F16", "shape": [2], "data_offsets": [4 * i, 4 * i + 4]}
                 for i, k in enumerate(VAE_KEYS)}}
    raw = json.dumps(header).encode() + b"   "  # the format allows trailing spaces
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4 * len(VAE_KEYS))
    return path


def _legacy(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"string_to_param": {"*": 0}, "name": "neg"}, protocol=2))
    return path


def build(table: dict[str, tuple[str, Callable[[Path], Path], Any]], kind: str,
          folder: Path) -> Path:
    name, builder, _ = table[kind]
    return builder(folder / name)


# --- reading: a finding, never a crash, never a large allocation -----------------------------


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_each_hostile_file_is_named_for_what_it_is(tmp_path: Path, kind: str) -> None:
    path = build(HOSTILE, kind, tmp_path)
    tracemalloc.start()
    try:
        found = inspect_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found.problem is not None and HOSTILE[kind][2] in found.problem, found
    assert found.type == ModelType.UNKNOWN
    assert peak < 8 * 1024 * 1024, peak  # a length field of 99 MB or 2**63 is not allocated
    if kind == "lfs-pointer":
        assert found.lfs_sha256 == LFS_SHA and "2,132,625,894-byte" in found.problem


@pytest.mark.parametrize("kind", sorted(HEALTHY))
def test_each_healthy_twin_passes(tmp_path: Path, kind: str) -> None:
    found = inspect_model(build(HEALTHY, kind, tmp_path))
    assert found.problem is None and found.type == HEALTHY[kind][2]


def test_a_big_sparse_checkpoint_is_read_from_its_header_only(tmp_path: Path) -> None:
    header = {k: {"dtype": "F16", "shape": [1], "data_offsets": [0, 2 * 1024**3]}
              for k in CHECKPOINT_KEYS}
    raw = json.dumps(header).encode()
    path = tmp_path / "sdxl.safetensors"
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + 2 * 1024**3)  # sparse: costs no disk
    assert inspect_model(path).type == ModelType.CHECKPOINT
    os.truncate(path, 8 + len(raw) + 1024**3)  # half of it is gone
    assert "(50%)" in (inspect_model(path).problem or "")


def test_pickle_reader_survives_zip_errors(tmp_path: Path) -> None:
    """read_pickle_names (used beyond the doctor) says None, it does not raise, for the zip
    kinds that made zipfile raise RuntimeError / NotImplementedError / BadZipFile."""
    for kind in ("encrypted-zip", "unknown-method-zip", "truncated-zip", "directory-past-end"):
        assert read_pickle_names(build(HOSTILE, kind, tmp_path)) is None


# --- sdboot models list / add ----------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_models_list_shows_the_damaged_file(tmp_path: Path, kind: str) -> None:
    webui = write_webui(tmp_path / "webui")
    good = safetensors(webui / "models/Stable-diffusion/good.safetensors", CHECKPOINT_KEYS)
    bad = build(HOSTILE, kind, webui / "models/Lora")
    entries = {e.path: e for e in list_models(webui)}
    entry = entries[bad.relative_to(webui).as_posix()]
    assert entry.problem and HOSTILE[kind][2] in entry.problem
    assert entry.sha256 == hashlib.sha256(bad.read_bytes()).hexdigest()
    assert entries["models/Stable-diffusion/good.safetensors"].problem is None
    assert entries["models/Stable-diffusion/good.safetensors"].type == ModelType.CHECKPOINT
    assert good.is_file()


def test_models_list_cli_marks_corrupt_files(tmp_path: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    safetensors(webui / "models/Stable-diffusion/good.safetensors", CHECKPOINT_KEYS)
    for kind in ("brackets-header", "lfs-pointer", "encrypted-zip", "empty-ckpt"):
        build(HOSTILE, kind, webui / "models/Stable-diffusion")
    res = run_cli("models", "list", "--webui", str(webui))
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    lines = {ln.split()[-1] if "(" not in ln else ln.split("  (")[0].split()[-1]: ln
             for ln in res.stdout.splitlines()}
    assert lines["models/Stable-diffusion/good.safetensors"].startswith("checkpoint")
    for name in ("deep.safetensors", "v1-5.safetensors", "locked.ckpt", "zero.ckpt"):
        line = lines[f"models/Stable-diffusion/{name}"]
        assert line.startswith("corrupt") and "(" in line, line
    doc = run_cli("models", "list", "--webui", str(webui), "--json").json()
    problems = {m["path"].rsplit("/", 1)[-1]: m["problem"] for m in doc["models"]}
    assert problems["good.safetensors"] is None
    assert "git-LFS pointer" in problems["v1-5.safetensors"]


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_models_add_refuses_a_damaged_file(tmp_path: Path, kind: str) -> None:
    webui = write_webui(tmp_path / "webui")
    src = build(HOSTILE, kind, tmp_path / "dl")
    with pytest.raises(SdbootError) as err:
        place(webui, src, ModelType.LORA, move=True)  # even with --type given
    assert err.value.exit_code == 1 and HOSTILE[kind][2] in err.value.message
    assert "sdboot models add URL --sha256" in err.value.hint
    assert src.is_file() and not (webui / "models/Lora" / src.name).exists()


@pytest.mark.parametrize("kind", ["lfs-pointer", "brackets-header", "encrypted-zip"])
def test_models_add_cli_gives_two_lines(tmp_path: Path, kind: str) -> None:
    webui = write_webui(tmp_path / "webui")
    src = build(HOSTILE, kind, tmp_path / "dl")
    res = run_cli("models", "add", str(src), "--webui", str(webui))
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"error: {src.name} is ")
    assert lines[1].startswith("hint: get the real file: sdboot models add URL --sha256")
    if kind == "lfs-pointer":
        assert LFS_SHA in lines[1]  # the pointer's oid is the real file's sha256


# --- the hash cache --------------------------------------------------------------------------

GOOD_SHA = "ab" * 32
BAD_CACHES: dict[str, bytes] = {
    "garbage": b"\x00\xffnot json{{",
    "not-a-dict": b'[1, 2, 3]',
    "deep-nesting": b"[" * 200000,
    "wrong-types": json.dumps({
        "models/Lora/a.safetensors": {"size": "12", "mtime_ns": 1, "sha256": GOOD_SHA},
        "models/Lora/b.safetensors": {"size": True, "mtime_ns": 1, "sha256": GOOD_SHA},
        "models/Lora/c.safetensors": {"size": 1, "mtime_ns": 1.5, "sha256": GOOD_SHA},
        "models/Lora/d.safetensors": {"size": 1, "mtime_ns": 1, "sha256": 42},
        "models/Lora/e.safetensors": {"size": 1, "mtime_ns": 1, "sha256": "../../x"},
        "models/Lora/f.safetensors": [1, 2],
        "models/Lora/g.safetensors": None}).encode(),
    "huge": b'{"x": "' + b"a" * (17 * 1024 * 1024) + b'"}',
}


@pytest.mark.parametrize("kind", sorted(BAD_CACHES))
def test_a_bad_hash_cache_never_breaks_models_list(tmp_path: Path, kind: str) -> None:
    webui = write_webui(tmp_path / "webui")
    lora = safetensors(webui / "models/Lora/a.safetensors", LORA_KEYS)
    cache = webui / ".sdboot/hashes.json"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(BAD_CACHES[kind])
    entries = list_models(webui)
    digest = hashlib.sha256(lora.read_bytes()).hexdigest()
    assert [(e.path, e.sha256) for e in entries] == [("models/Lora/a.safetensors", digest)]
    doc = json.loads(cache.read_text())  # rewritten whole: only good entries
    st = lora.stat()
    assert doc == {"models/Lora/a.safetensors": {"size": st.st_size,
                                                 "mtime_ns": st.st_mtime_ns, "sha256": digest}}


def test_hash_cache_keeps_good_entries_and_drops_bad_ones(tmp_path: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    a = safetensors(webui / "models/Lora/a.safetensors", LORA_KEYS)
    b = safetensors(webui / "models/VAE/b.safetensors", VAE_KEYS)
    st = a.stat()
    cache = webui / ".sdboot/hashes.json"
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({
        "models/Lora/a.safetensors": {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                      "sha256": GOOD_SHA},  # trusted: size and time match
        "models/VAE/b.safetensors": {"size": "x"},
        "models/gone.safetensors": {"size": 1, "mtime_ns": 1, "sha256": GOOD_SHA}}))
    got = {e.path: e.sha256 for e in list_models(webui)}
    assert got == {"models/Lora/a.safetensors": GOOD_SHA,
                   "models/VAE/b.safetensors": hashlib.sha256(b.read_bytes()).hexdigest()}
    assert set(json.loads(cache.read_text())) == set(got)  # the stale and the bad are gone


def test_hash_cache_is_never_written_outside_the_webui(tmp_path: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    safetensors(webui / "models/Lora/a.safetensors", LORA_KEYS)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (webui / ".sdboot").symlink_to(outside, target_is_directory=True)
    res = run_cli("models", "list", "--webui", str(webui), "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["models"][0]["sha256"]
    assert list(outside.iterdir()) == []
    (webui / ".sdboot").unlink()
    (webui / ".sdboot/hashes.json").mkdir(parents=True)  # a folder where the file goes
    assert list_models(webui)[0].sha256
