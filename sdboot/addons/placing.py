"""Placing model files into the WebUI (copy, move, download with resume) and listing them,
with a cache of their hashes; effects go through the file and network funnels."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sdboot.addons.damaged import model_folder, refuse_damaged
from sdboot.addons.models import (
    FOLDERS,
    ModelType,
    classify_file,
    inspect_model,
    is_pickle,
    model_files,
    sha256_file,
)
from sdboot.addons.sources import HASH_CACHE, PICKLE_WARNING, ModelEntry, Source
from sdboot.errors import SdbootError, keep_on_interrupt
from sdboot.i18n import t
from sdboot.io.files import atomic_write, inside, move_no_clobber

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
    hint = t("pass --force to replace {name}, or --name NAME to keep both; the download is "
             "kept: {command}", name=target.name,
             command=f"sdboot models add {kept} --move --force") if kept is not None else \
        t("pass --force to replace {name}, or --name NAME to keep both", name=target.name)
    return SdbootError(t("{path} already exists: not replacing it", path=rel), hint,
                       exit_code=1)


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
    be a plain file name (io.files.safe_name) and the target is proven inside the WebUI. An
    existing file (or link) of that name is never replaced unless force: exit 1."""
    from sdboot.io.files import safe_name

    notes: list[str] = []
    if not file.is_file():
        raise SdbootError(t("{path} is not a file", path=file),
                          t("give the path of a model file or a URL"))
    plain = safe_name(name if name is not None else file.name, t("model file name"))
    refuse_damaged(file)
    found = classify_file(file)
    kind = wanted or found
    if kind == ModelType.UNKNOWN:
        raise SdbootError(t("cannot tell what kind of model {name} is from its header",
                            name=file.name),
                          t("say it with --type checkpoint|vae|lora|embedding|hypernetwork"))
    if wanted is not None and found not in (ModelType.UNKNOWN, wanted):
        notes.append(t("{name} looks like a {found}, placed as a {wanted} as asked",
                       name=file.name, found=str(found), wanted=str(wanted)))
    if is_pickle(file):
        notes.append(t(PICKLE_WARNING, name=file.name))
    if expected_sha256:
        actual = sha256_file(file)
        if actual != expected_sha256.lower():
            raise SdbootError(t("{name} has sha256 {actual}, expected {expected}",
                                name=file.name, actual=actual, expected=expected_sha256),
                              t("the file is damaged or not the one you meant"), exit_code=1)
    folder = root / FOLDERS[kind]
    model_folder(root, folder)  # before mkdir: never a folder outside
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SdbootError(t("cannot create {path}: {reason}", path=folder,
                            reason=exc.strerror or exc),
                          t("make the WebUI folder writable for this user"),
                          exit_code=1) from None
    target = model_folder(root, folder) / plain
    if os.path.lexists(target):
        if target.is_dir() and not target.is_symlink():
            raise SdbootError(t("{path} is a folder", path=shown_path(root, target)),
                              t("move it away, or give another name with --name NAME"),
                              exit_code=1)
        if not target.is_symlink() and target.stat().st_size == file.stat().st_size and \
                sha256_file(target) == sha256_file(file):
            notes.append(t("{path} is already there (same file)",
                           path=shown_path(root, target)))
            if move and not os.path.samefile(file, target):
                file.unlink()
            return target, kind, notes
        if not force:
            raise _exists_error(root, target, file if downloaded else None)
        notes.append(t("{path} replaced (--force)", path=shown_path(root, target)))
    try:
        _put(file, target, move, force)
    except SdbootError as exc:
        if exc.exit_code == 1 and "already exists" in exc.message:
            raise _exists_error(root, target, file if downloaded else None) from None
        raise
    except OSError as exc:
        raise SdbootError(t("cannot write {path}: {reason}", path=target,
                            reason=exc.strerror or exc),
                          t("make {folder} writable for this user (and check the free "
                            "space), then run the command again", folder=target.parent),
                          exit_code=1) from None
    return target, kind, notes


DOWNLOADS = ".sdboot/downloads"


def _downloads(root: Path) -> Path:
    folder = root / DOWNLOADS
    inside(root, folder, t("the downloads folder"))  # a planted .sdboot link: refused
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SdbootError(t("cannot create {path}: {reason}", path=folder,
                            reason=exc.strerror or exc),
                          t("make the WebUI folder writable for this user"),
                          exit_code=1) from None
    return inside(root, folder, t("the downloads folder"))


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
    from sdboot.io.files import remove_tree, safe_name
    from sdboot.io.http_rules import DownloadError
    from sdboot.io.net import download

    folder = _downloads(root)
    part = folder / part_name(source)
    known = (expected_sha256 or source.sha256 or "").lower() or None
    keep_on_interrupt(t("what was downloaded is kept in {path}; run the same command again "
                        "to resume", path=part))
    try:
        got = download(source.url, part, headers=source.headers, on_progress=on_progress,
                       verify=True if known else None)
    except DownloadError as exc:
        raise SdbootError(t("download failed: {error}", error=exc.message), exc.hint or t(
            "run the same command again to resume (a mirror may help: HF_ENDPOINT / sdboot "
            "mirror test)"), exit_code=1) from None
    if source.size is not None and got.size != source.size:
        part.unlink(missing_ok=True)
        raise SdbootError(t("{name}: {got} bytes, the source lists {size}; the download "
                            "was deleted", name=source.name or part.name, got=got.size,
                            size=source.size),
                          t("download again (a mirror may serve a damaged file)"),
                          exit_code=1)
    want = known or got.remote_sha256
    if want and got.sha256 != want:
        part.unlink(missing_ok=True)
        shown = source.name or source.fallback or part.name
        raise SdbootError(t("{name}: sha256 {got} does not match the expected {want}; the "
                            "download was deleted", name=shown, got=got.sha256, want=want),
                          t("check --sha256, or download again (a mirror may serve a "
                            "damaged file)"), exit_code=1)
    name = source.name or (safe_name(got.filename, t("file name from the server's "
                                       "Content-Disposition")) if got.filename else None) \
        or source.fallback
    if not name:
        raise SdbootError(t("the server's answer names no file (the URL ends in '/')"),
                          t("give the name with --name NAME; the download is kept in {path}",
                            path=f"{DOWNLOADS}/{part.name}"), exit_code=2)
    final = folder / name  # a plain name (safe_name): it cannot leave the folder
    if final.is_dir() and not final.is_symlink():
        remove_tree(folder, final, t("old download"))
    os.replace(part, final)  # a rename: a link planted at `final` is replaced, not followed
    return final, got.sha256 if want else None, got.resumed
