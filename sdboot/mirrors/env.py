"""Env mode (pure): the environment variables that send the WebUI's own downloads through
the chosen mirrors without changing any of its files, and the managed block that carries
them in webui-user.sh / webui-user.bat for the WebUI's own scripts.

What is set: the WebUI's `*_REPO` / `*_PACKAGE` / `TORCH_*` / `INDEX_URL` variables (read from
its launch file's defaults, so each version gets exactly the names it reads), PIP_INDEX_URL,
HF_ENDPOINT, and git's url.<mirror>.insteadOf through GIT_CONFIG_COUNT/KEY_n/VALUE_n, which
reaches every clone the WebUI makes (the Extensions tab included) and nobody else's."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.mirrors.origins import rules_env
from sdboot.mirrors.table import (
    MirrorKind,
    MirrorTable,
    Selection,
    map_url,
    substitute,
    variant_of,
)
from sdboot.values import TorchPins
from sdboot.webui.folder import parse_env_defaults, parse_launch_pins

# Tokens that must never reach a third-party endpoint: with HF_ENDPOINT set to a mirror,
# huggingface_hub would send them there.
HF_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
BLOCK_BEGIN = ">>> sdboot mirror (managed: sdboot mirror apply / revert) >>>"
BLOCK_END = "<<< sdboot mirror <<<"
_URL_VARS = re.compile(r"^(\w+_REPO|CLIP_PACKAGE|OPENCLIP_PACKAGE|GFPGAN_PACKAGE)$")
# cmd.exe cannot quote these safely: webui.bat expands the variables into command lines
# (%PYTHON%, %VENV_DIR%) and launch.py hands TORCH_COMMAND to cmd, so a value holding one
# is refused instead of written into webui-user.bat.
BAT_UNSAFE = frozenset('^&|<>"\r\n')  # % is written as %% (a literal % in a .bat)


@dataclass(frozen=True)
class MirrorEnv:
    vars: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def apply_to(self, env: dict[str, str]) -> dict[str, str]:
        merged = {k: v for k, v in env.items() if k not in self.unset}
        merged.update(self.vars)
        return merged


def has_userinfo(url: str) -> bool:
    return "@" in urlsplit(url).netloc


def existing_git_count(env: Mapping[str, str]) -> int:
    """An existing GIT_CONFIG_COUNT (the user's own) is continued, never replaced."""
    try:
        return max(0, int(env.get("GIT_CONFIG_COUNT", "0") or 0))
    except ValueError:
        return 0


def plan_mirror_env(sel: Selection, table: MirrorTable, launch_text: str | None = None,
                    pins: TorchPins | None = None, git_count_base: int = 0,
                    git_config_env: bool = True) -> MirrorEnv:
    """The variables for the WebUI's processes. `pins` (a profile's stack) makes the torch
    command explicit; without it only the launch file's own defaults are redirected.
    `git_count_base` continues an existing GIT_CONFIG_COUNT instead of replacing it.
    `git_config_env`: git reads GIT_CONFIG_* (>= 2.31); False puts the mirror into the
    *_REPO URLs instead (their clones' origins are then the mirror's until reset)."""
    defaults = parse_env_defaults(launch_text) if launch_text else {}
    out: dict[str, str] = {}
    notes: list[str] = []
    unset: list[str] = []
    # A mirror with a credential (https://user:pw@...) is reached through the insteadOf
    # rules only: a *_REPO URL is what git keeps as the clone's origin in .git/config.
    github = None if sel.github is not None and has_userinfo(sel.github.url) else sel.github
    for name, default in defaults.items():
        if _URL_VARS.match(name) and default:
            # A *_REPO clone keeps its URL as origin: it stays the upstream (a dead one's
            # copy), and the mirror reaches it through the insteadOf rules below. The
            # *_PACKAGE URLs are pip downloads (archives too, which insteadOf never sees).
            through = None if name.endswith("_REPO") and git_config_env else github
            target = map_url(substitute(default, table.substitutions), through, table)
            if target != default:
                out[name] = target
    torch_env = _torch_env(sel, launch_text, defaults, pins)
    out.update(torch_env)
    if sel.pypi is not None:
        out["PIP_INDEX_URL"] = sel.pypi.url
        if "INDEX_URL" in defaults or not launch_text:
            out["INDEX_URL"] = sel.pypi.url
    if sel.hf is not None:
        out["HF_ENDPOINT"] = sel.hf.url.rstrip("/")
        unset.extend(HF_TOKEN_VARS)
        notes.append(t("HF_TOKEN is not passed on: requests go to {url}, a third party",
                       url=sel.hf.url))
    out.update(rules_env(sel.github, table, git_count_base))
    if sel.github is not None and sel.github.kind == MirrorKind.GITHUB_CLONE:
        notes.append(t("{name} serves clones only: archives and release files still come "
                       "from GitHub", name=sel.github.name))
    return MirrorEnv(out, tuple(unset), tuple(notes))


def _torch_env(sel: Selection, launch_text: str | None, defaults: dict[str, str],
               pins: TorchPins | None) -> dict[str, str]:
    """TORCH_INDEX_URL where an index-shaped mirror and the launch file's own command do,
    else an explicit TORCH_COMMAND (a find-links mirror, or a profile's pins)."""
    launch_pins = parse_launch_pins(launch_text) if launch_text else TorchPins()
    wanted = pins or launch_pins
    variant = variant_of(wanted.index_url) or variant_of(launch_pins.index_url)
    out: dict[str, str] = {}
    source_args: list[str] = []
    if sel.torch is not None and variant is not None:
        url = sel.torch.url_for(variant)
        if sel.torch.kind == MirrorKind.TORCH_INDEX:
            if pins is None and "TORCH_INDEX_URL" in defaults:
                return {"TORCH_INDEX_URL": url}
            source_args = ["--extra-index-url", url]
        else:
            source_args = ["--find-links", url]
    elif pins is not None and pins.index_url:
        source_args = ["--extra-index-url", pins.index_url]
    elif pins is None:
        return out
    if wanted.torch and wanted.torchvision:
        words = ["pip", "install", f"torch=={wanted.torch}",
                 f"torchvision=={wanted.torchvision}", *source_args]
        # launch.py runs TORCH_COMMAND through a shell: each word quoted for it (the URLs
        # are plain data after validation, so this changes nothing for a valid table)
        out["TORCH_COMMAND"] = " ".join(shlex.quote(w) for w in words)
    if pins is not None and pins.xformers:
        out["XFORMERS_PACKAGE"] = f"xformers=={pins.xformers}"
    return out


# --- the managed block in webui-user.sh / webui-user.bat -----------------------------------


def render_block(env: MirrorEnv, shell: str,
                 markers: tuple[str, str] = (BLOCK_BEGIN, BLOCK_END)) -> list[str]:
    """Lines (without endings) of a managed block; shell is 'sh' or 'bat'."""
    begin, end = markers
    if shell == "sh":
        lines = [f"# {begin}"]
        lines += [f"unset {name}" for name in env.unset]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in env.vars.items()]
        lines.append(f"# {end}")
        return lines
    for name, value in env.vars.items():
        bad = sorted({ch for ch in value if ch in BAT_UNSAFE})
        if bad:
            raise SdbootError(
                t("{name}={value} cannot be written to webui-user.bat: cmd cannot quote "
                  "{chars}", name=name, value=value.encode("unicode_escape").decode("ascii"),
                  chars=" ".join(repr(ch) for ch in bad)),
                t("use a mirror URL / path without ^ & | < > \""),
                exit_code=2)
    lines = [f"rem {begin}"]
    lines += [f"set {name}=" for name in env.unset]
    lines += [f'set "{k}={v.replace("%", "%%")}"' for k, v in env.vars.items()]
    lines.append(f"rem {end}")
    return lines


