"""`sdboot update`, `sdboot rollback` and `sdboot snapshots`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from sdboot.i18n import _, local


def _webui(webui_dir: Path | None) -> Path:
    """WEBUI_DIR, else the current folder when it holds a WebUI, else the default install."""
    from sdboot.errors import SdbootError
    from sdboot.install.registry import default_install
    from sdboot.webui.folder import is_webui

    if webui_dir is not None:
        return webui_dir
    if is_webui(Path.cwd()):
        return Path.cwd()
    found = default_install()
    if found is None:
        raise SdbootError(_("no WebUI folder given, and none is installed"),
                          _("give WEBUI_DIR (the folder with launch.py)"))
    return found


def _extensions(root: Path) -> dict[str, Any]:
    from sdboot.addons.ext_state import extension_snapshot

    return extension_snapshot(root)


def _print_steps_summary(con: Any, report: Any, json_out: bool) -> None:
    for note in report.notes:
        con.print(local(note), style="yellow", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    @app.command("update", help=_(
        "Update the WebUI to another version, safely: a snapshot first, then the new "
        "version through the mirror, the torch profile chosen again for it, what changed "
        "installed, the WebUI prepared and verified. A failed step rolls back to the "
        "snapshot by itself; an interrupted update is finished by running it again."))
    def update(
        webui_dir: Path | None = typer.Argument(None, metavar="[WEBUI_DIR]", help=_(
            "The WebUI that sdboot installed (default: the current folder, else the "
            "newest install).")),
        ref: str | None = typer.Option(None, "--ref", metavar="REF|latest", help=_(
            "A branch (dev), a tag (v1.10.1), a commit, or latest (the newest release tag). "
            "Default: the branch the install follows, else latest.")),
        force: bool = typer.Option(False, "--force", help=_(
            "Your own changes in the WebUI's files go into a git stash (named in the "
            "output) instead of stopping the update.")),
        profile: str | None = typer.Option(None, "--profile", metavar="NAME", help=_(
            "This torch profile instead of the one chosen again for the new version.")),
        dry_run: bool = typer.Option(False, "--dry-run", help=_("Print the plan; change "
                                                                "nothing.")),
        yes: bool = typer.Option(False, "--yes", "-y", help=_("Do not ask before starting.")),
        json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.update/1 JSON.")),
    ) -> None:
        from sdboot.cli.common import console, emit_json
        from sdboot.cli.progress import hint_with_log, make_ui
        from sdboot.errors import SdbootError
        from sdboot.install.update import UpdateOptions, UpdateRun
        from sdboot.install.update_plan import UpdateFailed
        from sdboot.io.datafile import cache_dir
        from sdboot.io.git import check_ref
        from sdboot.io.runner import Runner

        if ref is not None and ref != "latest":
            check_ref(ref)
        con = console(json_out)
        log = cache_dir() / "logs" / time.strftime("update-%Y%m%d-%H%M%S.log")
        ui = make_ui(con)
        try:
            run = UpdateRun(UpdateOptions(_webui(webui_dir), ref, force, dry_run, yes,
                                          profile), ui,
                            Runner(log_path=log), _extensions)
            if not yes and not dry_run and sys.stdin.isatty() and not json_out:
                run.confirm = lambda question: typer.confirm(question, default=True)
            report = run.run()
        except BaseException as exc:
            ui.close()
            hint_with_log(exc, log)
            if isinstance(exc, SdbootError) and json_out:
                if isinstance(exc, UpdateFailed):
                    doc = exc.report.to_json()
                else:
                    doc = {"schema": "sdboot.update/1", "webui": str(webui_dir or "."),
                           "complete": False, "rolled_back": False}
                doc["error"] = {"message": exc.message, "hint": exc.hint,
                                "exit_code": exc.exit_code}
                emit_json(doc)
            raise
        ui.close()
        if json_out:
            emit_json(report.to_json())
            return
        _print_steps_summary(con, report, json_out)
        if report.nothing_to_do:
            con.print(_("{dir} is already at {ref} ({commit}); nothing to do.").format(
                dir=report.webui, ref=report.ref, commit=(report.before["commit"] or "")[:10]),
                markup=False, highlight=False)
        elif report.dry_run:
            con.print(_("Dry run: nothing was changed. The steps above are the plan."))
        else:
            con.print(_("Updated {dir} to {ref} ({commit}), profile {profile}. Snapshot: {id} "
                        "(sdboot rollback goes back to it).").format(
                dir=report.webui, ref=report.ref, commit=(report.after["commit"] or "")[:10],
                profile=report.after.get("profile"), id=report.snapshot),
                markup=False, highlight=False)
            if log.exists():
                con.print(_("Full log: {log}").format(log=log), markup=False, highlight=False)

    @app.command("rollback", help=_(
        "Put the WebUI back as a snapshot has it: the commits of the WebUI, its "
        "repositories and extensions, the environment (the snapshot's lock, exactly), the "
        "launch file, webui-user files and the install record, byte for byte."))
    def rollback(
        webui_dir: Path | None = typer.Argument(None, metavar="[WEBUI_DIR]", help=_(
            "The WebUI (default: the current folder, else the newest install).")),
        snapshot: str | None = typer.Argument(None, metavar="[SNAPSHOT]", help=_(
            "The snapshot (sdboot snapshots lists them; default: the newest).")),
        force: bool = typer.Option(False, "--force", help=_(
            "Your own changes in the WebUI's files go into a git stash instead of stopping "
            "the rollback.")),
        yes: bool = typer.Option(False, "--yes", "-y", help=_("Do not ask before starting.")),
        json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.rollback/1 "
                                                              "JSON.")),
    ) -> None:
        from sdboot.cli.common import console, emit_json
        from sdboot.cli.progress import hint_with_log, make_ui
        from sdboot.errors import SdbootError
        from sdboot.install.rollback import run_rollback
        from sdboot.io.datafile import cache_dir
        from sdboot.io.runner import Runner

        con = console(json_out)
        log = cache_dir() / "logs" / time.strftime("rollback-%Y%m%d-%H%M%S.log")
        ui = make_ui(con)
        confirm = None
        if not yes and sys.stdin.isatty() and not json_out:
            def confirm(question: str) -> bool:
                return typer.confirm(question, default=True)
        try:
            report = run_rollback(_webui(webui_dir), snapshot, ui, Runner(log_path=log), force,
                                  confirm)
        except SdbootError as exc:
            ui.close()
            hint_with_log(exc, log)
            if json_out:  # scripts get a document on failure too
                emit_json({"schema": "sdboot.rollback/1", "webui": str(webui_dir or "."),
                           "snapshot": snapshot, "steps": [], "error": {
                               "message": exc.message, "hint": exc.hint,
                               "exit_code": exc.exit_code}})
            raise
        finally:
            ui.close()
        if json_out:
            emit_json(report.to_json())
            return
        for note in report.notes:
            con.print(note, style="yellow", markup=False, highlight=False)
        con.print(_("Rolled {dir} back to snapshot {id}.").format(dir=report.webui,
                                                                  id=report.snapshot),
                  markup=False, highlight=False)

    @app.command("snapshots", help=_(
        "List the snapshots `sdboot update` took (newest last)."))
    def snapshots(
        webui_dir: Path | None = typer.Argument(None, metavar="[WEBUI_DIR]", help=_(
            "The WebUI (default: the current folder, else the newest install).")),
        json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.snapshots/1 "
                                                              "JSON.")),
    ) -> None:
        from sdboot.cli.common import console, emit_json
        from sdboot.install.rollback import snapshots_doc

        doc = snapshots_doc(_webui(webui_dir))
        if json_out:
            emit_json(doc)
            return
        con = console()
        if not doc["snapshots"]:
            con.print(_("No snapshots in {dir} yet (sdboot update takes one before it "
                        "changes anything).").format(dir=doc["webui"]), markup=False)
            return
        for row in doc["snapshots"]:
            con.print(f"{row['id']}  {row['created']}  {row['ref'] or '-':<12} "
                      f"{row['commit'][:10]}  {row['profile'] or '-'}", markup=False,
                      highlight=False)
