"""A WebUI with a history, for `sdboot update` and `rollback`: the world's AUTOMATIC1111
repository rebuilt with three versions, each a commit of its own.

    v1.9.4  (tag)   torch 2.1.2 / cu121, the requirements file without sdb-webui-new
    v1.10.1 (tag)   the same stack, one requirement more (sdb-webui-new)
    dev     (branch, one commit past v1.10.1)   torch 2.7.0 / cu128 and xformers 0.0.30 (the
                    line with RTX 50 kernels: the profile moves), k-diffusion at a newer
                    commit (a repository the WebUI moves on update)

master stays at v1.10.1, as upstream. The catalog overlay learns the two release commits.
The builder works on a started LocalWorld (tests/world/local.py), in place."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.world.githost import git
from tests.world.launchfiles import WEBUI_USER_BAT, WEBUI_USER_SH, crlf
from tests.world.local import LocalWorld
from tests.world.webui_repo import (
    A1111,
    ENVIRONMENT_WSL2,
    LAUNCH_PY,
    LAUNCH_UTILS,
    REQUIREMENTS,
)
from tests.world.wheels import build_wheel

NEW_REQUIREMENT = "sdb-webui-new==1.0.0\n"


def history_repo(repos: Path, slug: str, versions: list[tuple[dict[str, str], str | None]],
                 branch_from: int | None = None, branch: str = "dev") -> list[str]:
    """repos/<slug>.git with one commit per version (files replace the previous ones; a
    tag where given). With branch_from=i, the versions after i are commits on `branch`,
    and master stays at version i. Returns the commits, in order."""
    work = repos.parent / "work" / (slug.replace("/", "__") + "-history")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    git("init", "-q", "-b", "master", cwd=work)
    commits = []
    for i, (files, tag) in enumerate(versions):
        for old in [p for p in work.rglob("*") if p.is_file() and ".git" not in p.parts]:
            old.unlink()
        for rel, text in files.items():
            path = work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode())
        git("add", "-A", cwd=work)
        git("commit", "-q", "--allow-empty", "-m", f"{slug} {tag or i}", cwd=work)
        if tag:
            git("tag", tag, cwd=work)
        commits.append(git("rev-parse", "HEAD", cwd=work))
        if branch_from is not None and i == branch_from:
            git("checkout", "-q", "-b", branch, cwd=work)
    if branch_from is not None:
        git("checkout", "-q", "master", cwd=work)
    bare = repos / f"{slug}.git"
    if bare.exists():
        shutil.rmtree(bare)
    git("clone", "-q", "--bare", str(work), str(bare))
    git("update-server-info", cwd=bare)
    return commits


def _webui_files(utils: str, requirements: str, version: str) -> dict[str, str]:
    return {
        "launch.py": crlf(LAUNCH_PY),
        "modules/launch_utils.py": crlf(utils),
        "modules/__init__.py": "",
        "webui.py": "# the WebUI itself is not needed to prepare the environment\n",
        "requirements_versions.txt": requirements,
        "environment-wsl2.yaml": ENVIRONMENT_WSL2,
        "webui-user.sh": WEBUI_USER_SH,
        "webui-user.bat": WEBUI_USER_BAT,
        "webui.sh": "#!/usr/bin/env bash\n# (the world's WebUI is started through launch.py)\n",
        "CHANGELOG.md": f"## {version}\n\n### Bug Fixes:\n* none\n",
    }


def add_webui_versions(world: LocalWorld) -> dict[str, str]:
    """Rebuild the world's WebUI (and k-diffusion) with a history; returns the commits
    (v1.9.4, v1.10.1, dev, kd, kd-dev) and records them in world.commits."""
    repos = world.github.mounts["/gh/"]
    kd = history_repo(repos, "crowsonkb/k-diffusion",
                      [({"k_diffusion/__init__.py": "__version__ = '0.0.1'\n"}, None),
                       ({"k_diffusion/__init__.py": "__version__ = '0.0.2'\n"}, None)])
    c = world.commits
    base = LAUNCH_UTILS.format(sd_commit=c["sd"], kd_commit=kd[0], clip_commit=c["clip"])
    dev = LAUNCH_UTILS.format(sd_commit=c["sd"], kd_commit=kd[1], clip_commit=c["clip"])
    for old, new in (("torch==2.1.2 torchvision==0.16.2", "torch==2.7.0 torchvision==0.22.0"),
                     ("whl/cu121", "whl/cu128"), ("xformers==0.0.23.post1", "xformers==0.0.30")):
        assert old in dev, old
        dev = dev.replace(old, new)
    versions: list[tuple[dict[str, str], str | None]] = [
        (_webui_files("# v1.9.4\n" + base, REQUIREMENTS, "1.9.4"), "v1.9.4"),
        (_webui_files(base, REQUIREMENTS + NEW_REQUIREMENT, "1.10.1"), "v1.10.1"),
        (_webui_files(dev, REQUIREMENTS + NEW_REQUIREMENT, "1.10.1"), None),
    ]
    webui = history_repo(repos, A1111, versions, branch_from=1)
    deps = world.root / "index" / "build" / "webui-new"
    world.index.add(build_wheel(deps, "sdb-webui-new", "1.0.0",
                                {"sdb_webui_new/__init__.py": ""}), "simple")
    (world.config_dir / "webuis.yaml").write_text(
        "webuis:\n  a1111:\n"
        f"    repo: https://github.com/{A1111}.git\n"
        "    default_ref: v1.10.1\n"
        f"    commits: {{v1.9.4: {webui[0]}, v1.10.1: {webui[1]}}}\n")
    found = {"v1.9.4": webui[0], "v1.10.1": webui[1], "dev": webui[2], "kd": kd[0],
             "kd-dev": kd[1]}
    c.update(found)
    c["webui"] = webui[1]
    return found