def _newline_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _block_range(lines: list[str], markers: tuple[str, str] = (BLOCK_BEGIN, BLOCK_END),
                 ) -> tuple[int, int] | None:
    begin = next((i for i, ln in enumerate(lines) if markers[0] in ln), None)
    if begin is None:
        return None
    end = next((i for i in range(begin, len(lines)) if markers[1] in lines[i]), None)
    return (begin, end if end is not None else begin)


def remove_block(text: str, markers: tuple[str, str] = (BLOCK_BEGIN, BLOCK_END)) -> str:
    """The text without sdboot's block: the file as it was before upsert_block."""
    lines = text.splitlines(keepends=True)
    span = _block_range(lines, markers)
    if span is None:
        return text
    return "".join(lines[:span[0]] + lines[span[1] + 1:])


def upsert_block(text: str, block: list[str], shell: str,
                 markers: tuple[str, str] = (BLOCK_BEGIN, BLOCK_END)) -> str:
    """Put the block into a webui-user file: in place of an old one; in a .bat before the
    `call webui.bat` line (variables set after it would come too late); else at the end."""
    nl = _newline_of(text) if text else ("\r\n" if shell == "bat" else "\n")
    lines = text.splitlines(keepends=True)
    span = _block_range(lines, markers)
    if span is not None:  # replace in place, keeping the block where it was
        old = lines[span[0]:span[1] + 1]
        nl_old = "\r\n" if old and old[0].endswith("\r\n") else nl
        return "".join(lines[:span[0]] + [ln + nl_old for ln in block] + lines[span[1] + 1:])
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += nl
    new = [ln + nl for ln in block]
    at = len(lines)
    if shell == "bat":
        call = next((i for i, ln in enumerate(lines)
                     if re.match(r"\s*call\s+webui\.bat", ln, re.IGNORECASE)), None)
        if call is not None:
            at = call
    return "".join(lines[:at] + new + lines[at:])


def read_block(text: str, markers: tuple[str, str] = (BLOCK_BEGIN, BLOCK_END)) -> dict[str, str]:
    """The variables an existing managed block sets (for `mirror status`)."""
    lines = text.splitlines()
    span = _block_range(lines, markers)
    if span is None:
        return {}
    found: dict[str, str] = {}
    for line in lines[span[0] + 1:span[1]]:
        sh = re.match(r"export (\w+)=(.*)$", line)
        if sh:
            parts = shlex.split(sh.group(2))
            found[sh.group(1)] = parts[0] if parts else ""
            continue
        bat = re.match(r'set "(\w+)=(.*)"$', line)
        if bat:  # a literal % is written as %% in a .bat
            found[bat.group(1)] = bat.group(2).replace("%%", "%")
    return found
