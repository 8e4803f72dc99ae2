"""Output in a real terminal (a pty of 80 and 200 columns) and in a pipe: the live progress
display finishes, lines fit the terminal and break between words (never inside one), the
spinner of a slow doctor or mirror test shows and leaves nothing behind, and a pipe gets
whole lines whatever their length and no spinner, so URLs and commands stay copyable."""

from __future__ import annotations

import fcntl
import io
import os
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from sdboot.cli.terminal import say, say_command
from tests.conftest import ROOT, clean_env
from tests.world.githost import GitHost, closed_port
from tests.world.gpu import RTX_3060, GpuLibs, Scenario

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# what a terminal does with the output: escape sequences, carriage returns, cursor-up and
# erase-line (a live display redraws in place, a transient one erases itself at the end)
_TERM = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|"
                   r"\x1b[()][A-Z0-9]|\x1b[78=>]|(\r|\n)|([^\x1b\r\n]+)")
SCENARIO = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
TIMING = re.compile(r"^\d+(\.\d+)?$|^(ms|s)$")  # a step's or a check's elapsed time


def screen(raw: str) -> list[str]:
    """The lines a terminal shows at the end (no line is folded here: a line longer than
    the terminal shows as it is, so the test sees it)."""
    rows, row, col = [""], 0, 0
    for m in _TERM.finditer(raw):
        params, command, control, text = m.groups()
        if text:
            line = rows[row].ljust(col)
            rows[row] = line[:col] + text + line[col + len(text):]
            col += len(text)
        elif control == "\r":
            col = 0
        elif control == "\n":
            row, col = row + 1, 0
            if row == len(rows):
                rows.append("")
        elif command == "A":
            row = max(0, row - int(params or 1))
        elif command == "K":
            rows[row] = "" if params == "2" else rows[row][:col]
    return rows


def _env(gpu_libs: GpuLibs, config_dir: Path) -> dict[str, str]:
    env = clean_env(gpu_libs.env(SCENARIO), SDBOOT_CONFIG_DIR=str(config_dir),
                    SDBOOT_CACHE_DIR=str(config_dir / "cache"), TERM="xterm-256color")
    for var in ("COLUMNS", "LINES", "NO_COLOR"):
        env.pop(var, None)
    return env


