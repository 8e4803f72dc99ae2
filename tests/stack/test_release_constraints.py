"""Known-good constraints of WebUI releases: the resolution as of a date (real uv against a
loopback index that carries upload times, whose newer versions are the broken ones), the
torch stack exempt and dropped; the shipped files (every catalogued release, valid, consistent
with its profile); loading and validating them; what the install passes with -c."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from sdboot.errors import SdbootError
from sdboot.io.datafile import data_dir
from sdboot.io.runner import Runner
from sdboot.stack.packages import numpy_cap, render_constraints
from sdboot.stack.profiles import load_profiles
from sdboot.stack.release_constraints import (
    CONSTRAINTS_DIR,
    TORCH_STACK,
    Entry,
    cutoff,
    drop_closure,
    fit_to_profile,
    parse_compiled,
    parse_conflicts,
    parse_release_constraints,
    read_release_constraints,
    resolve,
    shipped_path,
)
from tests.world.dated_index import DatedIndex
from tests.world.wheels import build_wheel

UV = shutil.which("uv")


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> DatedIndex:
    """A 2024 app whose unpinned library broke in 2025, and a torch uploaded after the app
    (the profile's choice, exempt from the cutoff) with a dependency only it needs."""
    root = tmp_path_factory.mktemp("dated")
    build = root / "build"
    index = DatedIndex(root / "index")
    index.add(build_wheel(build, "sdb-app", "1.0", {"sdb_app.py": "import sdb_lib\n"},
                          ["sdb-lib>=1", "torch"]), "2024-01-01T00:00:00Z")
    index.add(build_wheel(build, "sdb-lib", "1.5", {"sdb_lib.py": "API = 1\n"}),
              "2024-02-01T00:00:00Z")
    index.add(build_wheel(build, "sdb-lib", "2.0", {
        "sdb_lib.py": "raise ImportError('sdb-lib 2.0 removed API')\n"}), "2025-06-01T00:00:00Z")
    index.add(build_wheel(build, "torch", "9.0", {"torch.py": ""}, ["sdb-torch-only>=1"]),
              "2025-01-01T00:00:00Z")
    # (the torch stack's own dependencies are older than the releases whose range the
    # profile serves, as nvidia-* / triton are for the catalogued ones)
    index.add(build_wheel(build, "sdb-torch-only", "1.0", {"sdb_torch_only.py": ""}),
              "2023-12-01T00:00:00Z")
    yield index.start()
    index.stop()


def _resolve(dated: DatedIndex, tmp_path: Path, until: str, exempt: bool) -> dict[str, str]:
    assert UV, "uv is a test dependency"
    inputs = tmp_path / "in.txt"
    inputs.write_text("sdb-app==1.0\n")
    stack = tmp_path / "stack.txt"
    stack.write_text("torch==9.0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env.update(UV_NO_CONFIG="1", UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_OFFLINE="0")
    entries = resolve(UV, [inputs], until, Runner(), index_url=dated.url, env=env,
                      timeout=120, constraints=[stack], exempt=sorted(TORCH_STACK) if exempt
                      else (), exempt_until="2026-01-01T00:00:00Z" if exempt else None)
    return {e.name: e.version for e in entries}


def test_as_of_the_release_the_library_is_the_good_one(dated: DatedIndex,
                                                         tmp_path: Path) -> None:
    released = datetime.fromisoformat("2024-02-01T12:00:00+03:00")
    got = _resolve(dated, tmp_path, cutoff(released), exempt=True)
    # the torch stack and what only it pulls in are left to the profile
    assert got == {"sdb-app": "1.0", "sdb-lib": "1.5"}


def test_without_the_cutoff_the_broken_library_wins(dated: DatedIndex, tmp_path: Path) -> None:
    got = _resolve(dated, tmp_path, "2026-01-01T00:00:00Z", exempt=True)
    assert got == {"sdb-app": "1.0", "sdb-lib": "2.0"}


def test_the_torch_stack_must_be_exempt(dated: DatedIndex, tmp_path: Path) -> None:
    """Without the exemption the profile's torch (newer than the release) is cut off too."""
    with pytest.raises(SdbootError) as err:
        _resolve(dated, tmp_path, "2024-02-08T00:00:00Z", exempt=False)
    assert err.value.exit_code == 1 and "2024-02-08" in err.value.message


def test_cutoff_is_utc_plus_the_grace() -> None:
    assert cutoff(datetime.fromisoformat("2024-07-27T15:49:39+03:00")) == "2024-08-03T12:49:39Z"
    assert cutoff(datetime(2024, 1, 1)) == "2024-01-08T00:00:00Z"


COMPILED = """\
filelock==3.15.4
    # via
    #   torch
    #   transformers
nvidia-cudnn-cu12==8.9.2.26 ; platform_machine == 'x86_64' and sys_platform == 'linux'
    # via torch
sympy==1.13.1
    # via torch
mpmath==1.3.0
    # via sympy
torch==2.1.2
    # via
    #   -r in.txt
    #   torchvision
torchvision==0.16.2
    # via -r in.txt
transformers==4.30.2
    # via -r in.txt
colorama==0.4.6 ; sys_platform == 'win32'
    # via tqdm
tqdm==4.66.4
    # via transformers
"""


def test_the_torch_closure_is_dropped_shared_dependencies_kept() -> None:
    entries = drop_closure(parse_compiled(COMPILED))
    assert [e.line() for e in entries] == [
        "filelock==3.15.4", "transformers==4.30.2",
        "colorama==0.4.6 ; sys_platform == 'win32'", "tqdm==4.66.4"]


# --- the shipped files ----------------------------------------------------------------------

def _catalog() -> dict[str, str]:
    import yaml

    doc = yaml.safe_load((data_dir() / "webuis.yaml").read_text())
    return dict(doc["webuis"]["a1111"]["commits"])


@pytest.mark.parametrize("tag", sorted(_catalog()))
def test_every_catalogued_release_ships_a_consistent_set(tag: str) -> None:
    commits = _catalog()
    path = shipped_path(data_dir(), "a1111", tag, commits)
    assert path is not None and shipped_path(data_dir(), "a1111", commits[tag], commits) == path
    text = path.read_text()
    assert f"commit {commits[tag]}" in text and "--exclude-newer" in text
    assert "resolved as of" in text and "run on" in text
    entries = read_release_constraints(path)
    assert entries and not {e.name for e in entries} & TORCH_STACK
    assert not [e for e in entries if e.name.startswith(("nvidia-", "triton"))]
    versions = {e.name: e.version for e in entries}
    assert int(versions["setuptools"].split(".")[0]) < 82  # pkg_resources still there
    # the profile of this release: its numpy cap (torch < 2.3) holds, nothing is dropped
    from packaging.requirements import Requirement
    from packaging.version import Version

    profile = next(p for p in load_profiles().values() for spec in p.webui
                   if Requirement(spec).name == "a1111" and Requirement(spec).specifier.contains(
                       Version(tag.lstrip("v")), prereleases=True))
    assert f"profile {profile.name}" in text
    # checked against every profile's stack; its own profile resolves by construction
    assert "Checked against the torch stack of every profile" in text
    assert parse_conflicts(text) <= set(load_profiles()) and profile.name not in \
        parse_conflicts(text)
    assert numpy_cap(profile) == ["numpy<2"] and Version(versions["numpy"]) < Version("2")
    assert fit_to_profile(entries, render_constraints(profile).splitlines()) == entries


def test_no_file_for_a_branch_or_an_unknown_name(tmp_path: Path) -> None:
    commits = {"v1.10.1": "82a973c04367123ae98bd9abdf80d9eda9b910e2"}
    assert shipped_path(data_dir(), "a1111", "master", commits) is None
    assert shipped_path(data_dir(), "a1111", None, commits) is None
    assert shipped_path(data_dir(), "forge", "v1.10.1", commits) is None
    (tmp_path / CONSTRAINTS_DIR / "x").mkdir(parents=True)
    (tmp_path / CONSTRAINTS_DIR / "x" / "..txt").write_text("a==1\n")
    assert shipped_path(tmp_path, "x", ".", {".": "0" * 40}) is None
    assert shipped_path(tmp_path, "..", "v1", {"v1": "0" * 40}) is None


@pytest.mark.parametrize(("line", "says"), [
    ("-r other.txt", "is not name==version"),
    ("--index-url http://127.0.0.1:9/simple", "is not name==version"),
    ("gradio>=3", "is not name==version"),
    ("clip @ https://github.com/openai/CLIP/archive/x.zip", "is not name==version"),
    ("gradio==latest", "is not name==version"),
    ("colorama==0.4.6 ; sys_platform === 'win32' or", "is not name==version"),
    ("gradio==3.41.2", "given twice"),
])
def test_a_damaged_file_is_refused(line: str, says: str) -> None:
    text = "# header\ngradio==3.41.2\ncolorama==0.4.6 ; sys_platform == 'win32'\n" + line + "\n"
    with pytest.raises(SdbootError) as err:
        parse_release_constraints(text, "v9.txt")
    assert says in err.value.message and err.value.message.startswith("v9.txt:4:")


def test_the_profile_wins_where_it_disagrees() -> None:
    entries = [Entry("numpy", "2.0.1"), Entry("pillow", "9.5.0"), Entry("torch", "2.4.0"),
               Entry("setuptools", "69.5.1")]
    kept = fit_to_profile(entries, ["torch==2.1.2+cu121", "numpy<2", "setuptools<82"])
    assert [e.name for e in kept] == ["pillow", "setuptools"]


def test_the_install_passes_the_release_set(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalogued release: .sdboot/release-constraints.txt, the shipped set less the
    profile's disagreements; a branch: nothing."""
    from sdboot.install.context import InstallContext
    from sdboot.install.plan import InstallOptions
    from sdboot.stack.profiles import get_profile

    monkeypatch.setenv("SDBOOT_CONFIG_DIR", str(tmp_path / "config"))

    class Quiet:
        def note(self, text: str, style: str = "") -> None: ...
        def begin(self, index: int, total: int, title: str) -> None: ...
        def detail(self, text: str) -> None: ...
        def end(self, status: str, elapsed_s: float, note: str = "") -> None: ...

    webui = tmp_path / "webui"
    webui.mkdir()
    ctx = InstallContext(InstallOptions(webui, ref="v1.10.1"), Quiet(), Runner())
    ctx.profile = get_profile(load_profiles(), "torch2.1.2-cu121")
    [written] = ctx.extra_constraints()
    assert written == webui / ".sdboot/release-constraints.txt"
    pins = parse_release_constraints(written.read_text(), str(written))
    shipped = read_release_constraints(data_dir() / CONSTRAINTS_DIR / "a1111/v1.10.1.txt")
    assert pins == shipped and "gradio==3.41.2" in written.read_text()
    ctx.ref = "master"
    assert ctx.extra_constraints() == []
    # a profile whose torch cannot stand beside the release's set gets none
    import sdboot.install.lockfile as lockfile

    data = tmp_path / "data"
    (data / CONSTRAINTS_DIR / "a1111").mkdir(parents=True)
    (data / CONSTRAINTS_DIR / "a1111/v1.10.1.txt").write_text(
        "# conflicts: torch2.1.2-cu121 cpu\ngradio==3.41.2\n")
    monkeypatch.setattr(lockfile, "data_dir", lambda: data)
    ctx.ref = "v1.10.1"
    assert ctx.extra_constraints() == []
    ctx.profile = get_profile(load_profiles(), "torch2.6.0-cu126")
    assert ctx.extra_constraints() == [written]


def test_conflicts_line() -> None:
    assert parse_conflicts("# a\n# conflicts: x y\nb==1\n") == {"x", "y"}
    assert parse_conflicts("# conflicts:\nb==1\n") == set()
    assert parse_conflicts("b==1  # conflicts: x\n") == set()
