"""The model store: one folder of models that every WebUI sdboot manages uses, through each
WebUI's own model-folder flags (--ckpt-dir, --lora-dir, ...), never by moving files. It has
an AUTOMATIC1111 home's layout, so an A1111 folder can be the store as it is and Forge's
--forge-ref-a1111-home reads it. Where it is lives in the user config
($SDBOOT_CONFIG_DIR/store.json); `store_flags` is pure, `store_args` reads the folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.io.datafile import config_dir
from sdboot.io.files import atomic_write

SCHEMA = "sdboot.store/1"
STORE_FILE = "store.json"
# kind -> (folder inside the store, the WebUI flag that points at it)
LAYOUT = {
    "checkpoint": ("models/Stable-diffusion", "--ckpt-dir"),
    "vae": ("models/VAE", "--vae-dir"),
    "lora": ("models/Lora", "--lora-dir"),
    "embedding": ("embeddings", "--embeddings-dir"),
    "hypernetwork": ("models/hypernetworks", "--hypernetwork-dir"),
    "controlnet": ("models/ControlNet", "--controlnet-dir"),
}
_FORGE = ("checkpoint", "vae", "lora", "embedding", "hypernetwork", "controlnet")
# The flags each WebUI knows (its modules/cmd_args.py and built-in extensions' preload.py):
# an unknown flag stops A1111 at start (since v1.1), so only these are given. A1111 knows
# --controlnet-dir only with the sd-webui-controlnet extension; Neo removed hypernetworks.
KINDS = {
    "a1111": ("checkpoint", "vae", "lora", "embedding", "hypernetwork"),
    "forge": _FORGE, "reforge": _FORGE,
    "neo": ("checkpoint", "vae", "lora", "embedding", "controlnet"),
}
# Forge's kin also read the rest of an A1111 home (ControlNet preprocessors, text encoders)
# from --forge-ref-a1111-home; the explicit flags above win over it (their launch.py).
REF_HOME = ("forge", "reforge", "neo")


@dataclass(frozen=True)
class Store:
    path: Path
    webuis: tuple[str, ...] = ()  # WebUI folders it was applied to (beyond sdboot's installs)

    def folder(self, kind: str) -> Path:
        return self.path / LAYOUT[kind][0]


def store_file() -> Path:
    return config_dir() / STORE_FILE


def read_store() -> Store | None:
    """The configured store, None when there is none. A file that is not sdboot's store
    record is bad input (exit 2), naming the file."""
    path = store_file()
    if not os.path.lexists(path):
        return None
    try:
        doc = json.loads(path.read_bytes()[:1024 * 1024])
    except (OSError, ValueError) as exc:
        raise SdbootError(t("{path} cannot be read: {error}", path=path, error=exc),
                          t("fix or remove it, then run sdboot models store DIR")) from None
    webuis = doc.get("webuis", []) if isinstance(doc, dict) else None
    if not (isinstance(doc, dict) and doc.get("schema") == SCHEMA
            and isinstance(doc.get("path"), str) and Path(doc["path"]).is_absolute()
            and isinstance(webuis, list) and all(isinstance(w, str) for w in webuis)):
        raise SdbootError(t("{path} is not an sdboot model store record", path=path),
                          t("fix or remove it, then run sdboot models store DIR"))
    return Store(Path(doc["path"]), tuple(webuis))


def write_store(store: Store) -> Path:
    path = store_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps({"schema": SCHEMA, "path": str(store.path),
                                    "webuis": list(store.webuis)}, indent=2) + "\n").encode(),
                 root=path.parent)
    return path


def missing_folders(path: Path) -> list[Path]:
    """The store's folders that are not there yet (a folder that is there is adopted)."""
    return [path / rel for rel, _flag in LAYOUT.values() if not (path / rel).is_dir()]


def store_flags(store: Path, flavor: str, controlnet_extension: bool = False) -> list[str]:
    """The WebUI's flags that point it at the store. Pure."""
    kinds = list(KINDS.get(flavor.split("-")[0], KINDS["a1111"]))
    if controlnet_extension and "controlnet" not in kinds:
        kinds.append("controlnet")
    args: list[str] = []
    for kind in kinds:
        rel, flag = LAYOUT[kind]
        args += [flag, str(store / rel)]
    if flavor in REF_HOME:
        args += ["--forge-ref-a1111-home", str(store)]
    return args


def applies_to(store: Store, root: Path) -> bool:
    """Every install sdboot made (its record), and the folders it was applied to."""
    from sdboot.webui.record import record_path

    return record_path(root).is_file() or str(root.resolve()) in store.webuis


def webui_flavor(root: Path) -> str:
    """Which WebUI a folder holds, from its files alone (no git process)."""
    from sdboot.webui.folder import launch_file, origin_url, parse_flavor

    lf = launch_file(root)
    text = lf.read_text(encoding="utf-8", errors="replace") if lf else ""
    return parse_flavor((root / "modules_forge").is_dir(), origin_url(root), text)


def store_args(root: Path) -> list[str]:
    """The store's flags for the WebUI at root, [] when no store applies to it."""
    store = read_store()
    if store is None or not applies_to(store, root):
        return []
    extensions = root / "extensions"
    controlnet = extensions.is_dir() and any(
        p.name.lower().startswith("sd-webui-controlnet") for p in extensions.iterdir())
    return store_flags(store.path, webui_flavor(root), controlnet)
