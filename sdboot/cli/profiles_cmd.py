"""`sdboot profiles list|show` and `sdboot resolve`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from packaging.version import Version

    from sdboot.values import Profile

profiles_app = typer.Typer(help="The pinned torch stacks sdboot knows (shipped and your own).",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")

    @app.command("resolve")
    def resolve(
        webui: Path | None = typer.Option(None, "--webui", help="A WebUI folder: its version "
                                          "and launch-file pins decide the preferred profile."),
        webui_version: str | None = typer.Option(None, "--webui-version", metavar="V",
                                                 help="WebUI version instead of a folder: "
                                                 "1.10.1, 1.0.0-pre, forge, dev."),
        python_version: str | None = typer.Option(None, "--python-version", metavar="X.Y",
                                                  help="Python of the target environment "
                                                  "(default 3.10, the WebUI's tested one)."),
        profile: str | None = typer.Option(None, "--profile", metavar="NAME",
                                           help="Use this profile; problems become warnings."),
        explain: bool = typer.Option(False, "--explain", help="Say why each other profile "
                                     "was rejected."),
        json_out: bool = typer.Option(False, "--json", help="Print sdboot.resolve/1 JSON."),
    ) -> None:
        """Choose the torch / torchvision / xformers set for this machine and WebUI.

        Rules: the build's CUDA must not be newer than the driver's; the build must have
        kernels for every GPU (same major, or PTX for newer ones); the Python must fit;
        the profile made for the WebUI version wins, else the newest that fits.
        """
        from sdboot.cli.common import console, emit_json, print_error
        from sdboot.cli.render import render_resolution
        from sdboot.errors import SdbootError
        from sdboot.stack.resolve import resolve_for_machine

        if webui is not None and webui_version is not None:
            raise SdbootError("--webui and --webui-version both given",
                              "give one: the folder, or the version")
        res, doc = resolve_for_machine(webui, webui_version, python_version, profile)
        con = console(json_out)
        if json_out:
            emit_json(doc)
        else:
            render_resolution(con, res, explain)
        if res.profile is None:
            print_error("no profile fits this machine", "; ".join(res.advice))
            raise typer.Exit(1)


def _by_version(profile: Profile) -> tuple[Version, str]:
    """Oldest torch first; profiles of the same torch by name."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(Version(profile.torch).public), profile.name
    except InvalidVersion:
        return Version("0"), profile.name


@profiles_app.command("list")
def list_profiles(
    json_out: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """List the shipped profiles and those in $SDBOOT_CONFIG_DIR/profiles."""
    from sdboot.cli.common import console, emit_json
    from sdboot.cli.render import render_profiles
    from sdboot.stack.profiles import load_profiles

    profiles = sorted(load_profiles().values(), key=_by_version)
    if json_out:
        emit_json({"schema": "sdboot.profiles-list/1",
                   "profiles": [p.to_json() for p in profiles]})
    else:
        render_profiles(console(), profiles)


@profiles_app.command("show")
def show_profile(
    name: str = typer.Argument(..., metavar="NAME",
                               help="Profile name (see 'sdboot profiles list')."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Show one profile: pins, wheel index, GPU architectures, Python and driver needs."""
    from sdboot.cli.common import console, emit_json
    from sdboot.cli.render import render_profile
    from sdboot.stack.profiles import get_profile, load_profiles

    prof = get_profile(load_profiles(), name)
    if json_out:
        emit_json({"schema": "sdboot.profiles-show/1", **prof.to_json()})
    else:
        render_profile(console(), prof)
