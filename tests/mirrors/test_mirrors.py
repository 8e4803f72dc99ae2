"""The mirror table, the pure URL mapping, and the env-mode plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdboot.errors import SdbootError
from sdboot.io.http_rules import auth_headers, token_allowed
from sdboot.mirrors.env import (
    plan_mirror_env,
    read_block,
    remove_block,
    render_block,
    upsert_block,
)
from sdboot.mirrors.health import Candidate, Health, check_body, choose_auto, plan_candidates
from sdboot.mirrors.loading import load_mirrors, select
from sdboot.mirrors.table import (
    Mirror,
    MirrorKind,
    canonical_url,
    git_rewrites,
    map_hf_url,
    map_url,
    substitute,
    variant_of,
)
from sdboot.values import TorchPins
from tests.conftest import run_cli
from tests.world.launchfiles import POST_V13_UTILS, PRE_V13_LAUNCH, WEBUI_USER_BAT, WEBUI_USER_SH

SHA = "d50d76daa670286dd6cacf3bcd80b5e4823fc8e1"


@pytest.fixture(scope="module")
def table():
    return load_mirrors()


def m(table, name: str) -> Mirror:
    return table.get(name)


# --- the table -------------------------------------------------------------------------------


def test_shipped_table_has_every_kind_and_the_seed_proxy_marked_dead(table) -> None:
    kinds = {mi.kind for mi in table.mirrors.values()}
    assert kinds == set(MirrorKind)
    assert table.get("ghproxy").url == "https://ghproxy.com/"
    assert table.get("ghproxy").dead_since == "2023-11"
    assert table.presets["cn"] == {"github": "ghfast", "pypi": "tuna", "torch": "aliyun-torch",
                                   "hf": "hf-mirror", "conda": "tuna-conda",
                                   "python": "ghfast-python"}
    assert any("Stability-AI/stablediffusion" in s.from_url for s in table.substitutions)


def test_overlay_adds_and_replaces_by_name(config_dir: Path) -> None:
    (config_dir / "mirrors.yaml").write_text(
        "mirrors:\n"
        "  - name: ghfast\n    kind: github-prefix\n    url: https://my-ghfast.example/\n"
        "  - name: corp\n    kind: pypi\n    url: https://pypi.corp.example/simple\n"
        "presets:\n  corp: {pypi: corp, github: ghfast}\n")
    doc = run_cli("mirror", "list", "--json", env={"SDBOOT_CONFIG_DIR": str(config_dir)}).json()
    by_name = {e["name"]: e for e in doc["mirrors"]}
    assert by_name["ghfast"]["url"] == "https://my-ghfast.example/"
    assert by_name["ghfast"]["source"] == "user"
    assert by_name["corp"]["source"] == "user" and by_name["tuna"]["source"] == "shipped"
    assert doc["presets"]["corp"] == {"pypi": "corp", "github": "ghfast"}
    assert doc["schema"] == "sdboot.mirror-list/1"


@pytest.mark.parametrize(("body", "line", "what"), [
    ("mirrors:\n  - name: x\n    kind: gitlab\n    url: https://x.example/\n", 3,
     "unknown mirror kind 'gitlab'"),
    ("mirrors:\n  - name: x\n    kind: github-prefix\n    url: https://x.example\n", 4,
     "must end with '/'"),
    ("mirrors:\n  - name: x\n    kind: pypi\n    url: ftp://x.example/simple\n", 4,
     "not an http(s) URL"),
    ("mirrors:\n  - name: x\n    kind: pypi\n", 2, "lacks 'url'"),
    ("mirrors:\n  - name: x\n    kind: pypi\n    url: https://x.example/{variant}\n", 4,
     "only torch mirrors may use {variant}"),
    ("presets:\n  mine: {github: tuna}\n", 2, "which is a pypi mirror"),
    ("presets:\n  mine: {github: nosuch}\n", 2, "unknown mirror"),
    ("mirrors: [\n", 2, "malformed YAML"),
    ("substitutions:\n  - from: https://gitlab.com/a/b.git\n    to: https://github.com/c/d.git\n",
     2, "is not a https://github.com/OWNER/REPO URL"),
])
def test_bad_overlay_entries_exit_2_with_file_and_line(config_dir: Path, body: str, line: int,
                                                       what: str) -> None:
    (config_dir / "mirrors.yaml").write_text(body)
    res = run_cli("mirror", "list", env={"SDBOOT_CONFIG_DIR": str(config_dir)})
    assert res.returncode == 2, res.stderr
    first, hint = res.stderr.strip().splitlines()
    assert first.startswith(f"error: {config_dir / 'mirrors.yaml'}:{line}: "), first
    assert what in first
    assert hint.startswith("hint: ")
    assert "Traceback" not in res.stderr


def test_select_presets_single_names_overrides_and_http_rule(table) -> None:
    sel = select(table, "cn")
    assert sel.chosen() == table.presets["cn"]
    assert select(table, "gh-proxy").chosen() == {"github": "gh-proxy"}
    assert select(table, "cn", pypi="ustc", hf="none").chosen()["pypi"] == "ustc"
    assert "hf" not in select(table, "cn", hf="none").chosen()
    assert select(table, "none").chosen() == {}
    with pytest.raises(SdbootError, match="unknown mirror or preset 'mars'"):
        select(table, "mars")
    with pytest.raises(SdbootError, match="unknown github mirror 'tuna'"):
        select(table, None, github="tuna")


def test_plain_http_mirrors_only_for_loopback_or_insecure(config_dir: Path, monkeypatch) -> None:
    (config_dir / "mirrors.yaml").write_text(
        "mirrors:\n"
        "  - {name: lan, kind: pypi, url: 'http://10.0.0.5/simple'}\n"
        "  - {name: local, kind: pypi, url: 'http://127.0.0.1:3141/simple'}\n")
    monkeypatch.setenv("SDBOOT_CONFIG_DIR", str(config_dir))
    tbl = load_mirrors()
    with pytest.raises(SdbootError, match="plain http"):
        select(tbl, "lan")
    assert select(tbl, "lan", insecure=True).pypi is not None
    assert select(tbl, "local").pypi is not None


# --- URL mapping -----------------------------------------------------------------------------

FORMS = [
    "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git",
    "https://github.com/AUTOMATIC1111/stable-diffusion-webui",
    f"https://github.com/openai/CLIP/archive/{SHA}.zip",
    "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",
    "https://github.com/madebyollin/taesd/raw/main/taesd_decoder.pth",
    "https://raw.githubusercontent.com/pharmapsychotic/clip-interrogator/main/data/flavors.txt",
]


@pytest.mark.parametrize("url", FORMS)
def test_prefix_mapping_of_every_form(table, url: str) -> None:
    mapped = map_url(url, m(table, "ghfast"), table)
    assert mapped == "https://ghfast.top/" + url
    # switching proxies replaces the prefix; it never stacks
    switched = map_url(mapped, m(table, "gh-proxy"), table)
    assert switched == "https://gh-proxy.org/" + url
    assert map_url(switched, None, table) == url
    assert canonical_url("https://ghproxy.com/https://ghfast.top/" + url) == url


def test_git_plus_urls_keep_git_plus_in_front(table) -> None:
    url = f"git+https://github.com/openai/CLIP.git@{SHA}"
    assert map_url(url, m(table, "ghfast"), table) == \
        f"git+https://ghfast.top/https://github.com/openai/CLIP.git@{SHA}"
    assert map_url(f"git+https://ghproxy.com/https://github.com/openai/CLIP.git@{SHA}",
                   m(table, "ghfast"), table) == \
        f"git+https://ghfast.top/https://github.com/openai/CLIP.git@{SHA}"


def test_clone_only_and_host_mirrors(table) -> None:
    repo = "https://github.com/crowsonkb/k-diffusion.git"
    clone = map_url(repo, m(table, "gitclone"), table)
    assert clone == "https://gitclone.com/github.com/crowsonkb/k-diffusion.git"
    # a clone-only mirror cannot serve archives: they stay upstream
    archive = f"https://github.com/openai/CLIP/archive/{SHA}.zip"
    assert map_url(archive, m(table, "gitclone"), table) == archive
    host = map_url(archive, m(table, "kkgithub"), table)
    assert host == f"https://kkgithub.com/openai/CLIP/archive/{SHA}.zip"
    # both are recognised again and replaced by a prefix proxy
    assert map_url(clone, m(table, "ghfast"), table) == "https://ghfast.top/" + repo
    assert map_url(host, None, table) == archive


def test_non_github_urls_are_left_alone(table) -> None:
    for url in ("https://api.github.com/repos/AUTOMATIC1111/stable-diffusion-webui/branches/master",
                "https://download.pytorch.org/whl/cu121", "https://huggingface.co/x/y"):
        assert map_url(url, m(table, "ghfast"), table) == url


def test_substitution_of_dead_upstream(table) -> None:
    subs = table.substitutions
    assert substitute("https://github.com/Stability-AI/stablediffusion.git", subs) == \
        "https://github.com/w-e-w/stablediffusion.git"
    assert substitute("https://github.com/stability-ai/stablediffusion", subs) == \
        "https://github.com/w-e-w/stablediffusion.git"
    assert substitute("https://github.com/Stability-AI/generative-models.git", subs) == \
        "https://github.com/Stability-AI/generative-models.git"


def test_git_rewrite_rules_put_substitutions_first(table) -> None:
    rules = git_rewrites(m(table, "ghfast"), table.substitutions)
    assert rules[0] == ("https://ghfast.top/https://github.com/w-e-w/stablediffusion.git",
                        "https://github.com/Stability-AI/stablediffusion.git")
    assert rules[-1] == ("https://ghfast.top/https://github.com/", "https://github.com/")
    assert git_rewrites(m(table, "gitclone"), ())[0] == ("https://gitclone.com/github.com/",
                                                         "https://github.com/")
    assert git_rewrites(None, ()) == []


def test_hf_and_variant_helpers() -> None:
    url = "https://huggingface.co/stabilityai/sd-vae/resolve/main/vae.safetensors"
    assert map_hf_url(url, "https://hf-mirror.com") == \
        "https://hf-mirror.com/stabilityai/sd-vae/resolve/main/vae.safetensors"
    assert map_hf_url(url, None) == url
    assert variant_of("https://download.pytorch.org/whl/cu121") == "cu121"
    assert variant_of("https://download.pytorch.org/whl/rocm6.0/") == "rocm6.0"
    assert variant_of("https://example.com/simple") is None


# --- env mode --------------------------------------------------------------------------------


def test_env_plan_for_post_v13_with_cn_preset(table) -> None:
    env = plan_mirror_env(select(table, "cn"), table, POST_V13_UTILS)
    v = env.vars
    # origins stay upstream: the proxy reaches the *_REPO clones through insteadOf only,
    # and a *_REPO is set where a dead upstream is replaced
    assert v["STABLE_DIFFUSION_REPO"] == "https://github.com/w-e-w/stablediffusion.git"
    assert "K_DIFFUSION_REPO" not in v
    # a pip download (an archive: insteadOf never sees it) goes through the proxy
    assert v["CLIP_PACKAGE"] == f"https://ghfast.top/https://github.com/openai/CLIP/archive/{SHA}.zip"
    assert "TAMING_TRANSFORMERS_REPO" not in v  # this version does not read it
    # aliyun-torch is a flat folder: the launch file's pins with --find-links
    assert v["TORCH_COMMAND"] == ("pip install torch==2.1.2 torchvision==0.16.2 --find-links "
                                  "https://mirrors.aliyun.com/pytorch-wheels/cu121/")
    assert v["PIP_INDEX_URL"] == v["INDEX_URL"] == "https://pypi.tuna.tsinghua.edu.cn/simple"
    assert v["HF_ENDPOINT"] == "https://hf-mirror.com"
    assert set(env.unset) == {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}
    assert v["GIT_CONFIG_COUNT"] == "2"
    assert v["GIT_CONFIG_KEY_1"] == "url.https://ghfast.top/https://github.com/.insteadOf"
    assert v["GIT_CONFIG_VALUE_1"] == "https://github.com/"


def test_env_plan_index_mirror_uses_torch_index_url_and_pre_v13_git_plus(table) -> None:
    post = plan_mirror_env(select(table, "cn-alt"), table, POST_V13_UTILS).vars
    assert post["TORCH_INDEX_URL"] == "https://mirrors.nju.edu.cn/pytorch/whl/cu121/"
    assert "TORCH_COMMAND" not in post
    pre = plan_mirror_env(select(table, "cn-alt"), table, PRE_V13_LAUNCH).vars
    assert pre["TORCH_COMMAND"] == (
        "pip install torch==1.13.1+cu117 torchvision==0.14.1+cu117 --extra-index-url "
        "https://mirrors.nju.edu.cn/pytorch/whl/cu117/")
    assert pre["GFPGAN_PACKAGE"].startswith("git+https://gh-proxy.org/https://github.com/")
    assert "TORCH_INDEX_URL" not in pre


def test_env_plan_with_profile_pins_and_no_mirror_still_substitutes(table) -> None:
    pins = TorchPins("2.7.0+cu128", "0.22.0+cu128", "0.0.30",
                     "https://download.pytorch.org/whl/cu128")
    env = plan_mirror_env(select(table, "none"), table, POST_V13_UTILS, pins).vars
    assert env["TORCH_COMMAND"] == ("pip install torch==2.7.0+cu128 torchvision==0.22.0+cu128 "
                                    "--extra-index-url https://download.pytorch.org/whl/cu128")
    assert env["XFORMERS_PACKAGE"] == "xformers==0.0.30"
    assert env["STABLE_DIFFUSION_REPO"] == "https://github.com/w-e-w/stablediffusion.git"
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert "PIP_INDEX_URL" not in env and "HF_ENDPOINT" not in env


def test_env_plan_continues_an_existing_git_config_count(table) -> None:
    env = plan_mirror_env(select(table, "ghfast"), table, POST_V13_UTILS, git_count_base=2).vars
    assert env["GIT_CONFIG_COUNT"] == "4"
    assert "GIT_CONFIG_KEY_2" in env and "GIT_CONFIG_KEY_0" not in env


def test_managed_block_round_trips_in_both_shells(table) -> None:
    env = plan_mirror_env(select(table, "cn"), table, POST_V13_UTILS)
    sh = upsert_block(WEBUI_USER_SH, render_block(env, "sh"), "sh")
    assert sh.startswith(WEBUI_USER_SH) and "export TORCH_COMMAND='pip install" in sh
    assert remove_block(sh) == WEBUI_USER_SH
    assert read_block(sh) == env.vars
    bat = upsert_block(WEBUI_USER_BAT, render_block(env, "bat"), "bat")
    assert bat.index("set \"HF_ENDPOINT=") < bat.index("call webui.bat")
    assert "\r\n" in bat and "\n" not in bat.replace("\r\n", "")
    assert remove_block(bat) == WEBUI_USER_BAT
    assert read_block(bat) == env.vars
    # applying again replaces the block instead of adding a second one
    again = upsert_block(bat, render_block(env, "bat"), "bat")
    assert again == bat


# --- safety: tokens --------------------------------------------------------------------------


def test_tokens_only_go_to_their_own_service() -> None:
    tokens = {"HF_TOKEN": "hf_secret", "CIVITAI_TOKEN": "civ"}
    assert auth_headers("https://huggingface.co/x/resolve/main/a", tokens) == \
        {"Authorization": "Bearer hf_secret"}
    assert auth_headers("https://cdn-lfs.huggingface.co/x", tokens) == \
        {"Authorization": "Bearer hf_secret"}
    assert auth_headers("https://hf-mirror.com/x/resolve/main/a", tokens) == {}
    assert auth_headers("https://ghfast.top/https://huggingface.co/x", tokens) == {}
    assert auth_headers("https://evilhuggingface.co/x", tokens) == {}
    assert auth_headers("http://huggingface.co/x", tokens) == {}
    assert token_allowed("https://civitai.com/api/download/models/1", "CIVITAI_TOKEN")


# --- health: pure parts ----------------------------------------------------------------------


def test_check_body_rejects_wrong_answers() -> None:
    refs = b"001e# service=git-upload-pack\n0000"
    assert check_body("git-refs", 200, refs) is None
    assert check_body("git-refs", 200, b"a" * 40 + b"\trefs/heads/master\n") is None
    assert check_body("git-refs", 200, b"<html>parked domain</html>") is not None
    assert check_body("git-refs", 404, refs) == "HTTP 404"
    assert check_body("simple", 200, b"<html><a href='x'>pip-1.0.tar.gz</a>") is None
    assert check_body("links", 200, b"<a href='numpy-1.whl'>") == \
        "answered, but lists no torch wheels"
    assert check_body("json", 200, b'{"a": 1}') is None


def _h(name: str, group: str, alive: bool, ms: float | None = None) -> Health:
    return Health(Candidate(name, group, "x", "u", "p", "any"), alive, ms,
                  None if alive else "timed out")


def test_auto_keeps_a_healthy_upstream_and_replaces_a_dead_or_slow_one(table) -> None:
    results = [
        _h("(upstream)", "github", False), _h("ghfast", "github", True, 300),
        _h("gh-proxy", "github", True, 120),
        _h("(upstream)", "pypi", True, 400), _h("tuna", "pypi", True, 50),
        _h("(upstream)", "hf", True, 9000), _h("hf-mirror", "hf", True, 200),
        _h("(upstream)", "torch", False), _h("aliyun-torch", "torch", False),
    ]
    sel, reasons = choose_auto(results, table)
    assert sel.chosen() == {"github": "gh-proxy", "hf": "hf-mirror"}
    assert any("torch: upstream unreachable and no mirror answered" in r for r in reasons)
    assert any(r.startswith("hf: upstream slow") for r in reasons)


def test_candidates_skip_known_dead_and_insecure(table) -> None:
    cands = {c.name: c for c in plan_candidates(table, ("github",))}
    assert cands["ghproxy"].skip == "known dead since 2023-11"
    assert cands["ghfast"].probe_url == (
        "https://ghfast.top/https://github.com/AUTOMATIC1111/stable-diffusion-webui.git"
        "/info/refs?service=git-upload-pack")
    assert cands["gitclone"].probe_url.startswith(
        "https://gitclone.com/github.com/AUTOMATIC1111/stable-diffusion-webui.git/info/refs")
    assert cands["(upstream)"].skip is None
