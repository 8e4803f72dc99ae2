"""The WebUI catalog (webuis.yaml) and what is read from it, without the network: the
shipped entries, the overlay's validation of the new fields, --webui / --webui-repo choice,
which of Forge's kin a folder is, the model store's flags per WebUI and its record."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdboot.errors import SdbootError
from sdboot.install.catalog import load_catalog, resolve_choice
from sdboot.install.plan import python_for
from sdboot.stack.profiles import load_profiles
from sdboot.webui.folder import origin_url, parse_flavor, parse_webui_version
from sdboot.webui.store import Store, read_store, store_flags, write_store


@pytest.fixture()
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SDBOOT_CONFIG_DIR", str(tmp_path))
    return tmp_path


def test_the_shipped_catalog(config: Path) -> None:
    catalog = load_catalog()
    assert list(catalog) == ["a1111", "forge", "reforge", "neo"]
    profiles = load_profiles()
    for entry in catalog.values():
        assert set(entry.profiles) <= set(profiles), entry.name  # names that exist
        assert entry.flavor == entry.name
    assert catalog["neo"].default_ref == "neo" and catalog["neo"].python == "3.13"
    assert catalog["neo"].requirements_file == "requirements.txt" and not catalog["neo"].clones
    assert catalog["reforge"].clones["stable-diffusion-stability-ai"].endswith(
        "joypaul162/Stability-AI-stablediffusion.git")
    assert len(catalog["forge"].commits["main"]) == 40
    # a lock's commit stands for its release (the version the flags and the record use)
    a1111 = catalog["a1111"]
    assert a1111.tag_of(a1111.commits["v1.10.1"]) == "v1.10.1"
    assert a1111.tag_of(a1111.commits["v1.10.1"][:10].upper()) == "v1.10.1"
    assert a1111.tag_of("v1.10.1") is None and a1111.tag_of("82a9") is None
    assert a1111.tag_of("0" * 40) is None


@pytest.mark.parametrize(("field", "value", "words"), [
    ("python", "3", "Python version"),
    ("launch_file", "../launch.py", "relative path"),
    ("requirements_file", "/etc/passwd", "relative path"),
    ("flavor", "comfy", "must be one of"),
    ("profiles", "torch2.1.2-cu121", "list of profile names"),
    ("clones", "{'a/b': 'https://x/y.git'}", "folder names"),
])
def test_a_bad_field_in_the_overlay_is_bad_input(config: Path, field: str, value: str,
                                                 words: str) -> None:
    (config / "webuis.yaml").write_text(
        "webuis:\n  mine:\n    repo: https://github.com/me/webui.git\n"
        f"    {field}: {value}\n")
    with pytest.raises(SdbootError) as err:
        load_catalog()
    assert err.value.exit_code == 2 and words in err.value.message
    assert "webuis.yaml" in err.value.message and ":4" in err.value.message


def test_resolve_choice(config: Path) -> None:
    catalog = load_catalog()
    assert resolve_choice(catalog, None, None) is None
    assert resolve_choice(catalog, "reforge", None).repo.endswith("reForge.git")
    # a mirror's form and case do not matter
    assert resolve_choice(catalog, "neo", "https://ghfast.top/https://github.com/haoming02/"
                          "sd-webui-forge-classic").name == "neo"
    with pytest.raises(SdbootError, match="unknown WebUI 'sdnext'"):
        resolve_choice(catalog, "sdnext", None)
    with pytest.raises(SdbootError, match="not a Stable Diffusion WebUI repository"):
        resolve_choice(catalog, None, "https://github.com/comfyanonymous/ComfyUI.git")
    with pytest.raises(SdbootError, match="name different WebUIs"):
        resolve_choice(catalog, "a1111", catalog["forge"].repo)
    # the overlay makes a fork known
    (config / "webuis.yaml").write_text(
        "webuis:\n  myfork:\n    repo: https://github.com/me/stable-diffusion-webui.git\n")
    assert resolve_choice(load_catalog(), None, "https://github.com/me/stable-diffusion-webui"
                          ).flavor == "a1111"


def test_which_of_forges_kin(tmp_path: Path) -> None:
    neo = "def git_clone(*args, **kwargs):\r\n    raise NotImplementedError()\r\n"
    forge = "def git_clone(url, dir, name, commithash=None):\n    if os.path.exists(dir):\n"
    assert parse_flavor(False, None, neo) == "a1111"
    assert parse_flavor(True, None, neo) == "neo"
    assert parse_flavor(True, None, forge) == "forge"
    assert parse_flavor(True, "git@github.com:Panchovix/stable-diffusion-webui-reForge.git",
                        forge) == "reforge"
    assert parse_flavor(True, "https://github.com/Haoming02/sd-webui-forge-classic",
                        forge) == "forge"  # the classic branch
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git/config").write_text(
        '[core]\n\tbare = false\n[remote "upstream"]\n\turl = https://x/a.git\n'
        '[remote "origin"]\n\tfetch = +refs/heads/*\n\turl = https://github.com/P/R.git\n')
    assert origin_url(tmp_path) == "https://github.com/P/R.git"
    bare = tmp_path / "mirror.git"  # a bare clone: its config at the top
    bare.mkdir()
    (bare / "config").write_text('[remote "origin"]\n\turl = https://github.com/A/B.git\n')
    assert origin_url(bare) == "https://github.com/A/B.git"
    assert parse_webui_version("neo").flavor == "neo"
    assert parse_webui_version("dev").flavor == "a1111-dev"


def test_python_for_prefers_the_webuis_python() -> None:
    profiles = load_profiles()
    assert python_for(profiles["torch2.10.0-cu130"], "3.13") == "3.13"
    assert python_for(profiles["torch2.1.2-cu121"], "3.13") == "3.10"  # <3.12: not allowed
    assert python_for(None, None) == "3.10"


def test_store_flags_per_webui() -> None:
    store = Path("/m")
    a1111 = store_flags(store, "a1111")
    assert a1111[:2] == ["--ckpt-dir", "/m/models/Stable-diffusion"]
    assert "--controlnet-dir" not in a1111 and "--forge-ref-a1111-home" not in a1111
    assert "--controlnet-dir" in store_flags(store, "a1111", controlnet_extension=True)
    neo = store_flags(store, "neo")
    assert "--hypernetwork-dir" not in neo  # Neo removed hypernetworks: an unknown flag
    assert neo[-2:] == ["--forge-ref-a1111-home", "/m"]
    assert store_flags(store, "reforge").count("--controlnet-dir") == 1


def test_store_record(config: Path) -> None:
    assert read_store() is None
    write_store(Store(Path("/data/models"), ("/w",)))
    assert read_store() == Store(Path("/data/models"), ("/w",))
    (config / "store.json").write_text('{"schema": "sdboot.store/1", "path": "relative"}')
    with pytest.raises(SdbootError, match="not an sdboot model store record"):
        read_store()
