"""`sdboot list` and `sdboot uninstall`: the installs sdboot knows, and taking one away."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sdboot.i18n import _, local

if TYPE_CHECKING:
    from rich.console import Console

    from sdboot.install.registry import InstallRow
    from sdboot.install.uninstall import UninstallPlan


def register(app: typer.Typer) -> None:
    app.command("list", help=_(
        "The WebUI installs sdboot made: folder, WebUI and version, profile, the last\n"
        "verify verdict, and sizes (the whole folder, its environment, its models).\n"
        "\n"
        "The list is kept in installs.json in sdboot's config folder (SDBOOT_CONFIG_DIR),\n"
        "written when an install completes. A folder that is gone shows as missing; a\n"
        "damaged list is skipped with a note, never an error."))(list_cmd)
    app.command("uninstall", help=_(
        "Remove what sdboot made in a WebUI folder: the Python environment it created,\n"
        ".sdboot/, its managed blocks in webui-user.sh / .bat (your original file comes\n"
        "back), the launch file's mirror rewrite, and its entry in 'sdboot list'.\n"
        "\n"
        "Models, outputs, extensions and the WebUI checkout stay. --all deletes the whole\n"
        "WebUI folder instead, models and outputs included. Asks first on a terminal\n"
        "(--yes skips the question); --dry-run only lists what would go."))(uninstall_cmd)


def list_cmd(
    json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.list/1 JSON.")),
    no_sizes: bool = typer.Option(False, "--no-sizes",
                                  help=_("Skip the folder sizes (faster on slow disks).")),
) -> None:
    from sdboot.cli.common import console, emit_json
    from sdboot.install.registry import list_installs, registry_path

    rows, notes = list_installs(sizes=not no_sizes)
    con = console(json_out)
    for note in notes:
        con.print(_("note: {note}").format(note=local(note)), markup=False)
    if json_out:
        emit_json({"schema": "sdboot.list/1", "registry": str(registry_path()),
                   "installs": [r.to_json() for r in rows]})
        return
    if not rows:
        con.print(_("No installs known yet (sdboot install adds each one it completes)."))
    for row in rows:
        _render_row(con, row)


def _render_row(con: Console, row: InstallRow) -> None:
    from sdboot.install.registry import human_size

    if not row.exists:
        con.print(f"{row.path}  " + _("(missing: {problem})").format(
            problem=local(row.problem or "")), markup=False)
        return
    verdict = {"pass": _("verify passed"), "fail": _("verify FAILED"),
               "unknown": _("never verified")}[row.verify["verdict"]]
    at = f" ({row.verify['at'][:10]})" if row.verify.get("at") else ""
    con.print(f"{row.path}", markup=False)
    con.print(f"  {row.webui or '?'} {row.version or '?'}, "
              + _("profile {profile}").format(profile=row.profile or "?")
              + f", {verdict}{at}", markup=False)
    if row.size:
        con.print("  " + _("size {total} (environment {env}, models {models})").format(
            total=human_size(row.size.get("total")), env=human_size(row.size.get("env")),
            models=human_size(row.size.get("models"))), markup=False)
    if row.problem:
        con.print("  " + _("problem: {problem}").format(problem=local(row.problem)),
                  markup=False)


def _render_plan(con: Console, plan: UninstallPlan, dry_run: bool) -> None:
    from sdboot.install.registry import human_size

    con.print(_("would remove:") if dry_run else _("to remove:"), markup=False)
    for r in plan.removals:
        con.print(f"  {r.path}  ({human_size(r.bytes)})", markup=False)
    if plan.restore_launch:
        con.print("  " + _("{file}: the mirror rewrite (the original comes back)").format(
            file=plan.restore_launch), markup=False)
    for uf in plan.files:
        con.print("  " + _("{file}: sdboot's managed blocks (your lines stay)").format(
            file=uf.name), markup=False)
    if plan.registered:
        con.print("  " + _("its entry in 'sdboot list'"), markup=False)
    if plan.kept:
        con.print(_("kept:") + " " + ", ".join(f"{d}/ ({human_size(n)})"
                                               for d, n in plan.kept.items()), markup=False)
    for note in plan.notes:
        con.print(_("note: {note}").format(note=local(note)), markup=False)


def uninstall_cmd(
    webui_dir: Path = typer.Argument(..., metavar="WEBUI_DIR",
                                     help=_("The WebUI folder (see: sdboot list).")),
    everything: bool = typer.Option(False, "--all", help=_(
        "Delete the whole WebUI folder: models, outputs and extensions included.")),
    dry_run: bool = typer.Option(False, "--dry-run", help=_("List what would go; change "
                                                            "nothing.")),
    yes: bool = typer.Option(False, "--yes", "-y", help=_("Do not ask.")),
    json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.uninstall/1 JSON.")),
) -> None:
    from sdboot.cli.common import console, emit_json
    from sdboot.cli.ext_cmd import can_ask, confirm
    from sdboot.install.registry import human_size
    from sdboot.install.uninstall import plan_uninstall, run_uninstall

    plan = plan_uninstall(webui_dir, everything)
    con = console(json_out)
    empty = not (plan.removals or plan.files or plan.restore_launch or plan.registered)
    if not dry_run and not empty:
        can_ask(yes)
    if not json_out:
        if empty:
            con.print(_("Nothing of sdboot's is in {dir}.").format(dir=plan.root),
                      markup=False)
        else:
            _render_plan(con, plan, dry_run)
    notes: list[str] = []
    if not dry_run and not empty:
        question = _("Delete the whole folder {dir}, {size} with models and outputs?") \
            if everything else _("Remove sdboot's part of {dir} ({size})?")
        confirm(yes, question.format(dir=plan.root, size=human_size(plan.bytes)), json_out)
        notes = run_uninstall(plan)
        if not json_out:
            for note in notes[len(plan.notes):]:
                con.print(_("note: {note}").format(note=local(note)), markup=False)
            con.print(_("done: {size} freed").format(size=human_size(plan.bytes)),
                      markup=False)
    if json_out:
        doc = plan.to_json()
        doc.update({"schema": "sdboot.uninstall/1", "dry_run": dry_run,
                    "done": not dry_run and not empty, "notes": [str(n) for n in notes]
                    or doc["notes"]})
        emit_json(doc)
