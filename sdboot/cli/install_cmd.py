"""`sdboot install`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sdboot.i18n import _, t

if TYPE_CHECKING:
    from rich.console import Console

    from sdboot.install.plan import InstallReport

_REPO_SCHEMES = ("https", "http", "ssh", "git", "file")
_SCP_LIKE = re.compile(r"[\w.-]+@[\w.-]+:[\w./~+-]+")


def check_webui_repo(value: str) -> str:
    """--webui-repo reaches git's argv: a URL (https, http, ssh, git, file), an scp-like
    git@host:path, or an existing local folder; never something git reads as an option."""
    from urllib.parse import urlsplit

    from sdboot.errors import SdbootError
    from sdboot.mirrors.loading import shown_value

    hint = t("give the repository's URL (https://github.com/OWNER/REPO.git) or an existing "
             "local folder")
    if not value or value.startswith("-"):
        raise SdbootError(t("--webui-repo '{value}' is not a repository URL (it starts with "
                            "'-')", value=shown_value(value)), hint)
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise SdbootError(t("--webui-repo '{value}' contains spaces or control characters",
                            value=shown_value(value)), hint)
    if "://" in value:
        try:
            parts = urlsplit(value)
            ok = parts.scheme in _REPO_SCHEMES and (parts.scheme == "file" or parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise SdbootError(t("--webui-repo '{value}' is not a git URL ({schemes})",
                                value=value, schemes=", ".join(_REPO_SCHEMES)), hint)
        return value
    if _SCP_LIKE.fullmatch(value) or Path(value).expanduser().is_dir():
        return value
    raise SdbootError(t("--webui-repo '{value}' is neither a URL nor an existing folder",
                        value=value), hint)


def register(app: typer.Typer) -> None:
    @app.command("install", help=_(
        "Install the WebUI with a torch stack that is proven to run on this GPU.\n\n"
        "Steps: clone the WebUI (through the mirror; release commits are checked), create\n"
        "the environment, install the pinned torch / torchvision / xformers, verify CUDA\n"
        "torch on the GPU, let the WebUI prepare the rest (its own launch.py --exit, with\n"
        "every pip call pinned by a constraints file), verify again, write webui-user.sh /\n"
        ".bat, record the install.\n\n"
        "Interrupted? Run the same command again: finished steps are checked, not redone.\n"
        "On a complete install it only checks (no network) and says so."))
    def install(
        webui_dir: Path = typer.Argument(Path("stable-diffusion-webui"), metavar="[WEBUI_DIR]",
                                         help=_("Where the WebUI goes (default: "
                                                "./stable-diffusion-webui). An existing "
                                                "checkout is completed, not cloned again.")),
        profile: str | None = typer.Option(None, "--profile", metavar="NAME",
                                           help=_("The torch stack (default: the "
                                                  "resolver's choice for this GPU; see "
                                                  "sdboot resolve).")),
        mirror: str | None = typer.Option(None, "--mirror", metavar="NAME|auto|none",
                                          help=_("Mirrors: a preset (cn), auto (the "
                                                 "fastest that answer), or none. Default: "
                                                 "none, or what the interrupted install "
                                                 "used.")),
        env: str | None = typer.Option(None, "--env", metavar="venv|conda",
                                       help=_("The environment kind (default venv, in "
                                              "WEBUI_DIR/venv).")),
        webui: str | None = typer.Option(None, "--webui", metavar="a1111|forge|reforge|neo",
                                         help=_("Which WebUI (the catalog, webuis.yaml; "
                                                "docs/webuis.md): its repository and its "
                                                "default ref. Default: a1111, or what the "
                                                "folder holds.")),
        webui_repo: str | None = typer.Option(None, "--webui-repo", metavar="URL",
                                              help=_("The WebUI's repository, or a mirror of "
                                                     "it; it must be one the catalog knows "
                                                     "(see --webui).")),
        ref: str | None = typer.Option(None, "--ref", metavar="REF",
                                       help=_("Tag, branch or commit (default: the latest "
                                              "release, v1.10.1 for AUTOMATIC1111).")),
        dry_run: bool = typer.Option(False, "--dry-run", help=_("Print the plan with every "
                                     "command; change nothing.")),
        yes: bool = typer.Option(False, "--yes", "-y", help=_("Do not ask before starting.")),
        insecure: bool = typer.Option(False, "--insecure",
                                      help=_("Allow plain-http mirrors.")),
        lock: Path | None = typer.Option(None, "--lock", metavar="FILE", help=_(
            "Reproduce a lock (WEBUI/.sdboot/lock.txt of another install on the same "
            "platform and Python): its WebUI commit, its profile and exactly its packages; "
            "fails where it cannot.")),
        json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.install/1 JSON.")),
    ) -> None:
        # no docstring: typer would show it untranslated; the help is above
        import sys
        import time

        from sdboot.cli.common import console, emit_json, print_error
        from sdboot.cli.progress import make_ui
        from sdboot.install.run import InstallOptions, InstallRun
        from sdboot.io.datafile import cache_dir
        from sdboot.io.git import check_ref
        from sdboot.io.runner import Runner

        if webui_repo is not None:
            check_webui_repo(webui_repo)
        if webui is not None or webui_repo is not None:
            from sdboot.install.catalog import load_catalog, resolve_choice
            from sdboot.webui.folder import origin_url

            # a local clone or mirror folder stands for the repository its origin names
            local = Path(webui_repo).expanduser() if webui_repo else None
            origin = origin_url(local) if local is not None and local.is_dir() else None
            chosen = resolve_choice(load_catalog(), webui, origin or webui_repo)
            webui_repo = webui_repo or (chosen.repo if chosen else None)
        if ref is not None:
            check_ref(ref)
        con = console(json_out)
        log = cache_dir() / "logs" / time.strftime("install-%Y%m%d-%H%M%S.log")
        runner = Runner(log_path=log)
        opts = InstallOptions(webui_dir, profile, mirror, env, webui_repo, ref, dry_run, yes,
                              insecure, lock)
        ui = make_ui(con)
        try:
            run = InstallRun(opts, ui, runner)
            if not yes and not dry_run and sys.stdin.isatty() and not json_out:
                run.confirm = lambda question: typer.confirm(question, default=True)
            report = run.run()
        except BaseException as exc:
            ui.close()
            from sdboot.cli.progress import hint_with_log
            from sdboot.errors import SdbootError

            hint_with_log(exc, log)
            if isinstance(exc, SdbootError) and json_out:  # scripts get a document too
                emit_json({"schema": "sdboot.install/1", "webui": str(webui_dir or "."),
                           "complete": False, "nothing_to_do": False,
                           "log": str(log) if log.exists() else None, "next": None,
                           "error": {"message": exc.message, "hint": exc.hint,
                                     "exit_code": exc.exit_code}})
            raise
        ui.close()
        if json_out:
            emit_json(report.to_json())
        else:
            _summary(con, report, dry_run, log)
        if not report.complete and not dry_run:
            print_error(t("the install did not complete"), t("run the same command again"))
            raise typer.Exit(1)


def _summary(con: Console, report: InstallReport, dry_run: bool, log: Path) -> None:
    """What a person reads after the steps, in their language (--json is the English)."""
    from rich.text import Text as Rich

    from sdboot.i18n import local

    def say(text: str) -> None:
        con.print(text, markup=False, highlight=False)

    if report.nothing_to_do:
        say(_("Everything is in place: {webui} is installed and verified (profile {profile}); "
              "nothing to do.").format(webui=report.webui, profile=report.profile))
        say(_("Start it: {command}").format(command=report.next_command()))
        return
    for note in report.notes:
        con.print(local(note), style="yellow", markup=False, highlight=False)
    if dry_run:
        say(_("Dry run: nothing was changed. The commands above are the plan."))
        return
    done = _("{webui} with {profile}; CUDA torch verified.") if report.profile and \
        "cpu" not in report.profile else _("{webui} with {profile}.")
    con.print(Rich.assemble((_("Installed"), "green"), " ", done.format(
        webui=report.webui, profile=report.profile)), highlight=False)
    if report.webui_args:
        say(_("WebUI flags (webui-user): {flags}").format(flags=" ".join(report.webui_args)))
    say(_("Start it: {command}   (or: {script})").format(command=report.next_command(),
                                                          script=report.webui_script()))
    if log.exists():
        say(_("Full log: {log}").format(log=log))
