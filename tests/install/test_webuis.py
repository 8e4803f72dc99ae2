"""`sdboot install --webui NAME` for each catalogued WebUI, end to end in one local world
with Forge, reForge and Neo beside AUTOMATIC1111 (tests/world/forge_kin.py): the catalog's
repository and ref, the pinned commit, the profile that fits, the tested Python, what each
one clones; and the refusals (an unknown name, a repository the catalog does not know, a
name and a repository that disagree) before anything changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.world.githost import git
from tests.world.gpu import RTX_3060, Scenario
from tests.world.local import LocalWorld, build_local_world, sdboot_argv

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# a driver new enough for cu128 (570.26 on Linux), so reForge and Neo get their profile
NEW_DRIVER = Scenario(driver="570.86.15", cuda=12080, gpus=(RTX_3060,))
KIN_PROFILES = {"forge": "torch2.3.1-cu121", "reforge": "torch2.7.0-cu128",
                "neo": "torch2.7.0-cu128"}
# name -> (repository path, the profile chosen, the folders cloned into repositories/)
EXPECTED = {
    "a1111": ("AUTOMATIC1111/stable-diffusion-webui", "torch2.1.2-cu121",
              {"stable-diffusion-stability-ai", "k-diffusion"}),
    "forge": ("lllyasviel/stable-diffusion-webui-forge", "torch2.3.1-cu121",
              {"huggingface_guess"}),
    "reforge": ("Panchovix/stable-diffusion-webui-reForge", "torch2.7.0-cu128",
                {"stable-diffusion-stability-ai", "k-diffusion"}),
    "neo": ("Haoming02/sd-webui-forge-classic", "torch2.7.0-cu128", set()),
}


@pytest.fixture(scope="module")
def kw(tmp_path_factory: pytest.TempPathFactory) -> LocalWorld:
    world = build_local_world(tmp_path_factory.mktemp("kin-world"), NEW_DRIVER,
                              kin=KIN_PROFILES)
    yield world
    world.stop()


def sdboot(world: LocalWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sdboot_argv(*args), env=world.env(), capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_catalogued_webui_installs(kw: LocalWorld, tmp_path: Path, name: str) -> None:
    slug, profile, cloned = EXPECTED[name]
    webui = tmp_path / name
    res = sdboot(kw, "install", str(webui), "--webui", name, "--mirror", "world", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["complete"] and doc["profile"] == profile
    record = json.loads((webui / ".sdboot/install.json").read_text())
    assert record["repo"] == f"https://github.com/{slug}.git"
    # the ref's pinned commit (a release tag, or a branch's known-good commit)
    assert record["commit"] == kw.commits["webui" if name == "a1111" else name]
    assert record["ref"] == {"a1111": "v1.10.1", "neo": "neo"}.get(name, "main")
    # origin stays upstream: detection knows which of Forge's kin it is
    assert git("remote", "get-url", "origin", cwd=webui) == record["repo"]
    facts = subprocess.run(
        [sys.executable, "-c", "import sys; from sdboot.webui.folder import detect_webui; "
         "print(detect_webui(__import__('pathlib').Path(sys.argv[1])).flavor)", str(webui)],
        capture_output=True, text=True, cwd=ROOT)
    assert facts.stdout.strip() == name
    repos = webui / "repositories"
    assert ({p.name for p in repos.iterdir()} if repos.is_dir() else set()) == cloned
    if name == "neo":  # the catalog's tested Python, not 3.10
        cfg = (webui / "venv/pyvenv.cfg").read_text()
        assert f"version_info = {sys.version_info.major}.{sys.version_info.minor}." in cfg \
            or f"version = {sys.version_info.major}.{sys.version_info.minor}." in cfg
        assert not (webui / "requirements_versions.txt").exists()


def _refused(res: subprocess.CompletedProcess[str], words: str) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith(("error:", "hint:"))]
    assert res.returncode == 2 and len(lines) == 2, res.stderr
    assert words in lines[0] and "Traceback" not in res.stderr
    return lines[1]


def test_unknown_name_and_repository_are_refused_before_anything(kw: LocalWorld,
                                                                 tmp_path: Path) -> None:
    target = tmp_path / "w"
    hint = _refused(sdboot(kw, "install", str(target), "--webui", "comfy"),
                    "unknown WebUI 'comfy' (known: a1111, forge, reforge, neo)")
    assert "--webui a1111|forge|reforge|neo" in hint
    _refused(sdboot(kw, "install", str(target), "--webui-repo",
                    "https://github.com/crowsonkb/k-diffusion.git"),
             "is not a Stable Diffusion WebUI repository sdboot knows")
    _refused(sdboot(kw, "install", str(target), "--webui", "forge", "--webui-repo",
                    "https://github.com/Panchovix/stable-diffusion-webui-reForge.git"),
             "name different WebUIs")
    assert not target.exists() and not list(tmp_path.iterdir())
    # a mirror's form of a known repository is that repository
    res = sdboot(kw, "install", str(target), "--webui", "neo", "--webui-repo",
                 f"{kw.github.url}https://github.com/Haoming02/sd-webui-forge-classic.git",
                 "--dry-run")
    assert res.returncode == 0, res.stderr
    # a local clone stands for the repository of its origin
    for slug in ("AUTOMATIC1111/stable-diffusion-webui", "crowsonkb/k-diffusion"):
        subprocess.run(["git", "clone", "-q", "--bare", f"https://github.com/{slug}.git",
                        str(tmp_path / slug)], env=kw.env(), check=True)
    res = sdboot(kw, "install", str(target), "--webui-repo",
                 str(tmp_path / "AUTOMATIC1111/stable-diffusion-webui"), "--dry-run")
    assert res.returncode == 0, res.stderr
    _refused(sdboot(kw, "install", str(target), "--webui-repo",
                    str(tmp_path / "crowsonkb/k-diffusion")), "sdboot knows")
    # a checkout of another WebUI is not completed as this one
    forge = tmp_path / "forge-checkout"
    subprocess.run(["git", "clone", "-q", "--branch", "main",
                    "https://github.com/lllyasviel/stable-diffusion-webui-forge.git",
                    str(forge)], env=kw.env(), check=True)
    _refused(sdboot(kw, "install", str(forge), "--webui", "a1111", "--dry-run"),
             "holds https://github.com/lllyasviel/stable-diffusion-webui-forge.git, not")


# --- the model store: one folder for every install, through the WebUI's own flags -----------


@pytest.fixture()
def store_cleanup(kw: LocalWorld) -> None:
    yield
    (kw.config_dir / "store.json").unlink(missing_ok=True)


def test_model_store_reaches_the_webuis_argv(kw: LocalWorld, tmp_path: Path,
                                             store_cleanup: None) -> None:
    from tests.doctor.test_doctor import CHECKPOINT_KEYS, LORA_KEYS, safetensors

    webui, store = tmp_path / "forge", tmp_path / "models"
    res = sdboot(kw, "install", str(webui), "--webui", "forge", "--mirror", "world")
    assert res.returncode == 0, res.stderr
    own = safetensors(webui / "models/Lora/mine.safetensors", LORA_KEYS)
    # no --webui: the installs of `sdboot list` (this one among them) get the store
    res = sdboot(kw, "models", "store", str(store), "--json")
    assert res.returncode == 0, res.stderr
    doc = next(d for d in json.loads(res.stdout)["webuis"] if d["webui"] == str(webui))
    flags = ["--ckpt-dir", f"{store}/models/Stable-diffusion", "--vae-dir", f"{store}/models/VAE",
             "--lora-dir", f"{store}/models/Lora", "--embeddings-dir", f"{store}/embeddings",
             "--hypernetwork-dir", f"{store}/models/hypernetworks",
             "--controlnet-dir", f"{store}/models/ControlNet",
             "--forge-ref-a1111-home", str(store)]
    assert doc["flags"] == flags and doc["webui_user"] == "written"
    # the user's LoRA stays where it is until asked: listed, not moved
    assert [k["from"] for k in doc["kept"]] == [str(own)] and own.is_file()
    assert "--forge-ref-a1111-home" in (webui / "webui-user.sh").read_text()
    # sdboot launch: the flags reach the WebUI's argv, after sdboot's own, once each
    started = webui / "webui-started.json"
    res = sdboot(kw, "launch", str(webui))
    assert res.returncode == 0, res.stderr
    argv = json.loads(started.read_text())["argv"]
    assert argv[-len(flags):] == flags and argv.count("--ckpt-dir") == 1
    # a folder given in COMMANDLINE_ARGS wins over the store's
    mine = str(tmp_path / "elsewhere")
    res = subprocess.run(sdboot_argv("launch", str(webui)), capture_output=True, text=True,
                         cwd=ROOT, env=kw.env(COMMANDLINE_ARGS=f"--lora-dir {mine}"))
    argv = json.loads(started.read_text())["argv"]
    assert argv[argv.index("--lora-dir") + 1] == mine and argv.count("--lora-dir") == 1
    # --move: the plan, then nothing without --yes (no terminal); with --yes the file moves
    res = sdboot(kw, "models", "store", str(store), "--webui", str(webui), "--move")
    assert res.returncode == 1 and own.is_file() and "--yes" in res.stderr
    res = sdboot(kw, "models", "store", str(store), "--webui", str(webui), "--move", "--yes")
    assert res.returncode == 0, res.stderr
    assert not own.exists() and (store / "models/Lora/mine.safetensors").is_file()
    # models add places into the store
    ckpt = safetensors(tmp_path / "in/base.safetensors", CHECKPOINT_KEYS)
    res = sdboot(kw, "models", "add", str(ckpt), "--webui", str(webui))
    assert res.returncode == 0, res.stderr
    assert (store / "models/Stable-diffusion/base.safetensors").is_file()
    assert not (webui / "models/Stable-diffusion/base.safetensors").exists()
    res = sdboot(kw, "models", "list", "--webui", str(webui), "--json", "--no-hash")
    listed = json.loads(res.stdout)["store"]
    assert listed["path"] == str(store)
    assert sorted(m["type"] for m in listed["models"]) == ["checkpoint", "lora"]
    # doctor: the checkpoint in the store counts; a store that is gone is a finding
    res = sdboot(kw, "doctor", str(webui), "--offline", "--json", "--only",
                 "no-checkpoint,store-missing")
    codes = {f["code"] for c in json.loads(res.stdout)["checks"] for f in c["findings"]}
    assert codes == set(), res.stdout
    store.rename(tmp_path / "unplugged")
    res = sdboot(kw, "doctor", str(webui), "--offline", "--json", "--only", "store-missing")
    codes = {f["code"] for c in json.loads(res.stdout)["checks"] for f in c["findings"]}
    assert codes == {"store-missing"}


def test_no_profile_of_the_webui_fits_an_old_driver(kw: LocalWorld, tmp_path: Path) -> None:
    old = Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,))
    res = subprocess.run(sdboot_argv("install", str(tmp_path / "neo"), "--webui", "neo",
                                     "--dry-run"), env=kw.env(old), capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 1
    assert "no torch profile for neo fits this machine: torch2.7.0-cu128: driver 531.18" \
        in res.stderr
    assert not (tmp_path / "neo").exists()
