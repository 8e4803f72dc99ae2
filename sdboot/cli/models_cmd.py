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

    root = _root(webui)
    entries = list_models(root, hashes=not no_hash)
    if json_out:
        emit_json({"schema": "sdboot.models/1", "webui": str(root),
                   "models": [e.to_json() for e in entries]})
        return
    con = console()
    if not entries:
        con.print(_("No model files (models/Stable-diffusion is empty)."))
    for e in entries:
        size = f"{e.size / 1024**3:.2f} GB" if e.size >= 1024**3 else f"{e.size / 1024**2:.1f} MB"
        kind = "corrupt" if e.problem else str(e.type)
        con.print(f"{kind:<12} {size:>10}  {short_hash(e.sha256) if e.sha256 else '-':<10}"
                  f"  {e.path}" + (f"  ({local(e.problem)})" if e.problem else ""),
                  markup=False, highlight=False)


@models_app.command("store", help=_(
    "One model store for every WebUI sdboot manages.\n"
    "\n"
    "DIR gets an AUTOMATIC1111 home's model folders (models/Stable-diffusion, models/VAE,\n"
    "models/Lora, models/hypernetworks, models/ControlNet, embeddings); folders already\n"
    "there are used as they are, so an A1111 folder can be the store. Every install sdboot\n"
    "makes then gets the WebUI's own flags for them (--ckpt-dir, --lora-dir, ...; Forge,\n"
    "reForge and Neo also --forge-ref-a1111-home) in its webui-user block and from sdboot\n"
    "launch; `models add` puts models into the store. Your model files are never moved\n"
    "unless you ask with --move (the plan is shown first). Without DIR: show the store."))
def store_cmd(
    directory: Path | None = typer.Argument(None, metavar="[DIR]",
                                            help=_("The store folder (made if missing).")),
    webuis: list[Path] = typer.Option([], "--webui", metavar="DIR", help=_(
        "A WebUI folder to use the store now (repeatable); installs made later use it "
        "anyway.")),
    move: bool = typer.Option(False, "--move", help=_(
        "Move the model files of the --webui folders into the store (a file of the same "
        "name there is never replaced); the plan is shown and asked first.")),
    yes: bool = typer.Option(False, "--yes", "-y", help=_("Do not ask before moving.")),
    json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.models-store/1 JSON.")),
) -> None:
    # no docstring: typer would show it untranslated (help= above)
    import os
    import sys

    from sdboot.cli.common import console, emit_json
    from sdboot.errors import SdbootError
    from sdboot.webui.store import (
        Store,
        missing_folders,
        read_store,
        store_args,
        store_file,
        write_store,
    )

    con = console(json_out)
    current = read_store()
    if directory is None:
        if webuis or move:
            raise SdbootError(t("--webui and --move need the store folder"),
                              t("give it: sdboot models store DIR --webui WEBUI_DIR"))
        _show_store(con, current, json_out)
        return
    path = directory.expanduser().resolve()
    if os.path.lexists(path) and not path.is_dir():
        raise SdbootError(t("{path} is not a folder", path=path),
                          t("give a folder for the model store (it is made if missing)"))
    roots = [_root(w) for w in webuis]  # every --webui is checked before anything changes
    made = missing_folders(path)
    try:
        for folder in made:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SdbootError(t("cannot create {path}: {reason}", path=path,
                            reason=exc.strerror or exc),
                          t("choose a folder you can write to"), exit_code=1) from None
    known = list(current.webuis) if current is not None else []
    known += [str(r) for r in roots if str(r) not in known]
    store = Store(path, tuple(known))
    write_store(store)
    doc: dict[str, Any] = {"schema": "sdboot.models-store/1", "store": str(path),
                           "config": str(store_file()),
                           "created": [str(f) for f in made], "webuis": []}
    con.print(_("Model store: {path} ({made} folder(s) made, the others used as they "
                "are)").format(path=path, made=len(made)), markup=False, highlight=False)
    for root in roots:
        doc["webuis"].append(_apply_to(con, root, path, store_args(root), move, yes,
                                       json_out, sys.stdin.isatty()))
    if json_out:
        emit_json(doc)