def in_pty(argv: list[str], cols: int, env: dict[str, str], cwd: Path,
           timeout: float = 60, ctrl_c_after: float | None = None, answer: bytes = b"",
           ) -> tuple[int, str, list[str]]:
    """Run sdboot on a pty of `cols` columns (typing `answer`, pressing Ctrl-C after
    `ctrl_c_after` seconds): its exit code, what it wrote (escape codes and all), and the
    screen's lines at the end."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "sdboot", *argv], stdin=slave,
                            stdout=slave, stderr=slave, env=env, cwd=cwd,
                            start_new_session=True)
    os.close(slave)
    if answer:
        os.write(master, answer)
    started = time.monotonic()
    out, deadline = b"", started + timeout
    try:
        while time.monotonic() < deadline:
            if ctrl_c_after is not None and time.monotonic() - started > ctrl_c_after:
                os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
                ctrl_c_after = None
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
        else:
            proc.kill()
            pytest.fail(f"sdboot {' '.join(argv)} did not finish in {timeout} s in a "
                        f"terminal:\n{out.decode(errors='replace')[-2000:]}")
        rc = proc.wait(timeout=10)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    raw = out.decode(errors="replace")
    return rc, raw, screen(raw)


def _words(lines: list[str]) -> list[str]:
    """The words shown, in order; elapsed times, a command's prompt mark and its line
    continuations left out (they differ from run to run, or with the width)."""
    return [w for line in lines for w in line.split()
            if w not in ("\\", "$") and not TIMING.match(w)]


@pytest.fixture()
def webui(tmp_path: Path) -> Path:
    """A WebUI folder in the shape the doctor knows (launch.py, modules/launch_utils.py)."""
    root = tmp_path / "stable-diffusion-webui"
    (root / "modules").mkdir(parents=True)
    (root / "launch.py").write_text("from modules import launch_utils\n")
    (root / "modules" / "launch_utils.py").write_text("def prepare_environment(): pass\n")
    return root


@pytest.fixture()
def slow_python(tmp_path: Path) -> Path:
    """An interpreter that takes a second to start: the doctor's probe of the environment
    takes long enough for the spinner to show."""
    shim = tmp_path / "slow-env" / "bin" / "python"
    shim.parent.mkdir(parents=True)
    shim.write_text(f"#!/bin/sh\nsleep 1\nexec {shlex.quote(sys.executable)} \"$@\"\n")
    shim.chmod(0o755)
    return shim


@pytest.fixture()
def hanging_mirror(config_dir: Path) -> Iterator[Callable[[], None]]:
    """Call it for a mirror table of one GitHub mirror that answers after the deadline,
    and an upstream that refuses: the mirror test waits its whole deadline, then finds
    nothing alive."""
    slow = GitHost({}, delay_s=5).start()

    def use() -> None:
        (config_dir / "mirrors.yaml").write_text(
            "replace_shipped: true\nmirrors:\n"
            f"  - {{name: slow, kind: github-prefix, url: '{slow.url}'}}\n"
            f"upstreams:\n  github: 'http://127.0.0.1:{closed_port()}/'\n")

    try:
        yield use
    finally:
        slow.stop()


@dataclass
class Case:
    argv: Callable[[Path, Path], list[str]]  # (webui, tmp_path) -> argv
    rc: int
    last: str  # the end of the output: it came out whole
    spinner: str | None = None  # shown while it works, gone at the end
    hanging: bool = False  # with the hanging mirror as the whole mirror table


CASES = {
    "doctor": Case(lambda w, tmp: ["doctor", str(w), "--offline", "--python",
                                   str(tmp / "slow-env" / "bin" / "python")],
                   1, "Every code is explained in:", "checking the system"),
    "install-dry-run": Case(lambda w, tmp: ["install", str(tmp / "new-webui"), "--dry-run"],
                            0, "Dry run: nothing was changed."),
    "profiles-list": Case(lambda w, tmp: ["profiles", "list"], 0, "details: sdboot profiles"),
    "mirror-test": Case(lambda w, tmp: ["mirror", "test", "--kind", "github", "--timeout",
                                        "1.5"], 1, "you seem to be offline", "probing",
                        hanging=True),
    "mirror-list": Case(lambda w, tmp: ["mirror", "list"], 0,  # the shipped table: long lines
                        "Repositories that are gone, and their replacements:"),
}
FOLDABLE = 40  # a word this long (a path, a URL) may be folded inside a narrow column


def _same_words(narrow: list[str], wide: list[str]) -> None:
    """The narrow screen shows the wide one's words in the same order: none broken, none
    cut short (…), none lost; only a long word may be folded, its pieces giving it back."""
    i = 0
    for word in wide:
        shown = narrow[i] if i < len(narrow) else "<nothing>"
        if shown != word and len(word) >= FOLDABLE:
            while word.startswith(shown) and shown != word and i + 1 < len(narrow):
                i += 1
                shown += narrow[i]
        assert shown == word, f"at 80 columns {word!r} shows as {shown!r}"
        i += 1
    assert i == len(narrow), f"80 columns show more: {narrow[i:]}"


def _fit_and_same_words(narrow: list[str], wide: list[str]) -> None:
    for cols, lines in ((80, narrow), (200, wide)):
        # a line longer than the terminal holds one word only (a URL or a path longer than
        # the line: left whole for the terminal to fold, so that it copies whole), and a
        # command's line continuation
        too_long = [line for line in lines if cell_len(line.rstrip()) > cols
                    and len(_words([line])) > 1]
        assert not too_long, f"{cols} columns: {too_long}"
    _same_words(_words(narrow), _words(wide))


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.usefixtures("slow_python")
def test_fits_80_and_200_columns_without_breaking_words(
        name: str, gpu_libs: GpuLibs, config_dir: Path, webui: Path, tmp_path: Path,
        hanging_mirror: Callable[[], None]) -> None:
    case = CASES[name]
    if case.hanging:
        hanging_mirror()
    argv = case.argv(webui, tmp_path)
    env = _env(gpu_libs, config_dir)
    rc80, raw80, narrow = in_pty(argv, 80, env, tmp_path)
    rc200, _, wide = in_pty(argv, 200, env, tmp_path)
    shown = "\n".join(narrow)
    assert rc80 == rc200 == case.rc, shown
    assert "Traceback" not in raw80 and case.last in shown, shown
    _fit_and_same_words(narrow, wide)
    if case.spinner:
        assert case.spinner in raw80  # it showed while the command worked
        assert case.spinner not in shown  # and left nothing behind


@pytest.mark.usefixtures("slow_python")
def test_chinese_lines_fit_and_lose_nothing(gpu_libs: GpuLibs, config_dir: Path, webui: Path,
                                            tmp_path: Path) -> None:
    """In Chinese (no spaces between words) a line breaks between characters: each fits the
    terminal's cells (a CJK character takes two), none starts with closing punctuation, and
    the narrow screen holds the same text as the wide one."""
    argv = CASES["doctor"].argv(webui, tmp_path)
    env = {**_env(gpu_libs, config_dir), "SDBOOT_LANG": "zh_CN"}
    rc60, _, narrow = in_pty(argv, 60, env, tmp_path)
    rc200, _, wide = in_pty(argv, 200, env, tmp_path)
    assert rc60 == rc200 == 1 and any("大模型" in line for line in narrow), narrow
    assert not [line for line in narrow if cell_len(line.rstrip()) > 60
                and len(_words([line])) > 1], "\n".join(narrow)
    assert not [line for line in narrow if line.strip() and line.strip()[0] in "，。：；、）"]
    assert "".join(_words(narrow)) == "".join(_words(wide))


def test_ctrl_c_during_the_spinner_leaves_the_terminal_clean(
        gpu_libs: GpuLibs, config_dir: Path, tmp_path: Path,
        hanging_mirror: Callable[[], None]) -> None:
    """Ctrl-C while the spinner turns: exit 130, the spinner gone, the cursor shown again."""
    hanging_mirror()
    rc, raw, lines = in_pty(["mirror", "test", "--timeout", "60"], 80,
                            _env(gpu_libs, config_dir), tmp_path, ctrl_c_after=1.5)
    assert rc == 130, raw
    assert "probing" in raw and not any("probing" in line for line in lines), raw
    assert raw.rfind("\x1b[?25h") > raw.rfind("\x1b[?25l") >= 0, raw  # cursor back


def test_a_pipe_gets_whole_lines(gpu_libs: GpuLibs, config_dir: Path, webui: Path,
                                 tmp_path: Path) -> None:
    """No wrapping when stdout is not a terminal: a finding, its fix and a planned command
    stay on one line however long, so they can be copied and grepped."""
    env = _env(gpu_libs, config_dir)
    doctor = subprocess.run([sys.executable, "-m", "sdboot", "doctor", str(webui), "--offline"],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    lines = doctor.stdout.splitlines()
    finding = [line for line in lines if "env-missing:" in line]
    assert len(finding) == 1 and len(finding[0]) > 100, doctor.stdout
    assert finding[0].rstrip().endswith("setting")  # the whole message on its line
    target = tmp_path / ("a-long-folder-name-" * 6) / "webui"
    plan = subprocess.run([sys.executable, "-m", "sdboot", "install", str(target), "--dry-run"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert plan.returncode == 0, plan.stderr
    clone = [line for line in plan.stdout.splitlines() if " clone " in line]
    assert clone and clone[0].rstrip().endswith(str(target)), plan.stdout
    table = subprocess.run([sys.executable, "-m", "sdboot", "mirror", "list"],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    dead = [line for line in table.stdout.splitlines() if "https://ghproxy.com/" in line]
    assert len(dead) == 1 and dead[0].rstrip().endswith("dead since 2023-11"), table.stdout


def test_no_spinner_in_a_pipe_or_with_json(gpu_libs: GpuLibs, config_dir: Path, webui: Path,
                                           slow_python: Path,
                                           hanging_mirror: Callable[[], None]) -> None:
    """A pipe gets the result only: no spinner frames, no escape codes; --json on a
    terminal gets no spinner either (its stderr stays quiet)."""
    hanging_mirror()
    env = _env(gpu_libs, config_dir)
    for argv, spinner, last in (
            (["doctor", str(webui), "--offline", "--python", str(slow_python)],
             "checking the system", "Every code is explained in:"),
            (["mirror", "test", "--kind", "github", "--timeout", "1.5"], "probing",
             "you seem to be offline")):
        res = subprocess.run([sys.executable, "-m", "sdboot", *argv], capture_output=True,
                             text=True, env=env, cwd=ROOT, timeout=60)
        assert res.returncode == 1, res.stderr
        both = res.stdout + res.stderr
        assert spinner not in both and "\x1b" not in both and last in both, both
        rc, raw, _ = in_pty([*argv, "--json"], 80, env, ROOT)
        assert rc == 1 and spinner not in raw, raw


def _console(width: int) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=width, color_system=None,
                   soft_wrap=False), out


def test_say_breaks_between_words_with_a_hanging_indent() -> None:
    con, out = _console(30)
    say(con, "error env-missing: no Python environment found for the WebUI", indent=4,
        hang=6)
    assert out.getvalue().splitlines() == [
        "    error env-missing: no",
        "      Python environment found",
        "      for the WebUI"]
    con, out = _console(20)  # a word longer than the line stays whole, on its own line
    say(con, "see https://example.invalid/a/very/long/path/to/a/page now", indent=2)
    assert out.getvalue().splitlines() == [
        "  see", "    https://example.invalid/a/very/long/path/to/a/page", "    now"]
    con, out = _console(24)  # Chinese breaks between characters, never before a closing mark
    say(con, "没有找到 WebUI 的 Python 环境：没有 --python，没有安装记录，也没有 venv/")
    lines = out.getvalue().splitlines()
    assert "".join(lines).replace(" ", "") == \
        "没有找到WebUI的Python环境：没有--python，没有安装记录，也没有venv/"
    assert all(cell_len(line) <= 24 and line.lstrip()[:1] not in "，：" for line in lines)
    for width in range(8, 24):  # an opening mark never ends a line, a closing one never starts one
        con, out = _console(width)
        say(con, "没有找到可加载的大模型（checkpoint）：WebUI 没有模型可用")
        lines = out.getvalue().splitlines()
        assert not [ln for ln in lines if ln.rstrip().endswith("（")
                    or ln.lstrip().startswith(("）", "："))], (width, lines)


def test_a_command_breaks_between_arguments_and_pastes_as_one() -> None:
    args = [shlex.quote(a) for a in ["/env/bin/python", "-m", "pip", "install",
                                     "torch==2.1.2+cu121", "--index-url",
                                     "https://download.pytorch.org/whl/cu121", "a b"]]
    con, out = _console(40)
    say_command(con, Text("fix: "), args, indent=2)
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 48 for line in lines) and len(lines) > 2, lines
    assert all(line.endswith(" \\") for line in lines[:-1])
    joined = " ".join(line.strip().removesuffix("\\").strip() for line in lines)
    assert shlex.split(joined.removeprefix("fix: ")) == [shlex.split(a)[0] for a in args]
    con, out = _console(20)  # a prompt mark stays with the first word, however long
    say_command(con, Text("$ "), ["/a/very/long/path/to/python", "-m", "pip"])
    assert out.getvalue().splitlines() == ["$ /a/very/long/path/to/python \\", "    -m pip"]
    con, out = _console(40)  # a pipe-like console (soft wrap): one line however long
    con.soft_wrap = True
    say_command(con, Text("fix: "), args, indent=2)
    assert out.getvalue() == "  fix: " + " ".join(args) + "\n"


def test_verify_then_doctor_fix_in_a_terminal(world, gpu_libs: GpuLibs,
                                              tmp_path: Path) -> None:
    """A CPU torch on an NVIDIA machine: verify's finding and fix command at 80 and 200
    columns; then doctor --fix --yes: the fix's spinner, the command it ran, the new
    state; every line fits 80 columns or holds one word."""
    from tests.doctor.test_doctor import GOOD, healthy_webui, make_env

    webui = healthy_webui(world, tmp_path / "webui")
    shutil.rmtree(webui / "venv")
    make_env(world, webui / "venv", "cpu")
    env = world.env(gpu_libs.env(GOOD))
    env.update(TERM="xterm-256color")
    env.pop("COLUMNS", None)
    verify = ["verify", str(webui)]
    rc80, _, narrow = in_pty(verify, 80, env, tmp_path, timeout=120)
    rc200, _, wide = in_pty(verify, 200, env, tmp_path, timeout=120)
    assert rc80 == rc200 == 1 and any("cpu-torch" in line for line in narrow), narrow
    assert any(line.lstrip().startswith("$ ") for line in narrow), "\n".join(narrow)
    _fit_and_same_words(narrow, wide)
    rc, raw, lines = in_pty(["doctor", str(webui), "--offline", "--fix", "--yes"], 80, env,
                            tmp_path, timeout=120)
    shown = "\n".join(lines)
    assert rc == 0, shown
    assert "✓ fixed [cpu-torch]:" in shown and "After the fixes:" in shown, shown
    assert "0 error(s)" in shown and "running the fixes" in raw, shown
    assert not [line for line in lines if len(line) > 80 and len(_words([line])) > 1], shown
