"""`sdboot models add|list` (`sdboot ext` lives in ext_cmd.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sdboot.i18n import _, local, t

models_app = typer.Typer(help=_("Model files: put them in the right folder, list them with "
                         "their hashes."), no_args_is_help=True)
TYPES = "auto|checkpoint|vae|lora|embedding|hypernetwork"


def register(app: typer.Typer) -> None:
    from sdboot.cli import store_cmd  # noqa: F401  (adds `models store` to models_app)

    app.add_typer(models_app, name="models")


def _root(webui: Path | None) -> Path:
    from sdboot.errors import SdbootError
    from sdboot.webui.folder import is_webui

    root = (webui or Path.cwd()).expanduser().resolve()
    if not is_webui(root):
        raise SdbootError(t("{dir} is not a Stable Diffusion WebUI checkout", dir=root),
                          t("give --webui DIR, or run inside the WebUI folder"))
    return root


def _add_target(webui: Path | None) -> tuple[Path | None, Path]:
    """(the WebUI, where models go): the model store when one is set and the WebUI uses
    it (or no WebUI is given and none is here), else the WebUI's own folders."""
    from sdboot.webui.folder import is_webui
    from sdboot.webui.store import applies_to, read_store

    store = read_store()
    here = Path.cwd()
    if webui is None and store is not None and not is_webui(here):
        return None, store.path
    root = _root(webui)
    return root, (store.path if store is not None and applies_to(store, root) else root)


def _fetch_json(url: str, headers: dict[str, str]) -> Any:
    import json

    from sdboot.io.net import fetch_head

    res = fetch_head(url, 20.0, max_bytes=4 * 1024 * 1024, headers=headers)
    try:
        return json.loads(res.body) if res.ok else None
    except ValueError:
        return None


@models_app.command("add", help=_(
    "Put a model where the WebUI looks for it.\n"
    "\n"
    "The type comes from the file's header (safetensors tensor names; for .ckpt/.pt the\n"
    "names in the pickle, read without running it): checkpoint -> models/Stable-diffusion,\n"
    "VAE -> models/VAE, LoRA/LyCORIS -> models/Lora, embedding -> embeddings, hypernetwork\n"
    "-> models/hypernetworks. Downloads go through HF_ENDPOINT for Hugging Face, use\n"
    "CIVITAI_TOKEN for Civitai (never logged, never sent elsewhere), resume after a cut,\n"
    "and are checked against the sha256 (--sha256, Civitai's, or Hugging Face's).\n"
    "A file name from a URL or a server must be a plain name (else it is refused: give\n"
    "--name), and an existing file is never replaced without --force."))
