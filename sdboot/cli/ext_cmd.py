"""`sdboot ext add|list|update|remove|disable|enable`: WebUI extensions, cloned and updated
through the WebUI's mirror, switched on and off in the WebUI's own config.json."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from sdboot.i18n import _, local, t

ext_app = typer.Typer(help=_(
    "WebUI extensions: clone, list, update, remove, and switch them off and on.\n"
    "\n"
    "Clones and updates go through the WebUI's GitHub mirror (the one sdboot install or\n"
    "sdboot mirror apply chose) by process-scoped git rules: each clone's origin stays the\n"
    "upstream URL. disable/enable edit the WebUI's own list in config.json, the same list\n"
    "its Extensions tab writes."), no_args_is_help=True)

WEBUI = typer.Option(None, "--webui", metavar="DIR",
                     help=_("The WebUI folder (default: the current folder when it holds a "
                            "WebUI, else the last install sdboot made)."))


def register(app: typer.Typer) -> None:
    app.add_typer(ext_app, name="ext")


def webui_root(webui: Path | None) -> Path:
    """--webui DIR, else the current folder when it is a WebUI, else the newest install in
    sdboot's list of installs whose folder is still there."""
    from sdboot.errors import SdbootError
    from sdboot.install.registry import default_install
    from sdboot.webui.folder import is_webui

    root = (webui or Path.cwd()).expanduser().resolve()
    if webui is None and not is_webui(root) and (default := default_install()):
        root = default
        _print(True, _("using {dir} (the last install in sdboot list; --webui DIR chooses "
                       "another)").format(dir=root))
    if not is_webui(root):
        raise SdbootError(t("{dir} is not a Stable Diffusion WebUI checkout", dir=root),
                          t("give --webui DIR, or run inside the WebUI folder"))
    return root


def _print(json_out: bool, text: str) -> None:
    from sdboot.cli.common import console

    console(json_out).print(text, markup=False, highlight=False)


@ext_app.command("add", help=_(
    "Clone an extension into extensions/, through the WebUI's mirror (env mode). The\n"
    "folder name comes from the URL and must be a plain name; a credential in the URL is\n"
    "never printed."))
def ext_add(
    what: str = typer.Argument(..., metavar="URL_OR_NAME",
                               help=_("A git URL, or a known name (zh-cn, controlnet).")),
    webui: Path | None = WEBUI,
) -> None:
    # no docstring: typer would show it untranslated (help= above)
    from sdboot.addons.extensions import add_extension
    from sdboot.io.mask import mask

    root = webui_root(webui)
    path, url = add_extension(root, what)
    _print(False, _("cloned {url} into {path}; restart the WebUI to load it").format(
        url=mask(url), path=path.relative_to(root.resolve())))


def _check_text(row: Any) -> str:
    check = row.check
    if check is None:
        return ""
    if check.error:
        return "  " + _("(not checked: {error})").format(error=local(check.error))
    if check.waiting:
        return "  " + _("update waiting: {n} new commit(s)").format(n=check.behind)
    return "  " + _("up to date")


@ext_app.command("list", help=_(
    "Installed extensions: commit, branch, origin, and whether the WebUI loads them.\n"
    "\n"
    "Offline and fast by default. --check also fetches each clone's upstream through the\n"
    "mirror (network) and says whether an update is waiting."))
def ext_list(
    webui: Path | None = WEBUI,
    check: bool = typer.Option(False, "--check",
                               help=_("Fetch through the mirror and show waiting updates.")),
    json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.ext-list/1 JSON.")),
) -> None:
    from sdboot.addons.ext_config import read_config
    from sdboot.addons.ext_state import describe_extensions
    from sdboot.cli.common import console, emit_json
    from sdboot.cli.terminal import busy
    from sdboot.errors import SdbootError

    root = webui_root(webui)
    try:
        disable_all: str | None = read_config(root).disable_all
    except SdbootError as exc:
        disable_all = None
        _print(json_out, _("warning: {error}").format(error=local(exc.message)))
    with busy(console() if check and not json_out else None,
              _("fetching each extension's upstream through the mirror")):
        rows = describe_extensions(root, check=check)
    if json_out:
        emit_json({"schema": "sdboot.ext-list/1", "webui": str(root),
                   "disable_all_extensions": disable_all,
                   "extensions": [r.to_json() for r in rows]})
        return
    if not rows:
        _print(False, _("No extensions."))
    if disable_all in ("extra", "all"):
        _print(False, _("note: config.json sets disable_all_extensions={value}: the WebUI "
                        "loads none of these").format(value=disable_all))
    for r in rows:
        state = {True: "", False: "  " + _("(disabled)"), None: ""}[r.enabled]
        _print(False, f"{r.name:<40} {r.commit[:10] if r.commit else '-':<10}  "
               f"{r.branch or '-':<10}  {r.origin or _('(not a git clone)')}{state}"
               f"{_check_text(r)}")


@ext_app.command("update", help=_(
    "Update extensions to their upstream's newest commit, through the mirror.\n"
    "\n"
    "Only fast-forwards: a clone with commits of its own, local edits in the way, or no\n"
    "upstream branch (pinned at a commit) is reported and left as it was. Exit 1 when one\n"
    "failed."))
