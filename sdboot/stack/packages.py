"""Package installs: building pip / uv command lines for a profile's torch stack (pure),
the constraints file that keeps that stack pinned, and running the installs through the
runner. Every pip call sdboot makes or starts uses the constraints file (directly with -c,
or through PIP_CONSTRAINT / UV_CONSTRAINT for the WebUI's own pip calls)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, Specifier
from packaging.version import InvalidVersion, Version

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.files import atomic_write
from sdboot.io.runner import Runner
from sdboot.machine.uv_python import find_uv as find_uv  # re-exported (steps use it)
from sdboot.values import Profile

INSTALL_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class WheelSource:
    """Where the torch wheels come from: the profile's index, or a mirror of it."""

    url: str | None  # None: the default package index
    mode: str  # index | extra | find-links | default

    def args(self) -> list[str]:
        if self.url is None or self.mode == "default":
            return []
        flag = {"index": "--index-url", "extra": "--extra-index-url",
                "find-links": "--find-links"}[self.mode]
        return [flag, self.url]


def profile_source(profile: Profile) -> WheelSource:
    return WheelSource(profile.index_url, profile.index_mode)


@dataclass(frozen=True)
class Installer:
    kind: str  # pip | uv
    exe: str | None  # the uv binary; None for pip (run as `python -m pip`)

    def base(self, python: Path) -> list[str]:
        if self.kind == "uv":
            return [str(self.exe), "pip", "install", "--python", str(python)]
        return [str(python), "-m", "pip", "install"]


def choose_installer(prefer: str | None = None) -> Installer:
    """uv when available (several times faster on big wheels), else pip. SDBOOT_INSTALLER
    (pip|uv) or `prefer` forces one."""
    wanted = (prefer or os.environ.get("SDBOOT_INSTALLER") or "auto").lower()
    if wanted not in ("auto", "pip", "uv"):
        raise SdbootError(t("unknown installer '{name}'", name=wanted), t("use pip or uv"))
    if wanted in ("auto", "uv"):
        uv = find_uv()
        if uv:
            return Installer("uv", uv)
        if wanted == "uv":
            raise SdbootError(t("uv is not installed"), t("pip install 'sdboot[uv]', or use pip"))
    return Installer("pip", None)


# torch 2.3.0 is the first release built against NumPy 2.0 (whose ABI also runs on 1.x);
# older builds import beside NumPy 2 but their numpy bridge fails ("_ARRAY_API not found").
# See pytorch/pytorch#107302 (NumPy 2.0 support) and the torch 2.3 release notes. The one
# boundary for the numpy-abi verdict and for the numpy cap in the constraints file.
NUMPY2_FIRST_TORCH = Version("2.3")
NUMPY1_CAP = "numpy<2"


def built_for_numpy1(torch_version: str | None) -> bool:
    """Is this torch (local label or not) older than the first one built against NumPy 2?"""
    try:
        return Version((torch_version or "0").split("+", 1)[0]) < NUMPY2_FIRST_TORCH
    except InvalidVersion:
        return False


def numpy_cap(profile: Profile) -> list[str]:
    """["numpy<2"] for a profile whose torch was built against NumPy 1.x, else []. torchvision
    requires numpy without an upper bound, so without the cap a fresh stack gets NumPy 2."""
    return [NUMPY1_CAP] if built_for_numpy1(profile.torch) else []


