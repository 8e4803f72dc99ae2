"""`sdboot verify`: prove that the environment's torch runs on this machine's GPU."""

from __future__ import annotations

from pathlib import Path

import typer

from sdboot.i18n import _


def register(app: typer.Typer) -> None:
    @app.command("verify", help=_(
        "Check that CUDA torch, not a CPU build, really runs on this GPU.\n"
        "\n"
        "Runs one probe inside the environment's own Python (import torch, is_available,\n"
        "the devices and their architectures, and the kernel check\n"
        "(torch.ones(8, device=\"cuda\") * 2).sum().item() == 16), then compares it with the\n"
        "GPU, the driver and the expected profile. Exit 1 when the WebUI could not run on\n"
        "this GPU, with the exact command that fixes it."))
    def verify(
        webui_dir: Path | None = typer.Argument(None, metavar="[WEBUI_DIR]",
                                                help=_("The WebUI folder (default: the current "
                                                "folder when it holds a WebUI).")),
        python: Path | None = typer.Option(None, "--python", metavar="PATH",
                                           help=_("The environment's interpreter (default: "
                                           "the WebUI's venv).")),
        json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.verify/1 JSON.")),
    ) -> None:
        # no docstring: typer would show it untranslated (help= above)
        from sdboot.cli.common import console, emit_json
        from sdboot.cli.render import render_verdict
        from sdboot.stack.verify_run import run_verify

        verdict, doc = run_verify(webui_dir, python)
        if json_out:
            emit_json(doc)
        else:
            render_verdict(console(), verdict, doc)
        if not verdict.ok:
            raise typer.Exit(1)
