"""Doctor findings about the checkout, the requirements and the network: git refusing a folder
of another owner, incomplete clones in repositories/ and extensions/, pinned requirements
that are not installed, source packages that would be built with a setuptools without
pkg_resources, and Hugging Face files the first start needs with no way to fetch them.
Every scenario is built from real parts (bare git repositories cloned with real git, venvs
made by uv with stub wheels, a loopback HTTP server as the Hugging Face mirror, a closed port
as the dead endpoint) and each has a healthy twin that must not report the code."""

from __future__ import annotations

import ensurepip
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sdboot.doctor import checkout, requirements
from sdboot.doctor.checkout import read_head
from sdboot.doctor.facts import DoctorFacts
from sdboot.webui.folder import parse_clone_pins, parse_requirements, read_user_vars
from tests.conftest import run_cli
from tests.world.githost import git, make_bare_repo
from tests.world.launchfiles import POST_V13_UTILS, crlf
from tests.world.wheels import build_wheel

UV = shutil.which("uv")
BUNDLED = Path(ensurepip.__file__).parent / "_bundled"
PIP_WHEEL = next(BUNDLED.glob("pip-*.whl"))

LAUNCH_UTILS = '''\
import os
import sys


def git_clone(url, dir, name, commithash=None):
    pass


def repo_dir(name):
    return os.path.join("repositories", name)


def prepare_environment():
    requirements_file = os.environ.get('REQS_FILE', "requirements_versions.txt")
    clip_package = os.environ.get('CLIP_PACKAGE', "{clip}")
    sd_repo = os.environ.get('SDT_REPO', "https://github.com/test-owner/sd.git")
    kd_repo = os.environ.get('K_DIFFUSION_REPO', 'https://github.com/test-owner/kd.git')
    sd_hash = os.environ.get('SDT_COMMIT_HASH', "{sd}")
    kd_hash = os.environ.get('K_DIFFUSION_COMMIT_HASH', "{kd}")
    git_clone(sd_repo, repo_dir('sd'), "SD", sd_hash)
    git_clone(kd_repo, repo_dir('k-diffusion'), "K-diffusion", kd_hash)
'''


# --- building blocks -------------------------------------------------------------------------


@pytest.fixture()
def gitenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """git for this test only: a temporary global config (never ~/.gitconfig), no system
    config, and https://github.com/ served from local bare repositories."""
    config = tmp_path / "gitconfig"
    config.write_text("")
    env = {"GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": "1",
           "GIT_CONFIG_KEY_0": f"url.file://{tmp_path / 'gh'}/.insteadOf",
           "GIT_CONFIG_VALUE_0": "https://github.com/",
           "HOME": str(tmp_path / "home"), "SDBOOT_CACHE_DIR": str(tmp_path / "cache"),
           "SDBOOT_CONFIG_DIR": str(tmp_path / "sdboot-config")}
    (tmp_path / "home").mkdir()
    (tmp_path / "sdboot-config").mkdir()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "PIP_BUILD_CONSTRAINT",
                 "UV_BUILD_CONSTRAINT", "REQS_FILE", "CLIP_PACKAGE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return env


def make_webui(tmp_path: Path, clip: str = "clip==1.0", clones: bool = True) -> Path:
    """A WebUI (its own launch file, pins to two local repositories) with both cloned at
    their pinned commits, as its first start leaves them."""
    gh = tmp_path / "gh"
    sd = make_bare_repo(gh, "test-owner/sd", {"ldm/__init__.py": "# ldm\n"})
    kd = make_bare_repo(gh, "test-owner/kd", {"k_diffusion/__init__.py": "\n"})
    root = tmp_path / "webui"
    (root / "modules").mkdir(parents=True)
    (root / "launch.py").write_text("from modules import launch_utils\n")
    (root / "webui.py").write_text("")
    (root / "modules/launch_utils.py").write_bytes(
        crlf(LAUNCH_UTILS.format(clip=clip, sd=sd, kd=kd)).encode())
    if clones:
        for folder, slug, commit in (("sd", "sd", sd), ("k-diffusion", "kd", kd)):
            dest = root / "repositories" / folder
            git("clone", "-q", str(gh / f"test-owner/{slug}.git"), str(dest))
            git("-C", str(dest), "checkout", "-q", commit)
    return root


def facts(root: Path, python: Path | None = None) -> DoctorFacts:
    return DoctorFacts(root, python_arg=python, offline=True)


