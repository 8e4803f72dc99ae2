"""Mirrors against real git and real HTTP on loopback: a static server that answers like a
prefix proxy (`http://127.0.0.1:PORT/https://github.com/O/R.git`), clones through rewritten
URLs and through the env-mode insteadOf rules, a proxy that serves other code, and
`sdboot mirror test` with fast, slow, closed and wrong servers under one deadline."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from sdboot.errors import SdbootError
from sdboot.io.git import clone, detect_git, parse_git_version, verify_commit
from sdboot.io.runner import Runner
from sdboot.mirrors.env import plan_mirror_env
from sdboot.mirrors.loading import load_mirrors, select
from sdboot.mirrors.table import map_url
from tests.conftest import run_cli
from tests.world.githost import GitHost, closed_port, git, make_bare_repo
from tests.world.launchfiles import POST_V13_UTILS

KD = "https://github.com/crowsonkb/k-diffusion.git"


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("github")
    good = base / "repos"
    commits = {
        "kd": make_bare_repo(good, "crowsonkb/k-diffusion", {"k_diffusion/__init__.py": "v = 1\n"}),
        "sd": make_bare_repo(good, "w-e-w/stablediffusion", {"ldm/__init__.py": "# ldm\n"}),
        "webui": make_bare_repo(good, "AUTOMATIC1111/stable-diffusion-webui",
                                {"launch.py": "print('hi')\n"}, tag="v1.10.1"),
    }
    evil = base / "evil"
    fake = {"k_diffusion/__init__.py": "import os  # not the real code\n"}
    commits["evil_kd"] = make_bare_repo(evil, "crowsonkb/k-diffusion", fake,
                                        work=base / "work-evil")
    proxy = GitHost({"/https://github.com/": good, "/gh/": good}).start()
    liar = GitHost({"/https://github.com/": evil}).start()
    yield {"good": good, "commits": commits, "proxy": proxy, "liar": liar, "base": base}
    proxy.stop()
    liar.stop()


def _overlay(config_dir: Path, mirrors: list[dict[str, str]], upstream: str | None = None,
             ) -> dict[str, str]:
    lines = ["replace_shipped: true", "mirrors:"]
    for entry in mirrors:
        lines.append("  - {" + ", ".join(f"{k}: '{v}'" for k, v in entry.items()) + "}")
    lines += ["substitutions:", "  - from: https://github.com/Stability-AI/stablediffusion.git",
              "    to: https://github.com/w-e-w/stablediffusion.git"]
    if upstream:
        lines += ["upstreams:", f"  github: '{upstream}'", "  hf: ''", "  torch: ''"]
    (config_dir / "mirrors.yaml").write_text("\n".join(lines) + "\n")
    return {"SDBOOT_CONFIG_DIR": str(config_dir), "SDBOOT_CACHE_DIR": str(config_dir / "cache")}


def _git_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"})
    env.update(extra or {})
    return env


def test_rewritten_url_clones_through_the_prefix_proxy(repos, tmp_path: Path) -> None:
    proxy: GitHost = repos["proxy"]
    tbl = load_mirrors()
    from sdboot.mirrors.table import Mirror, MirrorKind

    loop = Mirror("loop", MirrorKind.GITHUB_PREFIX, proxy.url)
    url = map_url(KD, loop, tbl)
    assert url == f"{proxy.url}https://github.com/crowsonkb/k-diffusion.git"
    before = len(proxy.requests)
    commit = clone(url, tmp_path / "kd", Runner(), expected_commit=repos["commits"]["kd"],
                   env=_git_env(tmp_path))
    assert commit == repos["commits"]["kd"]
    assert any(r.startswith("/https://github.com/crowsonkb/k-diffusion.git/info/refs")
               for r in proxy.requests[before:])


def test_env_mode_insteadof_sends_every_clone_through_the_proxy(repos, tmp_path: Path,
                                                                 config_dir: Path,
                                                                 monkeypatch) -> None:
    proxy: GitHost = repos["proxy"]
    env_vars = _overlay(config_dir, [{"name": "loop", "kind": "github-prefix", "url": proxy.url}])
    monkeypatch.setenv("SDBOOT_CONFIG_DIR", env_vars["SDBOOT_CONFIG_DIR"])
    tbl = load_mirrors()
    plan = plan_mirror_env(select(tbl, "loop"), tbl, POST_V13_UTILS)
    home = tmp_path / "home"
    home.mkdir()
    env = _git_env(home, plan.vars)
    # what the WebUI (or an extension install from its Extensions tab) runs: a plain clone
    # of the upstream URL; git's insteadOf from GIT_CONFIG_* sends it through the proxy
    git("clone", "-q", KD, str(tmp_path / "kd"), cwd=home, env=env)
    assert git("rev-parse", "HEAD", cwd=tmp_path / "kd") == repos["commits"]["kd"]
    # the dead upstream goes to its copy, through the proxy as well
    git("clone", "-q", "https://github.com/Stability-AI/stablediffusion.git",
        str(tmp_path / "sd"), cwd=home, env=env)
    assert git("rev-parse", "HEAD", cwd=tmp_path / "sd") == repos["commits"]["sd"]
    assert any(r.startswith("/https://github.com/w-e-w/stablediffusion.git/") for r in
               proxy.requests)
    # nothing was written to the user's git configuration
    assert not (home / ".gitconfig").exists()
    # origins stay upstream: the proxy is in no .git/config, and the *_REPO variables are
    # set only where a dead upstream is replaced (by the copy's upstream URL)
    assert git("config", "--get", "remote.origin.url", cwd=tmp_path / "kd") == KD
    assert git("config", "--get", "remote.origin.url", cwd=tmp_path / "sd") == \
        "https://github.com/Stability-AI/stablediffusion.git"
    assert plan.vars["STABLE_DIFFUSION_REPO"] == "https://github.com/w-e-w/stablediffusion.git"
    assert "K_DIFFUSION_REPO" not in plan.vars


def test_a_proxy_serving_other_code_is_caught(repos, tmp_path: Path) -> None:
    liar: GitHost = repos["liar"]
    url = f"{liar.url}https://github.com/crowsonkb/k-diffusion.git"
    with pytest.raises(SdbootError, match="has no commit") as err:
        clone(url, tmp_path / "kd", Runner(), expected_commit=repos["commits"]["kd"],
              env=_git_env(tmp_path))
    assert err.value.exit_code == 1
    # and a checkout at the wrong commit is reported by verify_commit
    with pytest.raises(SdbootError, match="expected"):
        verify_commit(tmp_path / "kd", repos["commits"]["kd"], url)


def test_git_version_parsing_and_detection() -> None:
    assert parse_git_version("git version 2.39.2.windows.1") == (2, 39, 2)
    assert parse_git_version("git version 2.30") == (2, 30)
    assert parse_git_version("nonsense") is None
    info = detect_git()
    assert info.exe and info.version and info.config_env


def test_mirror_test_ranks_under_one_deadline(repos, config_dir: Path) -> None:
    proxy: GitHost = repos["proxy"]
    slow = GitHost({"/https://github.com/": repos["good"]}, delay_s=8).start()
    empty = config_dir / "empty"
    empty.mkdir()
    wrong = GitHost({"/https://github.com/": empty}).start()
    try:
        env = _overlay(config_dir, [
            {"name": "slow", "kind": "github-prefix", "url": slow.url},
            {"name": "fast", "kind": "github-prefix", "url": proxy.url},
            {"name": "closed", "kind": "github-prefix",
             "url": f"http://127.0.0.1:{closed_port()}/"},
            {"name": "wrong", "kind": "github-prefix", "url": wrong.url},
            {"name": "retired", "kind": "github-prefix", "url": "https://gone.example/",
             "dead_since": "2023-11"},
        ], upstream=f"http://127.0.0.1:{closed_port()}/")
        deadline = 1.5
        started = time.monotonic()
        res = run_cli("mirror", "test", "--kind", "github", "--timeout", str(deadline),
                      "--json", env=env)
        wall = time.monotonic() - started
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert doc["schema"] == "sdboot.mirror-test/1"
        by = {r["name"]: r for r in doc["results"]}
        assert doc["results"][0]["name"] == "fast" and by["fast"]["alive"]
        assert by["slow"]["alive"] is False and "no answer within" in by["slow"]["error"]
        assert by["closed"]["error"] == "connection refused"
        assert by["wrong"]["error"] == "HTTP 404"
        assert by["retired"]["error"] == "known dead since 2023-11"
        assert by["(upstream)"]["alive"] is False
        assert doc["auto"]["github"] == "fast"
        # the slow mirror costs the deadline once, not once per probe
        assert doc["elapsed_s"] <= deadline * 1.1
        assert wall < deadline + 5  # interpreter start-up included; the 8 s server never waited on
    finally:
        slow.stop()
        wrong.stop()


def test_mirror_test_exits_1_and_says_offline_when_nothing_answers(config_dir: Path) -> None:
    env = _overlay(config_dir, [
        {"name": "closed", "kind": "github-prefix", "url": f"http://127.0.0.1:{closed_port()}/"},
    ], upstream=f"http://127.0.0.1:{closed_port()}/")
    res = run_cli("mirror", "test", "--kind", "github", "--timeout", "1", "--json", env=env)
    assert res.returncode == 1, res.stderr
    assert json.loads(res.stdout)["schema"] == "sdboot.mirror-test/1"  # the document still
    assert "you seem to be offline" in res.stderr


def test_mirror_test_names_a_kind_with_no_live_candidate(repos, config_dir: Path) -> None:
    env = _overlay(config_dir, [
        {"name": "fast", "kind": "github-prefix", "url": repos["proxy"].url},
        {"name": "deadhf", "kind": "hf", "url": f"http://127.0.0.1:{closed_port()}/"},
    ], upstream=f"http://127.0.0.1:{closed_port()}/")
    ok = run_cli("mirror", "test", "--kind", "github", "--timeout", "2", env=env)
    assert ok.returncode == 0, ok.stderr
    res = run_cli("mirror", "test", "--kind", "github", "--kind", "hf", "--timeout", "2",
                  env=env)
    assert res.returncode == 1, res.stdout
    assert "no candidate answered for: hf" in res.stderr and "offline" not in res.stderr


def test_mirror_auto_with_nothing_alive_keeps_the_current_block(config_dir: Path,
                                                               tmp_path: Path) -> None:
    from tests.world.launchfiles import write_webui

    webui = write_webui(tmp_path / "webui")
    env = _overlay(config_dir, [
        {"name": "closed", "kind": "github-prefix", "url": f"http://127.0.0.1:{closed_port()}/"},
    ], upstream=f"http://127.0.0.1:{closed_port()}/")
    res = run_cli("mirror", "apply", str(webui), "--github", "closed", env=env)
    assert res.returncode == 0, res.stderr
    before = (webui / "webui-user.sh").read_bytes()
    assert b"127.0.0.1" in before
    res = run_cli("mirror", "apply", str(webui), "--mirror", "auto", "--timeout", "1", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "github: nothing answered; keeping closed" in res.stdout + res.stderr
    assert (webui / "webui-user.sh").read_bytes() == before  # the GitHub mirror stays


def test_mirror_auto_uses_the_cached_ranking(repos, config_dir: Path, tmp_path: Path) -> None:
    from tests.world.launchfiles import write_webui

    proxy: GitHost = repos["proxy"]
    env = _overlay(config_dir, [{"name": "fast", "kind": "github-prefix", "url": proxy.url}],
                   upstream=f"http://127.0.0.1:{closed_port()}/")
    webui = write_webui(tmp_path / "webui")
    first = run_cli("mirror", "apply", str(webui), "--mirror", "auto", "--timeout", "2", env=env)
    assert first.returncode == 0, first.stderr
    assert "github: upstream unreachable; using fast" in first.stdout
    assert f"GIT_CONFIG_KEY_1=url.{proxy.url}https://github.com/.insteadOf" in first.stdout
    seen = len(proxy.requests)
    second = run_cli("mirror", "apply", str(webui), "--mirror", "auto", env=env)
    assert second.returncode == 0, second.stderr
    assert "cached" in second.stdout
    assert len(proxy.requests) == seen  # no new probe
