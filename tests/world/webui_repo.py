"""A small WebUI for the local world, written for sdboot's tests and demo (not upstream
code). Its bootstrap behaves like the real one in the ways sdboot relies on (FACTS.md):
TORCH_COMMAND only when torch is missing; the CUDA assertion with its real message;
git_clone of each *_REPO at its *_COMMIT_HASH (skipped when already there); pip installs
of its requirements with INDEX_URL appended; `--exit` after preparing; the CRLF launch
files; webui-user.sh / .bat. The real default STABLE_DIFFUSION_REPO points at the
repository that is gone, so a fresh install fails without sdboot's substitution, as it does
upstream. When started without --exit it records its argv and environment in
`webui-started.json` and exits with WEBUI_FAKE_EXIT (launch tests)."""

from __future__ import annotations

from pathlib import Path

from tests.world.githost import git, make_bare_repo
from tests.world.launchfiles import WEBUI_USER_BAT, WEBUI_USER_SH, crlf

A1111 = "AUTOMATIC1111/stable-diffusion-webui"

LAUNCH_PY = '''\
from modules import launch_utils


def main():
    launch_utils.prepare_environment()
    launch_utils.start()


if __name__ == "__main__":
    main()
'''

LAUNCH_UTILS = '''\
# this scripts installs necessary requirements and launches main program in webui.py
import importlib.util
import json
import os
import re
import subprocess
import sys

python = sys.executable
git = os.environ.get('GIT', "git")
index_url = os.environ.get('INDEX_URL', "")
dir_repos = "repositories"
script_path = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command, desc=None, errdesc=None):
    if desc:
        print(desc, flush=True)
    result = subprocess.run(command, shell=True, cwd=script_path)
    if result.returncode != 0:
        raise RuntimeError(f"{{errdesc or 'Error running command'}}.\\nCommand: {{command}}\\n"
                           f"Error code: {{result.returncode}}")


def is_installed(package):
    return importlib.util.find_spec(package) is not None


re_requirement = re.compile(r"\\s*([-_a-zA-Z0-9]+)\\s*(?:==\\s*([-+_.a-zA-Z0-9]+))?\\s*")


def requirements_met(requirements_file):
    """As the real one: every `name==version` line installed at exactly that version."""
    import importlib.metadata
    with open(requirements_file, "r", encoding="utf8") as file:
        for line in file:
            if line.strip() == "":
                continue
            m = re.match(re_requirement, line)
            if m is None:
                return False
            version_required = (m.group(2) or "").strip()
            if version_required == "":
                continue
            try:
                version_installed = importlib.metadata.version(m.group(1).strip())
            except Exception:
                return False
            if version_required != version_installed:
                return False
    return True


def run_pip(command, desc=None):
    index_url_line = f' --index-url {{index_url}}' if index_url != '' else ''
    return run(f'"{{python}}" -m pip {{command}} --prefer-binary{{index_url_line}}',
               desc=f"Installing {{desc}}", errdesc=f"Couldn't install {{desc}}")


def repo_dir(name):
    return os.path.join(script_path, dir_repos, name)


def git_clone(url, dir, name, commithash=None):
    if os.path.exists(dir):
        if commithash is None:
            return
        current = subprocess.run([git, "-C", dir, "rev-parse", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()
        if current == commithash:
            return
        run(f'"{{git}}" -C "{{dir}}" remote set-url origin "{{url}}"')
        run(f'"{{git}}" -C "{{dir}}" fetch', f"Fetching updates for {{name}}...")
        run(f'"{{git}}" -C "{{dir}}" checkout {{commithash}}', f"Checking out commit for {{name}}")
        return
    run(f'"{{git}}" clone "{{url}}" "{{dir}}"', f"Cloning {{name}} into {{dir}}...",
        f"Couldn't clone {{name}}")
    if commithash is not None:
        run(f'"{{git}}" -C "{{dir}}" checkout {{commithash}}', None,
            f"Couldn't checkout {{name}}'s hash: {{commithash}}")


def prepare_environment():
    torch_index_url = os.environ.get('TORCH_INDEX_URL', "https://download.pytorch.org/whl/cu121")
    torch_command = os.environ.get('TORCH_COMMAND', f"pip install torch==2.1.2 torchvision==0.16.2 --extra-index-url {{torch_index_url}}")
    requirements_file = os.environ.get('REQS_FILE', "requirements_versions.txt")
    xformers_package = os.environ.get('XFORMERS_PACKAGE', 'xformers==0.0.23.post1')
    clip_package = os.environ.get('CLIP_PACKAGE', "https://github.com/openai/CLIP/archive/{clip_commit}.zip")

    stable_diffusion_repo = os.environ.get('STABLE_DIFFUSION_REPO', "https://github.com/Stability-AI/stablediffusion.git")
    k_diffusion_repo = os.environ.get('K_DIFFUSION_REPO', 'https://github.com/crowsonkb/k-diffusion.git')

    stable_diffusion_commit_hash = os.environ.get('STABLE_DIFFUSION_COMMIT_HASH', "{sd_commit}")
    k_diffusion_commit_hash = os.environ.get('K_DIFFUSION_COMMIT_HASH', "{kd_commit}")

    if not is_installed("torch") or not is_installed("torchvision"):
        run(f'"{{python}}" -m {{torch_command}}', "Installing torch and torchvision",
            "Couldn't install torch")

    if "--skip-torch-cuda-test" not in sys.argv:
        run(f'"{{python}}" -c "import torch; assert torch.cuda.is_available(), \\'Torch is not able to use GPU; add --skip-torch-cuda-test to COMMANDLINE_ARGS variable to disable this check\\'"',
            None, "Torch is not able to use GPU")

    if not is_installed("clip"):
        run_pip(f"install {{clip_package}}", "clip")
    if "--xformers" in sys.argv and not is_installed("xformers"):
        run_pip(f"install -U -I --no-deps {{xformers_package}}", "xformers")

    os.makedirs(os.path.join(script_path, dir_repos), exist_ok=True)
    git_clone(stable_diffusion_repo, repo_dir('stable-diffusion-stability-ai'), "Stable Diffusion", stable_diffusion_commit_hash)
    git_clone(k_diffusion_repo, repo_dir('k-diffusion'), "K-diffusion", k_diffusion_commit_hash)

    if not requirements_met(requirements_file):
        run_pip(f"install -r \\"{{requirements_file}}\\"", "requirements")

    if "--exit" in sys.argv:
        print("Exiting because of --exit argument")
        exit(0)


def start():
    keep = ("COMMANDLINE_ARGS", "PIP_CONSTRAINT", "HF_ENDPOINT", "PIP_INDEX_URL", "HF_TOKEN",
            "GIT_CONFIG_COUNT", "TORCH_COMMAND", "STABLE_DIFFUSION_REPO")
    record = {{"argv": sys.argv[1:], "python": sys.executable,
              "env": {{k: os.environ[k] for k in keep if k in os.environ}}}}
    with open(os.path.join(script_path, "webui-started.json"), "w") as fh:
        json.dump(record, fh)
    print("Running on local URL:  http://127.0.0.1:7860", flush=True)
    sys.exit(int(os.environ.get("WEBUI_FAKE_EXIT", "0")))
'''

