"""Launch-file rewriting: the pure rewrite on every syntax form (and property tests), then
`sdboot mirror apply / revert / status` on WebUI folders of each layout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdboot.mirrors.rewrite import literal_spans, rewrite_text
from tests.conftest import run_cli
from tests.world.launchfiles import (
    FORGE_UTILS,
    POST_V13_UTILS,
    PRE_V13_LAUNCH,
    WEBUI_USER_BAT,
    WEBUI_USER_SH,
    write_webui,
)

GHFAST = "https://ghfast.top/"
GHPROXY_ORG = "https://gh-proxy.org/"
_GH = re.compile(r"https://(?:github\.com|raw\.githubusercontent\.com)/")


def _comment_and_code_lines(text: str) -> list[str]:
    """Lines outside string literals' URLs: comments must keep their URLs."""
    return [ln for ln in text.split("\r\n") if ln.lstrip().startswith("#")]


@pytest.mark.parametrize("source", [PRE_V13_LAUNCH, POST_V13_UTILS, FORGE_UTILS],
                         ids=["pre-v1.3", "post-v1.3", "forge"])
def test_rewrite_touches_literals_only_and_reverts_exactly(source: str) -> None:
    out = rewrite_text(source, GHFAST)
    assert out.changed
    # every GitHub URL in a literal got the prefix exactly once
    for start, end in literal_spans(out.text):
        literal = out.text[start:end]
        for match in _GH.finditer(literal):
            assert literal[:match.start()].endswith(GHFAST), literal
            assert not literal[:match.start()].endswith(GHFAST + GHFAST)
    assert "'https://api.github.com/repos/AUTOMATIC1111" in out.text
    assert _comment_and_code_lines(out.text) == _comment_and_code_lines(source)
    assert out.text.count("\r\n") == source.count("\r\n")
    compile(out.text, "launch", "exec")
    assert rewrite_text(out.text, GHFAST).text == out.text  # idempotent
    assert rewrite_text(out.text, GHPROXY_ORG).text == rewrite_text(source, GHPROXY_ORG).text
    assert rewrite_text(out.text, None).text == source


def test_rewrite_forms_in_detail() -> None:
    out = rewrite_text(PRE_V13_LAUNCH, GHFAST).text
    assert ('"git+https://ghfast.top/https://github.com/TencentARC/GFPGAN.git@'
            '8d2447a2d918f8eba5a4a01463fd48e45126a379"') in out
    assert "'and https://ghfast.top/https://raw.githubusercontent.com/AUTOMATIC1111/" in out
    assert 'url = "https://ghfast.top/https://github.com/" + "AUTOMATIC1111' in out
    assert "# a comment https://github.com/x/y" in out
    assert ("# stable_diffusion_repo = os.environ.get('STABLE_DIFFUSION_REPO', "
            "\"https://github.com/CompVis/stable-diffusion.git\")") in out
    post = rewrite_text(POST_V13_UTILS, GHFAST).text
    # a literal nested in an f-string's replacement field, and the f-string's own text
    assert "WebUI: https://ghfast.top/https://github.com/AUTOMATIC1111/" in post
    assert "f'https://ghfast.top/https://github.com/madebyollin/taesd/raw/main/" in post
    # implicit multi-line concatenation: each part
    assert post.count("https://ghfast.top/https://github.com/AUTOMATIC1111/stable-diffusion-"
                      "webui/wiki/") == 2
    assert "# git clone https://github.com/example/commented.git" in post


def test_hand_made_ghproxy_rewrite_is_switched_and_cleaned() -> None:
    # the old guides: ghproxy.com put in front of the URLs in code (comments stay upstream)
    hand = "\r\n".join(
        ln if ln.lstrip().startswith("#") else
        ln.replace('"https://github.com/', '"https://ghproxy.com/https://github.com/')
        for ln in PRE_V13_LAUNCH.split("\r\n"))
    assert hand != PRE_V13_LAUNCH
    switched = rewrite_text(hand, GHFAST).text
    assert "ghproxy.com" not in switched
    assert switched == rewrite_text(PRE_V13_LAUNCH, GHFAST).text
    assert rewrite_text(hand, None).text == PRE_V13_LAUNCH


def test_bom_and_invalid_source() -> None:
    text = "\ufeffURL = 'https://github.com/a/b.git'\r\n"
    assert rewrite_text(text, GHFAST).text == \
        "\ufeffURL = 'https://ghfast.top/https://github.com/a/b.git'\r\n"
    from sdboot.errors import SdbootError

    with pytest.raises(SdbootError, match="not valid Python"):
        rewrite_text("x = '''https://github.com/a\n", GHFAST)


# --- property tests --------------------------------------------------------------------------

