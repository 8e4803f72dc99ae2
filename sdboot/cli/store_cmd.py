"""`sdboot models store`: one model store for every WebUI sdboot manages (the store itself:
sdboot/webui/store.py; moving files into it: sdboot/addons/store_files.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sdboot.cli.models_cmd import _root, models_app
from sdboot.i18n import _, local, t


@models_app.command("store", help=_(
    "One model store for every WebUI sdboot manages.\n"
    "\n"
    "DIR gets an AUTOMATIC1111 home's model folders (models/Stable-diffusion, models/VAE,\n"
    "models/Lora, models/hypernetworks, models/ControlNet, embeddings); folders already\n"
    "there are used as they are, so an A1111 folder can be the store. Every install sdboot\n"
    "made (sdboot list) gets the WebUI's own flags for them (--ckpt-dir, --lora-dir, ...;\n"
    "Forge, reForge and Neo also --forge-ref-a1111-home) in its webui-user block and from\n"
    "sdboot launch; `models add` puts models into the store. Your model files are never\n"
    "moved unless you ask with --move (the plan is shown first). Without DIR: show it."))
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
    for root in _registered(roots):  # the other installs of `sdboot list`: never --move
        doc["webuis"].append(_apply_to(con, root, path, store_args(root), False, yes,
                                       json_out, sys.stdin.isatty()))
    if json_out:
        emit_json(doc)


def _registered(given: list[Path]) -> list[Path]:
    """The installs sdboot made (`sdboot list`) that still hold a WebUI, beyond `given`."""
    from sdboot.install.registry import read_registry
    from sdboot.webui.folder import is_webui

    found: list[Path] = []
    for entry in read_registry()[0]:
        root = Path(entry["path"])
        if is_webui(root) and root.resolve() not in given and root.resolve() not in found:
            found.append(root.resolve())
    return found


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