ENVIRONMENT_WSL2 = """\
name: automatic
channels:
  - pytorch
  - defaults
dependencies:
  - python=3.10
  - pip=23.0
  - cudatoolkit=11.8
  - pytorch=2.0
  - torchvision=0.15
  - numpy=1.23
"""

# CLIP in the shape of the real one (openai/CLIP): a setup.py that imports pkg_resources,
# which setuptools 82 removed (openai/CLIP#528), so it builds only under the build guard.
CLIP_FILES = {
    "setup.py": ("import os\n\nimport pkg_resources\nfrom setuptools import setup\n\n"
                 "setup(name='clip', version='1.0', packages=['clip'],\n"
                 "      install_requires=[str(r) for r in pkg_resources.parse_requirements(\n"
                 "          open(os.path.join(os.path.dirname(__file__), 'requirements.txt')))])\n"),
    "requirements.txt": "torch\ntorchvision\n",
    "clip/__init__.py": "from .clip import load  # noqa\n",
    "clip/clip.py": "def load(name):\n    return name\n",
}
# Stub packages the WebUI's requirements file names (served by the local index).
REQUIREMENTS = "sdb-webui-dep==1.0.0\nsdb-clip-stub==1.0.0\n"


def build_webui_repos(repos: Path, webui_tag: str = "v1.10.1") -> dict[str, str]:
    """Bare repositories under repos/ (OWNER/REPO.git): the WebUI and the repositories its
    bootstrap clones. The gone upstream (Stability-AI/stablediffusion) is absent; its copy
    (w-e-w/stablediffusion) is there. Returns the commits."""
    commits = {
        "sd": make_bare_repo(repos, "w-e-w/stablediffusion", {"ldm/__init__.py": "# ldm\n"}),
        "kd": make_bare_repo(repos, "crowsonkb/k-diffusion",
                             {"k_diffusion/__init__.py": "__version__ = '0.0.1'\n"}),
        "clip": make_bare_repo(repos, "openai/CLIP", CLIP_FILES),
    }
    # GitHub's archive download (what CLIP_PACKAGE names), served beside the repositories
    archive = repos / "openai" / "CLIP" / "archive" / f"{commits['clip']}.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    git("archive", "--format=zip", f"--prefix=CLIP-{commits['clip']}/", "-o", str(archive),
        commits["clip"], cwd=repos / "openai" / "CLIP.git")
    files = {
        "launch.py": crlf(LAUNCH_PY),
        "modules/launch_utils.py": crlf(LAUNCH_UTILS.format(sd_commit=commits["sd"],
                                                            kd_commit=commits["kd"],
                                                            clip_commit=commits["clip"])),
        "modules/__init__.py": "",
        "webui.py": "# the WebUI itself is not needed to prepare the environment\n",
        "requirements_versions.txt": REQUIREMENTS,
        "environment-wsl2.yaml": ENVIRONMENT_WSL2,
        "webui-user.sh": WEBUI_USER_SH,
        "webui-user.bat": WEBUI_USER_BAT,
        "webui.sh": "#!/usr/bin/env bash\n# (the world's WebUI is started through launch.py)\n",
        "CHANGELOG.md": f"## {webui_tag.lstrip('v')}\n\n### Bug Fixes:\n* none\n",
    }
    commits["webui"] = make_bare_repo(repos, A1111, files, tag=webui_tag)
    return commits
