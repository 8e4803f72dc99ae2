"""`sdboot launch`."""

from __future__ import annotations

from pathlib import Path

import typer

from sdboot.i18n import _


def register(app: typer.Typer) -> None:
    @app.command("launch", help=_(
        "Start the WebUI with a torch stack that is known to run on this GPU.\n\n"
        "A guard checks the environment first (a probe, reused while torch, torchvision and\n"
        "xformers are unchanged): a CPU build on an NVIDIA machine, a driver too old or an\n"
        "unsupported GPU stop here with the fix. Flags after -- go to the WebUI untouched:\n\n"
        "    sdboot launch --auto --xformers -- --api --gradio-auth me:secret\n\n"
        "The flags recorded by sdboot install and COMMANDLINE_ARGS are used as well, each\n"
        "flag once. The mirror settings of the install reach the WebUI's processes."))
    def launch(
        webui_dir: Path | None = typer.Argument(None, metavar="[WEBUI_DIR]",
                                                help=_("The WebUI folder (default: the "
                                                       "current folder).")),
        medvram: bool = typer.Option(False, "--medvram", help=_("Less VRAM (6-8 GB cards).")),
        lowvram: bool = typer.Option(False, "--lowvram", help=_("Least VRAM (4 GB cards; "
                                                                    "slow).")),
        auto: bool = typer.Option(False, "--auto", help=_("Choose --lowvram / --medvram / "
                                  "--medvram-sdxl from this GPU's VRAM.")),
        xformers: bool = typer.Option(False, "--xformers", help=_("Use xformers, if the "
                                      "installed one matches torch.")),
        listen: bool = typer.Option(False, "--listen", help=_("Serve on the network "
                                    "(0.0.0.0): add -- --gradio-auth user:password.")),
        port: int | None = typer.Option(None, "--port", min=1, max=65535, help=_("Port "
                                        "(default 7860).")),
        allow_cpu: bool = typer.Option(False, "--allow-cpu", help=_("Start on the CPU when "
                                       "CUDA torch cannot run (slow; adds the CPU flags).")),
        dry_run: bool = typer.Option(False, "--dry-run", help=_("Print the environment and "
                                     "the command; start nothing.")),
    ) -> None:
        # no docstring: typer would show it untranslated; the help is above
        from sdboot.cli import PASSTHROUGH
        from sdboot.cli.common import console, print_error
        from sdboot.errors import SdbootError
        from sdboot.i18n import local, t
        from sdboot.io.mask import mask, mask_env
        from sdboot.io.runner import Runner, shown
        from sdboot.launch.guard import CPU_CODES, LaunchRequest, hand_over, prepare_launch

        chosen = [f for f, on in (("--medvram", medvram), ("--lowvram", lowvram),
                                  ("auto", auto)) if on]
        if len(chosen) > 1:
            raise SdbootError(t("choose one of --medvram, --lowvram, --auto"),
                              t("--auto picks from the VRAM"))
        req = LaunchRequest(chosen[0] if chosen else None, xformers, listen, port, allow_cpu,
                            tuple(PASSTHROUGH))
        con = console()
        plan, refused = prepare_launch(webui_dir, req, Runner())
        if refused:
            for f in refused:
                con.print(f"[red]✗[/red] [bold]{f.code}[/bold]: ", end="", highlight=False)
                con.print(local(f.message), markup=False, highlight=False)
                if f.fix is not None:  # what the fix does; the command when it is one
                    con.print("    " + _("fix: {summary}").format(summary=local(f.fix.summary)),
                              markup=False, highlight=False)
                    if len(f.fix.commands) == 1:
                        con.print(f"      $ {shown(list(f.fix.commands[0]))}", markup=False,
                                  highlight=False)
            # the hint fits the refusal: --allow-cpu only where it would start the WebUI
            if all(f.code in ("repo-incomplete", "git-unsafe-directory") for f in refused):
                print_error(t("the WebUI would stop at a folder of repositories/: not started"),
                            t("apply the fix above (sdboot doctor --fix)"))
            elif not allow_cpu and all(f.code in CPU_CODES for f in refused):
                print_error(t("the WebUI would not run on this GPU: not started"),
                            t("apply the fix above (sdboot doctor --fix), or start on the CPU "
                              "(slow): sdboot launch --allow-cpu"))
            else:
                print_error(t("the WebUI would not start with this environment: not started"),
                            t("apply the fix above (sdboot doctor --fix)"))
            raise typer.Exit(1)
        for note in plan.notes:
            con.print(local(note), style="yellow" if note.startswith("warning") else None,
                      markup=False, highlight=False)
        if dry_run:  # shown, so masked: the real values go to the WebUI only
            for name in plan.env_unset:
                print(f"unset {name}")
            for name, value in mask_env(plan.env_set).items():
                print(mask(f"{name}={value}"))
            print(shown(plan.argv))
            return
        raise typer.Exit(hand_over(plan))
