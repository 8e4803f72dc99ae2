"""Real wheels for the local world without the network: the pip and setuptools wheels the
standard library bundles for ensurepip, and installed distributions repacked from their
RECORD (their real files) into wheels."""

from __future__ import annotations

import base64
import csv
import ensurepip
import hashlib
import io
import zipfile
from importlib import metadata
from pathlib import Path


def repack(name: str, out: Path) -> Path:
    """A py3-none-any wheel of an installed (pure-Python) distribution."""
    dist = metadata.distribution(name)
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{name}-{dist.version}-py3-none-any.whl"
    rows: list[list[str]] = []
    files = list(dist.files or [])
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            rel = str(f)
            if rel.startswith("..") or "__pycache__" in rel or rel.endswith(("RECORD", ".pyc")):
                continue
            data = Path(str(dist.locate_file(f))).read_bytes()
            zf.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            rows.append([rel, f"sha256={digest.decode()}", str(len(data))])
        info = next(str(f).split("/")[0] for f in files
                    if str(f).endswith(".dist-info/METADATA"))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([*rows, [f"{info}/RECORD", "", ""]])
        zf.writestr(f"{info}/RECORD", buf.getvalue())
    return wheel


def bundled(project: str) -> Path | None:
    """The stdlib's ensurepip wheel of pip or setuptools (setuptools: up to Python 3.11)."""
    found = sorted((Path(ensurepip.__file__).parent / "_bundled").glob(f"{project}-*.whl"))
    return found[-1] if found else None


def seed_wheels(out: Path) -> list[Path]:
    """What `uv venv --seed` installs into a Python 3.10 venv: pip, setuptools, wheel (and
    wheel's packaging). Those it cannot find offline are left out."""
    wheels = [w for w in (bundled("pip"), bundled("setuptools")) if w is not None]
    for name in ("wheel", "packaging"):
        try:
            wheels.append(repack(name, out))
        except (metadata.PackageNotFoundError, StopIteration):
            pass
    return wheels