def codes_of(findings: list) -> list[str]:
    return [f.code for f in findings]


def doctor_cli(root: Path, env: dict[str, str], *args: str) -> tuple[int, dict]:
    res = run_cli("doctor", str(root), "--json", *args, env=env, timeout=120)
    assert "Traceback" not in res.stderr, res.stderr
    return res.returncode, json.loads(res.stdout)


def found(doc: dict) -> dict[str, str]:
    return {f["code"]: f["severity"] for c in doc["checks"] for f in c["findings"]}


def make_venv(tmp_path: Path, *wheels: Path) -> Path:
    """A venv made by uv with pip (Python's bundled wheel) and the given wheels."""
    venv = tmp_path / "venv"
    subprocess.run([UV, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([UV, "pip", "install", "-q", "--no-deps", "--python", str(py),
                    str(PIP_WHEEL), *map(str, wheels)], check=True,
                   env={**os.environ, "UV_NO_CONFIG": "1", "UV_OFFLINE": "1"})
    return py


# --- pure parsing ----------------------------------------------------------------------------


def test_parse_clone_pins_from_calls_and_the_known_folders() -> None:
    pins = {p.folder: (p.repo_var, p.commit_var) for p in parse_clone_pins(
        LAUNCH_UTILS.format(clip="x", sd="a" * 40, kd="b" * 40))}
    assert pins == {"sd": ("SDT_REPO", "SDT_COMMIT_HASH"),
                    "k-diffusion": ("K_DIFFUSION_REPO", "K_DIFFUSION_COMMIT_HASH")}
    # a launch file without readable git_clone calls: the folders A1111 is known to use
    known = {p.folder: p.commit_var for p in parse_clone_pins(POST_V13_UTILS)}
    assert known["stable-diffusion-stability-ai"] == "STABLE_DIFFUSION_COMMIT_HASH"
    assert known["generative-models"] is None  # the file reads no such commit variable
    assert parse_clone_pins("def broken(:\n") == []


def test_parse_requirements_and_user_vars(tmp_path: Path) -> None:
    text = ("setuptools==69.5.1  # temp fix\nGitPython==3.1.32\ntorch\n-r other.txt\n"
            "--index-url https://example.invalid/simple\npkg @ https://example.invalid/p.zip\n"
            "win-only==1; sys_platform == 'win32'\n\n# comment\nhttpcore<=0.15\n")
    assert parse_requirements(text) == [
        ("setuptools", "==69.5.1", "setuptools==69.5.1"),
        ("gitpython", "==3.1.32", "GitPython==3.1.32"), ("torch", "", "torch"),
        ("httpcore", "<=0.15", "httpcore<=0.15")]
    (tmp_path / "webui-user.sh").write_text(
        '#export COMMANDLINE_ARGS=""\nexport PIP_BUILD_CONSTRAINT="/a b/c.txt"\n'
        "export HF_ENDPOINT=https://hf.example\n")
    (tmp_path / "webui-user.bat").write_text(
        "set COMMANDLINE_ARGS=\r\nset HF_ENDPOINT=https://bat.example\r\nset REQS_FILE=r.txt\r\n")
    assert read_user_vars(tmp_path) == {"PIP_BUILD_CONSTRAINT": "/a b/c.txt",
                                        "HF_ENDPOINT": "https://hf.example", "REQS_FILE": "r.txt"}


# --- repo-incomplete -------------------------------------------------------------------------


def test_read_head_of_real_checkouts(tmp_path: Path, gitenv: dict[str, str]) -> None:
    root = make_webui(tmp_path)
    sd = root / "repositories/sd"
    head = git("-C", str(sd), "rev-parse", "HEAD")
    assert read_head(sd) == head  # detached at the pin
    git("-C", str(sd), "checkout", "-q", "master")
    assert read_head(sd) == head  # a branch (loose ref)
    git("-C", str(sd), "pack-refs", "--all")
    assert not (sd / ".git/refs/heads/master").exists()
    assert read_head(sd) == head  # packed-refs
    unborn = tmp_path / "unborn"
    git("init", "-q", str(unborn))
    assert read_head(unborn) is None


def test_complete_checkouts_report_nothing(tmp_path: Path, gitenv: dict[str, str]) -> None:
    root = make_webui(tmp_path)
    (root / "extensions/copied-in").mkdir(parents=True)  # no .git, has files: fine
    (root / "extensions/copied-in/install.py").write_text("")
    assert checkout.incomplete_findings(facts(root)) == []
    assert checkout.unsafe_findings(facts(root)) == []


def test_repo_incomplete_empty_no_git_wrong_commit(tmp_path: Path,
                                                   gitenv: dict[str, str]) -> None:
    root = make_webui(tmp_path)
    sd = root / "repositories/sd"
    (sd / "new.txt").write_text("x")
    git("-C", str(sd), "add", "-A")
    git("-C", str(sd), "commit", "-q", "-m", "local change")  # no longer at the pin
    shutil.rmtree(root / "repositories/k-diffusion/.git")  # files without .git
    (root / "repositories/BLIP").mkdir()  # an interrupted clone: empty
    (root / "extensions/half-cloned/.git").mkdir(parents=True)
    (root / "extensions/half-cloned/.git/HEAD").write_text("ref: refs/heads/master\n")
    found_ = checkout.incomplete_findings(facts(root))
    by = {f.message.split(" ", 1)[0]: f for f in found_}
    assert set(by) == {"repositories/BLIP", "repositories/k-diffusion", "repositories/sd",
                       "extensions/half-cloned"}
    assert "is empty" in by["repositories/BLIP"].message
    assert "has no .git" in by["repositories/k-diffusion"].message
    assert "not at" in by["repositories/sd"].message
    assert [f.severity for f in found_].count("error") == 3
    assert by["extensions/half-cloned"].severity == "warning"
    fix = by["repositories/sd"].fix
    assert fix and fix.automatic and fix.commands[1][-3:] == (
        "--", "https://github.com/test-owner/sd.git", str(root / "repositories/sd"))
    assert fix.commands[2][-1] == git("-C", str(tmp_path / "gh/test-owner/sd.git"),
                                      "rev-parse", "HEAD")
    # BLIP has no pin in this launch file: removing it is the fix (the WebUI clones it)
    assert len(by["repositories/BLIP"].fix.commands) == 1


def test_repo_incomplete_fix_clones_again_at_the_pin(tmp_path: Path,
                                                    gitenv: dict[str, str]) -> None:
    root = make_webui(tmp_path)
    pinned = read_head(root / "repositories/sd")
    shutil.rmtree(root / "repositories/sd")
    (root / "repositories/sd").mkdir()
    (root / "repositories/sd/partial").write_text("")
    rc, doc = doctor_cli(root, gitenv, "--offline", "--only", "repo-incomplete")
    assert rc == 1 and found(doc) == {"repo-incomplete": "error"}
    rc, doc = doctor_cli(root, gitenv, "--offline", "--only", "repo-incomplete", "--fix",
                         "--yes")
    assert rc == 0 and found(doc) == {}, doc
    assert doc["before"]["errors"] == 1 and all(f["ok"] for f in doc["fixes"])
    assert read_head(root / "repositories/sd") == pinned
    assert not (root / "repositories/sd/partial").exists()
    assert git("-C", str(root / "repositories/sd"), "config", "--get", "remote.origin.url") \
        == "https://github.com/test-owner/sd.git"  # the upstream URL, not the mirror's


def test_launch_refuses_an_incomplete_repository(tmp_path: Path,
                                                gitenv: dict[str, str]) -> None:
    root = make_webui(tmp_path)
    make_venv(root)  # root/venv
    shutil.rmtree(root / "repositories/k-diffusion")
    (root / "repositories/k-diffusion").mkdir()
    res = run_cli("launch", str(root), "--dry-run", env=gitenv)
    assert res.returncode == 1
    assert "repo-incomplete" in res.stdout and "repositories/k-diffusion is empty" in res.stdout
    assert "launch.py" not in res.stdout.splitlines()[-1]  # no WebUI command line planned
    assert res.stderr.startswith("error: the WebUI would stop at a folder of repositories/")
    assert "doctor --fix" in res.stderr and "--allow-cpu" not in res.stderr


# --- git-unsafe-directory --------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root to chown")
def test_git_unsafe_directory_then_fix(tmp_path: Path, gitenv: dict[str, str]) -> None:
    root = make_webui(tmp_path)
    git("init", "-q", str(root))
    real_config = Path("/root/.gitconfig")
    before = real_config.read_bytes() if real_config.exists() else None
    assert checkout.unsafe_findings(facts(root)) == []  # the healthy twin: our own
    sd = root / "repositories/sd"
    for dirpath, dirnames, filenames in os.walk(sd):
        for name in [*dirnames, *filenames, "."]:
            os.lchown(os.path.join(dirpath, name), 12345, 12345)
    os.chown(root, 12345, 12345)
    os.chown(root / ".git", 12345, 12345)
    findings = checkout.unsafe_findings(facts(root))
    assert codes_of(findings) == ["git-unsafe-directory"] * 2
    assert "the WebUI folder" in findings[0].message
    assert "repositories/sd" in findings[1].message
    assert findings[1].fix and findings[1].fix.commands[0][-2:] == ("safe.directory",
                                                                    sd.as_posix())
    rc, doc = doctor_cli(root, gitenv, "--offline", "--only", "git-unsafe-directory")
    assert rc == 1 and found(doc) == {"git-unsafe-directory": "error"}
    rc, doc = doctor_cli(root, gitenv, "--offline", "--only", "git-unsafe-directory", "--fix",
                         "--yes")
    assert rc == 0 and found(doc) == {}, doc
    assert f"directory = {sd.as_posix()}" in Path(gitenv["GIT_CONFIG_GLOBAL"]).read_text()
    assert (real_config.read_bytes() if real_config.exists() else None) == before


# --- requirements-unmet ----------------------------------------------------------------------


def _stub(out: Path, name: str, version: str, module: str | None = None) -> Path:
    return build_wheel(out, name, version, {f"{module or name}/__init__.py": ""})


def test_requirements_unmet_then_fix(tmp_path: Path, gitenv: dict[str, str]) -> None:
    root = make_webui(tmp_path, clones=False)
    wheels = tmp_path / "wheels"
    have = [_stub(wheels, "sdb_a", "1.0"), _stub(wheels, "sdb_b", "2.0"),
            _stub(wheels, "clip", "1.0")]
    _stub(wheels, "sdb_b", "2.1")
    _stub(wheels, "sdb_c", "0.1")
    py = make_venv(root, *have)
    (root / "requirements_versions.txt").write_text(
        "sdb-a==1.0\nSDB_B==2.1  # pinned\ntorch\nsdb-c==0.1\nwin-only==1; sys_platform == 'x'\n")
    outcome = requirements.run(facts(root))
    assert codes_of(list(outcome.findings)) == ["requirements-unmet"]
    message = outcome.findings[0].message
    assert "SDB_B==2.1 (sdb-b 2.0)" in message and "sdb-c==0.1 (sdb-c missing)" in message
    assert "sdb-a" not in message and "torch" not in message
    env = {**gitenv, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CONFIG_FILE": os.devnull}
    rc, doc = doctor_cli(root, env, "--offline", "--only", "requirements-unmet", "--fix",
                         "--yes")
    assert rc == 0 and found(doc) == {}, doc
    assert doc["fixes"][0]["command"][1:4] == ["-m", "pip", "install"]
    # the healthy twin: the same environment now
    assert requirements.run(facts(root)).findings == ()
    assert str(py).endswith("venv/bin/python")


# --- build-tools -----------------------------------------------------------------------------

BACKEND = '''\
"""A build backend that, like CLIP's setup.py at d50d76d, needs pkg_resources."""
import base64
import hashlib
import os
import zipfile

import pkg_resources  # noqa: F401 - missing from setuptools >= 82


def _line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "clip-1.0-py3-none-any.whl"
    files = {"clip/__init__.py": b"",
             "clip-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: clip\\nVersion: 1.0\\n",
             "clip-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: t\\n"
                                         b"Root-Is-Purelib: true\\nTag: py3-none-any\\n"}
    record = "\\n".join([_line(p, d) for p, d in files.items()]
                       + ["clip-1.0.dist-info/RECORD,,"]) + "\\n"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr("clip-1.0.dist-info/RECORD", record)
    return name
'''


def clip_source(tmp_path: Path) -> Path:
    """CLIP as the WebUI gets it: a source archive that must be built."""
    archive = tmp_path / "CLIP-d50d76d.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("CLIP-d50d76d/pyproject.toml",
                    '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                    'backend-path = ["."]\n[project]\nname = "clip"\nversion = "1.0"\n')
        zf.writestr("CLIP-d50d76d/backend.py", BACKEND)
    return archive


def test_build_tools_detected_and_its_twins(tmp_path: Path, gitenv: dict[str, str]) -> None:
    archive = clip_source(tmp_path)
    root = make_webui(tmp_path, clip=archive.as_uri(), clones=False)
    make_venv(root)  # pip from Python's bundled wheel, no setuptools, CLIP not built yet
    outcome = requirements.run(facts(root))
    assert codes_of(list(outcome.findings)) == ["build-tools"]
    finding = outcome.findings[0]
    assert finding.severity == "error" and "no PIP_BUILD_CONSTRAINT" in finding.message
    assert finding.fix and finding.fix.commands[0][4] == "setuptools>=70.1,<82"
    assert finding.fix.commands[1][4:6] == ("--no-build-isolation", archive.as_uri())
    # twin 1: a build constraint that keeps setuptools below 82, set in webui-user.sh
    pins = tmp_path / "build-constraints.txt"
    pins.write_text("setuptools<82\n")
    (root / "webui-user.sh").write_text(f'export PIP_BUILD_CONSTRAINT="{pins}"\n')
    assert requirements.run(facts(root)).findings == ()
    pins.write_text("setuptools>=60\n")  # ... but one that lets 82 in does not count
    assert "does not keep setuptools below 82" in requirements.run(facts(root)).findings[0].message
    # twin 2: CLIP given as a package from the index needs no build
    (root / "webui-user.sh").write_text("export CLIP_PACKAGE=clip==1.0\n")
    assert requirements.run(facts(root)).findings == ()


def test_build_tools_fix_builds_clip(tmp_path: Path, gitenv: dict[str, str]) -> None:
    archive = clip_source(tmp_path)
    root = make_webui(tmp_path, clip=archive.as_uri(), clones=False)
    make_venv(root)
    wheels = tmp_path / "wheels"  # setuptools 81 as far as the build cares: pkg_resources
    build_wheel(wheels, "setuptools", "81.0.0", {"setuptools/__init__.py": "",
                                                 "pkg_resources/__init__.py": ""})
    env = {**gitenv, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CONFIG_FILE": os.devnull}
    rc, doc = doctor_cli(root, env, "--offline", "--only", "build-tools")
    assert rc == 1 and found(doc) == {"build-tools": "error"}
    rc, doc = doctor_cli(root, env, "--offline", "--only", "build-tools", "--fix", "--yes")
    assert rc == 0 and found(doc) == {}, doc
    assert [f["ok"] for f in doc["fixes"]] == [True, True]
    assert list((root / "venv/lib").glob("python3*/site-packages/clip/__init__.py"))


# --- hf-unreachable --------------------------------------------------------------------------


@pytest.fixture()
def hf_world(tmp_path: Path, gitenv: dict[str, str]):
    """A dead Hugging Face endpoint and a live mirror on loopback (after a dead one)."""
    from tests.doctor.test_hf_mirror_fix import hf_mirror_world

    server, env = hf_mirror_world(tmp_path, gitenv, live=True)
    yield env
    server.stop()


def test_hf_unreachable_then_fix(tmp_path: Path, hf_world: dict[str, str]) -> None:
    root = make_webui(tmp_path, clones=False)
    rc, doc = doctor_cli(root, hf_world, "--only", "hf-unreachable,network-unreachable")
    assert rc == 0 and found(doc) == {"hf-unreachable": "warning", "network-unreachable":
                                      "warning"}
    messages = [f["message"] for c in doc["checks"] for f in c["findings"]]
    assert not any(m.startswith("Hugging Face cannot be reached") for m in messages)
    rc, doc = doctor_cli(root, hf_world, "--only", "hf-unreachable", "--fix", "--yes")
    assert rc == 0 and found(doc) == {}, doc
    assert "HF_ENDPOINT" in (root / "webui-user.sh").read_text()
    # skipped offline
    rc, doc = doctor_cli(root, hf_world, "--offline", "--only", "hf-unreachable")
    assert [c["status"] for c in doc["checks"]] == ["skip"]


def test_hf_files_in_the_cache_need_no_endpoint(tmp_path: Path,
                                               hf_world: dict[str, str]) -> None:
    root = make_webui(tmp_path, clones=False)
    cache = tmp_path / "hf-home"
    snapshot = cache / "hub/models--openai--clip-vit-large-patch14/snapshots/abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "tokenizer_config.json").write_text("{}")
    rc, doc = doctor_cli(root, {**hf_world, "HF_HOME": str(cache)}, "--only",
                         "hf-unreachable")
    assert rc == 0 and found(doc) == {}
    # the same through webui-user.sh, where the WebUI's own HF_HOME is set
    (root / "webui-user.sh").write_text(f'export HF_HOME="{cache}"\n')
    rc, doc = doctor_cli(root, hf_world, "--only", "hf-unreachable")
    assert found(doc) == {}
    # Forge keeps these files in its own tree
    (root / "webui-user.sh").unlink()
    (root / "backend/huggingface").mkdir(parents=True)
    rc, doc = doctor_cli(root, hf_world, "--only", "hf-unreachable")
    assert found(doc) == {}


def test_the_new_codes_are_known_and_documented() -> None:
    from sdboot.doctor import ALL_CODES

    new = {"git-unsafe-directory", "repo-incomplete", "requirements-unmet", "build-tools",
           "hf-unreachable", "origin-proxy"}
    assert new <= set(ALL_CODES)
    root = Path(__file__).resolve().parents[2]
    for doc in ("docs/troubleshooting.md", "docs/troubleshooting.zh-CN.md"):
        text = (root / doc).read_text(encoding="utf-8")
        assert all(f"| `{code}` [" in text for code in new), doc
    res = run_cli("doctor", "--python", sys.executable, "--only", "build-tools,repo-incomplete",
                  "--offline", "--json")
    assert [c["id"] for c in res.json()["checks"]] == ["requirements", "webui"]


# --- origin-proxy ----------------------------------------------------------------------------


def test_origin_proxy_then_fix(tmp_path: Path, gitenv: dict[str, str]) -> None:
    """Origins a proxy was written into (the WebUI, repositories/*, extensions/*) are found
    from the stored remote.origin.url and reset to the upstream by --fix."""
    root = make_webui(tmp_path)
    proxy = "http://127.0.0.1:9/"  # never contacted: only the stored URL is read
    sd_up = "https://github.com/test-owner/sd.git"
    webui_up = "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git"
    thing_up = "https://github.com/someone/sd-webui-thing.git"
    git("init", "-q", str(root))
    git("-C", str(root), "remote", "add", "origin", webui_up)
    git("clone", "-q", str(tmp_path / "gh/test-owner/kd.git"), str(root / "extensions/thing"))
    for path, url in ((root, webui_up), (root / "repositories/sd", sd_up),
                      (root / "repositories/k-diffusion", "https://github.com/test-owner/kd.git"),
                      (root / "extensions/thing", thing_up)):
        git("-C", str(path), "remote", "set-url", "origin", url)
    # the healthy twin, even with a mirror's insteadOf in force (`git remote get-url` would
    # show the proxy's URL for every upstream origin)
    mirror_env = {**gitenv, "GIT_CONFIG_COUNT": "1",
                  "GIT_CONFIG_KEY_0": f"url.{proxy}https://github.com/.insteadOf",
                  "GIT_CONFIG_VALUE_0": "https://github.com/"}
    assert checkout.origin_findings(facts(root)) == []
    rc, doc = doctor_cli(root, mirror_env, "--offline", "--only", "origin-proxy")
    assert found(doc) == {}, doc
    for path, url in ((root, webui_up), (root / "repositories/sd", sd_up),
                      (root / "extensions/thing", thing_up)):
        git("-C", str(path), "remote", "set-url", "origin", proxy + url)
    findings = checkout.origin_findings(facts(root))
    assert codes_of(findings) == ["origin-proxy"] * 3
    assert all(f.severity == "warning" and f.fix and f.fix.automatic for f in findings)
    assert "the WebUI's origin" in findings[0].message and sd_up in findings[1].message
    assert findings[1].fix.commands[0][-4:] == ("set-url", "origin", "--", sd_up)
    rc, doc = doctor_cli(root, gitenv, "--offline", "--only", "origin-proxy")
    assert found(doc) == {"origin-proxy": "warning"}
    rc, doc = doctor_cli(root, gitenv, "--offline", "--only", "origin-proxy", "--fix", "--yes")
    assert rc == 0 and found(doc) == {}, doc
    assert doc["before"]["warnings"] == 3 and all(f["ok"] for f in doc["fixes"])
    for path, url in ((root, webui_up), (root / "repositories/sd", sd_up),
                      (root / "extensions/thing", thing_up)):
        assert git("-C", str(path), "config", "--get", "remote.origin.url") == url