_URLS = st.sampled_from([
    "https://github.com/O/R.git", "https://github.com/O/R",
    f"https://github.com/O/R/archive/{'a' * 40}.zip",
    "https://github.com/O/R/releases/download/v1/f.pth", "https://github.com/O/R/raw/main/x.pt",
    "https://raw.githubusercontent.com/O/R/main/a.txt", "git+https://github.com/O/R.git@abc",
    "https://api.github.com/repos/O/R", "https://example.com/x",
])
_PREFIXES = st.sampled_from([GHFAST, GHPROXY_ORG, "http://127.0.0.1:8080/",
                             "https://mirror.example.cn/gh/"])


@st.composite
def _statement(draw: st.DrawFn) -> str:
    url = draw(_URLS)
    form = draw(st.integers(0, 8))
    name = draw(st.sampled_from(["a", "repo", "x_1"]))
    if form == 0:
        return f"{name} = '{url}'"
    if form == 1:
        return f'{name} = "{url}"'
    if form == 2:
        return f'{name} = f"{{x}} {url}/{{y!r}}"'
    if form == 3:
        return f'{name} = "{url[:12]}" + "{url[12:]}" + x'
    if form == 4:
        return f'{name} = ("{url}"\n      "{url}")'
    if form == 5:
        return f"# {name} = os.environ.get('X_REPO', \"{url}\")"
    if form == 6:
        return f'{name} = os.environ.get("X_REPO", "{url}")  # see {url}'
    if form == 7:
        return f'{name} = """\n{url}\n"""'
    return f"{name} = r'{url}' if x else b'{url}'"


@st.composite
def _source(draw: st.DrawFn) -> str:
    body = "\n".join(draw(st.lists(_statement(), min_size=1, max_size=8)))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return "x = y = 1\n" + body.replace("\n", newline) + newline


@settings(max_examples=150, deadline=None)
@given(_source(), _PREFIXES, _PREFIXES)
def test_properties_idempotent_no_stacking_exact_revert(source: str, p1: str, p2: str) -> None:
    once = rewrite_text(source, p1).text
    assert rewrite_text(once, p1).text == once
    assert rewrite_text(once, p2).text == rewrite_text(source, p2).text
    assert rewrite_text(once, None).text == source
    compile(once, "gen", "exec")
    assert p1 + p1 not in once
    # outside string literals nothing changed: comments keep their URLs
    assert [ln for ln in once.splitlines() if ln.startswith("#")] == \
        [ln for ln in source.splitlines() if ln.startswith("#")]
    assert once.count("\r") == source.count("\r")


# --- the commands on a WebUI folder ----------------------------------------------------------


