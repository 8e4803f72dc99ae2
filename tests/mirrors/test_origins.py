"""Origins stay upstream (issue 14): every clone sdboot makes keeps the upstream URL as its
`origin`, the mirror applying only through process-scoped insteadOf rules; git older than
2.31 (which ignores GIT_CONFIG_*) clones the mirror's URL and gets the upstream origin set
after. Real git against a loopback prefix proxy; no rule of the environment plays GitHub
here (https://github.com goes to a closed port), so a clone that does not go through the
mirror fails instead of passing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sdboot.io.git import clone, stored_origin
from sdboot.io.runner import Runner
from sdboot.mirrors.env import plan_mirror_env
from sdboot.mirrors.loading import load_mirrors, select
from sdboot.mirrors.origins import plan_clone, proxied_origin, rules_as_args
from sdboot.mirrors.table import Mirror, MirrorKind, MirrorTable, Substitution
from tests.conftest import run_cli
from tests.world.githost import GitHost, closed_port, git, make_bare_repo
from tests.world.launchfiles import POST_V13_UTILS, write_webui

KD = "https://github.com/crowsonkb/k-diffusion.git"
THING = "https://github.com/someone/sd-webui-thing.git"
PROXY = Mirror("loop", MirrorKind.GITHUB_PREFIX, "https://proxy.example/")
HOST = Mirror("kk", MirrorKind.GITHUB_HOST, "https://kkgithub.example/")
SUBS = (Substitution("https://github.com/Stability-AI/stablediffusion.git",
                     "https://github.com/w-e-w/stablediffusion.git"),)
TABLE = MirrorTable({"loop": PROXY, "kk": HOST}, {}, SUBS)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> GitHost:
    repos = tmp_path_factory.mktemp("gh")
    make_bare_repo(repos, "crowsonkb/k-diffusion", {"k_diffusion/__init__.py": "v = 1\n"})
    make_bare_repo(repos, "someone/sd-webui-thing", {"install.py": "print('hi')\n"})
    host = GitHost({"/https://github.com/": repos}).start()
    yield host
    host.stop()


def _no_github(home: Path) -> dict[str, str]:
    """git with no user/system config, and github.com unreachable (a closed port): only a
    rule for `https://github.com/` (longer, so git prefers it) reaches the proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": f"url.http://127.0.0.1:{closed_port()}.insteadOf",
                "GIT_CONFIG_VALUE_0": "https://github.com"})
    return env


