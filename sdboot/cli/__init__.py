"""The command line: typer only. Each command parses options, calls one function of the
core and renders its result; heavy modules are imported inside the commands so that
`sdboot --help` stays fast. main() turns errors into the contract's two-line form."""

from __future__ import annotations

import sys
import traceback

import typer

from sdboot import __version__
from sdboot.cli import (
    doctor_cmd,
    gpu_cmd,
    install_cmd,
    launch_cmd,
    mirror_cmd,
    models_cmd,
    profiles_cmd,
    verify_cmd,
)
from sdboot.cli.common import print_error
from sdboot.errors import SdbootError

HELP = """\
sdboot sets up and repairs Stable Diffusion WebUI (AUTOMATIC1111 and Forge): it finds
your GPU and driver, picks a torch / torchvision / xformers set that really runs on it,
and proves that CUDA torch works before anything is launched.

Start with:  sdboot gpu   then   sdboot install   (mainland China: sdboot install --mirror cn)
Broken install?  sdboot doctor        Start it:  sdboot launch --auto
"""

app = typer.Typer(
    name="sdboot",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"sdboot {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    verbose: bool = typer.Option(False, "-v", "--verbose",
                                 help="Show tracebacks and debug details on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """sdboot: install and repair Stable Diffusion WebUI."""


gpu_cmd.register(app)
profiles_cmd.register(app)
verify_cmd.register(app)
mirror_cmd.register(app)
install_cmd.register(app)
doctor_cmd.register(app)
launch_cmd.register(app)
models_cmd.register(app)


def _click_error(exc: BaseException, name: str) -> bool:
    """Typer may ship its own copy of click, so match click's exceptions by class name."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


# What follows `--` on the command line: passed to the WebUI untouched (sdboot launch).
PASSTHROUGH: list[str] = []


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" in args:
        cut = args.index("--")
        PASSTHROUGH[:] = args[cut + 1:]
        args = args[:cut]
    # -v works anywhere on the line (`sdboot gpu -v` as well as `sdboot -v gpu`).
    verbose = any(a in ("-v", "--verbose") for a in args)
    args = [a for a in args if a not in ("-v", "--verbose")]
    command = typer.main.get_command(app)
    try:
        rc = command.main(args=args, prog_name="sdboot", standalone_mode=False)
    except SdbootError as exc:
        if verbose:
            traceback.print_exc()
        print_error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, EOFError):
        print_error("interrupted", "run the same command again to continue")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - a bug: short message unless -v
        if _click_error(exc, "NoArgsIsHelpError"):
            ctx = getattr(exc, "ctx", None)
            sys.stderr.write((ctx.get_help() if ctx else "") + "\n")
            sys.exit(2)
        if _click_error(exc, "UsageError"):
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx else "sdboot"
            print_error(exc.format_message(),  # type: ignore[attr-defined]
                        f"run '{where} --help' to see the options")
            sys.exit(2)
        if _click_error(exc, "ClickException"):
            print_error(exc.format_message(), "run 'sdboot --help'")  # type: ignore[attr-defined]
            sys.exit(int(getattr(exc, "exit_code", 1)))
        if _click_error(exc, "Abort"):
            print_error("interrupted", "run the same command again to continue")
            sys.exit(130)
        if verbose:
            traceback.print_exc()
        print_error(f"internal error: {exc!r}",
                    "run again with -v for the traceback and report it")
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)