def _status(root: Path) -> dict:
    res = run_cli("mirror", "status", str(root), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.parametrize("layout", ["pre-v1.3", "post-v1.3", "forge"])
def test_apply_rewrite_revert_cycle(tmp_path: Path, layout: str) -> None:
    root = write_webui(tmp_path / "webui", layout)
    lf = root / ("launch.py" if layout == "pre-v1.3" else "modules/launch_utils.py")
    original = lf.read_bytes()

    dry = run_cli("mirror", "apply", str(root), "--github", "ghfast", "--mode", "rewrite",
                  "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+" in dry.stdout and "https://ghfast.top/https://github.com/" in dry.stdout
    assert lf.read_bytes() == original and not (root / ".sdboot").exists()

    res = run_cli("mirror", "apply", str(root), "--github", "ghfast", "--mode", "rewrite")
    assert res.returncode == 0, res.stderr
    assert "blocks `git pull`" in res.stdout
    rewritten = lf.read_bytes()
    assert rewritten != original and b"\r\n" in rewritten
    st_ = _status(root)
    assert st_["rewrite"]["mirror"] == "ghfast" and st_["rewrite"]["state"] == "applied"

    again = run_cli("mirror", "apply", str(root), "--github", "ghfast", "--mode", "rewrite")
    assert again.returncode == 0 and lf.read_bytes() == rewritten

    switch = run_cli("mirror", "apply", str(root), "--github", "gh-proxy", "--mode", "rewrite")
    assert switch.returncode == 0, switch.stderr
    assert b"ghfast" not in lf.read_bytes() and b"gh-proxy.org/https://github.com/" in \
        lf.read_bytes()

    back = run_cli("mirror", "revert", str(root))
    assert back.returncode == 0, back.stderr
    assert lf.read_bytes() == original
    assert _status(root)["rewrite"] is None
    assert not (root / ".sdboot" / "mirror.json").exists()


def test_revert_refuses_after_an_edit_and_force_keeps_the_edit(tmp_path: Path) -> None:
    root = write_webui(tmp_path / "webui")
    lf = root / "modules/launch_utils.py"
    original = lf.read_bytes()
    assert run_cli("mirror", "apply", str(root), "--github", "ghfast", "--mode",
                   "rewrite").returncode == 0
    lf.write_bytes(lf.read_bytes() + b"# my edit\r\n")
    res = run_cli("mirror", "revert", str(root))
    assert res.returncode == 2
    assert res.stderr.startswith("error: modules/launch_utils.py was edited after sdboot")
    assert "--force" in res.stderr
    assert lf.read_bytes().endswith(b"# my edit\r\n")
    assert "edited since" in _status(root)["rewrite"]["state"]
    apply_again = run_cli("mirror", "apply", str(root), "--github", "gh-proxy", "--mode",
                          "rewrite")
    assert apply_again.returncode == 2 and "was changed since" in apply_again.stderr

    forced = run_cli("mirror", "revert", str(root), "--force")
    assert forced.returncode == 0, forced.stderr
    assert lf.read_bytes() == original
    kept = list((root / ".sdboot" / "backup" / "modules").glob("launch_utils.py.edited-*"))
    assert len(kept) == 1 and kept[0].read_bytes().endswith(b"# my edit\r\n")


def test_status_and_revert_of_a_hand_made_rewrite(tmp_path: Path) -> None:
    root = write_webui(tmp_path / "webui", "pre-v1.3")
    lf = root / "launch.py"
    lf.write_bytes(PRE_V13_LAUNCH.replace('"https://github.com/TencentARC',
                                          '"https://ghproxy.com/https://github.com/TencentARC')
                   .replace("'https://github.com/crowsonkb",
                            "'https://ghproxy.com/https://github.com/crowsonkb").encode())
    doc = _status(root)
    assert doc["rewrite"] is None and doc["hand_rewrites"]
    assert any("ghproxy.com" in u for u in doc["hand_rewrites"])
    res = run_cli("mirror", "revert", str(root))
    assert res.returncode == 0, res.stderr
    assert "did not write" in res.stdout
    assert lf.read_bytes() == PRE_V13_LAUNCH.encode()


def test_rewrite_mode_needs_a_prefix_proxy(tmp_path: Path) -> None:
    root = write_webui(tmp_path / "webui")
    res = run_cli("mirror", "apply", str(root), "--github", "gitclone", "--mode", "rewrite")
    assert res.returncode == 2 and "prefix proxy" in res.stderr
    res = run_cli("mirror", "apply", str(root), "--mode", "rewrite")
    assert res.returncode == 2 and "--github" in res.stderr
    res = run_cli("mirror", "apply", str(tmp_path), "--github", "ghfast")
    assert res.returncode == 2 and "not a Stable Diffusion WebUI" in res.stderr


def test_env_mode_writes_and_removes_the_webui_user_blocks(tmp_path: Path) -> None:
    root = write_webui(tmp_path / "webui")
    lf_before = (root / "modules/launch_utils.py").read_bytes()
    res = run_cli("mirror", "apply", str(root), "--mirror", "cn")
    assert res.returncode == 0, res.stderr
    sh = (root / "webui-user.sh").read_text()
    bat = (root / "webui-user.bat").read_bytes().decode()
    assert "export STABLE_DIFFUSION_REPO=https://github.com/w-e-w/" in sh  # origin upstream
    assert "K_DIFFUSION_REPO" not in sh  # the proxy through insteadOf only
    assert "export GIT_CONFIG_KEY_1=url.https://ghfast.top/https://github.com/.insteadOf" in sh
    assert "unset HF_TOKEN" in sh
    assert bat.index('set "PIP_INDEX_URL=') < bat.index("call webui.bat")
    assert (root / "modules/launch_utils.py").read_bytes() == lf_before  # no WebUI file changed
    doc = _status(root)
    assert doc["env"]["selection"]["github"] == "ghfast"
    assert doc["env"]["files"] == ["webui-user.bat", "webui-user.sh"]
    assert doc["env"]["vars"]["HF_ENDPOINT"] == "https://hf-mirror.com"

    res = run_cli("mirror", "revert", str(root))
    assert res.returncode == 0, res.stderr
    assert (root / "webui-user.sh").read_bytes() == WEBUI_USER_SH.encode()
    assert (root / "webui-user.bat").read_bytes() == WEBUI_USER_BAT.encode()
    assert _status(root)["env"] is None


def test_state_dir_is_excluded_from_git(tmp_path: Path) -> None:
    from tests.world.githost import git

    root = write_webui(tmp_path / "webui")
    git("init", "-q", cwd=root)
    assert run_cli("mirror", "apply", str(root), "--github", "ghfast", "--mode",
                   "rewrite").returncode == 0
    status = git("status", "--porcelain", cwd=root)
    assert ".sdboot" not in status
    assert "/.sdboot/" in (root / ".git/info/exclude").read_text()
