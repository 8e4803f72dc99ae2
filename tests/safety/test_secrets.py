"""Secrets never shown or written (issue 11): one broad end-to-end test seeds known
credentials (a user overlay with `user:password@` and bare-token mirror URLs, HF_TOKEN /
CIVITAI_TOKEN, --gradio-auth / --api-auth values), runs every command it cheaply can in
the local world (tests/world/local.py), a real install through the secret mirrors
included, and greps stdout, stderr and every file sdboot wrote for each secret. Then
focused unit tests of sdboot.io.mask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdboot.io.mask import MASK, mask, mask_argv, mask_env, mask_obj
from sdboot.io.runner import Runner
from tests.world.local import ROOT, LocalWorld, build_local_world, sdboot_argv

PASSWORD = "S3cretPw1"
GH_TOKEN = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8"  # a GitHub-shaped token, 24 characters
HF_TOKEN = "hf_" + "Qw3rTy7UiOp2AsDfGhJkLz"
CIVITAI_TOKEN = "civ" + "4x9QmZ2Lp8Rt6YwE1nB"
GRADIO_PW = "Pw0rd99"
API_PW = "ApiPw0rd77"
SECRETS = (PASSWORD, GH_TOKEN, HF_TOKEN, CIVITAI_TOKEN, GRADIO_PW, API_PW)


@pytest.fixture(scope="module")
def lw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorld]:
    world = build_local_world(tmp_path_factory.mktemp("secret-world"))
    yield world
    world.stop()


def _secret_overlay(lw: LocalWorld) -> None:
    """The world's own mirrors, reached with credentials: git and pip must get the real
    URLs (the loopback servers ignore the credentials), users must never see them."""
    host = lw.github.url.removeprefix("http://")
    index = lw.index.url.removeprefix("http://")
    text = (lw.config_dir / "mirrors.yaml").read_text()
    text = text.replace("mirrors:\n", "mirrors:\n"
                        f"  - {{name: sec-gh, kind: github-prefix, "
                        f"url: 'http://alice:{PASSWORD}@{host}'}}\n"
                        f"  - {{name: sec-pypi, kind: pypi, url: 'http://{GH_TOKEN}@{index}/simple/'}}\n"
                        f"  - {{name: sec-torch, kind: torch-index, "
                        f"url: 'http://alice:{PASSWORD}@{index}/whl/{{variant}}/'}}\n", 1)
    text = text.replace("presets:\n", "presets:\n"
                        "  secret: {github: sec-gh, pypi: sec-pypi, torch: sec-torch}\n", 1)
    (lw.config_dir / "mirrors.yaml").write_text(text)


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_no_secret_in_any_output_or_file(lw: LocalWorld, tmp_path: Path) -> None:
    _secret_overlay(lw)
    cache = lw.root / "cache"
    env = lw.env(HF_TOKEN=HF_TOKEN, CIVITAI_TOKEN=CIVITAI_TOKEN)
    webui = tmp_path / "webui"
    outputs: list[tuple[str, str]] = []

    def sdboot(*args: str, ok: tuple[int, ...] = (0,), **extra: str) -> str:
        res = subprocess.run(sdboot_argv(*args), env={**env, **extra}, capture_output=True,
                             text=True, cwd=ROOT, timeout=300)
        outputs.append((" ".join(args), res.stdout + res.stderr))
        assert res.returncode in ok, f"{args}: {res.stdout}{res.stderr}"
        return res.stdout

    listed = sdboot("mirror", "list")
    assert "sec-gh" in listed and MASK in listed  # shown, masked
    doc = json.loads(sdboot("mirror", "list", "--json"))
    assert {m["name"]: m["url"] for m in doc["mirrors"]}["sec-pypi"].startswith("http://***@")
    sdboot("mirror", "test", "--timeout", "3", "--json", ok=(0, 1))
    sdboot("mirror", "test", "--kind", "github", "--kind", "pypi", "--timeout", "3", ok=(0, 1))
    sdboot("install", str(tmp_path / "planned"), "--mirror", "secret", "--dry-run")
    # a real install through the credentialed mirrors: they are used, not only shown
    doc = json.loads(sdboot("install", str(webui), "--mirror", "secret", "--json"))
    assert doc["complete"], doc
    # the clone went through the credentialed proxy; its origin is the upstream (issue 14),
    # and nothing in .git/config keeps the proxy's password
    assert any(r.startswith("/https://github.com/") for r in lw.github.requests)
    origin = subprocess.run(["git", "-C", str(webui), "config", "--get", "remote.origin.url"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert origin == "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git", origin
    assert GH_TOKEN not in (webui / ".git/config").read_text()
    sdboot("mirror", "apply", str(webui), "--mirror", "secret", "--dry-run")
    sdboot("mirror", "apply", str(webui), "--mirror", "secret")
    status = sdboot("mirror", "status", str(webui))
    assert "PIP_INDEX_URL=http://***@" in status
    sdboot("mirror", "status", str(webui), "--json")
    # the WebUI gets the real URL (the block is its configuration), sdboot shows ***
    assert GH_TOKEN in (webui / "webui-user.sh").read_text()
    sdboot("mirror", "revert", str(webui))
    shown = sdboot("launch", str(webui), "--dry-run", "--", "--gradio-auth", f"admin:{GRADIO_PW}",
                   f"--api-auth=api:{API_PW}",
                   COMMANDLINE_ARGS=f"--gradio-auth admin:{GRADIO_PW}")
    assert "--gradio-auth" in shown and MASK in shown
    sdboot("doctor", str(webui), "--offline", "--json", ok=(0, 1))
    sdboot("doctor", str(webui), "--offline", ok=(0, 1))
    sdboot("gpu", "--json")
    sdboot("verify", str(webui), "--json", ok=(0, 1))

    for what, text in outputs:
        assert not _leaks(text), f"sdboot {what} showed {_leaks(text)}:\n{text}"
    # every file sdboot (and the git / pip it ran) wrote: the WebUI folder, the config and
    # cache folders (the install log among them). Two files carry the credentials on
    # purpose: the user's own overlay, and webui-user.sh/.bat, which hand the mirror URLs
    # to the WebUI's pip and git; mirror revert took the block out of the latter again.
    assert cache.is_dir() and list((cache / "logs").glob("install-*.log"))
    exempt = {lw.config_dir / "mirrors.yaml"}
    checked = 0
    for top in (webui, tmp_path / "planned", lw.config_dir, cache):
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                path = Path(dirpath) / name
                if path in exempt or path.is_symlink():
                    continue
                data = path.read_bytes()
                checked += 1
                found = [s for s in SECRETS if s.encode() in data]
                assert not found, f"{path} holds {found}"
    assert checked > 100


def test_runner_log_masks_commands_and_output(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    runner = Runner(log_path=log)
    url = f"https://alice:{PASSWORD}@mirror.example/simple/"
    res = runner.run([sys.executable, "-c", "import sys; print(sys.argv[1])", url], timeout=30)
    assert url in res.stdout  # the child got the real value
    res = runner.stream([sys.executable, "-c", "import sys; print(*sys.argv[1:])",
                         "--gradio-auth", f"admin:{GRADIO_PW}"], timeout=30)
    assert f"admin:{GRADIO_PW}" in res.stdout
    text = log.read_text()
    assert not _leaks(text), text
    assert "https://***@mirror.example/simple/" in text
    assert "--gradio-auth '***'" in text or "--gradio-auth ***" in text


# --- sdboot.io.mask -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "gone"), [
    (f"https://alice:{PASSWORD}@mirror.example/x", PASSWORD),
    (f"clone http://{GH_TOKEN}@127.0.0.1:9/gh/", GH_TOKEN),
    (f"git+https://x-access-token:{PASSWORD}@github.example/o/r.git", PASSWORD),
    (f"export PIP_INDEX_URL='https://u:{PASSWORD}@i.example/simple'", PASSWORD),
    (f"HF_TOKEN={HF_TOKEN} sdboot models add", HF_TOKEN),
    (f"token {HF_TOKEN} in a message", HF_TOKEN),
    (f"--gradio-auth admin:{GRADIO_PW} --api", GRADIO_PW),
    (f"--api-auth='api:{API_PW}'", API_PW),
    (f"https://civitai.example/api/download/models/1?token={CIVITAI_TOKEN}&type=Model",
     CIVITAI_TOKEN),
    (f"Authorization: Bearer {CIVITAI_TOKEN}", CIVITAI_TOKEN),
    (f"url.http://alice:{PASSWORD}@127.0.0.1:8/https://github.com/.insteadOf", PASSWORD),
    (f"https://alice:a@{PASSWORD}@m.example/simple", PASSWORD),  # a raw @ in the password
])
def test_mask_hides(text: str, gone: str) -> None:
    out = mask(text)
    assert gone not in out and MASK in out


def test_mask_keeps_ordinary_text() -> None:
    for text in ("https://mirror.example/simple/", "pip install torch==2.1.2+cu121 "
                 "--extra-index-url https://download.example/whl/cu121",
                 "--medvram --xformers --port 7860", "GIT_CONFIG_KEY_0=url.x.insteadOf",
                 "user@example.com wrote a note", "--gradio-auth-path /etc/auth.txt"):
        assert mask(text) == text


def test_mask_env_argv_obj_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVITAI_TOKEN", CIVITAI_TOKEN)
    assert mask(f"downloading with {CIVITAI_TOKEN}") == f"downloading with {MASK}"
    assert mask_argv(["--gradio-auth", f"admin:{GRADIO_PW}", "--api-auth", f"a:{API_PW}",
                      "--port", "7860"]) == ["--gradio-auth", MASK, "--api-auth", MASK,
                                             "--port", "7860"]
    assert mask_env({"HF_TOKEN": HF_TOKEN, "INDEX_URL": f"https://{GH_TOKEN}@i.example/",
                     "COMMANDLINE_ARGS": f"--gradio-auth admin:{GRADIO_PW}"}) == {
        "HF_TOKEN": MASK, "INDEX_URL": f"https://{MASK}@i.example/",
        "COMMANDLINE_ARGS": f"--gradio-auth {MASK}"}
    doc = mask_obj({"url": f"https://alice:{PASSWORD}@m.example/", "api_key": "abcdefgh",
                    "list": [f"--api-auth=x:{API_PW}"], "n": 3})
    assert not _leaks(json.dumps(doc)) and doc["api_key"] == MASK and doc["n"] == 3
