"""`sdboot profiles list|show` and `sdboot resolve`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sdboot.i18n import _

if TYPE_CHECKING:
    from packaging.version import Version

    from sdboot.values import Profile

profiles_app = typer.Typer(help=_("The pinned torch stacks sdboot knows (shipped and your own)."),
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")

    @app.command("resolve", help=_(
        "Choose the torch / torchvision / xformers set for this machine and WebUI.\n"
        "\n"
        "Rules: the build's CUDA must not be newer than the driver's; the build must have\n"
        "kernels for every GPU (same major, or PTX for newer ones); the Python must fit;\n"
        "the profile made for the WebUI version wins, else the newest that fits."))
    def resolve(
        webui: Path | None = typer.Option(None, "--webui", help=_("A WebUI folder: its version "
                                          "and launch-file pins decide the preferred profile.")),
        webui_version: str | None = typer.Option(None, "--webui-version", metavar="V",
                                                 help=_("WebUI version instead of a folder: "
                                                 "1.10.1, 1.0.0-pre, forge, dev.")),
        python_version: str | None = typer.Option(None, "--python-version", metavar="X.Y",
                                                  help=_("Python of the target environment "
                                                  "(default 3.10, the WebUI's tested one).")),
        profile: str | None = typer.Option(None, "--profile", metavar="NAME",
                                           help=_("Use this profile; problems become warnings.")),
        explain: bool = typer.Option(False, "--explain", help=_("Say why each other profile "
                                     "was rejected.")),
        json_out: bool = typer.Option(False, "--json", help=_("Print sdboot.resolve/1 JSON.")),
    ) -> None:
        # no docstring: typer would show it untranslated (help= above)
        from sdboot.cli.common import console, emit_json, print_error
        from sdboot.cli.render import render_resolution
        from sdboot.errors import SdbootError
        from sdboot.i18n import local, t
        from sdboot.stack.resolve import resolve_for_machine

        if webui is not None and webui_version is not None:
            raise SdbootError(t("--webui and --webui-version both given"),
                              t("give one: the folder, or the version"))
        res, doc = resolve_for_machine(webui, webui_version, python_version, profile)
        con = console(json_out)
        if json_out:
            emit_json(doc)
        else:
            render_resolution(con, res, explain)
        if res.profile is None:
            print_error(t("no profile fits this machine"),
                        "; ".join(local(a) for a in res.advice))
            raise typer.Exit(1)


def _by_version(profile: Profile) -> tuple[Version, str]:
    """Oldest torch first; profiles of the same torch by name."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(Version(profile.torch).public), profile.name
    except InvalidVersion:
        return Version("0"), profile.name


@profiles_app.command("list", help=_(
    "List the shipped profiles and those in $SDBOOT_CONFIG_DIR/profiles."))
def list_profiles(
    json_out: bool = typer.Option(False, "--json", help=_("Print JSON on stdout.")),
) -> None:
    # no docstring: typer would show it untranslated (help= above)
    from sdboot.cli.common import console, emit_json
    from sdboot.cli.render import render_profiles
    from sdboot.stack.profiles import load_profiles

    profiles = sorted(load_profiles().values(), key=_by_version)
    if json_out:
        emit_json({"schema": "sdboot.profiles-list/1",
                   "profiles": [p.to_json() for p in profiles]})
    else:
        render_profiles(console(), profiles)


@profiles_app.command("show", help=_(
    "Show one profile: pins, wheel index, GPU architectures, Python and driver needs."))
def show_profile(
    name: str = typer.Argument(..., metavar="NAME",
                               help=_("Profile name (see 'sdboot profiles list').")),
    json_out: bool = typer.Option(False, "--json", help=_("Print JSON on stdout.")),
) -> None:
    # no docstring: typer would show it untranslated (help= above)
    from sdboot.cli.common import console, emit_json
    from sdboot.cli.render import render_profile
    from sdboot.stack.profiles import get_profile, load_profiles

    prof = get_profile(load_profiles(), name)
    if json_out:
        emit_json({"schema": "sdboot.profiles-show/1", **prof.to_json()})
    else:
        render_profile(console(), prof)
