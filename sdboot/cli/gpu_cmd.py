"""`sdboot gpu`: what GPU, driver and driver CUDA version this machine has."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("gpu")
    def gpu(
        json_out: bool = typer.Option(False, "--json", help="Print sdboot.gpu/1 JSON on stdout."),
    ) -> None:
        """Detect the GPU, the driver and the highest CUDA version the driver supports.

        Sources, in order: NVML (nvidia-ml-py), the WSL2 driver folder, nvidia-smi on PATH,
        ROCm tools and sysfs (AMD, Intel), the platform (Apple Silicon). No GPU is not an
        error: the command exits 0 with an empty list.
        """
        from sdboot.cli.common import console, emit_json
        from sdboot.cli.render import render_gpu
        from sdboot.machine.gpu import detect_gpu

        info = detect_gpu()
        if json_out:
            emit_json(info.to_json())
        else:
            render_gpu(console(), info)
