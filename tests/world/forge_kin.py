"""Forge and its kin for the local world, written for sdboot's tests (not upstream code): the
world's small WebUI (webui_repo.py) reshaped the way each real one differs from AUTOMATIC1111,
as read from their launch files (docs/webuis.md):

- Forge (lllyasviel, branch main): modules_forge/; TORCH_COMMAND torch 2.3.1 / 0.18.1 from
  cu121; clones huggingface_guess (HUGGINGFACE_GUESS_REPO / HUGGINGFACE_GUESS_HASH) instead
  of Stability-AI's repositories; --forge-ref-a1111-home adds a model-folder flag for each
  folder of that A1111 home that exists, unless the flag is given (launch.py).
- reForge (Panchovix, branch main): the same bootstrap; STABLE_DIFFUSION_REPO is a fork
  (joypaul162/Stability-AI-stablediffusion) and K-diffusion is cloned; ldm_patched/, k_diff/.
- Neo (Haoming02/sd-webui-forge-classic, branch neo; the default branch is classic): clones
  nothing (its git_clone raises NotImplementedError), installs no CLIP, and reads
  requirements.txt.

The torch pins are versions the world's index has (2.3.1+cu121, 2.7.0+cu128), not the real
2.9.0 / 2.11.0: the stub wheels stand in for the real builds."""

from __future__ import annotations

from pathlib import Path

from tests.world.githost import git, make_bare_repo
from tests.world.launchfiles import WEBUI_USER_BAT, WEBUI_USER_SH, crlf
from tests.world.webui_repo import LAUNCH_UTILS, REQUIREMENTS

FORGE = "lllyasviel/stable-diffusion-webui-forge"
REFORGE = "Panchovix/stable-diffusion-webui-reForge"
NEO = "Haoming02/sd-webui-forge-classic"
KIN = {"forge": (FORGE, "main"), "reforge": (REFORGE, "main"), "neo": (NEO, "neo")}

LAUNCH_PY = '''\
import sys

from modules import launch_utils


def main():
    if "--skip-prepare-environment" not in sys.argv:
        launch_utils.prepare_environment()
    if "--forge-ref-a1111-home" in sys.argv:
        home = sys.argv[sys.argv.index("--forge-ref-a1111-home") + 1]
        launch_utils.configure_forge_reference_checkout(home)
    launch_utils.start()


if __name__ == "__main__":
    main()
'''

REFERENCE_CHECKOUT = '''

def configure_forge_reference_checkout(a1111_home):
    """A flag for each model folder of an A1111 home that exists, unless already given."""
    refs = [("--ckpt-dir", "models/Stable-diffusion"), ("--vae-dir", "models/VAE"),
            ("--hypernetwork-dir", "models/hypernetworks"), ("--embeddings-dir", "embeddings"),
            ("--lora-dir", "models/Lora"), ("--controlnet-dir", "models/ControlNet")]
    for flag, rel in refs:
        path = os.path.join(a1111_home, rel)
        if os.path.exists(path) and flag not in sys.argv:
            sys.argv += [flag, path]
'''

_A1111_REPOS = '''\
    stable_diffusion_repo = os.environ.get('STABLE_DIFFUSION_REPO', "https://github.com/Stability-AI/stablediffusion.git")
    k_diffusion_repo = os.environ.get('K_DIFFUSION_REPO', 'https://github.com/crowsonkb/k-diffusion.git')

    stable_diffusion_commit_hash = os.environ.get('STABLE_DIFFUSION_COMMIT_HASH', "{sd}")
    k_diffusion_commit_hash = os.environ.get('K_DIFFUSION_COMMIT_HASH', "{kd}")
'''
_A1111_CLONES = '''\
    git_clone(stable_diffusion_repo, repo_dir('stable-diffusion-stability-ai'), "Stable Diffusion", stable_diffusion_commit_hash)
    git_clone(k_diffusion_repo, repo_dir('k-diffusion'), "K-diffusion", k_diffusion_commit_hash)
'''
_TORCH = ('"https://download.pytorch.org/whl/cu121"',
          '"pip install torch==2.1.2 torchvision==0.16.2 --extra-index-url {torch_index_url}"',
          "'xformers==0.0.23.post1'")


def _utils(base: str, torch: tuple[str, str, str], repos: str, clones: str) -> str:
    """The world's launch_utils.py with another torch pin and other repositories."""
    text = base
    for old, new in zip(_TORCH, torch, strict=True):
        assert old in text, old
        text = text.replace(old, new)
    head, _, rest = text.partition(_A1111_REPOS.split("\n")[0])
    _, _, rest = rest.partition("k_diffusion_commit_hash = os.environ.get(")
    rest = rest.split("\n", 1)[1]
    text = head + repos + rest
    assert _A1111_CLONES in text
    return text.replace(_A1111_CLONES, clones) + REFERENCE_CHECKOUT


def _forge(base: str, hfg: str) -> str:
    return _utils(base, ('"https://download.pytorch.org/whl/cu121"',
                         '"pip install torch==2.3.1 torchvision==0.18.1 --extra-index-url '
                         '{torch_index_url}"', "'xformers==0.0.27'"),
                  "    huggingface_guess_repo = os.environ.get('HUGGINGFACE_GUESS_REPO', "
                  "'https://github.com/lllyasviel/huggingface_guess.git')\n"
                  "    # k_diffusion_repo = os.environ.get('K_DIFFUSION_REPO', "
                  "'https://github.com/crowsonkb/k-diffusion.git')\n"
                  "    huggingface_guess_commit_hash = os.environ.get('HUGGINGFACE_GUESS_HASH', "
                  f"\"{hfg}\")\n",
                  "    git_clone(huggingface_guess_repo, repo_dir('huggingface_guess'), "
                  "\"huggingface_guess\", huggingface_guess_commit_hash)\n")


