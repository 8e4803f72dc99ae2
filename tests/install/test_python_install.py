"""Python 3.10 where the machine has none: the pure plan for `uv python install` (argv, the
mirror variable, masking), install's preflight (dry run shows the command and changes
nothing; declined: the error names it), and real uv installing a python-build-standalone
archive from a loopback server in a python mirror's shape (tests/world/pbs.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdboot.errors import SdbootError
from sdboot.install.context import InstallContext
from sdboot.install.plan import InstallOptions
from sdboot.install.preflight import ensure_python
from sdboot.io.runner import Runner
from sdboot.machine.envs.venv import find_python, locate_python
from sdboot.machine.uv_python import (
    MIRROR_VAR,
    find_uv,
    install_hint,
    plan_python_install,
    render_command,
    run_python_install,
)
from sdboot.mirrors.loading import load_mirrors, select
from sdboot.mirrors.table import Mirror, MirrorKind, Selection
from tests.world.local import sdboot_argv
from tests.world.pbs import TAG, ReleaseServer, build_release, downloads_json, packable

ROOT = Path(__file__).resolve().parents[2]
GHFAST_PBS = "https://ghfast.top/https://github.com/astral-sh/python-build-standalone/" \
    "releases/download"
UV = find_uv()
needs_uv = pytest.mark.skipif(UV is None or sys.platform == "win32",
                              reason="needs uv and a POSIX CPython layout")


# --- the plan (pure) ------------------------------------------------------------------------


def test_plan_is_uv_python_install_with_the_mirror_variable() -> None:
    plan = plan_python_install("3.10", "/opt/uv/bin/uv", GHFAST_PBS + "/")
    assert plan is not None
    assert plan.argv == ("/opt/uv/bin/uv", "python", "install", "3.10")
    assert plan.find_argv == ("/opt/uv/bin/uv", "python", "find", "3.10")
    assert dict(plan.env) == {MIRROR_VAR: GHFAST_PBS}  # the trailing / dropped, as uv does
    assert "UV_PYTHON_INSTALL_DIR" not in plan.env  # uv's default place (and the user's say)
    # no mirror chosen: nothing set, so uv's default (or the user's own variable) holds
    assert dict(plan_python_install("3.10", "uv", None).env) == {}  # type: ignore[union-attr]
    assert plan_python_install("3.10", None, GHFAST_PBS) is None  # no uv: no plan


def test_the_plan_per_preset() -> None:
    from sdboot.mirrors.table import python_install_mirror

    table = load_mirrors()
    for spec, expected in [("cn", GHFAST_PBS), ("none", None),
                           ("cn-alt", GHFAST_PBS.replace("ghfast.top", "gh-proxy.org"))]:
        plan = plan_python_install("3.10", "uv", python_install_mirror(select(table, spec)))
        assert plan is not None and plan.env.get(MIRROR_VAR) == expected, spec


def test_shown_command_masks_credentials_on_both_shells() -> None:
    url = "https://bob:hunter2@pbs.corp.example/releases"
    plan = plan_python_install("3.10", "uv", url)
    assert plan is not None
    posix = render_command(plan.argv, plan.env, windows=False)
    assert posix == f"{MIRROR_VAR}=https://***@pbs.corp.example/releases uv python install 3.10"
    windows = render_command(plan.argv, plan.env, windows=True)
    assert windows == (f'$env:{MIRROR_VAR}="https://***@pbs.corp.example/releases"; '
                       "uv python install 3.10")
    hint = install_hint("3.10", url, None, windows=False)
    assert "hunter2" not in hint and "uv python install 3.10" in hint
    assert "pip install uv" in hint  # no uv: the hint says how to get it first
    assert "winget install Python.Python.3.10" in install_hint("3.10", None, "uv", windows=True)


# --- preflight ------------------------------------------------------------------------------


class _UI:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, text: str, style: str = "") -> None:
        self.lines.append(text)

    def begin(self, index: int, total: int, title: str) -> None: ...

    def detail(self, text: str) -> None: ...

    def end(self, status: str, elapsed_s: float, note: str = "") -> None: ...


@pytest.fixture()
def no_python310(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A machine without Python 3.10: PATH holds git and uv only, pyenv and uv's Python
    folder are empty, no uv configuration or download policy from the outside."""
    assert UV is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, exe in (("git", shutil.which("git")), ("uv", UV)):
        assert exe is not None
        (bin_dir / name).symlink_to(os.path.realpath(exe))
    env = {"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "pyenv"),
           "UV_PYTHON_INSTALL_DIR": str(tmp_path / "uv-python"),
           "UV_PYTHON_BIN_DIR": str(tmp_path / "uv-bin"),
           "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1",
           "SDBOOT_CONFIG_DIR": str(tmp_path / "config")}
    for name in [k for k in os.environ if k.startswith(("UV_", "VIRTUAL_ENV", "CONDA_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if locate_python("3.10", Runner()) is not None:
        pytest.skip("this interpreter is 3.10: the machine cannot lack it")
    return env


def _context(root: Path, dry_run: bool = False) -> tuple[InstallContext, _UI]:
    ui = _UI()
    ctx = InstallContext(InstallOptions(root, mirror="cn", dry_run=dry_run), ui, Runner())
    ctx.selection = select(ctx.table, "cn")
    return ctx, ui


@needs_uv
def test_dry_run_without_python_310_shows_the_uv_command_and_changes_nothing(
        no_python310: dict[str, str], tmp_path: Path) -> None:
    webui = tmp_path / "webui"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDBOOT_", "FAKE_"))}
    env.update(no_python310, SDBOOT_LANG="en", NO_COLOR="1", COLUMNS="200",
               SDBOOT_WSL_LIB_DIR="/nonexistent-wsl", SDBOOT_SYSFS_ROOT="/nonexistent-sys",
               SDBOOT_CACHE_DIR=str(tmp_path / "cache"))
    res = subprocess.run(sdboot_argv("install", str(webui), "--mirror", "cn", "--dry-run",
                                     "--json"), env=env, capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["schema"] == "sdboot.install/1"
    # the notes are human text: on stderr beside the --json document
    offer = [n for n in res.stderr.splitlines() if n.startswith("Python 3.10 was not found")]
    assert offer == [f"Python 3.10 was not found: the real run offers to get it with uv: "
                     f"{MIRROR_VAR}={GHFAST_PBS} {tmp_path / 'bin' / 'uv'} python install 3.10"]
    assert not webui.exists()
    # no Python fetched (uv's own cache may appear: `uv python find` caches what it asked)
    assert not (tmp_path / "uv-python").exists() and not (tmp_path / "uv-bin").exists()


@needs_uv
def test_declined_the_error_names_the_command(no_python310: dict[str, str],
                                              tmp_path: Path) -> None:
    ctx, _ = _context(tmp_path / "webui")
    asked: list[str] = []
    ctx.confirm = lambda question: asked.append(question) is not None  # the user says no
    with pytest.raises(SdbootError) as err:
        ensure_python(ctx, ["clone", "env"])
    assert asked and "Download it with uv" in asked[0] and GHFAST_PBS in asked[0]
    assert err.value.exit_code == 1 and "Python 3.10 was not found" in err.value.message
    assert f"{MIRROR_VAR}={GHFAST_PBS} uv python install 3.10" in err.value.hint
    assert not (tmp_path / "uv-python").exists()


def test_nothing_is_asked_when_the_env_step_is_done_or_conda(tmp_path: Path) -> None:
    ctx, _ = _context(tmp_path / "webui")
    ctx.confirm = lambda question: pytest.fail(question)  # type: ignore[arg-type,return-value]
    ensure_python(ctx, ["torch", "verify"])
    ctx.env_kind = "conda"
    ensure_python(ctx, ["env"])


# --- real uv, a loopback mirror -------------------------------------------------------------


def _release(tmp_path: Path, python: str | Path, monkeypatch: pytest.MonkeyPatch
             ) -> tuple[ReleaseServer, str]:
    """A release of `python` served in the mirror shape; uv's download list names it."""
    py = packable(python)
    if py is None:
        pytest.skip(f"{python} has no install_only-like layout to pack")
    archive = build_release(py, tmp_path / "www")
    listing = downloads_json(py, archive, tmp_path / "downloads.json")
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS_JSON_URL", str(listing))
    return ReleaseServer(tmp_path / "www"), archive.name.replace("+", "%2B")


@needs_uv
@pytest.mark.slow
def test_uv_installs_from_the_mirror_and_find_reports_it(no_python310: dict[str, str],
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan run for real: uv fetches <mirror>/<tag>/<asset> from the loopback server,
    and `uv python find` names an interpreter of that version inside uv's folder."""
    server, asset = _release(tmp_path, sys.executable, monkeypatch)
    try:
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        plan = plan_python_install(version, find_uv(), server.mirror_url)
        assert plan is not None
        found = run_python_install(plan, Runner())
        assert server.requests == [f"/pbs/releases/{TAG}/{asset}"]
        assert found.is_relative_to(tmp_path / "uv-python")
        out = subprocess.run([str(found), "-c", "import sys, json, ssl; "
                              "print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60, check=True)
        assert out.stdout.strip() == version
    finally:
        server.stop()


def _python310() -> Path | None:
    try:
        return find_python("3.10", Runner())
    except SdbootError:
        return None


PY310 = _python310()  # found before the fixture hides it


@needs_uv
@pytest.mark.slow
@pytest.mark.skipif(PY310 is None, reason="no Python 3.10 on this machine to pack")
def test_preflight_gets_python_310_through_the_mirror(no_python310: dict[str, str],
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Install's preflight with no 3.10: asks, runs uv through the python mirror, and the
    env step's find_python() then gets what `uv python find 3.10` reports."""
    assert PY310 is not None
    server, asset = _release(tmp_path, PY310, monkeypatch)
    try:
        ctx, ui = _context(tmp_path / "webui")
        ctx.selection = Selection(python=Mirror("loop", MirrorKind.PYTHON,
                                                server.mirror_url + "/"))
        asked: list[str] = []
        ctx.confirm = lambda question: not asked.append(question)
        ensure_python(ctx, ["clone", "env"])
        assert len(asked) == 1 and server.mirror_url in asked[0]
        assert server.requests == [f"/pbs/releases/{TAG}/{asset}"]
        assert any(line.startswith("getting Python 3.10: ") for line in ui.lines)
        base = find_python("3.10", Runner())
        assert base.is_relative_to(tmp_path / "uv-python")
        assert ctx.notes[-1] == f"Python 3.10 installed by uv: {base}"
        ensure_python(ctx, ["env"])  # found now: nothing asked, nothing fetched
        assert len(asked) == 1 and len(server.requests) == 1
    finally:
        server.stop()
