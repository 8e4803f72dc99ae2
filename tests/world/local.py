"""The local world in one place, shared by the end-to-end tests, the benchmarks and the
try-it-offline demo: a simulated NVIDIA GPU (fake NVML/libcuda), a package index with the
stub torch stacks and the WebUI's requirements, and one loopback git server that acts as
GitHub (`/gh/O/R.git`, reached through git's insteadOf, as if it were github.com) and as a
prefix proxy (`/https://github.com/O/R.git`). sdboot's user overlay (SDBOOT_CONFIG_DIR)
points profiles, mirrors and the WebUI catalog at it, the way a user with private mirrors
would configure sdboot. Nothing here reaches the internet."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.world.githost import GitHost, closed_port
from tests.world.gpu import RTX_3060, GpuLibs, Scenario, build_gpu_libs
from tests.world.index import LocalIndex, build_world_index, overlay_profiles
from tests.world.webui_repo import A1111, build_webui_repos
from tests.world.wheels import build_wheel

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LocalWorld:
    root: Path
    index: LocalIndex
    github: GitHost
    gpu_libs: GpuLibs
    config_dir: Path
    commits: dict[str, str]
    scenario: Scenario

    @property
    def github_url(self) -> str:
        """What plays github.com."""
        return self.github.url + "gh/"

    def env(self, scenario: Scenario | None = None, **extra: str) -> dict[str, str]:
        """The environment for running sdboot (and everything it starts) in the world."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PIP_", "UV_", "GIT_", "FAKE_", "SDBOOT_", "HF_"))
               and k != "LD_LIBRARY_PATH"}
        env.update(self.gpu_libs.env(scenario or self.scenario))
        env.update({
            "NO_COLOR": "1", "COLUMNS": "200",
            "SDBOOT_WSL_LIB_DIR": "/nonexistent-wsl", "SDBOOT_SYSFS_ROOT": "/nonexistent-sys",
            "SDBOOT_CONFIG_DIR": str(self.config_dir), "SDBOOT_LANG": "en",
            "SDBOOT_CACHE_DIR": str(self.root / "cache"),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_INDEX_URL": self.index.index_url("simple"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "UV_INDEX_URL": self.index.index_url("simple"),
            "UV_CACHE_DIR": str(self.root / "uv-cache"),
            "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            # github.com is this loopback server: git's own insteadOf, as a network would be.
            # Without the final slash: git applies the longest match, so a mirror's rule for
            # https://github.com/ (sdboot's, process-scoped) wins over it, as over a network.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.{self.github_url.rstrip('/')}.insteadOf",
            "GIT_CONFIG_VALUE_0": "https://github.com",
            # ... and pip's download of GitHub's CLIP archive, which insteadOf never sees: the
            # WebUI's CLIP_PACKAGE variable, as a user sets it (sdboot's mirror env replaces it)
            "CLIP_PACKAGE": f"{self.github_url}openai/CLIP/archive/{self.commits['clip']}.zip",
        })
        env.update(extra)
        return env

    def stop(self) -> None:
        self.github.stop()
        self.index.stop()


def _overlay(world_root: Path, config: Path, index: LocalIndex, github: GitHost,
             webui_commit: str) -> None:
    overlay_profiles(config, index, ROOT / "profiles")
    (config / "mirrors.yaml").write_text(
        "replace_shipped: true  # the world's mirrors only: nothing on the internet\n"
        "mirrors:\n"
        f"  - {{name: world-gh, kind: github-prefix, url: '{github.url}'}}\n"
        f"  - {{name: world-pypi, kind: pypi, url: '{index.index_url('simple')}'}}\n"
        f"  - {{name: world-torch, kind: torch-index, url: '{index.url}/whl/{{variant}}/'}}\n"
        f"  - {{name: dead-gh, kind: github-prefix, url: 'http://127.0.0.1:{closed_port()}/'}}\n"
        "presets:\n"
        "  world: {github: world-gh, pypi: world-pypi, torch: world-torch}\n"
        "  dead: {github: dead-gh}\n"
        "substitutions:\n"
        "  - from: https://github.com/Stability-AI/stablediffusion.git\n"
        "    to: https://github.com/w-e-w/stablediffusion.git\n"
        "upstreams:\n"
        f"  github: '{github.url}gh/'\n"
        f"  torch: '{index.url}/whl/{{variant}}/'\n"
        "  hf: ''\n"
        "probes:\n"
        "  pypi_project: sdb-webui-dep\n")
    (config / "webuis.yaml").write_text(
        "webuis:\n  a1111:\n"
        f"    repo: https://github.com/{A1111}.git\n"
        "    default_ref: v1.10.1\n"
        f"    commits: {{v1.10.1: {webui_commit}}}\n")


def build_local_world(root: Path, scenario: Scenario | None = None,
                      kin: dict[str, str] | None = None) -> LocalWorld:
    """kin: Forge, reForge and Neo as well (tests/world/forge_kin.py), each with the world
    profile that fits it (name -> profile), in the catalog overlay."""
    root.mkdir(parents=True, exist_ok=True)
    index = build_world_index(root / "index")
    deps = root / "index" / "build" / "webui-deps"
    for version in ("1.0.0", "2.0.0"):  # the WebUI pins 1.0.0; a newer one is out, as always
        index.add(build_wheel(deps, "sdb-webui-dep", version, {"sdb_webui_dep/__init__.py": ""}),
                  "simple")
    # like open_clip: needs torch, any version; the constraints keep the pinned one
    index.add(build_wheel(deps, "sdb-clip-stub", "1.0.0", {"sdb_clip_stub/__init__.py": ""},
                          ["torch>=1.7"]), "simple")
    # today's setuptools (>= 82: no pkg_resources), the newest on the index as on the real one:
    # CLIP's build needs sdboot's build guard to get an older one
    from tests.world.repack import repack

    index.add(repack("setuptools", root / "index" / "build" / "setuptools"), "simple")
    index.start()
    repos = root / "github"
    commits = build_webui_repos(repos)
    github = GitHost({"/gh/": repos, "/https://github.com/": repos}).start()
    config = root / "config"
    config.mkdir(exist_ok=True)
    _overlay(root, config, index, github, commits["webui"])
    if kin:
        from tests.world.forge_kin import build_forge_kin, kin_overlay

        commits.update(build_forge_kin(repos, commits))
        with (config / "webuis.yaml").open("a") as fh:
            fh.write(kin_overlay(commits, kin, "{}.{}".format(*sys.version_info[:2])))
    libs = build_gpu_libs(root / "gpu")
    return LocalWorld(root, index, github, libs, config, commits,
                      scenario or Scenario(driver="531.18", cuda=12010, gpus=(RTX_3060,)))


def sdboot_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "sdboot", *args]


def kill_at_line(argv: list[str], env: dict[str, str], cwd: Path, prefix: str) -> bool:
    """Run argv and SIGKILL its whole process group as soon as it prints a line starting
    with `prefix` that ends with "..." (a step beginning); whether that happened."""
    import os
    import signal
    import subprocess

    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    killed = False
    for line in proc.stdout:
        if line.startswith(prefix) and line.rstrip().endswith("..."):
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait(timeout=120)
    return killed

