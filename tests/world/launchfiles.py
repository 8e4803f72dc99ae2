"""WebUI launch files written for the tests, in the shapes of the real ones (FACTS.md): the
pre-v1.3 launch.py, the v1.3+ modules/launch_utils.py and Forge's. They are not copies of
upstream code: each reproduces the syntax forms that carry GitHub URLs (single and double
quotes, f-strings with placeholders and nested literals, concatenation, implicit
multi-line concatenation, comments, commented-out assignments, api.github.com, raw files,
release downloads, archives, git+ URLs) and the real files' CRLF line endings."""

from __future__ import annotations

from pathlib import Path

SD_COMMIT = "cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf"

_PRE_V13 = '''\
# this scripts installs necessary requirements and launches main program in webui.py
import subprocess
import os
import sys

dir_repos = "repositories"
python = sys.executable
git = os.environ.get('GIT', "git")
index_url = os.environ.get('INDEX_URL', "")
# old proxy note: https://github.com/AUTOMATIC1111/stable-diffusion-webui/discussions/1
# stable_diffusion_repo = os.environ.get('STABLE_DIFFUSION_REPO', "https://github.com/CompVis/stable-diffusion.git")


def version_check(commit):
    import requests
    commits = requests.get('https://api.github.com/repos/AUTOMATIC1111/stable-diffusion-webui/branches/master').json()
    return commits


def prepare_environment():
    torch_command = os.environ.get('TORCH_COMMAND', "pip install torch==1.13.1+cu117 torchvision==0.14.1+cu117 --extra-index-url https://download.pytorch.org/whl/cu117")
    requirements_file = os.environ.get('REQS_FILE', "requirements_versions.txt")
    commandline_args = os.environ.get('COMMANDLINE_ARGS', "")

    xformers_package = os.environ.get('XFORMERS_PACKAGE', 'xformers==0.0.16rc425')
    gfpgan_package = os.environ.get('GFPGAN_PACKAGE', "git+https://github.com/TencentARC/GFPGAN.git@8d2447a2d918f8eba5a4a01463fd48e45126a379")
    clip_package = os.environ.get('CLIP_PACKAGE', "git+https://github.com/openai/CLIP.git@d50d76daa670286dd6cacf3bcd80b5e4823fc8e1")
    openclip_package = os.environ.get('OPENCLIP_PACKAGE', "git+https://github.com/mlfoundations/open_clip.git@bb6e834e9c70d9c27d0dc3ecedeebeaeb1ffad6b")

    stable_diffusion_repo = os.environ.get('STABLE_DIFFUSION_REPO', "https://github.com/Stability-AI/stablediffusion.git")
    taming_transformers_repo = os.environ.get('TAMING_TRANSFORMERS_REPO', "https://github.com/CompVis/taming-transformers.git")
    k_diffusion_repo = os.environ.get('K_DIFFUSION_REPO', 'https://github.com/crowsonkb/k-diffusion.git')
    codeformer_repo = os.environ.get('CODEFORMER_REPO', 'https://github.com/sczhou/CodeFormer.git')
    blip_repo = os.environ.get('BLIP_REPO', 'https://github.com/salesforce/BLIP.git')

    stable_diffusion_commit_hash = os.environ.get('STABLE_DIFFUSION_COMMIT_HASH', "47b6b607fdd31875c9279cd2f4f16b92e4ea958e")
    blip_commit_hash = os.environ.get('BLIP_COMMIT_HASH', "48211a1594f1321b00f14c9f7a5b4813144b2fb9")

    print("see https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/Xformers "  # a comment https://github.com/x/y
          'and https://raw.githubusercontent.com/AUTOMATIC1111/stable-diffusion-webui/master/README.md')
    url = "https://github.com/" + "AUTOMATIC1111/stable-diffusion-webui" + '/releases/download/v1.0.0-pre/model.pt'
    return url
'''