def _old_git(folder: Path) -> Path:
    """A `git` that says it is 2.30 and, like it, ignores GIT_CONFIG_COUNT/KEY/VALUE."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "git"
    script.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "git version 2.30.2"; '
                      'exit 0; fi\nn=0\nwhile [ "$n" -lt "${GIT_CONFIG_COUNT:-0}" ]; do '
                      'unset "GIT_CONFIG_KEY_$n" "GIT_CONFIG_VALUE_$n"; n=$((n+1)); done\n'
                      f'unset GIT_CONFIG_COUNT\nexec {_real_git()} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def _real_git() -> str:
    import shutil

    found = shutil.which("git")
    assert found
    return found


# --- planning (pure) -------------------------------------------------------------------------


def test_plan_clone_keeps_the_upstream_as_origin() -> None:
    plan = plan_clone(KD, PROXY, TABLE, config_env=True)
    assert plan.url == plan.origin == KD
    assert plan.fetched == "https://proxy.example/" + KD
    assert plan.config_args()[-2:] == [
        "-c", "url.https://proxy.example/https://github.com/.insteadOf=https://github.com/"]
    # a URL given behind a proxy (or on a mirror host) is cloned as its upstream
    for given in ("https://old-proxy.example/" + KD, "https://kkgithub.example/crowsonkb/"
                  "k-diffusion.git"):
        assert plan_clone(given, PROXY, TABLE, config_env=True).origin == KD
    # a dead upstream: its copy is the origin
    dead = plan_clone("https://github.com/Stability-AI/stablediffusion.git", None, TABLE,
                      config_env=True)
    assert dead.url == dead.origin == "https://github.com/w-e-w/stablediffusion.git"
    # git < 2.31: the mirror's URL is cloned, the origin set to the upstream after
    old = plan_clone(KD, PROXY, TABLE, config_env=False)
    assert (old.url, old.origin, old.env) == ("https://proxy.example/" + KD, KD, {})
    # no mirror: the upstream, with only the substitutes' rules
    none = plan_clone(KD, None, TABLE, config_env=True)
    assert none.url == none.fetched == KD and none.env["GIT_CONFIG_COUNT"] == "1"


def test_env_mode_sets_repo_variables_only_for_substitutes() -> None:
    sel = select(TABLE, None, True, github="loop")
    v = plan_mirror_env(sel, TABLE, POST_V13_UTILS, git_count_base=2).vars
    assert v["STABLE_DIFFUSION_REPO"] == "https://github.com/w-e-w/stablediffusion.git"
    assert "K_DIFFUSION_REPO" not in v
    assert v["GIT_CONFIG_COUNT"] == "4" and v["GIT_CONFIG_VALUE_3"] == "https://github.com/"
    assert rules_as_args(v)[1].startswith(
        "url.https://proxy.example/https://github.com/w-e-w/stablediffusion.git.insteadOf=")
    # git < 2.31 ignores the rules: there the *_REPO URLs carry the mirror
    old = plan_mirror_env(sel, TABLE, POST_V13_UTILS, git_config_env=False).vars
    assert old["K_DIFFUSION_REPO"] == "https://proxy.example/" + KD
    assert old["STABLE_DIFFUSION_REPO"] == \
        "https://proxy.example/https://github.com/w-e-w/stablediffusion.git"


def test_proxied_origin() -> None:
    assert proxied_origin("https://proxy.example/" + KD, TABLE) == KD
    assert proxied_origin("https://some.other.proxy/" + KD, TABLE) == KD  # any prefix
    assert proxied_origin("https://kkgithub.example/crowsonkb/k-diffusion.git", TABLE) == KD
    assert proxied_origin(KD, TABLE) is None
    assert proxied_origin("https://gitlab.example/o/r.git", TABLE) is None
    assert proxied_origin(None, TABLE) is None


# --- real git ----------------------------------------------------------------------------------


@pytest.mark.parametrize("config_env", [True, False], ids=["git>=2.31", "git<2.31-fallback"])
def test_clone_through_the_proxy_keeps_an_upstream_origin(proxy: GitHost, tmp_path: Path,
                                                          config_env: bool) -> None:
    mirror = Mirror("loop", MirrorKind.GITHUB_PREFIX, proxy.url)
    table = MirrorTable({"loop": mirror}, {}, ())
    env = _no_github(tmp_path)
    plan = plan_clone(KD, mirror, table, config_env=config_env, git_count_base=1)
    before = len(proxy.requests)
    clone(plan.url, tmp_path / "kd", Runner(), env={**env, **plan.env}, origin=plan.origin)
    assert any(r.startswith("/https://github.com/crowsonkb/k-diffusion.git/")
               for r in proxy.requests[before:])  # it came through the proxy
    assert git("config", "--get", "remote.origin.url", cwd=tmp_path / "kd") == KD
    assert stored_origin(tmp_path / "kd") == KD
    assert proxy.url not in (tmp_path / "kd/.git/config").read_text()


def test_without_the_rule_the_clone_fails(proxy: GitHost, tmp_path: Path) -> None:
    """The twin: the world's environment alone cannot reach GitHub, so the tests above pass
    only through sdboot's rule."""
    from sdboot.errors import SdbootError

    with pytest.raises(SdbootError, match="failed"):
        clone(KD, tmp_path / "kd", Runner(), env=_no_github(tmp_path))


@pytest.mark.parametrize("old", [False, True], ids=["git>=2.31", "git<2.31"])
def test_ext_add_through_a_mirror_leaves_an_upstream_origin(proxy: GitHost, tmp_path: Path,
                                                            config_dir: Path, old: bool) -> None:
    (config_dir / "mirrors.yaml").write_text(
        "replace_shipped: true\n"
        f"mirrors:\n  - {{name: loop, kind: github-prefix, url: '{proxy.url}'}}\n")
    env = {**_no_github(tmp_path), "SDBOOT_CONFIG_DIR": str(config_dir)}
    if old:
        env["PATH"] = f"{_old_git(tmp_path / 'bin')}{os.pathsep}{env['PATH']}"
    webui = write_webui(tmp_path / "webui")
    assert run_cli("mirror", "apply", str(webui), "--github", "loop", env=env).returncode == 0
    before = len(proxy.requests)
    res = run_cli("ext", "add", "someone/sd-webui-thing", "--webui", str(webui), env=env)
    assert res.returncode == 0, res.stderr
    assert any(r.startswith("/https://github.com/someone/sd-webui-thing.git/")
               for r in proxy.requests[before:])
    ext = webui / "extensions/sd-webui-thing"
    assert git("config", "--get", "remote.origin.url", cwd=ext) == THING
    # a URL given behind the proxy is kept upstream too
    res = run_cli("ext", "add", f"{proxy.url}https://github.com/crowsonkb/k-diffusion.git",
                  "--webui", str(webui), env=env)
    assert res.returncode == 0, res.stderr
    assert git("config", "--get", "remote.origin.url", cwd=webui / "extensions/k-diffusion") \
        == KD


def test_shipped_table_canonical_forms(config_dir: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped mirrors' own URL forms are all recognised as mirrors' (never upstream)."""
    monkeypatch.setenv("SDBOOT_CONFIG_DIR", str(config_dir))
    table = load_mirrors()
    for m in table.of_group("github"):
        if m.kind == MirrorKind.GITHUB_PREFIX:
            assert proxied_origin(m.url + KD, table) == KD, m.name
        else:
            assert proxied_origin(m.url + "crowsonkb/k-diffusion.git", table) == KD, m.name
