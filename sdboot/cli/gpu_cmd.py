"""`sdboot gpu`: what GPU, driver and driver CUDA version this machine has."""

from __future__ import annotations

import typer

from sdboot.i18n import _


def register(app: typer.Typer) -> None:
    @app.command("gpu", help=_(
        "Detect the GPU, the driver and the highest CUDA version the driver supports.\n"
        "\n"
        "Sources, in order: NVML (nvidia-ml-py), the WSL2 driver folder, nvidia-smi on PATH,\n"
        "ROCm tools and sysfs (AMD, Intel), the platform (Apple Silicon). No GPU is not an\n"
        "error: the command exits 0 with an empty list."))
    def gpu(
        json_out: bool = typer.Option(False, "--json",
                                      help=_("Print sdboot.gpu/1 JSON on stdout.")),
    ) -> None:
        # no docstring: typer would show it untranslated (help= above)
        from sdboot.cli.common import console, emit_json
        from sdboot.cli.render import render_gpu
        from sdboot.machine.gpu import detect_gpu

        info = detect_gpu()
        if json_out:
            emit_json(info.to_json())
        else:
            render_gpu(console(), info)
