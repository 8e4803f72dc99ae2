"""The files sdboot rewrites in a WebUI folder (issue 11): webui-user.sh / .bat get a
backup beside them before the first change (a user's existing backup is never replaced),
lines the user put inside a managed block are kept (moved above it) with a note, `mirror
revert` gives the files back byte for byte, an unreadable .git/info/exclude is a note and
not a crash, and launch-file rewriting is linear in the size of the file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sdboot.install.run import INSTALL_BLOCK, install_block
from sdboot.mirrors.blocks import MIRROR_BLOCK, plan_user_file, write_user_files
from sdboot.mirrors.env import MirrorEnv
from sdboot.mirrors.loading import load_mirrors
from sdboot.mirrors.rewrite import rewrite_text
from tests.conftest import run_cli
from tests.world.githost import git
from tests.world.launchfiles import WEBUI_USER_BAT, WEBUI_USER_SH, write_webui

BEGIN_SH = "# >>> sdboot mirror (managed: sdboot mirror apply / revert) >>>"


def _apply(root: Path, *args: str) -> str:
    res = run_cli("mirror", "apply", str(root), *(args or ("--mirror", "cn")))
    assert res.returncode == 0, res.stderr
    return res.stdout


def _revert(root: Path) -> str:
    res = run_cli("mirror", "revert", str(root))
    assert res.returncode == 0, res.stderr
    return res.stdout


# --- the backup --------------------------------------------------------------------------------


def test_a_backup_is_made_before_the_first_change_and_never_replaced(tmp_path: Path) -> None:
    root = write_webui(tmp_path / "webui")
    dry = run_cli("mirror", "apply", str(root), "--mirror", "cn", "--dry-run")
    assert dry.returncode == 0 and not list(root.glob("*.sdboot-backup"))
    out = _apply(root)
    assert "kept as webui-user.sh.sdboot-backup" in out
    sh_backup = root / "webui-user.sh.sdboot-backup"
    assert sh_backup.read_bytes() == WEBUI_USER_SH.encode()
    assert (root / "webui-user.bat.sdboot-backup").read_bytes() == WEBUI_USER_BAT.encode()
    assert os.stat(sh_backup).st_mode == os.stat(root / "webui-user.sh").st_mode
    # another mirror, a revert, an apply again: the copy of the original stays as it was
    _apply(root, "--github", "gh-proxy")
    _revert(root)
    (root / "webui-user.sh").write_text(WEBUI_USER_SH + "export MINE=1\n")
    again = _apply(root)
    assert "sdboot-backup" not in again
    assert sh_backup.read_bytes() == WEBUI_USER_SH.encode()


def test_a_users_own_backup_and_a_planted_link_are_never_written(tmp_path: Path) -> None:
    root = write_webui(tmp_path / "webui")
    mine = root / "webui-user.sh.sdboot-backup"
    mine.write_bytes(b"my own notes\n")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"victim\n")
    (root / "webui-user.bat.sdboot-backup").symlink_to(victim)
    out = _apply(root)
    assert "sdboot-backup" not in out
    assert mine.read_bytes() == b"my own notes\n"
    assert victim.read_bytes() == b"victim\n"
    assert "HF_ENDPOINT" in (root / "webui-user.bat").read_text()


# --- the user's lines inside a managed block ----------------------------------------------------


def test_user_lines_inside_the_block_are_kept_above_it_with_a_note(tmp_path: Path) -> None:
    root = write_webui(tmp_path / "webui")
    _apply(root)
    sh = root / "webui-user.sh"
    lines = sh.read_text().splitlines(keepends=True)
    at = next(i for i, ln in enumerate(lines) if ln.startswith(BEGIN_SH))
    mine = ['export COMMANDLINE_ARGS="--api --listen"\n', "# my note about the proxy\n",
            "export MY_OWN=1\n"]
    sh.write_text("".join(lines[:at + 2] + mine + lines[at + 2:]))
    out = _apply(root, "--github", "gh-proxy")
    assert "3 line(s) of yours were inside sdboot's managed block" in out
    text = sh.read_text()
    block_at = text.index(BEGIN_SH)
    for line in mine:
        assert text.count(line) == 1 and text.index(line) < block_at
    assert "gh-proxy.org" in text[block_at:] and "ghfast" not in text
    # revert removes sdboot's block and nothing of the user's, inside it or not
    text = sh.read_text()
    sh.write_text(text.replace(BEGIN_SH + "\n", BEGIN_SH + "\nexport LATE=1\n"))
    back = _revert(root)
    assert "1 line(s) of yours" in back
    assert sh.read_text() == WEBUI_USER_SH + "".join(mine) + "export LATE=1\n"


def test_the_install_block_keeps_user_lines_too(tmp_path: Path) -> None:
    """install's webui-user step writes through the same function (plan_user_file)."""
    root = tmp_path / "webui"
    root.mkdir()
    block = install_block("/usr/bin/python3.10", "venv", ["--xformers"], root / "c.txt")
    mirror = MirrorEnv({"PIP_INDEX_URL": "https://pypi.example/simple"})
    (root / "webui-user.sh").write_text(WEBUI_USER_SH)
    files = [plan_user_file(root, "webui-user.sh", "sh",
                            [(INSTALL_BLOCK, block), (MIRROR_BLOCK, mirror)])]
    notes = write_user_files(root, files)
    assert notes == ["webui-user.sh: your original is kept as webui-user.sh.sdboot-backup"]
    text = (root / "webui-user.sh").read_text()
    begin = next(ln for ln in text.splitlines() if "sdboot install" in ln and ">>>" in ln)
    text = text.replace(begin + "\n", begin + "\nexport http_proxy=http://corp:3128\n")
    (root / "webui-user.sh").write_text(text)
    block2 = install_block("/usr/bin/python3.10", "venv", ["--medvram"], root / "c.txt")
    files = [plan_user_file(root, "webui-user.sh", "sh",
                            [(INSTALL_BLOCK, block2), (MIRROR_BLOCK, mirror)])]
    assert files[0].kept == ["export http_proxy=http://corp:3128"]
    notes = write_user_files(root, files)
    assert len(notes) == 1 and "1 line(s) of yours" in notes[0]
    new = (root / "webui-user.sh").read_text()
    assert new.index("export http_proxy=") < new.index(begin)
    assert "--medvram" in new and "--xformers" not in new
    assert (root / "webui-user.sh.sdboot-backup").read_text() == WEBUI_USER_SH


