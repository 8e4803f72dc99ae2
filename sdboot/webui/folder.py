"""Facts about a WebUI folder: which WebUI it is (AUTOMATIC1111, Forge, reForge, Neo),
its version (git tag, else CHANGELOG.md) and the torch stack its launch file pins.
parse_* functions are pure; detect_webui() reads the folder and asks git through the runner."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.runner import Runner, which
from sdboot.values import TorchPins, WebuiFacts

GIT_TIMEOUT_S = 10.0

_ENV_DEFAULT = r"""environ\.get\(\s*['"]{name}['"]\s*,\s*f?(['"])(?P<value>.*?)\1"""


def launch_file(root: Path) -> Path | None:
    """The file that holds the bootstrap code: modules/launch_utils.py from v1.3 (and in
    Forge), launch.py before."""
    for rel in ("modules/launch_utils.py", "launch.py"):
        if (root / rel).is_file():
            return root / rel
    return None


def is_webui(root: Path) -> bool:
    return (root / "launch.py").is_file() and (
        (root / "modules").is_dir() or (root / "webui.py").is_file())


def _env_default(text: str, name: str) -> str | None:
    match = re.search(_ENV_DEFAULT.format(name=re.escape(name)), text)
    return match.group("value") if match else None


def parse_env_defaults(text: str) -> dict[str, str]:
    """Every `os.environ.get('NAME', "literal default")` of a launch file, in file order; the
    first default of a name wins (the CUDA TORCH_COMMAND comes before the Intel/macOS ones).
    f-string defaults are left out: their value is only known at run time."""
    try:
        tree = ast.parse(text.removeprefix("\ufeff"))
    except SyntaxError:
        return {}
    found: list[tuple[int, int, str, str]] = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get" and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "environ" and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)):
            found.append((node.lineno, node.col_offset, node.args[0].value, node.args[1].value))
    defaults: dict[str, str] = {}
    for _, _, name, value in sorted(found):
        defaults.setdefault(name, value)
    return defaults


def parse_launch_pins(text: str) -> TorchPins:
    """The defaults of TORCH_COMMAND, TORCH_INDEX_URL and XFORMERS_PACKAGE. The first
    TORCH_COMMAND is the CUDA path; later ones are the Intel/macOS branches."""
    command = _env_default(text, "TORCH_COMMAND") or ""
    torch = re.search(r"\btorch==([\w.+]+)", command)
    vision = re.search(r"\btorchvision==([\w.+]+)", command)
    index = re.search(r"--(?:extra-)?index-url[ =](\S+)", command)
    index_url = index.group(1) if index else None
    if index_url and "{" in index_url:  # f"... --extra-index-url {torch_index_url}"
        index_url = _env_default(text, "TORCH_INDEX_URL")
    xformers_pkg = _env_default(text, "XFORMERS_PACKAGE") or ""
    xformers = re.search(r"xformers==([\w.+]+)", xformers_pkg)
    return TorchPins(
        torch=torch.group(1) if torch else None,
        torchvision=vision.group(1) if vision else None,
        xformers=xformers.group(1) if xformers else None,
        index_url=index_url,
    )


def parse_webui_version(text: str) -> WebuiFacts:
    """`--webui-version`: 1.10.1, v1.10.1, 1.0.0-pre, forge, dev."""
    value = text.strip()
    lowered = value.lower()
    if lowered in ("forge", "reforge", "neo", "dev", "a1111-dev"):
        flavor = "a1111-dev" if lowered in ("dev", "a1111-dev") else lowered
        return WebuiFacts(None, flavor, None, "given")
    version = lowered.removeprefix("v")
    try:
        Version(version)
    except InvalidVersion:
        raise SdbootError(
            t("'{text}' is not a WebUI version", text=text),
            t("use a release such as 1.10.1 or 1.0.0-pre, or 'forge' or 'dev'")) from None
    return WebuiFacts(None, "a1111", version, "given")


def parse_changelog_version(text: str) -> str | None:
    match = re.search(r"^##\s*v?(\d+\.\d+\.\d+[\w.-]*)", text, re.MULTILINE)
    return match.group(1) if match else None


def parse_git_describe(text: str) -> tuple[str | None, bool]:
    """`git describe --tags` -> (version, exact). v1.10.1-12-gabc -> ("1.10.1", False)."""
    match = re.fullmatch(r"v?(\d+\.\d+\.\d+(?:-(?:pre|RC))?)(-\d+-g[0-9a-f]+)?", text.strip())
    if not match:
        return None, False
    return match.group(1), match.group(2) is None


# Which of Forge's kin a checkout with modules_forge/ is, by the GitHub path of its origin
# (sdboot's clones keep the upstream there): the repositories of webuis.yaml.
FORGE_KIN = {
    "lllyasviel/stable-diffusion-webui-forge": "forge",
    "panchovix/stable-diffusion-webui-reforge": "reforge",
    "haoming02/sd-webui-forge-classic": "forge",  # its classic branch; neo: see parse_flavor
}
# Neo clones no repository: its launch file keeps git_clone only to refuse being called
_NO_CLONES = re.compile(r"def git_clone\([^)]*\)[^:]*:\s*\n\s+raise NotImplementedError")
_ORIGIN = re.compile(r'^\s*\[remote "origin"\]\s*$((?:\n(?!\s*\[).*)*)', re.MULTILINE)


def origin_url(root: Path) -> str | None:
    """The origin URL from .git/config, or a bare repository's config (read, not asked: no
    git process), or None."""
    config = root / ".git" / "config"
    try:
        text = (config if config.is_file() else root / "config").read_text(
            encoding="utf-8", errors="replace")
    except OSError:
        return None
    section = _ORIGIN.search(text)
    url = re.search(r"^\s*url\s*=\s*(\S+)", section.group(1), re.MULTILINE) if section \
        else None
    return url.group(1) if url else None


def parse_flavor(has_modules_forge: bool, origin: str | None, launch_text: str) -> str:
    """a1111, or Forge's kin: forge, reforge (Panchovix), neo (Haoming02's neo branch, the
    one whose launch file clones nothing). Pure."""
    if not has_modules_forge:
        return "a1111"
    if _NO_CLONES.search(launch_text.replace("\r\n", "\n")):
        return "neo"
    path = re.sub(r"^.*github\.com[/:]", "", origin or "").removesuffix("/")
    return FORGE_KIN.get(path.removesuffix(".git").lower(), "forge")


def detect_webui(root: Path, runner: Runner | None = None) -> WebuiFacts:
    """Read a WebUI folder. Raises SdbootError (exit 2) when it is not one."""
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise SdbootError(t("{dir} is not a directory", dir=root),
                          t("give the path of a WebUI checkout"))
    if not is_webui(root):
        raise SdbootError(t("{dir} is not a Stable Diffusion WebUI checkout (no launch.py)",
                            dir=root),
                          t("give the folder that holds launch.py and webui.py"))
    lf = launch_file(root)
    pins = TorchPins()
    text = lf.read_text(encoding="utf-8", errors="replace") if lf is not None else ""
    if lf is not None:
        pins = parse_launch_pins(text)
    flavor = parse_flavor((root / "modules_forge").is_dir(), origin_url(root), text)
    version, source = None, "none"
    git = which("git")
    if git and (root / ".git").exists():
        res = (runner or Runner()).run([git, "-C", str(root), "describe", "--tags"],
                                       timeout=GIT_TIMEOUT_S)
        if res.ok:
            version, exact = parse_git_describe(res.stdout)
            source = ("git-tag" if exact else "git-describe") if version else "none"
    if version is None and (root / "CHANGELOG.md").is_file():
        version = parse_changelog_version(
            (root / "CHANGELOG.md").read_text(encoding="utf-8", errors="replace")[:4000])
        source = "changelog" if version else "none"
    return WebuiFacts(str(root), flavor, version, source, pins,
                      str(lf.relative_to(root)) if lf else None)


# --- what the launch file clones and installs (pure) -----------------------------------------

# The repositories/ folder of each *_REPO the WebUI clones (A1111 v1.x, Forge), for launch
# files whose git_clone calls cannot be read: folder -> (repo variable, commit variable).
KNOWN_CLONES = {
    "stable-diffusion-stability-ai": ("STABLE_DIFFUSION_REPO", "STABLE_DIFFUSION_COMMIT_HASH"),
    "generative-models": ("STABLE_DIFFUSION_XL_REPO", "STABLE_DIFFUSION_XL_COMMIT_HASH"),
    "k-diffusion": ("K_DIFFUSION_REPO", "K_DIFFUSION_COMMIT_HASH"),
    "BLIP": ("BLIP_REPO", "BLIP_COMMIT_HASH"),
    "stable-diffusion-webui-assets": ("ASSETS_REPO", "ASSETS_COMMIT_HASH"),
    "CodeFormer": ("CODEFORMER_REPO", "CODEFORMER_COMMIT_HASH"),
    "taming-transformers": ("TAMING_TRANSFORMERS_REPO", "TAMING_TRANSFORMERS_COMMIT_HASH"),
    "huggingface_guess": ("HUGGINGFACE_GUESS_REPO", "HUGGINGFACE_GUESS_HASH"),
}


@dataclass(frozen=True)
class ClonePin:
    """One repository the launch file clones into repositories/<folder>."""

    folder: str
    repo_var: str
    commit_var: str | None


def _environ_names(tree: ast.AST) -> dict[str, str]:
    """Local names assigned from `os.environ.get('NAME', ...)`: variable -> NAME."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "get"
                and node.value.args and isinstance(node.value.args[0], ast.Constant)
                and isinstance(node.value.args[0].value, str)):
            names.setdefault(node.targets[0].id, node.value.args[0].value)
    return names