_POST_V13 = '''\
import logging
import re
import subprocess
import os
import sys

args, _ = None, None
python = sys.executable
git = os.environ.get('GIT', "git")
index_url = os.environ.get('INDEX_URL', "")
dir_repos = "repositories"


def check_python_version():
    is_windows = os.name == "nt"
    print(f"""
INCOMPATIBLE PYTHON VERSION

You can download 3.10 Python from here: https://www.python.org/downloads/release/python-3106/

{"Alternatively, use a binary release of WebUI: https://github.com/AUTOMATIC1111/stable-diffusion-webui/releases/tag/v1.0.0-pre" if is_windows else ""}
""")


def version_check(commit):
    import requests
    commits = requests.get('https://api.github.com/repos/AUTOMATIC1111/stable-diffusion-webui/branches/master').json()
    return commits


def git_clone(url, dir, name, commithash=None):
    # git clone https://github.com/example/commented.git would be a comment
    run(f'"{git}" clone --config core.filemode=false "{url}" "{dir}"', f"Cloning {name} into {dir}...")


def prepare_environment():
    torch_index_url = os.environ.get('TORCH_INDEX_URL', "https://download.pytorch.org/whl/cu121")
    torch_command = os.environ.get('TORCH_COMMAND', f"pip install torch==2.1.2 torchvision==0.16.2 --extra-index-url {torch_index_url}")
    if args is not None:
        url_prefix = "https://github.com/Nuullll/intel-extension-for-pytorch/releases/download/v2.0.110%2Bxpu-master%2Bdll-bundle"
        torch_command = os.environ.get('TORCH_COMMAND', f"pip install {url_prefix}/torch-2.0.0a0+gite9ebda2-cp310-cp310-win_amd64.whl")
    requirements_file = os.environ.get('REQS_FILE', "requirements_versions.txt")

    xformers_package = os.environ.get('XFORMERS_PACKAGE', 'xformers==0.0.23.post1')
    clip_package = os.environ.get('CLIP_PACKAGE', "https://github.com/openai/CLIP/archive/d50d76daa670286dd6cacf3bcd80b5e4823fc8e1.zip")
    openclip_package = os.environ.get('OPENCLIP_PACKAGE', "https://github.com/mlfoundations/open_clip/archive/bb6e834e9c70d9c27d0dc3ecedeebeaeb1ffad6b.zip")

    assets_repo = os.environ.get('ASSETS_REPO', "https://github.com/AUTOMATIC1111/stable-diffusion-webui-assets.git")
    stable_diffusion_repo = os.environ.get('STABLE_DIFFUSION_REPO', "https://github.com/Stability-AI/stablediffusion.git")
    stable_diffusion_xl_repo = os.environ.get('STABLE_DIFFUSION_XL_REPO', "https://github.com/Stability-AI/generative-models.git")
    k_diffusion_repo = os.environ.get('K_DIFFUSION_REPO', 'https://github.com/crowsonkb/k-diffusion.git')
    blip_repo = os.environ.get('BLIP_REPO', 'https://github.com/salesforce/BLIP.git')

    assets_commit_hash = os.environ.get('ASSETS_COMMIT_HASH', "6f7db241d2f8ba7457bac5ca9753331f0c266917")
    stable_diffusion_commit_hash = os.environ.get('STABLE_DIFFUSION_COMMIT_HASH', "cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf")
    docs = ("https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/"
            "Install-and-Run-on-NVidia-GPUs"
            'https://github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/Troubleshooting')
    raw = f'https://github.com/madebyollin/taesd/raw/main/{clip_package!r:>{10}}'
    return docs, raw
'''

_FORGE_EXTRA = '''\


def forge_extras():
    huggingface_guess_repo = os.environ.get('HUGGINGFACE_GUESS_REPO', 'https://github.com/lllyasviel/huggingface_guess.git')
    huggingface_guess_hash = os.environ.get('HUGGINGFACE_GUESS_HASH', "84826248b49bb7ca754c73293299c4d4e23a548d")
    return (huggingface_guess_repo, huggingface_guess_hash,
            'https://github.com/lllyasviel/stable-diffusion-webui-forge/releases/tag/latest')
'''

WEBUI_USER_SH = '''\
#!/bin/bash
#########################################################
# Uncomment and change the variables below to your need:#
#########################################################

# Commandline arguments for webui.py, for example: export COMMANDLINE_ARGS="--medvram --opt-split-attention"
#export COMMANDLINE_ARGS=""

# python3 executable
#python_cmd="python3"

###########################################
'''

WEBUI_USER_BAT = ("@echo off\r\n\r\nset PYTHON=\r\nset GIT=\r\nset VENV_DIR=\r\n"
                  "set COMMANDLINE_ARGS=\r\n\r\ncall webui.bat\r\n")


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


PRE_V13_LAUNCH = crlf(_PRE_V13)
POST_V13_UTILS = crlf(_POST_V13)
FORGE_UTILS = crlf(_POST_V13.replace("2.1.2", "2.3.1").replace("0.16.2", "0.18.1")
                   .replace("0.0.23.post1", "0.0.27") + _FORGE_EXTRA)
LAUNCH_WRAPPER = crlf("from modules import launch_utils\n\n\ndef main():\n"
                      "    launch_utils.prepare_environment()\n")

LAYOUTS = {
    "pre-v1.3": {"launch.py": PRE_V13_LAUNCH},
    "post-v1.3": {"launch.py": LAUNCH_WRAPPER, "modules/launch_utils.py": POST_V13_UTILS},
    "forge": {"launch.py": LAUNCH_WRAPPER, "modules/launch_utils.py": FORGE_UTILS,
              "modules_forge/__init__.py": ""},
}


def write_webui(root: Path, layout: str = "post-v1.3") -> Path:
    """A WebUI folder with the given launch-file layout and the stock webui-user files
    (LF for .sh, CRLF for .bat, as upstream stores them)."""
    for rel, text in LAYOUTS[layout].items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    (root / "modules").mkdir(exist_ok=True)
    (root / "webui.py").write_text("")
    (root / "webui-user.sh").write_bytes(WEBUI_USER_SH.encode())
    (root / "webui-user.bat").write_bytes(WEBUI_USER_BAT.encode())
    return root
