"""The file funnel: atomic writes (temp file + rename, so a crash leaves the old or the new
file, never half of one) and backups of files sdboot changes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, backup: bool = False) -> Path | None:
    """Write data to path atomically. With backup, an existing file is first copied to
    path + '.sdboot-bak' (once: the first backup is the original) and that path returned."""
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = None
    if backup and path.exists():
        saved = path.with_name(path.name + ".sdboot-bak")
        if not saved.exists():
            shutil.copy2(path, saved)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with_suppress_unlink(Path(tmp))
        raise
    return saved


def with_suppress_unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
