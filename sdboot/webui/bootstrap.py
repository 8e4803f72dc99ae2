"""What the WebUI's own preparation (`launch.py --exit`) would install and clone, read from its
launch file and environment, so that sdboot can do it first and faster: the requirements
file and the launch file's extra packages in one resolution, the repositories cloned at their
pinned commits concurrently. launch.py then finds everything in place (`is_installed`,
`requirements_met`, `git_clone` of a folder already at its commit) and only checks. Pure.

The launch file's extra packages (FACTS.md, the real prepare_environment()):

    if not is_installed("clip"):      run_pip(f"install {clip_package}")      # CLIP_PACKAGE
    if not is_installed("open_clip"): run_pip(f"install {openclip_package}")  # OPENCLIP_PACKAGE
    if not is_installed("gfpgan"):    run_pip(f"install {gfpgan_package}")    # before v1.3

A package whose distribution the requirements file already names (open-clip-torch from v1.6,
gfpgan in old releases) is left to the requirements: launch.py finds its module installed, and
installing both would give the resolver two sources of one distribution."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sdboot.webui.folder import parse_clone_pins, parse_env_defaults, parse_requirements

REQS_FILE_DEFAULT = "requirements_versions.txt"
# launch.py's extra packages: env var -> (the module it checks, the distribution that gives it)
EXTRA_PACKAGES = {
    "CLIP_PACKAGE": ("clip", "clip"),
    "OPENCLIP_PACKAGE": ("open_clip", "open-clip-torch"),
    "GFPGAN_PACKAGE": ("gfpgan", "gfpgan"),
}
_HEX = re.compile(r"[0-9a-fA-F]{7,64}")


@dataclass(frozen=True)
class Clone:
    folder: str  # under repositories/
    url: str  # as the WebUI would clone it (its *_REPO value)
    commit: str | None  # the pinned commit (*_COMMIT_HASH); None: any


@dataclass(frozen=True)
class Bootstrap:
    requirements_file: str  # relative to the WebUI folder (REQS_FILE)
    packages: tuple[str, ...]  # the extra packages launch.py installs (URLs or specifiers)
    clones: tuple[Clone, ...]
    pins: tuple[str, ...] = ()  # the requirements file's exact `name==version` pins


# Never taken from the WebUI's requirements as pins: the profile decides the torch stack.
TORCH_STACK = frozenset({"torch", "torchvision", "torchaudio", "xformers"})


def exact_pins(requirements_text: str | None) -> tuple[str, ...]:
    """`name==version` for each plain exact pin of a requirements file (canonical names,
    sorted), the torch stack left out."""
    pins = {name: spec[2:] for name, spec, _ in parse_requirements(requirements_text or "")
            if spec.startswith("==") and "," not in spec and "*" not in spec
            and name not in TORCH_STACK}
    return tuple(f"{name}=={version}" for name, version in sorted(pins.items()))


def _value(name: str, env: Mapping[str, str], defaults: Mapping[str, str]) -> str | None:
    for value in (env.get(name), defaults.get(name)):  # a blank variable counts as unset
        if value and value.strip():
            return value.strip()
    return None


def plan_bootstrap(launch_text: str,
                   requirements: str | Callable[[str], str | None] | None,
                   env: Mapping[str, str]) -> Bootstrap:
    """The preparation of a WebUI whose launch file reads launch_text, run with env (the
    environment sdboot gives launch.py: mirror variables included). `requirements` is the
    requirements file's text, or reads it given its name (REQS_FILE, or the default)."""
    defaults = parse_env_defaults(launch_text)
    reqs_file = _value("REQS_FILE", env, defaults) or REQS_FILE_DEFAULT
    requirements_text = requirements(reqs_file) if callable(requirements) else requirements
    named = {name for name, _, _ in parse_requirements(requirements_text or "")}
    packages = []
    for var, (_module, dist) in EXTRA_PACKAGES.items():
        value = _value(var, env, defaults)
        if value is not None and var in defaults and dist not in named:
            packages.append(value)
    clones = []
    for pin in parse_clone_pins(launch_text):
        url = _value(pin.repo_var, env, defaults)
        if url is None:
            continue
        commit = _value(pin.commit_var, env, defaults) if pin.commit_var else None
        clones.append(Clone(pin.folder, url, commit if commit and _HEX.fullmatch(commit)
                            else None))
    return Bootstrap(reqs_file, tuple(packages), tuple(clones), exact_pins(requirements_text))
