"""`sdboot doctor`."""

from __future__ import annotations

from pathlib import Path

import typer

from sdboot.i18n import _


def register(app: typer.Typer) -> None:
    @app.command("doctor", help=_(
        "Diagnose a WebUI install and tell the exact fix for each problem.\n"
        "\n"
        "Areas: system (git, disk), GPU and driver (VRAM), the Python environment (version,\n"
        "pip), the torch stack (CPU build, drift, xformers, driver, GPU architecture), the\n"
        "WebUI checkout (mirror rewrites, dead upstream repositories), network and mirrors,\n"
        "models (no checkpoint, a model in the wrong folder). Exit 1 while an error remains.\n"
        "\n"
        "Every finding code is explained in docs/troubleshooting.md (and\n"
        "docs/troubleshooting.zh-CN.md)."))
    def doctor(
        webui_dir: Path | None = typer.Argument(None, metavar="[WEBUI_DIR]", help=_(
            "The WebUI folder (default: the current folder when it holds a WebUI).")),
        python: Path | None = typer.Option(None, "--python", metavar="PATH", help=_(
            "The environment's interpreter (default: the install record, webui-user, "
            "venv/).")),
        profile: str | None = typer.Option(None, "--profile", metavar="NAME", help=_(
            "The torch stack you expect (default: the install record, the launch file's "
            "pins, the resolver).")),
        fix: bool = typer.Option(False, "--fix", help=_(
            "Run the automatic fixes, then check again and report the new state.")),
        yes: bool = typer.Option(False, "--yes", "-y", help=_("Do not ask before fixing.")),
        only: str | None = typer.Option(None, "--only", metavar="CODE,...",
                                        help=_("Report only these finding codes.")),
        offline: bool = typer.Option(False, "--offline", help=_("No network checks.")),
        mask_paths: bool = typer.Option(False, "--mask-paths", help=_(
            "Replace your home folder and user name in the output (for pasting into a bug "
            "report).")),
        json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.doctor/1 JSON.")),
    ) -> None:
        # no docstring: typer would show it untranslated (help= above)
        import getpass
        import sys

        from sdboot.cli.common import console, emit_json
        from sdboot.cli.render import render_doctor, render_fix_plan
        from sdboot.cli.terminal import busy
        from sdboot.doctor import (
            apply_fixes,
            automatic_fixes,
            diagnose,
            find_webui,
            fresh_facts,
            parse_only,
            path_masker,
        )
        from sdboot.doctor.facts import DoctorFacts
        from sdboot.errors import SdbootError
        from sdboot.i18n import t

        codes = parse_only(only)
        root = find_webui(webui_dir)
        if root is None and python is None:
            raise SdbootError(t("no WebUI here and no --python given"),
                              t("run inside the WebUI folder, give WEBUI_DIR, or --python "
                                "PATH"))
        facts = DoctorFacts(root, python, profile, offline)
        if profile is not None:  # an unknown name is bad input, before any check runs
            from sdboot.stack.profiles import get_profile

            get_profile(facts.profiles, profile)
        con = console(json_out)
        spinner = None if json_out else con  # a terminal shows it, a pipe or --json nothing
        with busy(spinner, _("checking the system, GPU, environment, torch, WebUI, network "
                             "and models")):
            report = diagnose(facts, codes)
        mask = path_masker(Path.home(), getpass.getuser()) if mask_paths else (lambda s: s)
        if fix:
            plan = automatic_fixes(report.results)
            if plan:
                render_fix_plan(con, plan)
                if not yes:
                    if not sys.stdin.isatty():
                        raise SdbootError(t("--fix needs confirmation"),
                                          t("add --yes to run the fixes without asking"))
                    if not typer.confirm(_("Run these fixes?"), default=True, err=json_out):
                        raise typer.Exit(1)
                before = report.summary
                with busy(spinner, _("running the fixes")):
                    done = apply_fixes(plan, facts.runner)
                with busy(spinner, _("checking again")):
                    report = diagnose(fresh_facts(facts), codes)
                report.fixes_run, report.before = done, before
            elif not json_out:
                con.print(_("No automatic fix to run."))
        if json_out:
            emit_json(report.to_json(mask))
        else:
            render_doctor(con, report, mask)
        if report.summary.errors:
            raise typer.Exit(1)