# --- revert, byte for byte ----------------------------------------------------------------------


@pytest.mark.parametrize("sh,bat", [
    ("#!/bin/bash\nexport A=1", "@echo off\r\ncall webui.bat"),         # no final newline
    ("#!/bin/bash\r\nexport A=1\r\n", "@echo off\r\n\r\ncall webui.bat\r\n"),
    ("", ""),                                                            # empty files
    (None, None),                                                        # no files at all
])
def test_env_revert_restores_the_files_byte_for_byte(tmp_path: Path, sh: str | None,
                                                     bat: str | None) -> None:
    root = write_webui(tmp_path / "webui")
    for name, text in (("webui-user.sh", sh), ("webui-user.bat", bat)):
        if text is None:
            (root / name).unlink()
        else:
            (root / name).write_bytes(text.encode())
    _apply(root)
    assert "HF_ENDPOINT" in (root / "webui-user.sh").read_text()
    _apply(root, "--github", "gh-proxy")  # replacing the block keeps the ending too
    _revert(root)
    for name, text in (("webui-user.sh", sh), ("webui-user.bat", bat)):
        if text is None:
            assert not (root / name).exists()
        else:
            assert (root / name).read_bytes() == text.encode()


# --- .git/info/exclude -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "not-utf8", "link-outside", "info-link-outside",
                                  "unreadable"])
def test_an_unusable_git_exclude_is_a_note_not_a_crash(tmp_path: Path, kind: str) -> None:
    root = write_webui(tmp_path / "webui")
    git("init", "-q", cwd=root)
    exclude = root / ".git/info/exclude"
    victim = tmp_path / "victim"
    victim.write_bytes(b"outside\n")
    if kind == "folder":
        exclude.unlink()
        exclude.mkdir()
    elif kind == "not-utf8":
        exclude.write_bytes(b"# caf\xe9\n*.tmp")
    elif kind == "link-outside":
        exclude.unlink()
        exclude.symlink_to(victim)
    elif kind == "info-link-outside":
        info = root / ".git/info"
        for child in info.iterdir():
            child.unlink()
        info.rmdir()
        (tmp_path / "info").mkdir()
        info.symlink_to(tmp_path / "info")
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads any file: run as a normal user to exercise this")
        exclude.chmod(0)
    res = run_cli("mirror", "apply", str(root), "--mirror", "cn")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "HF_ENDPOINT" in (root / "webui-user.sh").read_text()
    if kind == "not-utf8":  # kept byte for byte, sdboot's lines added
        assert exclude.read_bytes().startswith(b"# caf\xe9\n*.tmp\n/.sdboot/\n")
    else:
        assert "may show in `git status`" in res.stdout
    assert victim.read_bytes() == b"outside\n"
    if kind == "info-link-outside":
        assert list((tmp_path / "info").iterdir()) == []
    assert _revert(root) is not None


# --- launch-file rewriting is linear -----------------------------------------------------------


def _launch_file(lines: int) -> str:
    parts = ["import os\r\n"]
    for i in range(lines):
        parts.append(f'r{i} = os.environ.get("R{i}", "https://github.com/o{i}/r{i}.git")'
                     "  # https://github.com/x/y\r\n")
        parts.append(f"u{i} = f'https://github.com/o/r/releases/download/v{{{i}}}/m.pt'\r\n")
    return "".join(parts)


def _seconds(text: str) -> float:
    table = load_mirrors()
    started = time.perf_counter()
    result = rewrite_text(text, "https://ghfast.top/", table.host_bases())
    elapsed = time.perf_counter() - started
    assert len(result.changes) == text.count("\n") - 1
    assert rewrite_text(result.text, None, table.host_bases()).text == text
    return elapsed


def test_rewriting_a_large_launch_file_is_linear() -> None:
    small = _launch_file(3000)
    large = _launch_file(12000)  # about 2 MB
    assert len(large) > 1_800_000
    t_small = min(_seconds(small) for _ in range(2))
    t_large = _seconds(large)
    assert t_large < 10.0
    # 4x the text: a linear rewrite takes about 4x as long, a quadratic one 16x
    assert t_large < 9 * t_small + 0.5, (t_small, t_large)


def test_applying_to_a_large_launch_file_finishes(tmp_path: Path) -> None:
    root = write_webui(tmp_path / "webui", "pre-v1.3")
    text = _launch_file(12000)
    (root / "launch.py").write_bytes(text.encode())
    started = time.perf_counter()
    _apply(root, "--github", "ghfast", "--mode", "rewrite")
    _revert(root)
    assert time.perf_counter() - started < 30.0
    assert (root / "launch.py").read_bytes() == text.encode()
