"""Produce the known-good constraints shipped for each catalogued WebUI release
(constraints/<webui>/<tag>.txt; see sdboot/stack/release_constraints.py for what they are
and how sdboot uses them). A developer's tool: it needs the network (the default package
index) and local git copies of the WebUI and of the repositories its launch file installs
from archives (CLIP, open_clip); it is not part of the package.

    python tools/release_constraints.py --webui-git PATH/TO/stable-diffusion-webui
        --source openai/CLIP=PATH/TO/CLIP --source mlfoundations/open_clip=PATH/TO/open_clip
        [--webui a1111] [--ref v1.10.1 ...] [--out constraints]

For each release tag in webuis.yaml (its commit checked against the catalog):
  1. the inputs: the release's requirements file (requirements_versions.txt), and the
     requirements of the CLIP / open_clip commits its launch file installs from archives
     (CLIP_PACKAGE / OPENCLIP_PACKAGE), read from those repositories at those commits;
  2. the profile of that release (profiles/*.yaml, by its `webui` range) gives the torch
     stack, as constraints, with the numpy cap of a torch older than 2.3;
  3. `uv pip compile --universal --python-version 3.10 --exclude-newer <tag date + 7 days>`,
     the torch stack exempt from the cutoff (the profile decides it);
  4. the torch stack and what only it pulls in are dropped; the rest is written with a
     header that says all this (command, cutoff, date run).
A release that does not resolve gets a file that says why, and no pins."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from packaging.requirements import Requirement  # noqa: E402
from packaging.version import Version  # noqa: E402

from sdboot.errors import SdbootError  # noqa: E402
from sdboot.install.catalog import load_catalog  # noqa: E402
from sdboot.io.runner import Runner, which  # noqa: E402
from sdboot.stack.packages import numpy_cap  # noqa: E402
from sdboot.stack.profiles import load_profiles  # noqa: E402
from sdboot.stack.release_constraints import (  # noqa: E402
    CONFLICTS,
    TORCH_STACK,
    compile_argv,
    cutoff,
    drop_closure,
    parse_compiled,
    render,
)
from sdboot.values import Profile  # noqa: E402

_PACKAGE = re.compile(r"""os\.environ\.get\(\s*['"](CLIP|OPENCLIP)_PACKAGE['"]\s*,\s*"""
                      r"""['"]([^'"]+)['"]""")
_ARCHIVE = re.compile(r"https://github\.com/([\w.-]+/[\w.-]+)/archive/([0-9a-f]{40})\.zip")
_GIT = re.compile(r"git\+https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?@([0-9a-f]{40})")
LAUNCH_FILES = ("modules/launch_utils.py", "launch.py")
REQUIREMENTS_FILES = ("requirements_versions.txt", "requirements.txt")


def git(runner: Runner, repo: Path, *args: str) -> str:
    res = runner.run(["git", f"--git-dir={_git_dir(repo)}", *args], timeout=120)
    if not res.ok:
        raise SdbootError(f"git {' '.join(args)} failed in {repo}: {res.tail(3)}",
                          "check the repository path and that it has the tag", 1)
    return res.stdout


def _git_dir(repo: Path) -> Path:
    return repo / ".git" if (repo / ".git").exists() else repo


def first_file(runner: Runner, repo: Path, rev: str, names: tuple[str, ...]) -> tuple[str, str]:
    for name in names:
        res = runner.run(["git", f"--git-dir={_git_dir(repo)}", "show", f"{rev}:{name}"],
                         timeout=60)
        if res.ok:
            return name, res.stdout
    raise SdbootError(f"{repo} has none of {', '.join(names)} at {rev}", "", 1)


def launch_packages(text: str) -> list[tuple[str, str, str]]:
    """(variable, owner/repo, commit) of the archive / git URLs the launch file installs."""
    found = []
    for var, url in _PACKAGE.findall(text):
        match = _ARCHIVE.fullmatch(url) or _GIT.fullmatch(url)
        if match is None:
            raise SdbootError(f"{var}_PACKAGE is {url}: not a GitHub archive or git URL", "", 1)
        found.append((f"{var}_PACKAGE", match.group(1), match.group(2)))
    return found


def requirement_lines(text: str) -> list[str]:
    """The requirement lines of a requirements file (comments, blanks and options out)."""
    out = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            Requirement(line)  # a bad line fails here, not in the resolver
            out.append(line)
    return out


def profile_for(profiles: dict[str, Profile], webui: str, tag: str) -> Profile | None:
    """The CUDA profile whose `webui` range holds this release."""
    try:
        version = Version(tag.lstrip("v"))
    except ValueError:
        return None
    for profile in profiles.values():
        for spec in profile.webui:
            req = Requirement(spec)
            if req.name == webui and req.specifier.contains(version, prereleases=True):
                return profile
    return None


def stack_constraints(profile: Profile) -> list[str]:
    """The profile's torch stack without local labels (the default index carries these
    versions; the labels only pick a wheel index), and its numpy cap."""
    pins = [f"torch=={profile.torch_base}",
            f"torchvision=={profile.torchvision.split('+', 1)[0]}"]
    if profile.xformers:
        pins.append(f"xformers=={profile.xformers}")
    return pins + numpy_cap(profile)


def produce(runner: Runner, uv: str, webui: str, tag: str, commit: str, webui_git: Path,
            sources: dict[str, Path], profile: Profile, work: Path) -> tuple[list[str], str]:
    """(header lines, body) of one release's file."""
    found = git(runner, webui_git, "rev-parse", f"{tag}^{{commit}}").strip()
    if found != commit:
        raise SdbootError(f"{tag} is {found} in {webui_git}, the catalog says {commit}", "", 1)
    released = datetime.fromisoformat(git(runner, webui_git, "log", "-1", "--format=%cI",
                                          tag).strip())
    until = cutoff(released)
    req_name, req_text = first_file(runner, webui_git, tag, REQUIREMENTS_FILES)
    launch_name, launch_text = first_file(runner, webui_git, tag, LAUNCH_FILES)
    lines = [f"# {req_name} of {webui} {tag}", *requirement_lines(req_text)]
    origins = [f"{req_name} at {tag} ({commit})"]
    for var, repo, rev in launch_packages(launch_text):
        if repo not in sources:
            raise SdbootError(f"{launch_name} installs {repo}@{rev} ({var}); give "
                              f"--source {repo}=PATH", "", 2)
        name, text = first_file(runner, sources[repo], rev, ("requirements.txt",))
        lines += [f"# {name} of {repo}@{rev} ({var})", *requirement_lines(text)]
        origins.append(f"{repo}@{rev[:12]} {name} ({var} in {launch_name})")
    inputs = work / f"{tag}.in"
    inputs.write_text("\n".join(lines) + "\n")
    stack = work / f"{tag}.stack.txt"
    stack.write_text("\n".join(stack_constraints(profile)) + "\n")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    argv = compile_argv(uv, [inputs], until, constraints=[stack], exempt=sorted(TORCH_STACK),
                        exempt_until=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    shown = ["uv", *argv[1:]]
    header = [f"Known-good constraints for {webui} {tag} (commit {commit}),",
              "produced by tools/release_constraints.py; do not edit by hand.",
              f"Released {released.isoformat()}; resolved as of {until} (the release + 7 days),",
              f"run on {now.isoformat()} with {uv_version(runner, uv)} against the default "
              "package index.",
              "Inputs: " + "; ".join(origins) + ".",
              f"Torch stack from profile {profile.name} ({', '.join(stack_constraints(profile))}),"
              " exempt from the cutoff;",
              "it and what only it pulls in are left out: the profile decides them.",
              "Command: " + " ".join(a if not a.startswith(str(work)) else
                                     Path(a).name for a in shown), ""]
    res = runner.run(argv, timeout=900)
    if not res.ok:
        return [*header[:5], "This release did NOT resolve for Python 3.10 as of that date; "
                "no pins are shipped for it:", *res.tail(6).splitlines()], ""
    entries = drop_closure(parse_compiled(res.stdout))
    body = render(entries, []).strip()
    conflicts = check_profiles(runner, uv, inputs, body, work)
    header[-1:-1] = [
        "Checked against the torch stack of every profile (resolving these pins, the inputs",
        "and that stack, without the cutoff): " + (
            "all resolve." if not conflicts else "these do not, and get no release set "
            "(their torch needs newer packages):"),
        f"{CONFLICTS} {' '.join(conflicts)}" if conflicts else f"{CONFLICTS}"]
    return header, body


def check_profiles(runner: Runner, uv: str, inputs: Path, body: str, work: Path) -> list[str]:
    """The profiles whose torch stack cannot be installed beside this set (sorted names)."""
    pins = work / "pins.txt"
    pins.write_text(body + "\n")
    groups: dict[tuple[str, ...], list[str]] = {}
    for profile in load_profiles().values():
        groups.setdefault(tuple(stack_constraints(profile)), []).append(profile.name)
    conflicts: list[str] = []
    for stack, names in groups.items():
        extra = work / "check.txt"
        extra.write_text("\n".join(stack) + "\n")
        argv = [uv, "pip", "compile", "--quiet", "--universal", "--no-header",
                "--python-version", "3.10", "-c", str(pins), "-c", str(extra), str(inputs)]
        if not runner.run(argv, timeout=900).ok:
            conflicts += names
    return sorted(conflicts)


def uv_version(runner: Runner, uv: str) -> str:
    res = runner.run([uv, "--version"], timeout=30)
    return res.stdout.strip() or "uv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webui-git", type=Path, required=True)
    parser.add_argument("--source", action="append", default=[], metavar="OWNER/REPO=PATH")
    parser.add_argument("--webui", default="a1111")
    parser.add_argument("--ref", action="append", default=[])
    parser.add_argument("--out", type=Path, default=ROOT / "constraints")
    args = parser.parse_args(argv)
    uv = which("uv")
    if uv is None:
        print("uv is not on PATH", file=sys.stderr)
        return 2
    sources = {k: Path(v) for k, _, v in (s.partition("=") for s in args.source)}
    known = load_catalog()[args.webui]
    profiles = load_profiles()
    runner = Runner()
    out = args.out / args.webui
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="sdboot-release-") as tmp:
        for tag, commit in known.commits.items():
            if args.ref and tag not in args.ref:
                continue
            profile = profile_for(profiles, args.webui, tag)
            if profile is None:
                print(f"{tag}: no profile's webui range holds it; skipped", file=sys.stderr)
                continue
            header, body = produce(runner, uv, args.webui, tag, commit, args.webui_git,
                                   sources, profile, Path(tmp))
            text = "\n".join(f"# {h}" if h else "#" for h in header) + "\n"
            if body:
                text += body + "\n"
            else:
                failed += 1
            (out / f"{tag}.txt").write_text(text)
            print(f"{tag}: {len(body.splitlines())} pins -> {out / f'{tag}.txt'}",
                  file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
