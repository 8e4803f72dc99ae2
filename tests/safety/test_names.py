"""Hostile names (issue 11): a model URL's last segment (`..%2F..%2Fx`, `%2Ftmp%2Fx`, a NUL,
240 characters), a server's Content-Disposition (`filename*=UTF-8''..%2F..`), Civitai's
API `files[].name`, a `--name` given by hand, and extension names taken from git URLs.
Every one is decoded first, then proven a plain name by fsutil.safe_name, or refused with
the two error lines: nothing is written outside the folder, and nothing is fetched for a
name refused up front. Extension URLs with credentials are never printed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from sdboot.addons.sources import plan_source
from sdboot.errors import SdbootError
from tests.conftest import CliResult, run_cli
from tests.safety.test_downloads import (
    Hostile,
    add,
    lora_bytes,
    placed,
    send,
    serve_file,
    snapshot,
    two_lines,
)
from tests.world.githost import GitHost, git, make_bare_repo
from tests.world.launchfiles import write_webui

LONG = "a" * 228 + ".safetensors"  # 240 characters: more than any .part name may hold


def outside_files(tmp_path: Path) -> set[str]:
    """Every file under tmp_path but outside the WebUI folder."""
    return {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
            if not p.is_relative_to(tmp_path / "webui")}


# --- a URL's last segment ----------------------------------------------------------------------


def _url_names(tmp_path: Path) -> list[str]:
    return [
        "..%2F..%2F..%2Fvictim.txt",  # webui/.sdboot/downloads/../../../victim.txt
        "..%2F..%2F..%2Fhome%2F.bashrc",
        quote(str(tmp_path / "victim.txt"), safe=""),  # %2Ftmp%2F...%2Fvictim.txt
        "..%5C..%5C..%5Cvictim.txt",  # backslashes: separators on Windows
        "%2E%2E",
        "x%00.safetensors",
        "a%0Ab.safetensors",
        "C%3A%5Cx.safetensors",
        "CON.safetensors",
        LONG,
    ]


@pytest.mark.parametrize("index", range(10))
def test_a_hostile_url_name_is_refused_before_anything_is_fetched(
        index: int, server: Hostile, scene: dict[str, Path], tmp_path: Path) -> None:
    segment = _url_names(tmp_path)[index]
    server.routes["*"] = serve_file(lora_bytes(64))
    before, files = snapshot(scene), outside_files(tmp_path)
    res = add(scene, server.url("/files/" + segment))
    two_lines(res, 2, "unsafe", "--name")
    assert server.seen == []  # refused up front: not even downloaded
    assert snapshot(scene) == before and outside_files(tmp_path) == files
    assert placed(scene) == []


def test_a_hostile_url_name_can_be_replaced_with_name(server: Hostile,
                                                      scene: dict[str, Path]) -> None:
    data = lora_bytes(64)
    server.routes["*"] = serve_file(data)
    before = snapshot(scene)
    res = add(scene, server.url("/files/..%2F..%2F..%2Fvictim.txt"), "--name",
              "good.safetensors")
    assert res.returncode == 0, res.stderr
    assert (scene["webui"] / "models/Lora/good.safetensors").read_bytes() == data
    assert snapshot(scene) == before


@pytest.mark.parametrize("name", ["../x.safetensors", "a/b.safetensors", "..", "",
                                  "x\n.safetensors", LONG])
def test_name_itself_is_proven_plain(name: str, scene: dict[str, Path], server: Hostile,
                                     tmp_path: Path) -> None:
    server.routes["*"] = serve_file(lora_bytes(64))
    src = tmp_path / "local.safetensors"
    src.write_bytes(lora_bytes(64))
    before = snapshot(scene)
    for what in (server.url("/m.safetensors"), str(src)):
        two_lines(add(scene, what, "--name", name), 2, "--name")
    assert server.seen == [] and snapshot(scene) == before and placed(scene) == []


# --- a server's Content-Disposition ------------------------------------------------------------


def _dispositions(tmp_path: Path) -> list[str]:
    victim = tmp_path / "victim.txt"
    return [
        'attachment; filename="../../../victim.txt"',
        "attachment; filename*=UTF-8''..%2F..%2F..%2Fvictim.txt",
        f'attachment; filename="{victim}"',
        "attachment; filename*=UTF-8''" + quote(str(victim), safe=""),
        'attachment; filename="..\\\\..\\\\..\\\\victim.txt"',
        "attachment; filename*=UTF-8''a%0Ab.safetensors",
        f"attachment; filename*=UTF-8''{LONG}",
        "attachment; filename*=UTF-8''..%2F..%2Fx.safetensors; filename=\"ok.safetensors\"",
    ]


@pytest.mark.parametrize("index", range(8))
def test_a_hostile_content_disposition_is_refused(
        index: int, server: Hostile, scene: dict[str, Path], tmp_path: Path) -> None:
    disposition = _dispositions(tmp_path)[index]
    data = lora_bytes(64)
    server.routes["/download"] = lambda h: send(h, 200, data,
                                                {"Content-Disposition": disposition})
    before, files = snapshot(scene), outside_files(tmp_path)
    res = add(scene, server.url("/download?id=7"))
    two_lines(res, 2, "unsafe", "Content-Disposition", "--name")
    assert snapshot(scene) == before and outside_files(tmp_path) == files
    assert placed(scene) == []


def test_a_plain_content_disposition_name_is_used_decoded(server: Hostile,
                                                          scene: dict[str, Path]) -> None:
    data = lora_bytes(64)
    server.routes["/download"] = lambda h: send(h, 200, data, {
        "Content-Disposition": "attachment; filename*=UTF-8''mod%C3%A8le.safetensors; "
                               'filename="fallback.safetensors"'})
    res = add(scene, server.url("/download?id=7"))
    assert res.returncode == 0, res.stderr
    assert (scene["webui"] / "models/Lora/modèle.safetensors").read_bytes() == data


def test_a_server_that_names_nothing_needs_name(server: Hostile,
                                                scene: dict[str, Path]) -> None:
    data = lora_bytes(64)
    server.routes["/dir/"] = lambda h: send(h, 200, data)
    two_lines(add(scene, server.url("/dir/")), 2, "--name")
    res = add(scene, server.url("/dir/"), "--name", "named.safetensors")
    assert res.returncode == 0, res.stderr
    assert (scene["webui"] / "models/Lora/named.safetensors").read_bytes() == data


# --- Civitai's API answer -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../.bashrc", "/etc/passwd", "..\\..\\x.safetensors",
                                  "a\x00.safetensors", LONG, ".."])
def test_a_hostile_civitai_file_name_is_refused(name: str) -> None:
    def api(url: str, headers: dict[str, str]) -> object:
        return {"files": [{"name": name, "primary": True, "hashes": {"SHA256": "ab" * 32}}]}

    with pytest.raises(SdbootError) as err:
        plan_source("https://civitai.com/models/1?modelVersionId=2", {}, api)
    assert err.value.exit_code == 2 and "--name" in err.value.hint
    src = plan_source("https://civitai.com/models/1?modelVersionId=2", {}, api,
                      name="mine.safetensors")
    assert src.name == "mine.safetensors" and src.sha256 == "ab" * 32


@pytest.mark.parametrize("answer", [None, [], {"files": "x"}, {"files": [1, None]},
                                    {"files": [{"name": 5, "hashes": "no"}]}])
def test_a_malformed_civitai_answer_falls_back_to_the_version_name(answer: object) -> None:
    src = plan_source("https://civitai.com/api/download/models/42", {}, lambda u, h: answer)
    assert src.name is None and src.fallback == "civitai-42.safetensors"
    assert src.sha256 is None
    with pytest.raises(SdbootError):
        plan_source("https://civitai.com/models/1?modelVersionId=..%2F..", {})


# --- extensions ----------------------------------------------------------------------------


def ext(webui: Path, *args: str, env: dict[str, str]) -> CliResult:
    return run_cli("ext", *args, "--webui", str(webui), env=env)


@pytest.fixture()
def git_env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "sdboot-config"
    config.mkdir()
    return {"SDBOOT_CONFIG_DIR": str(config), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
            "HOME": str(tmp_path / "home")}


@pytest.mark.parametrize("what", [
    "https://127.0.0.1:9/..%2F..%2F..%2Fvictim.txt",
    "https://127.0.0.1:9/%2Ftmp%2Fx",
    "https://127.0.0.1:9/a/..",
    "https://127.0.0.1:9/",
    "https://user:pw@127.0.0.1:9",
    "../..",
    "-x/repo",
    "ssh://-oProxyCommand=touch%20pwned/repo",
    "git@127.0.0.1:..",
])
def test_a_hostile_extension_name_is_refused(what: str, tmp_path: Path,
                                             git_env: dict[str, str]) -> None:
    webui = write_webui(tmp_path / "webui")
    (tmp_path / "victim.txt").write_text("do not touch\n")
    files = outside_files(tmp_path)
    res = ext(webui, "add", what, env=git_env)
    err = two_lines(res, 2)
    assert ":pw@" not in err
    assert outside_files(tmp_path) == files
    assert not (webui / "extensions").exists() or list((webui / "extensions").iterdir()) == []
    assert not (tmp_path / "webui/pwned").exists()


@pytest.fixture()
def repo_host(tmp_path: Path) -> Iterator[tuple[GitHost, str]]:
    repos = tmp_path / "repos"
    commit = make_bare_repo(repos, "someone/sd-webui-thing", {"install.py": "print('hi')\n"})
    host = GitHost({"/gh/": repos}).start()
    yield host, commit
    host.stop()


SECRET = "S3cret" + "Pw91x"
GH_TOKEN = "ghp_" + "Ab12Cd34Ef56Gh78Ij90Kl12"


@pytest.mark.parametrize("userinfo", [f"user:{SECRET}", GH_TOKEN])
def test_an_extension_url_with_credentials_is_never_printed(
        userinfo: str, tmp_path: Path, git_env: dict[str, str],
        repo_host: tuple[GitHost, str]) -> None:
    host, commit = repo_host
    webui = write_webui(tmp_path / "webui")
    secret = userinfo.rpartition(":")[2]
    url = f"http://{userinfo}@127.0.0.1:{host.port}/gh/someone/sd-webui-thing.git"
    res = ext(webui, "add", url, env=git_env)
    assert res.returncode == 0, res.stderr
    assert (webui / "extensions/sd-webui-thing/install.py").is_file()
    assert secret not in res.stdout + res.stderr and "***@" in res.stdout
    clone = webui / "extensions/sd-webui-thing"
    git("-C", str(clone), "remote", "set-url", "origin", url)  # as a user's clone may have
    listed = ext(webui, "list", env=git_env)
    assert listed.returncode == 0 and commit[:10] in listed.stdout
    assert secret not in listed.stdout + listed.stderr and "***@" in listed.stdout
    again = ext(webui, "add", url, env=git_env)
    two_lines(again, 2, "already installed")
    assert secret not in again.stdout + again.stderr


@pytest.mark.parametrize("left", ["symlink", "folder"])
def test_a_partial_clone_left_from_before_is_removed_inside_only(
        left: str, tmp_path: Path, git_env: dict[str, str],
        repo_host: tuple[GitHost, str]) -> None:
    host, _ = repo_host
    webui = write_webui(tmp_path / "webui")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("do not touch\n")
    partial = webui / "extensions/.sd-webui-thing.sdboot-partial"
    partial.parent.mkdir(parents=True)
    if left == "symlink":
        partial.symlink_to(outside, target_is_directory=True)
    else:
        (partial / "junk").mkdir(parents=True)
        (partial / "junk/half.pack").write_bytes(b"\0" * 100)
    res = ext(webui, "add", host.url + "gh/someone/sd-webui-thing.git", env=git_env)
    assert res.returncode == 0, res.stderr
    assert (outside / "victim.txt").read_text() == "do not touch\n"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert not os.path.lexists(partial)
    assert (webui / "extensions/sd-webui-thing/install.py").is_file()


def test_an_extension_folder_that_is_a_link_is_refused(
        tmp_path: Path, git_env: dict[str, str], repo_host: tuple[GitHost, str]) -> None:
    host, _ = repo_host
    webui = write_webui(tmp_path / "webui")
    outside = tmp_path / "outside"
    outside.mkdir()
    (webui / "extensions").mkdir()
    (webui / "extensions/sd-webui-thing").symlink_to(outside, target_is_directory=True)
    res = ext(webui, "add", host.url + "gh/someone/sd-webui-thing.git", env=git_env)
    two_lines(res, 1, "symbolic link")
    assert list(outside.iterdir()) == []


# --- model folders the user linked to another disk ---------------------------------------------


@pytest.mark.parametrize("linked", ["models/Lora", "models"])
def test_a_model_folder_the_user_linked_elsewhere_is_used(tmp_path: Path,
                                                          linked: str) -> None:
    """Users keep models on another disk (or in one store for several WebUIs) and link the
    WebUI's folder to it: sdboot places into the linked folder, and a hostile name still
    cannot leave it."""
    webui = write_webui(tmp_path / "webui")
    store = tmp_path / "store"
    store.mkdir()
    link = webui / linked
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(store, target_is_directory=True)
    model = tmp_path / "mine.safetensors"
    model.write_bytes(lora_bytes(16))
    res = run_cli("models", "add", str(model), "--webui", str(webui),
                  env={"HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    where = store / ("mine.safetensors" if linked == "models/Lora" else "Lora/mine.safetensors")
    assert where.read_bytes() == model.read_bytes()
    res = run_cli("models", "add", str(model), "--webui", str(webui), "--name", "../../x",
                  env={"HOME": str(tmp_path)})
    assert res.returncode == 2
    assert not (tmp_path / "x").exists() and not (webui / "x").exists()


def test_a_model_folder_link_to_a_file_is_refused(tmp_path: Path) -> None:
    webui = write_webui(tmp_path / "webui")
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch\n")
    (webui / "models").mkdir(exist_ok=True)
    (webui / "models/Lora").symlink_to(victim)
    model = tmp_path / "mine.safetensors"
    model.write_bytes(lora_bytes(16))
    res = run_cli("models", "add", str(model), "--webui", str(webui),
                  env={"HOME": str(tmp_path)})
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: ") and "hint: " in res.stderr
    assert victim.read_text() == "do not touch\n"