def parse_clone_pins(text: str) -> list[ClonePin]:
    """The launch file's `git_clone(repo_var, repo_dir('folder'), name, commit_var)` calls,
    else the folders of KNOWN_CLONES whose repo variable the file reads."""
    try:
        tree = ast.parse(text.removeprefix("\ufeff"))
    except SyntaxError:
        return []
    names = _environ_names(tree)
    pins: dict[str, ClonePin] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "git_clone" and len(node.args) >= 2):
            continue
        repo, where = node.args[0], node.args[1]
        if not (isinstance(repo, ast.Name) and repo.id in names and isinstance(where, ast.Call)
                and where.args and isinstance(where.args[0], ast.Constant)
                and isinstance(where.args[0].value, str)):
            continue
        commit = node.args[3] if len(node.args) >= 4 else None
        commit_var = names.get(commit.id) if isinstance(commit, ast.Name) else None
        pins.setdefault(where.args[0].value, ClonePin(where.args[0].value, names[repo.id],
                                                      commit_var))
    if not pins:
        read = set(names.values())
        for folder, (repo_var, commit_var) in KNOWN_CLONES.items():
            if repo_var in read:
                pins[folder] = ClonePin(folder, repo_var,
                                        commit_var if commit_var in read else None)
    return list(pins.values())