def _apply_to(con: Any, root: Path, store: Path, flags: list[str], move: bool, yes: bool,
              json_out: bool, tty: bool) -> dict[str, Any]:
    """The store for one WebUI: its webui-user block (an install sdboot made), the files
    it keeps in its own folders, and moving them when asked."""
    from sdboot.addons.store_files import plan_moves, run_moves
    from sdboot.errors import SdbootError
    from sdboot.install.steps.webui_user import apply_store
    from sdboot.webui.record import record_path

    out: dict[str, Any] = {"webui": str(root), "flags": flags, "webui_user": "unchanged",
                           "moved": [], "kept": []}
    if record_path(root).is_file():
        changed, notes = apply_store(root)
        out["webui_user"] = "written" if changed else "unchanged"
        for note in notes:
            con.print(_("note: {note}").format(note=local(note)), style="yellow", markup=False)
        con.print(_("{dir}: {flags}").format(dir=root, flags=" ".join(flags)), markup=False,
                  highlight=False)
    else:
        out["webui_user"] = "not-managed"
        con.print(_("{dir} was not installed by sdboot: `sdboot launch` passes the store's "
                    "flags; for its own scripts add them to COMMANDLINE_ARGS in "
                    "webui-user: {flags}").format(dir=root, flags=" ".join(flags)),
                  markup=False, highlight=False)
    moves = plan_moves(root, store)
    out["kept"] = [m.to_json() for m in moves]
    if not moves:
        return out
    if not move:
        con.print(_("{count} model file(s) stay in {dir}'s own folders (the WebUI may no "
                    "longer list them: LoRA, VAE and embeddings come from the store only); "
                    "--move moves them into the store, after showing the plan").format(
                        count=len(moves), dir=root), style="yellow", markup=False)
        return out
    for m in moves:
        con.print(_("  {src} -> {dst}").format(src=m.src, dst=m.dst) if not m.clash else
                  _("  {src} stays: {dst} is already in the store").format(src=m.src,
                                                                           dst=m.dst),
                  markup=False, highlight=False)
    todo = [m for m in moves if not m.clash]
    if todo and not yes:
        if not tty or json_out:
            raise SdbootError(t("{count} file(s) to move: nothing was moved",
                                count=len(todo)),
                              t("add --yes to move them as shown"), exit_code=1)
        if not typer.confirm(_("Move {count} file(s) into the store?").format(
                count=len(todo)), default=False):
            con.print(_("Nothing was moved."))
            return out
    done = run_moves(store, todo)
    out["moved"] = [m.to_json() for m in done]
    out["kept"] = [m.to_json() for m in moves if m not in done]
    con.print(_("{count} file(s) moved into the store").format(count=len(done)))
    return out


def _show_store(con: Any, store: Any, json_out: bool) -> None:
    import os

    from sdboot.cli.common import emit_json
    from sdboot.webui.store import LAYOUT

    if store is None:
        if json_out:
            emit_json({"schema": "sdboot.models-store/1", "store": None})
        else:
            con.print(_("No model store (sdboot models store DIR makes one)."))
        return
    folders = {kind: {"path": str(store.folder(kind)), "exists": store.folder(kind).is_dir(),
                      "writable": os.access(store.folder(kind), os.W_OK)} for kind in LAYOUT}
    if json_out:
        emit_json({"schema": "sdboot.models-store/1", "store": str(store.path),
                   "folders": folders, "webuis": list(store.webuis)})
        return
    con.print(_("Model store: {path}").format(path=store.path), markup=False, highlight=False)
    for kind, info in folders.items():
        state = _("ok") if info["exists"] and info["writable"] else \
            (_("not writable") if info["exists"] else _("missing"))
        con.print(f"  {kind:<13} {info['path']}  ({state})", markup=False, highlight=False)