def pin_matches(installed: str | None, pin: str) -> bool:
    """Does the installed version satisfy `==pin` (PEP 440)? A pin without a local label
    matches every build of that version (2.1.2 matches 2.1.2+cu121); one with a label
    (2.1.2+cu121) only that build."""
    if not installed:
        return False
    try:
        return Specifier(f"=={pin}").contains(installed, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return installed == pin


def stack_pins(profile: Profile) -> list[str]:
    pins = [f"torch=={profile.torch}", f"torchvision=={profile.torchvision}"]
    if profile.xformers:
        pins.append(f"xformers=={profile.xformers}")
    return pins


# The build guard. setuptools 82 removed pkg_resources (CLIP's setup.py, which the WebUI
# builds from a zip, imports it: openai/CLIP#528), and a build environment takes the newest
# setuptools unless its constraints say otherwise. Which constraints reach a build:
# - pip >= 25.3 reads build constraints from --build-constraint / PIP_BUILD_CONSTRAINT
#   (pypa/pip#13534); PIP_CONSTRAINT still reaching builds is deprecated there, and from
#   pip 26.2 it no longer does (pypa/pip#13787, pypa/pip#14094).
# - older pips apply PIP_CONSTRAINT to build environments too (pypa/pip#8439 is about
#   the command-line -c, which does not), so the runtime constraints carry the cap as well.
# - uv: `uv pip install --build-constraint FILE`, or UV_BUILD_CONSTRAINT; uv's -c /
#   UV_CONSTRAINT do not reach builds.
# The file holds only the caps: sdboot never installs setuptools because of it.
DEFAULT_BUILD_CONSTRAINTS: tuple[str, ...] = ("setuptools<82",)


def is_requirement(text: object) -> bool:
    """A PEP 508 requirement specifier ("setuptools<82", "a1111>=1.8,<1.11")?"""
    if not isinstance(text, str):
        return False
    try:
        Requirement(text)
    except InvalidRequirement:
        return False
    return True


def build_caps(webui: Sequence[str] | None = None, profile: Profile | None = None,
               ) -> list[str]:
    """The build constraints for one install: the WebUI's (None: the default cap), then the
    profile's own, each once."""
    caps = list(DEFAULT_BUILD_CONSTRAINTS if webui is None else webui)
    for extra in profile.build_constraints if profile is not None else ():
        if extra not in caps:
            caps.append(extra)
    return caps


def render_build_constraints(caps: Sequence[str]) -> str:
    return (
        "# Written by sdboot: the constraints of build environments (PIP_BUILD_CONSTRAINT,\n"
        "# UV_BUILD_CONSTRAINT, --build-constraint). Change it with sdboot, not by hand.\n"
        + "".join(f"{c}\n" for c in caps)
    )


def render_constraints(profile: Profile, caps: Sequence[str] | None = None) -> str:
    """The pins, the numpy cap a torch older than 2.3 needs (compatible with the WebUI's
    own numpy==1.x pin), and the build caps (old pips build under PIP_CONSTRAINT)."""
    build = build_caps(None, profile) if caps is None else list(caps)
    return (
        f"# Written by sdboot for profile {profile.name}. Every pip call sdboot makes or\n"
        "# starts (the WebUI's own, through PIP_CONSTRAINT) uses this file, so nothing can\n"
        "# replace the pinned torch stack. Change it with sdboot, not by hand.\n"
        + "\n".join([*stack_pins(profile), *numpy_cap(profile), *build]) + "\n"
    )


# Written after the profile's part by the requirements step: the WebUI's own exact pins.
WEBUI_PINS_HEADER = ("# The WebUI's own pins (its requirements file): a later pip call (an\n"
                     "# extension's installer) cannot move them; one that needs other versions\n"
                     "# fails instead of breaking the WebUI.\n")


def render_webui_constraints(profile: Profile, caps: Sequence[str],
                             webui_pins: Sequence[str]) -> str:
    """The constraints file with the WebUI's exact pins after the profile's part (which
    stays a prefix: the torch step's check compares only that)."""
    text = render_constraints(profile, caps)
    return text + (WEBUI_PINS_HEADER + "\n".join(webui_pins) + "\n" if webui_pins else "")


def write_constraints(profile: Profile, path: Path, caps: Sequence[str] | None = None,
                      build_path: Path | None = None) -> Path:
    """The constraints file, and (given build_path) the build constraints beside it."""
    build = build_caps(None, profile) if caps is None else list(caps)
    if build_path is not None:
        atomic_write(build_path, render_build_constraints(build).encode())
    atomic_write(path, render_constraints(profile, build).encode())
    return path


def constraint_env(constraints: Path | None,
                   build_constraints: Path | None = None) -> dict[str, str]:
    """For child processes that run pip themselves (the WebUI's launch.py, extensions)."""
    env: dict[str, str] = {}
    if constraints is not None:
        env.update(PIP_CONSTRAINT=str(constraints), UV_CONSTRAINT=str(constraints))
    if build_constraints is not None:
        env.update(PIP_BUILD_CONSTRAINT=str(build_constraints),
                   UV_BUILD_CONSTRAINT=str(build_constraints))
    return env


def plan_stack_install(profile: Profile, python: Path, installer: Installer, constraints: Path,
                       source: WheelSource | None = None,
                       build_constraints: Path | None = None,
                       extra: Sequence[Path] = ()) -> list[list[str]]:
    """The commands that install exactly the profile's stack. torch and torchvision come
    from the profile's wheel index; xformers from the default index (where its wheels for
    these torch versions live) with the torch index as an extra source, under the same
    constraints, so it can never pull in another torch; `extra` constraints files (the
    release's known-good set) pin what torch pulls in (numpy, jinja2, ...) to the versions the
    WebUI's requirements will ask for, so that they do not change again. uv gets the build
    constraints as
    --build-constraint; pip gets them through PIP_BUILD_CONSTRAINT (install_stack), since a
    pip older than 25.3 refuses the flag."""
    source = source or profile_source(profile)
    base = installer.base(python)
    guard = (["--build-constraint", str(build_constraints)]
             if installer.kind == "uv" and build_constraints is not None else [])
    pins = stack_pins(profile)
    torch_pins, xformers_pins = pins[:2], pins[2:]
    cons = ["-c", str(constraints)]
    for path in extra:
        cons += ["-c", str(path)]
    commands = [[*base, *torch_pins, *source.args(), *cons, *guard, *profile.pip_args]]
    if xformers_pins:
        index = (["--extra-index-url", source.url] if source.url and source.mode
                 in ("index", "extra") else source.args())
        commands.append([*base, *xformers_pins, *index, *cons, *guard, *profile.pip_args])
    return commands


_PROGRESS = re.compile(r"^(Collecting|Downloading|Installing|Successfully|Resolved|Prepared|"
                       r"Installed|Requirement already|Using cached|Building|\s*[+-] )")


def progress_line(line: str) -> bool:
    """An installer's output line worth showing as progress (pip's and uv's)."""
    return bool(_PROGRESS.match(line))


def install_stack(profile: Profile, python: Path, constraints: Path, runner: Runner,
                  installer: Installer | None = None, source: WheelSource | None = None,
                  env: dict[str, str] | None = None,
                  on_progress: Callable[[str], None] | None = None,
                  build_constraints: Path | None = None,
                  caps: Sequence[str] | None = None,
                  extra: Sequence[Path] = ()) -> list[list[str]]:
    """Write the constraints files, then install the stack. Raises SdbootError (exit 1)
    with the tail of the installer's output when a step fails."""
    installer = installer or choose_installer()
    write_constraints(profile, constraints, caps, build_constraints)
    commands = plan_stack_install(profile, python, installer, constraints, source,
                                  build_constraints, extra)
    if build_constraints is not None:
        env = {**(os.environ if env is None else env),
               **constraint_env(None, build_constraints)}
    for argv in commands:
        def show(line: str) -> None:
            if on_progress is not None and progress_line(line):
                on_progress(line.strip())

        res = runner.stream(argv, timeout=INSTALL_TIMEOUT_S, env=env, on_line=show)
        if not res.ok:
            what = " ".join(argv[len(installer.base(python)):][:2])
            raise SdbootError(
                t("{installer} could not install {what} (exit {code}): {tail}",
                  installer=installer.kind, what=what, code=res.returncode, tail=res.tail(3)),
                t("check the wheel index and your network; full log: {log}",
                  log=runner.log_path) if runner.log_path else
                t("check the wheel index and your network"), exit_code=1)
    return commands


_VERSIONS = (
    "import json, sys\n"
    "from importlib import metadata\n"
    "out = {}\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        out[name] = metadata.version(name)\n"
    "    except metadata.PackageNotFoundError:\n"
    "        out[name] = None\n"
    "print(json.dumps(out))\n"
)


def query_installed(python: Path, runner: Runner,
                    names: tuple[str, ...] = ("torch", "torchvision", "xformers", "pip"),
                    ) -> dict[str, str | None] | None:
    """Installed versions from package metadata, without importing anything heavy (tens of
    milliseconds even with a real torch). None when the interpreter does not run."""
    import json

    if not python.exists():
        return None
    res = runner.run([str(python), "-I", "-c", _VERSIONS, *names], timeout=60)
    if not res.ok:
        return None
    try:
        doc = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return {k: (str(v) if v is not None else None) for k, v in doc.items()}


def mirror_source(profile: Profile, url: str | None, kind: str | None) -> WheelSource:
    """The profile's wheels through a torch mirror (kind torch-index or torch-find-links)."""
    if url is None:
        return profile_source(profile)
    return WheelSource(url, "find-links" if kind == "torch-find-links" else "extra")