def _reforge(base: str, sd: str, kd: str) -> str:
    return _utils(base, ('"https://download.pytorch.org/whl/cu128"',
                         '"pip install torch==2.7.0 torchvision==0.22.0 --extra-index-url '
                         '{torch_index_url}"', "'xformers==0.0.30'"),
                  "    stable_diffusion_repo = os.environ.get('STABLE_DIFFUSION_REPO', "
                  "\"https://github.com/joypaul162/Stability-AI-stablediffusion.git\")\n"
                  "    k_diffusion_repo = os.environ.get('K_DIFFUSION_REPO', "
                  "'https://github.com/crowsonkb/k-diffusion.git')\n"
                  "    stable_diffusion_commit_hash = os.environ.get("
                  f"'STABLE_DIFFUSION_COMMIT_HASH', \"{sd}\")\n"
                  f"    k_diffusion_commit_hash = os.environ.get('K_DIFFUSION_COMMIT_HASH', \"{kd}\")\n",
                  _A1111_CLONES)


def _neo(base: str) -> str:
    text = _utils(base, ('"https://download.pytorch.org/whl/cu128"',
                         '"pip install torch==2.7.0+cu128 torchvision==0.22.0+cu128 '
                         '--extra-index-url {torch_index_url}"', "'xformers==0.0.30'"),
                  "", "")
    head, _, rest = text.partition("def git_clone(")
    _, _, rest = rest.partition("\n\n\ndef ")
    text = head + "def git_clone(*args, **kwargs):\n    raise NotImplementedError()\n\n\ndef " \
        + rest
    text = text.replace('"requirements_versions.txt"', '"requirements.txt"')
    lines = [ln for ln in text.split("\n") if "clip_package" not in ln
             and 'is_installed("clip")' not in ln]
    return "\n".join(lines)


def _rename_branch(bare: Path, branch: str, default: str | None = None) -> None:
    """The bare repository's master as `branch`; HEAD (the default branch) at `default`."""
    git("branch", "-m", "master", branch, cwd=bare)
    if default:
        git("branch", default, branch, cwd=bare)
        git("symbolic-ref", "HEAD", f"refs/heads/{default}", cwd=bare)
    git("update-server-info", cwd=bare)


def build_forge_kin(repos: Path, commits: dict[str, str]) -> dict[str, str]:
    """Bare Forge, reForge and Neo under repos/ (beside the world's A1111, whose commits
    `commits` holds) and the repositories they clone; returns their commits."""
    out = {
        "hfg": make_bare_repo(repos, "lllyasviel/huggingface_guess",
                              {"huggingface_guess/__init__.py": "# guess\n"}),
        "sd-fork": make_bare_repo(repos, "joypaul162/Stability-AI-stablediffusion",
                                  {"ldm/__init__.py": "# ldm (fork)\n"}),
    }
    base = LAUNCH_UTILS.format(sd_commit=commits["sd"], kd_commit=commits["kd"],
                               clip_commit=commits["clip"])
    common = {"launch.py": crlf(LAUNCH_PY), "modules/__init__.py": "",
              "modules_forge/__init__.py": "", "webui.py": "# not needed to prepare\n",
              "webui-user.sh": WEBUI_USER_SH, "webui-user.bat": WEBUI_USER_BAT}
    trees = {
        "forge": {"modules/launch_utils.py": crlf(_forge(base, out["hfg"])),
                  "requirements_versions.txt": REQUIREMENTS, "backend/__init__.py": ""},
        "reforge": {"modules/launch_utils.py": crlf(_reforge(base, out["sd-fork"],
                                                             commits["kd"])),
                    "requirements_versions.txt": REQUIREMENTS, "ldm_patched/__init__.py": "",
                    "k_diff/__init__.py": ""},
        "neo": {"modules/launch_utils.py": crlf(_neo(base)),
                "requirements.txt": REQUIREMENTS, "backend/__init__.py": ""},
    }
    for name, (slug, branch) in KIN.items():
        out[name] = make_bare_repo(repos, slug, {**common, **trees[name]})
        _rename_branch(repos / f"{slug}.git", branch, "classic" if name == "neo" else None)
    return out


def kin_overlay(commits: dict[str, str], profiles: dict[str, str], python: str) -> str:
    """webuis.yaml entries for the world's Forge kin (appended under `webuis:`): the real
    repositories (github.com is the loopback server), each branch pinned at the world's
    commit; `profiles`: name -> the world profile that fits it."""
    lines = []
    for name, (slug, branch) in KIN.items():
        lines += [f"  {name}:", f"    repo: https://github.com/{slug}.git",
                  f"    default_ref: {branch}", f"    flavor: {name}",
                  f"    commits: {{{branch}: {commits[name]}}}",
                  f"    profiles: [{profiles[name]}]"]
        if name == "neo":
            lines += [f"    python: \"{python}\"", "    requirements_file: requirements.txt"]
    return "\n".join(lines) + "\n"
