"""Injection (issue 11): mirror and profile URLs are data, validated at load time (a bad
one is a two-line bad-data error naming file:line, exit 2); values that reach a shell are
quoted for it (webui-user.sh, TORCH_COMMAND) or refused (webui-user.bat); --webui-repo and
--ref never reach git as options, and git always gets `--` before URLs and paths."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from sdboot.errors import SdbootError
from sdboot.io import git as gitops
from sdboot.io.runner import Runner
from sdboot.mirrors.env import (
    MirrorEnv,
    plan_mirror_env,
    read_block,
    render_block,
    upsert_block,
)
from sdboot.mirrors.loading import load_mirrors, select
from sdboot.values import TorchPins
from tests.conftest import ROOT, CliResult, run_cli
from tests.world.launchfiles import PRE_V13_LAUNCH

SHIPPED = ROOT / "profiles"

HOSTILE = [
    "https://m.example/simple&touch${IFS}MARK",
    "https://m.example/simple;touch MARK",
    "https://m.example/$(touch MARK)/",
    "https://m.example/`touch MARK`/",
    "https://m.example/'x'/",
    'https://m.example/"x"/',
    "https://m.example/a|touch",
    "https://m.example/<in>/",
    "https://m.example/a\ntouch MARK",
    "https://m.example/a b/",
    "https://m.example/${HOME}/",
    "https://m.example/a\\b/",
    "https://m.example/%zz/",
    "https://m.example/a!b/",
]


def _error_lines(res: CliResult, path: Path, line: int) -> str:
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"error: {path}:{line}: "), lines[0]
    assert lines[1].startswith("hint: ")
    assert "Traceback" not in res.stderr
    return lines[0]


@pytest.mark.parametrize("url", HOSTILE)
@pytest.mark.parametrize("kind", ["pypi", "torch-index"])
def test_hostile_mirror_url_is_refused_with_file_and_line(config_dir: Path, url: str,
                                                          kind: str, tmp_path: Path) -> None:
    if kind == "torch-index":
        url = url.replace("m.example/", "m.example/whl/{variant}/", 1)
    path = config_dir / "mirrors.yaml"
    path.write_text(f"mirrors:\n  - name: evil\n    kind: {kind}\n    url: {json.dumps(url)}\n")
    res = run_cli("mirror", "list", env={"SDBOOT_CONFIG_DIR": str(config_dir)}, cwd=tmp_path)
    first = _error_lines(res, path, 4)
    assert "url" in first
    assert not (tmp_path / "MARK").exists()


@pytest.mark.parametrize("url", [*HOSTILE[:8], "http://evil.example/whl/cu121",
                                 "file:///srv/wheels", "-https://x.example/"])
def test_hostile_profile_index_url_is_refused(config_dir: Path, url: str) -> None:
    folder = config_dir / "profiles"
    folder.mkdir()
    text = (SHIPPED / "cpu.yaml").read_text()
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("index_url:"))
    path = folder / "evil.yaml"
    path.write_text(text.replace("name: cpu", "name: evil").replace(
        "index_url: https://download.pytorch.org/whl/cpu", f"index_url: {json.dumps(url)}"))
    res = run_cli("profiles", "list", env={"SDBOOT_CONFIG_DIR": str(config_dir)})
    assert "index_url" in _error_lines(res, path, line)


@pytest.mark.parametrize(("args", "what"), [
    (["--target", "/etc"], "is not allowed"),
    (["--index-url", "https://x.example/;id"], "contains"),
    (["--extra-index-url=http://evil.example/simple"], "plain http"),
    (["--find-links"], "needs a URL"),
    (["--config-settings=--build-option=x"], "is not allowed"),
])
def test_profile_pip_args_come_from_an_allow_list(config_dir: Path, args: list[str],
                                                  what: str) -> None:
    folder = config_dir / "profiles"
    folder.mkdir()
    path = folder / "evil.yaml"
    text = (SHIPPED / "cpu.yaml").read_text().replace("name: cpu", "name: evil")
    line = len(text.splitlines()) + 1
    path.write_text(text + f"pip_args: {json.dumps(args)}\n")
    res = run_cli("profiles", "list", env={"SDBOOT_CONFIG_DIR": str(config_dir)})
    first = _error_lines(res, path, line)
    assert "pip_args" in first and what in first


def test_allowed_pip_args_and_odd_but_valid_urls_load(config_dir: Path) -> None:
    folder = config_dir / "profiles"
    folder.mkdir()
    text = (SHIPPED / "cpu.yaml").read_text().replace("name: cpu", "name: mine")
    (folder / "mine.yaml").write_text(text + 'pip_args: ["--pre", "--find-links", '
                                      '"http://127.0.0.1:8/wheels/", "--prefer-binary"]\n')
    (config_dir / "mirrors.yaml").write_text(
        "mirrors:\n"
        "  - {name: v6, kind: pypi, url: 'http://[::1]:8080/simple/'}\n"
        "  - {name: pct, kind: pypi, url: 'https://u:p%40ss@m.example/a+b=c/simple/'}\n"
        "  - {name: tok, kind: torch-index, url: 'https://m.example/~x/whl/{variant}/'}\n")
    env = {"SDBOOT_CONFIG_DIR": str(config_dir)}
    res = run_cli("profiles", "show", "mine", env=env)
    assert res.returncode == 0, res.stderr
    res = run_cli("mirror", "list", "--json", env=env)
    assert res.returncode == 2 and "'~'" in res.stderr  # `~` is not in the safe set
    (config_dir / "mirrors.yaml").write_text(
        (config_dir / "mirrors.yaml").read_text().replace("~x/", "x/"))
    names = {m["name"] for m in run_cli("mirror", "list", "--json", env=env).json()["mirrors"]}
    assert {"v6", "pct", "tok"} <= names


def _source_and_print(tmp_path: Path, block: list[str], names: list[str]) -> list[str]:
    script = tmp_path / "block.sh"
    script.write_text("\n".join(block) + "\n")
    printf = "; ".join(f'printf "%s\\n" "${name}"' for name in names)
    out = subprocess.run(["bash", "-c", f"cd {shlex.quote(str(tmp_path))} && "
                          f". {shlex.quote(str(script))}; {printf}"], capture_output=True,
                         text=True, check=True)
    return out.stdout.splitlines()


def test_env_block_is_data_for_the_shell_and_for_the_webui(tmp_path: Path,
                                                            config_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            ) -> None:
    odd = "http://u:p%40ss@127.0.0.1:9/a+b=c/-x/whl/{variant}/"
    (config_dir / "mirrors.yaml").write_text(
        f"mirrors:\n  - {{name: odd, kind: torch-find-links, url: '{odd}'}}\n"
        "  - {name: oddpypi, kind: pypi, url: 'http://127.0.0.1:9/p=q/simple/'}\n")
    monkeypatch.setenv("SDBOOT_CONFIG_DIR", str(config_dir))
    table = load_mirrors()
    sel = select(table, None, torch="odd", pypi="oddpypi")
    env = plan_mirror_env(sel, table, PRE_V13_LAUNCH)
    want = env.vars["TORCH_COMMAND"]
    assert want.endswith("--find-links http://u:p%40ss@127.0.0.1:9/a+b=c/-x/whl/cu117/")
    got = _source_and_print(tmp_path, render_block(env, "sh"), ["TORCH_COMMAND", "INDEX_URL"])
    assert got == [want, "http://127.0.0.1:9/p=q/simple/"]
    # values that slipped past validation are still only data, for both shells in turn:
    # sourcing the block, then the WebUI's own `sh -c "python -m $TORCH_COMMAND"`
    hostile = MirrorEnv({"A": "$(touch MARK)", "B": "`touch MARK`; touch MARK",
                         "C": "x'; touch MARK; echo '"})
    assert _source_and_print(tmp_path, render_block(hostile, "sh"), ["A", "B", "C"]) == \
        list(hostile.vars.values())
    pins = TorchPins("2.1.2", "0.16.2", None, "https://x.example/$(touch MARK)/;touch MARK")
    cmd = plan_mirror_env(select(table, None), table, PRE_V13_LAUNCH, pins).vars["TORCH_COMMAND"]
    words = subprocess.run(["sh", "-c", f"printf '[%s]' {cmd}"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout
    assert "[https://x.example/$(touch MARK)/;touch MARK]" in words
    assert not (tmp_path / "MARK").exists()


@pytest.mark.parametrize("value", ["a&b", "a|b", "<x>", 'q"q', "a^b", "a\nb"])
def test_bat_block_refuses_what_cmd_cannot_quote(value: str) -> None:
    with pytest.raises(SdbootError) as err:
        render_block(MirrorEnv({"INDEX_URL": value}), "bat")
    assert err.value.exit_code == 2 and "webui-user.bat" in err.value.message
    ok = render_block(MirrorEnv({"INDEX_URL": "https://m.example/simple/"}), "bat")
    assert 'set "INDEX_URL=https://m.example/simple/"' in upsert_block("", ok, "bat")


def test_bat_block_writes_a_percent_escape_as_a_literal_percent() -> None:
    """A password with `@` is written %40 in a URL; in a .bat a literal % is %%."""
    block = render_block(MirrorEnv({"INDEX_URL": "https://u:p%40ss@m.example/simple/"}), "bat")
    text = upsert_block("", block, "bat")
    assert 'set "INDEX_URL=https://u:p%%40ss@m.example/simple/"' in text
    assert read_block(text)["INDEX_URL"] == "https://u:p%40ss@m.example/simple/"


@pytest.mark.parametrize("repo", ["--upload-pack=touch /tmp/x", "-c core.sshCommand=touch x",
                                  "--config=core.hooksPath=/tmp", "ext::sh -c touch% x",
                                  "not-a-url-or-folder"])
def test_webui_repo_that_is_not_a_url_or_folder_is_refused(tmp_path: Path, repo: str) -> None:
    res = run_cli("install", str(tmp_path / "w"), "--webui-repo", repo, "--dry-run",
                  cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: --webui-repo")
    assert lines[1].startswith("hint: ")
    assert not (tmp_path / "w").exists() and not (tmp_path / "x").exists()


def test_ref_that_looks_like_an_option_is_refused(tmp_path: Path) -> None:
    res = run_cli("install", str(tmp_path / "w"), "--ref", "--upload-pack=touch x",
                  "--dry-run", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.startswith("error: '--upload-pack")
    with pytest.raises(SdbootError):
        gitops.check_ref("-x")
    for good in ("v1.10.1", "master", "feature/a-b", "993f451354"):
        assert gitops.check_ref(good) == good


def test_git_gets_double_dash_before_urls_and_paths(tmp_path: Path) -> None:
    runner = Runner(dry_run=True)
    gitops.clone("https://m.example/o/r.git", tmp_path / "d", runner, ref="v1")
    assert runner.planned == [("git", "clone", "--progress", "--branch", "v1", "--",
                               "https://m.example/o/r.git", str(tmp_path / "d"))]
    # and for real: an option-shaped URL is only a (missing) repository to git
    marker = tmp_path / "pwned"
    with pytest.raises(SdbootError) as err:
        gitops.clone(f"--upload-pack=touch {marker}", tmp_path / "e", Runner())
    assert err.value.exit_code == 1
    assert not marker.exists()
    with pytest.raises(SdbootError):
        gitops.clone("https://m.example/o/r.git", tmp_path / "f", Runner(dry_run=True),
                     expected_commit="--orphan")


def test_credentials_are_not_kept_in_the_clone_origin() -> None:
    assert gitops.without_userinfo("https://a:pw@m.example/x/https://github.com/o/r.git") == \
        "https://m.example/x/https://github.com/o/r.git"
    assert gitops.without_userinfo("https://m.example/o/r.git") == "https://m.example/o/r.git"
    assert gitops.without_userinfo("/local/path") == "/local/path"


@pytest.mark.parametrize(("body", "line"), [
    ("probes:\n  pypi_project: '--log=/tmp/x'\n", 2),
    ("probes:\n  hf_file: ../../etc/passwd\n", 2),
    ("probes:\n  torch_variant: 'cu121;id'\n", 2),
    ("upstreams:\n  torch: 'https://x.example/whl/{variant}/$(id)'\n", 2),
])
def test_probe_and_upstream_values_are_data_too(config_dir: Path, body: str, line: int) -> None:
    path = config_dir / "mirrors.yaml"
    path.write_text(body)
    res = run_cli("mirror", "list", env={"SDBOOT_CONFIG_DIR": str(config_dir)})
    _error_lines(res, path, line)