def ext_update(
    name: str | None = typer.Argument(None, metavar="NAME",
                                      help=_("The extension's folder name in extensions/.")),
    all_: bool = typer.Option(False, "--all", help=_("Update every extension.")),
    webui: Path | None = WEBUI,
    json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.ext-update/1 JSON.")),
) -> None:
    from sdboot.addons.extensions import update_extensions
    from sdboot.cli.common import emit_json
    from sdboot.errors import SdbootError

    if (name is None) == (not all_):
        raise SdbootError(t("give one extension NAME or --all"),
                          t("see the names with: sdboot ext list"))
    root = webui_root(webui)
    results = update_extensions(root, [name] if name else None)
    if json_out:
        emit_json({"schema": "sdboot.ext-update/1", "webui": str(root),
                   "results": [{"name": r.name, "status": r.status, "before": r.before,
                                "after": r.after, "message": r.message} for r in results]})
    else:
        words = {"updated": _("updated"), "current": _("up to date"), "failed": _("FAILED"),
                 "skipped": _("skipped")}
        for r in results:
            moved = f" {(r.before or '')[:10]} -> {(r.after or '')[:10]}" \
                if r.status == "updated" else ""
            _print(False, f"{r.name:<40} {words[r.status]}{moved}"
                   + (f"  ({local(r.message)})" if r.message else ""))
        if not results:
            _print(False, _("No extensions."))
        elif any(r.status == "updated" for r in results):
            _print(False, _("restart the WebUI to load the new code"))
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


@ext_app.command("remove", help=_(
    "Delete an extension's folder from extensions/ (asks first on a terminal).\n"
    "\n"
    "Files inside it go too (some extensions keep models there, e.g. ControlNet's\n"
    "models/): the question says how much. config.json is left as it is."))
def ext_remove(
    name: str = typer.Argument(..., metavar="NAME",
                               help=_("The extension's folder name in extensions/.")),
    webui: Path | None = WEBUI,
    yes: bool = typer.Option(False, "--yes", "-y", help=_("Do not ask.")),
    json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.ext-remove/1 JSON.")),
) -> None:
    from sdboot.addons.ext_state import find_extension
    from sdboot.addons.extensions import remove_extension
    from sdboot.cli.common import emit_json
    from sdboot.install.registry import human_size, tree_size

    root = webui_root(webui)
    path = find_extension(root, name)
    size = tree_size(path)
    confirm(yes, _("Delete {path} ({size})?").format(path=path, size=human_size(size)),
            json_out)
    remove_extension(root, name)
    if json_out:
        emit_json({"schema": "sdboot.ext-remove/1", "webui": str(root), "name": name,
                   "path": str(path), "bytes": size})
    else:
        _print(False, _("removed {path} ({size}); restart the WebUI").format(
            path=path, size=human_size(size)))


def can_ask(yes: bool) -> None:
    """Without a terminal to ask on, --yes is needed: nothing is deleted unasked (exit 2,
    before anything is shown as being removed)."""
    from sdboot.errors import SdbootError

    if not yes and not sys.stdin.isatty():
        raise SdbootError(t("this deletes files and needs confirmation"),
                          t("add --yes to go ahead without being asked"))


def confirm(yes: bool, question: str, json_out: bool) -> None:
    """Ask on a terminal (the default answer is no); --yes skips the question."""
    can_ask(yes)
    if not yes and not typer.confirm(question, default=False, err=json_out):
        raise typer.Exit(1)


def _switch(name: str, webui: Path | None, json_out: bool, enabled: bool) -> None:
    from sdboot.addons.extensions import set_enabled
    from sdboot.cli.common import emit_json

    root = webui_root(webui)
    changed, backup, disable_all = set_enabled(root, name, enabled)
    if json_out:
        emit_json({"schema": "sdboot.ext-state/1", "webui": str(root), "name": name,
                   "enabled": enabled, "changed": changed,
                   "backup": str(backup) if backup else None,
                   "disable_all_extensions": disable_all})
        return
    if not changed:
        _print(False, (_("{name} is already enabled") if enabled else
                       _("{name} is already disabled")).format(name=name))
    else:
        _print(False, (_("enabled {name} in config.json") if enabled else
                       _("disabled {name} in config.json")).format(name=name)
               + (" " + _("(previous file: {backup})").format(backup=backup.name)
                  if backup else ""))
        _print(False, _("restart the WebUI; a WebUI that is running now writes its own list "
                        "back when its settings are saved"))
    if disable_all != "none":
        _print(False, _("note: config.json sets disable_all_extensions={value}: the WebUI "
                        "loads none of these").format(value=disable_all))


@ext_app.command("disable", help=_(
    "Switch an extension off: add it to the WebUI's disabled list in config.json.\n"
    "\n"
    "The folder stays; 'sdboot ext enable NAME' switches it on again. Built-in extensions\n"
    "(extensions-builtin/) can be switched off too."))
def ext_disable(
    name: str = typer.Argument(..., metavar="NAME", help=_("The extension's folder name.")),
    webui: Path | None = WEBUI,
    json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.ext-state/1 JSON.")),
) -> None:
    _switch(name, webui, json_out, enabled=False)


@ext_app.command("enable", help=_(
    "Switch an extension on again: take it out of the WebUI's disabled list in config.json."))
def ext_enable(
    name: str = typer.Argument(..., metavar="NAME", help=_("The extension's folder name.")),
    webui: Path | None = WEBUI,
    json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.ext-state/1 JSON.")),
) -> None:
    _switch(name, webui, json_out, enabled=True)
