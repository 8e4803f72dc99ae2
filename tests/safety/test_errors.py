"""Every failure a user can cause is the contract's two-line error, never a traceback or an
"internal error": hostile or broken YAML data files (encoding, YAML bombs, size, nesting,
odd keys, things that are not files) and file-system failures that escape a command (a
name too long, a file where a folder belongs, ...). All through the real CLI."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sdboot.errors import describe_os_error
from tests.conftest import ROOT, CliResult, clean_env, run_cli


def two_lines(res: CliResult) -> tuple[str, str]:
    """The stderr of a failed command: exactly `error:` and `hint:`, nothing else."""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2, res.stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    return lines[0], lines[1]


def overlay(config_dir: Path, text: str | bytes, name: str = "mirrors.yaml") -> Path:
    path = config_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def mirror_list(config_dir: Path, timeout: float = 30) -> CliResult:
    return run_cli("mirror", "list", env={"SDBOOT_CONFIG_DIR": str(config_dir)},
                   timeout=timeout)


# --- YAML data files ---------------------------------------------------------------------


def test_non_utf8_overlay_names_file_and_line(config_dir: Path) -> None:
    path = overlay(config_dir, "mirrors:\n  - name: caf\xe9\n".encode("latin-1"))
    res = mirror_list(config_dir)
    assert res.returncode == 2
    error, hint = two_lines(res)
    assert f"{path}:2: not UTF-8 text (byte 0xe9)" in error
    assert "UTF-8" in hint


def test_billion_laughs_is_refused_before_it_expands(config_dir: Path) -> None:
    levels = ["a: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        levels.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    path = overlay(config_dir, "\n".join(levels) + "\n")
    started = time.monotonic()
    res = mirror_list(config_dir, timeout=20)
    assert time.monotonic() - started < 15
    assert res.returncode == 2
    error, _ = two_lines(res)
    assert error.startswith(f"error: {path}:") and "aliases expand to more than" in error


def test_alias_as_mapping_key_is_refused(config_dir: Path) -> None:
    # the shape that expands to gigabytes when a key is turned into text
    text = ("a: &a [x, x, x, x, x, x, x, x, x]\n"
            "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c {*b : 1}\n")
    path = overlay(config_dir, text)
    res = mirror_list(config_dir, timeout=20)
    assert res.returncode == 2
    error, _ = two_lines(res)
    assert f"{path}:3: the alias *b is used as a mapping key" in error


def test_self_referring_alias_is_refused(config_dir: Path) -> None:
    path = overlay(config_dir, "mirrors: &m [*m]\n")
    res = mirror_list(config_dir, timeout=20)
    assert res.returncode == 2
    assert f"{path}:1: the alias *m refers to itself" in two_lines(res)[0]


def test_anchors_used_as_values_still_work(config_dir: Path) -> None:
    overlay(config_dir, "mirrors:\n"
                        "  - &base {name: mine-a, kind: pypi, url: 'https://a.example/simple/'}\n"
                        "  - <<: *base\n"
                        "    name: mine-b\n")
    res = run_cli("mirror", "list", "--json", env={"SDBOOT_CONFIG_DIR": str(config_dir)})
    assert res.returncode == 0, res.stderr
    mine = {m["name"]: m["url"] for m in res.json()["mirrors"] if m["source"] == "user"}
    assert mine == {"mine-a": "https://a.example/simple/", "mine-b": "https://a.example/simple/"}


def test_file_over_1_mb_is_refused_before_parsing(config_dir: Path) -> None:
    # valid YAML that would parse: only the size refuses it
    path = overlay(config_dir, "mirrors: []\n" + "# pad\n" * 200_000)
    res = mirror_list(config_dir)
    assert res.returncode == 2
    error, _ = two_lines(res)
    assert f"{path} is {path.stat().st_size} bytes" in error and "1 MB" in error


def test_deep_nesting_is_bad_data_with_line(config_dir: Path) -> None:
    path = overlay(config_dir, "mirrors: []\nnested:\n  x: " + "[" * 20000 + "]" * 20000 + "\n")
    res = mirror_list(config_dir)
    assert res.returncode == 2
    error, _ = two_lines(res)
    assert f"{path}:3: nested more than 64 levels deep" in error


def test_key_that_is_a_list_is_bad_data_with_line(config_dir: Path) -> None:
    path = overlay(config_dir, "mirrors: []\npresets:\n  ? [cn, tw]\n  : {github: ghfast}\n")
    res = mirror_list(config_dir)
    assert res.returncode == 2
    error, _ = two_lines(res)
    assert f"{path}:3: a mapping key must be a plain name" in error


def test_top_level_list_is_bad_data(config_dir: Path) -> None:
    path = overlay(config_dir, "- name: x\n  kind: pypi\n")
    res = mirror_list(config_dir)
    assert res.returncode == 2
    assert f"{path}:1:" in two_lines(res)[0]


def test_profile_that_is_a_folder(config_dir: Path) -> None:
    (config_dir / "profiles" / "mine.yaml").mkdir(parents=True)
    res = run_cli("profiles", "list", env={"SDBOOT_CONFIG_DIR": str(config_dir)})
    assert res.returncode == 2
    error, hint = two_lines(res)
    assert f"{config_dir / 'profiles' / 'mine.yaml'} is a folder" in error
    assert "plain files" in hint


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX named pipes")
def test_profile_that_is_a_fifo_does_not_hang(config_dir: Path) -> None:
    (config_dir / "profiles").mkdir()
    os.mkfifo(config_dir / "profiles" / "mine.yaml")
    res = run_cli("profiles", "list", env={"SDBOOT_CONFIG_DIR": str(config_dir)}, timeout=20)
    assert res.returncode == 2
    assert "is a named pipe (FIFO), not a data file" in two_lines(res)[0]


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_profile_that_is_a_dangling_symlink(config_dir: Path) -> None:
    (config_dir / "profiles").mkdir()
    link = config_dir / "profiles" / "mine.yaml"
    link.symlink_to(config_dir / "gone.yaml")
    res = run_cli("profiles", "list", env={"SDBOOT_CONFIG_DIR": str(config_dir)})
    assert res.returncode == 2
    assert f"cannot read {link}: No such file or directory" in two_lines(res)[0]


def test_overlay_mirrors_yaml_that_is_a_folder_is_not_skipped(config_dir: Path) -> None:
    (config_dir / "mirrors.yaml").mkdir()
    res = mirror_list(config_dir)
    assert res.returncode == 2
    assert f"{config_dir / 'mirrors.yaml'} is a folder, not a data file" in two_lines(res)[0]


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_overlay_webuis_yaml_that_is_a_dangling_link(tmp_path: Path) -> None:
    env = _offline_install_env(tmp_path)
    link = Path(env["SDBOOT_CONFIG_DIR"]) / "webuis.yaml"
    link.symlink_to(tmp_path / "moved-away.yaml")
    res = run_cli("install", str(tmp_path / "w"), "--dry-run", "--mirror", "loop", env=env)
    assert res.returncode == 2
    assert f"cannot read {link}: No such file or directory" in two_lines(res)[0]


def test_config_dir_that_is_a_file(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "config"
    not_a_dir.write_text("")
    res = run_cli("profiles", "list", env={"SDBOOT_CONFIG_DIR": str(not_a_dir)})
    assert res.returncode == 2
    error, hint = two_lines(res)
    assert f"SDBOOT_CONFIG_DIR {not_a_dir} is not a folder" in error
    assert "SDBOOT_CONFIG_DIR" in hint


# --- file-system failures that escape a command ------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _offline_install_env(tmp_path: Path, github: str | None = None) -> dict[str, str]:
    """A user overlay whose mirror and upstreams are all on loopback: nothing leaves the
    machine, whatever step the install reaches."""
    port = _closed_port()
    config = tmp_path / "install-config"
    overlay(config, "mirrors:\n"
                    f"  - {{name: loop-gh, kind: github-prefix, "
                    f"url: '{github or f'http://127.0.0.1:{port}/'}'}}\n"
                    "presets:\n  loop: {github: loop-gh}\n"
                    "upstreams:\n"
                    f"  github: 'http://127.0.0.1:{port}/gh/'\n"
                    f"  pypi: 'http://127.0.0.1:{port}/simple/'\n"
                    f"  torch: 'http://127.0.0.1:{port}/whl/{{variant}}/'\n"
                    "  hf: ''\n")
    return {"SDBOOT_CONFIG_DIR": str(config), "SDBOOT_CACHE_DIR": str(tmp_path / "cache"),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0"}


def test_cache_dir_that_is_a_file_is_exit_1_naming_the_path(tmp_path: Path) -> None:
    env = _offline_install_env(tmp_path)
    cache = tmp_path / "cache-file"
    cache.write_text("")
    env["SDBOOT_CACHE_DIR"] = str(cache)
    res = run_cli("install", str(tmp_path / "webui"), "--mirror", "loop", "--dry-run",
                  env=env)
    assert res.returncode == 1, res.stderr
    error, hint = two_lines(res)
    assert f"{cache}" in error and "not a directory" in error
    assert "a file is where a folder belongs" in hint


def test_webui_name_too_long_for_the_file_system(tmp_path: Path) -> None:
    webui = tmp_path / ("w" * 240)  # fine itself; sdboot's temporary names beside it are not
    res = run_cli("install", str(webui), "--mirror", "loop", "--yes",
                  env=_offline_install_env(tmp_path))
    assert res.returncode in (1, 2), res.stderr  # 2 if install checks the length first
    error, hint = two_lines(res)
    assert str(tmp_path) in error and ("too long" in error or "longer than" in error)
    assert "shorter" in hint
    assert not webui.exists()


def test_unicode_decode_error_from_a_command_is_exit_2(tmp_path: Path) -> None:
    """A UnicodeDecodeError that escapes any command (a user file read as text somewhere)
    is bad input, not a bug; the real main() maps it."""
    code = ("import sys, typer\n"
            "from sdboot import cli\n"
            "@cli.app.command('readfile')\n"
            "def readfile(path: str) -> None:\n"
            "    open(path, encoding='utf-8').read()\n"
            "cli.main(sys.argv[1:])\n")
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"ok\n\xff\xfe\n")
    proc = subprocess.run([sys.executable, "-c", code, "readfile", str(bad)],
                          capture_output=True, text=True, env=clean_env(), cwd=ROOT, timeout=60)
    res = CliResult(proc.returncode, proc.stdout, proc.stderr)
    assert res.returncode == 2
    error, hint = two_lines(res)
    assert "not UTF-8 text" in error and "UTF-8" in hint


def _real_os_error(make: Callable[[], object]) -> OSError:
    try:
        make()
    except OSError as exc:
        return exc
    raise AssertionError("no OSError")


def test_os_errors_in_plain_words(tmp_path: Path) -> None:
    """Real failures of real system calls, described with the path and what to do."""
    afile = tmp_path / "afile"
    afile.write_text("")
    cases = [
        (lambda: open(tmp_path / ("n" * 300), "w"), "file name too long", "shorter"),
        (lambda: open(tmp_path, "w"), "is a directory", "a folder is where a file belongs"),
        (lambda: open(afile / "x", "w"), "not a directory", "a file is where a folder belongs"),
        (lambda: open(tmp_path / "missing" / "x"), "no such file", "check that the path"),
    ]
    if hasattr(os, "O_NOFOLLOW"):
        link = tmp_path / "link"
        link.symlink_to(afile)
        cases.append((lambda: os.open(link, os.O_RDONLY | os.O_NOFOLLOW),
                      "too many levels of symbolic links", "symbolic link"))
    if Path("/dev/full").exists():
        def fill() -> None:
            with open("/dev/full", "wb", buffering=0) as fh:
                fh.write(b"x")
        cases.append((fill, "no space left on device", "free some disk space"))
    for make, reason, advice in cases:
        exc = _real_os_error(make)
        message, hint, code = describe_os_error(exc)
        assert code == 1
        assert reason in message.lower(), message
        assert exc.filename is None or str(exc.filename) in message
        assert advice in hint, (message, hint)
    for number, advice in ((errno.EROFS, "read-only"), (errno.EACCES, "permissions"),
                           (errno.ENOSPC, "free some disk space")):
        message, hint, _ = describe_os_error(OSError(number, os.strerror(number), "/x/y"))
        assert message.startswith("/x/y: ") and advice in hint
    message, hint, _ = describe_os_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert message.startswith("network error") and "mirror" in hint
    assert json.dumps(describe_os_error(OSError(0, "")))  # never fails on odd errors
