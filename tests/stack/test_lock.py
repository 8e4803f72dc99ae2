"""The lock file (pure): what it renders and parses back, direct-URL lines, what it refuses,
the differences it names and the machine it fits."""

from __future__ import annotations

import re

import pytest
from packaging.requirements import Requirement

from sdboot.errors import SdbootError
from sdboot.stack.lock import (
    Lock,
    check_lock_fits,
    direct_url_problem,
    lock_differences,
    parse_lock,
    render_lock,
    render_lock_constraints,
)

CLIP = "https://github.com/openai/CLIP/archive/d50d76daa670286dd6cacf3bcd80b5e4823fc8e1.zip"
OPEN_CLIP = ("git+https://github.com/mlfoundations/open_clip.git"
             "@bb6e834e9c70d9c27d0dc3ecedeebeaeb1ffad6b")


def _lock() -> Lock:
    return Lock(python="3.10.13", platform="linux-x86_64", profile="torch2.1.2-cu121",
                index="https://mirror.example/simple/",
                webui_repo="https://github.com/AUTOMATIC1111/stable-diffusion-webui.git",
                webui_commit="82a973c04367123ae98bd9abdf80d9eda9b910e2",
                repositories={"stable-diffusion-stability-ai":
                              "cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf"},
                packages={"clip": "1.0", "numpy": "1.26.2", "open-clip-torch": "2.0.2",
                          "torch": "2.1.2+cu121"},
                hashes={"clip": "sha256:" + "ab" * 32},
                created="2026-12-07T12:00:00+00:00",
                urls={"clip": CLIP, "open-clip-torch": OPEN_CLIP})


def test_round_trip_with_direct_urls() -> None:
    lock = _lock()
    text = render_lock(lock)
    assert f"clip @ {CLIP}  # version: 1.0\n" in text
    assert f"open-clip-torch @ {OPEN_CLIP}  # version: 2.0.2\n" in text
    assert parse_lock(text, "lock.txt") == lock


def test_the_lock_is_a_requirements_file() -> None:
    """Every line pip / uv read (comments stripped as they strip them) is a requirement."""
    for raw in render_lock(_lock()).splitlines():
        line = re.sub(r"(^|\s+)#.*$", "", raw).strip()
        if line:
            req = Requirement(line)
            assert req.url or str(req.specifier).startswith("==")
    constraints = render_lock_constraints(_lock())
    assert "clip==1.0\n" in constraints and "@" not in constraints


@pytest.mark.parametrize(("url", "problem"), [
    (CLIP, None),
    (OPEN_CLIP, None),
    ("http://127.0.0.1:8080/https://github.com/x/y/archive/a.zip", None),
    ("https://user:secret@github.com/x/y/archive/a.zip", "credentials"),
    ("https://ghp_x@github.com/x/y/archive/a.zip", "credentials"),
    ("https://***@github.com/x/y/archive/a.zip", "credentials"),
    ("file:///etc/passwd", "http(s) URL"),
    ("git+ssh://git@github.com/x/y.git@abc", "credentials"),
    ("https://github.com/x/y/a.zip --index-url http://evil/", "http(s) URL"),
    ("https://github.com/x/y/a b.zip", "http(s) URL"),
    ("https://github.com/x/y/a.zip;rm", "http(s) URL"),
])
def test_direct_urls(url: str, problem: str | None) -> None:
    got = direct_url_problem(url)
    assert (got is None) if problem is None else (got is not None and problem in got)
    assert "secret" not in (got or "")


@pytest.mark.parametrize(("line", "says"), [
    ("-r /etc/other.txt", "is not name==version"),
    ("--index-url http://127.0.0.1:9/simple", "is not name==version"),
    ("-e .", "is not name==version"),
    ("numpy>=1.26", "is not name==version"),
    ("pillow==9.5.0 --hash=sha256:" + "0" * 64, "not a version"),
    ("pillow==9.5.0 ; os_name == 'nt'", "not a version"),
    ("pillow==latest", "not a version"),
    ("./numpy-1.26.2.whl", "is not name==version"),
    ("x @ https://github.com/x/y/archive/a.zip", "version: V"),
    ("x @ https://github.com/x/y/archive/a.zip  # version: nope", "not a version"),
    ("x @ https://u:p@github.com/x.zip  # version: 1.0", "credentials"),
    ("x @ /tmp/x.zip  # version: 1.0", "http(s) URL"),
    ("torch==2.1.2", "given twice"),
    ("pillow==9.5.0\x1b[2J", "control character"),
])
def test_tampered_lines_are_refused(line: str, says: str) -> None:
    text = render_lock(_lock()) + line + "\n"
    with pytest.raises(SdbootError) as err:
        parse_lock(text, "lock.txt")
    assert err.value.exit_code == 2 and says in err.value.message
    assert "lock.txt:" in err.value.message and "\x1b" not in err.value.message


def test_differences_name_each_package() -> None:
    lock = _lock()
    have = {"clip": "1.0", "numpy": "2.1.0", "torch": "2.1.2+cu121", "gradio": "5.0"}
    assert lock_differences(lock, have) == [
        "other version: numpy 2.1.0 (the lock has 1.26.2)",
        "missing: open-clip-torch==2.0.2", "extra: gradio==5.0"]
    assert lock_differences(lock, {**lock.packages}) == []


def test_a_lock_fits_its_python_minor_and_platform_only() -> None:
    lock = _lock()
    check_lock_fits(lock, "3.10.6", "linux-x86_64")
    for python, platform in (("3.11.7", "linux-x86_64"), ("3.10.13", "win32-AMD64")):
        with pytest.raises(SdbootError) as err:
            check_lock_fits(lock, python, platform)
        assert err.value.exit_code == 2 and "Python 3.10.13 on linux-x86_64" in err.value.message