def add(
    source: str = typer.Argument(..., metavar="PATH_OR_URL",
                                 help=_("A local file, a Hugging Face resolve URL, or a Civitai "
                                 "model URL.")),
    webui: Path | None = typer.Option(None, "--webui", metavar="DIR", help=_("The WebUI folder.")),
    kind: str = typer.Option("auto", "--type", metavar=TYPES,
                             help=_("What the file is (default: read from its header).")),
    sha256: str | None = typer.Option(None, "--sha256", metavar="HEX",
                                      help=_("Refuse the file unless it has this sha256.")),
    move: bool = typer.Option(False, "--move", help=_("Move a local file instead of copying.")),
    insecure: bool = typer.Option(False, "--insecure", help=_("Allow a plain-http URL.")),
    name: str | None = typer.Option(None, "--name", metavar="NAME",
                                    help=_("Save the model under this file name (a plain name, "
                                    "no folders) instead of the one from the URL or server.")),
    force: bool = typer.Option(False, "--force",
                               help=_("Replace a file of the same name in the target folder "
                               "(without it, an existing file is never overwritten).")),
) -> None:
    # no docstring: typer would show it untranslated (help= above)
    import re

    from sdboot.addons.models import ModelType, short_hash
    from sdboot.addons.placing import fetch, place, shown_path
    from sdboot.addons.sources import plan_source
    from sdboot.cli.common import console
    from sdboot.errors import SdbootError
    from sdboot.io.mask import mask
    from sdboot.mirrors.loading import is_loopback

    webui_root, root = _add_target(webui)
    wanted = None if kind == "auto" else kind
    if wanted is not None and wanted not in [t.value for t in ModelType if t.value != "unknown"]:
        raise SdbootError(t("unknown --type '{kind}'", kind=kind),
                          t("use one of {types}", types=TYPES))
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise SdbootError(t("--sha256 must be 64 hex digits"),
                          t("copy it from the model's page"))
    con = console()
    path = Path(source).expanduser()
    if path.exists():
        target, placed, notes = place(root, path, ModelType(wanted) if wanted else None,
                                      move, sha256, name=name, force=force)
    else:
        import os

        from sdboot.mirrors.loading import load_mirrors
        from sdboot.mirrors.status import webui_selection

        env = dict(os.environ)
        hf = webui_selection(webui_root, load_mirrors()).hf if webui_root else None
        if hf is not None and not env.get("HF_ENDPOINT"):  # the WebUI's own mirror
            env["HF_ENDPOINT"] = hf.url
        # a cn mirror for Hugging Face (the cn presets): a repo with a ModelScope twin
        # comes from ModelScope (docs/models.md)
        src = plan_source(source, env, fetch_json=_fetch_json, name=name,
                          prefer_modelscope=hf is not None and hf.region == "cn")
        if src.url.startswith("http://") and not is_loopback(src.url) and not insecure:
            raise SdbootError(t("{url} is plain http", url=mask(src.url)),
                              t("use https, or --insecure"))
        progress = _progress(con, src.name or src.fallback or "download")
        try:
            file, digest, resumed = fetch(root, src, sha256, progress.update)
        finally:
            progress.close()
        if resumed:
            con.print(_("the download broke off and was resumed {count} time(s)").format(
                count=resumed))
        target, placed, notes = place(root, file, ModelType(wanted) if wanted else None,
                                      move=True, force=force, downloaded=True)
        if digest:
            con.print(_("sha256 {digest} verified (short {short})").format(
                digest=digest, short=short_hash(digest)), highlight=False)
        else:
            notes.append(t("the source publishes no sha256 and none was given (--sha256): "
                           "the file is not verified"))
    for note in notes:
        con.print(_("note: {note}").format(note=mask(local(note))), style="yellow",
                  markup=False)
    con.print(f"{local(placed)}: {mask(shown_path(root, target))}", markup=False,
              highlight=False)


class _Plain:
    def update(self, done: int, total: int | None) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar:
    def __init__(self, con: Any, name: str) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress("[progress.description]{task.description}", BarColumn(),
                                 DownloadColumn(), TransferSpeedColumn(),
                                 TimeRemainingColumn(), console=con)
        self.task = self.progress.add_task(name, total=None)
        self.progress.start()

    def update(self, done: int, total: int | None) -> None:
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        self.progress.stop()


def _progress(con: Any, name: str) -> _Plain | _Bar:
    return _Bar(con, name) if con.is_terminal else _Plain()


@models_app.command("list", help=_(
    "Models with type, size, folder and the short hash the WebUI and Civitai show (the\n"
    "first 10 hex digits of the sha256; cached until the file changes)."))
def list_models_cmd(
    webui: Path | None = typer.Option(None, "--webui", metavar="DIR", help=_("The WebUI folder.")),
    no_hash: bool = typer.Option(False, "--no-hash", help=_("Skip the sha256 (fast).")),
    json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.models/1 JSON.")),
) -> None:
    # no docstring: typer would show it untranslated (help= above)
    from sdboot.addons.models import short_hash
    from sdboot.addons.placing import list_models
    from sdboot.cli.common import console, emit_json

    webui_root, target = _add_target(webui)
    entries = list_models(webui_root, hashes=not no_hash) if webui_root else []
    # the model store the WebUI uses (sdboot models store) is listed after its own folders
    stored = list_models(target, hashes=not no_hash) \
        if target != webui_root and target.is_dir() else []
    if json_out:
        emit_json({"schema": "sdboot.models/1", "webui": str(webui_root) if webui_root else None,
                   "models": [e.to_json() for e in entries],
                   "store": {"path": str(target), "models": [e.to_json() for e in stored]}
                   if target != webui_root else None})
        return
    con = console()
    if not entries and not stored:
        con.print(_("No model files (models/Stable-diffusion is empty)."))
    for e in entries + stored:
        if stored and e is stored[0]:
            con.print(_("Model store: {path}").format(path=target), markup=False,
                      highlight=False)
        size = f"{e.size / 1024**3:.2f} GB" if e.size >= 1024**3 else f"{e.size / 1024**2:.1f} MB"
        kind = "corrupt" if e.problem else str(e.type)
        con.print(f"{kind:<12} {size:>10}  {short_hash(e.sha256) if e.sha256 else '-':<10}"
                  f"  {e.path}" + (f"  ({local(e.problem)})" if e.problem else ""),
                  markup=False, highlight=False)