def parse_requirements(text: str) -> list[tuple[str, str, str]]:
    """A requirements file's plain entries: (canonical name, specifier, line). Options
    (-r, --index-url), URLs, editable entries and entries with markers are left out: their
    meaning depends on more than this file."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    out: list[tuple[str, str, str]] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.url or req.marker:
            continue
        out.append((str(canonicalize_name(req.name)), str(req.specifier), line))
    return out


_SH_VAR = re.compile(r"^\s*export\s+(\w+)=(.*)$")
_BAT_VAR = re.compile(r'^\s*set\s+"?(\w+)=(.*?)"?\s*$', re.IGNORECASE)


def read_user_vars(root: Path) -> dict[str, str]:
    """The variables webui-user.sh exports and webui-user.bat sets (uncommented, non-empty;
    sdboot's managed blocks included). .sh wins where both set one."""
    import shlex

    found: dict[str, str] = {}
    for name, pattern in (("webui-user.bat", _BAT_VAR), ("webui-user.sh", _SH_VAR)):
        path = root / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = pattern.match(line)
            if not match:
                continue
            value = match.group(2).strip()
            if name.endswith(".sh"):
                try:
                    parts = shlex.split(value)
                except ValueError:
                    continue
                value = parts[0] if parts else ""
            else:
                value = value.replace("%%", "%")
            if value:
                found[match.group(1)] = value
    return found
