"""The command line: typer only. Each command parses options, calls one function of the
core and renders its result; heavy modules are imported inside the commands so that
`sdboot --help` stays fast. main() turns errors into the contract's two-line form."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import typer

from sdboot import __version__
from sdboot.cli import (
    click_text,
    doctor_cmd,
    ext_cmd,
    gpu_cmd,
    install_cmd,
    installs_cmd,
    launch_cmd,
    mirror_cmd,
    models_cmd,
    profiles_cmd,
    update_cmd,
    verify_cmd,
)
from sdboot.cli.common import print_error
from sdboot.errors import NOTHING_CHANGED, SdbootError
from sdboot.i18n import N_, _, local_or_lookup, t

HELP = _("""\
sdboot sets up and repairs Stable Diffusion WebUI (AUTOMATIC1111, Forge, reForge, Forge Neo):
it finds your GPU and driver, picks a torch / torchvision / xformers set that really runs on
it, and proves that CUDA torch works before anything is launched.

Start with:  sdboot gpu   then   sdboot install   (mainland China: sdboot install --mirror cn)

Broken install?  sdboot doctor

Start it:  sdboot launch --auto
""")

app = typer.Typer(
    name="sdboot",
    help=HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def version_text() -> str:
    """What a bug report needs: sdboot, Python, the platform, and which shipped data (the
    mirror table, the WebUI catalog, the profiles) this copy carries, as short digests."""
    import hashlib
    import platform

    from sdboot.io.datafile import data_dir

    base = data_dir()
    files = [base / "mirrors.yaml", base / "webuis.yaml",
             *sorted((base / "profiles").glob("*.yaml"))]
    lines = [f"sdboot {__version__}",
             f"python {platform.python_version()} ({sys.executable})",
             f"platform {platform.platform()} {platform.machine()}"]
    for label, group in (("mirrors.yaml", files[:1]), ("webuis.yaml", files[1:2]),
                         (f"profiles ({len(files) - 2})", files[2:])):
        digest = hashlib.sha256()
        for path in group:
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"missing")
        lines.append(f"data {label}: {digest.hexdigest()[:12]}")
    return "\n".join(lines)


def _version(value: bool) -> None:
    if value:
        print(version_text())
        raise typer.Exit(0)


@app.callback()
def root(
    verbose: bool = typer.Option(False, "-v", "--verbose",
                                 help=_("Show tracebacks and debug details on errors.")),
    version: bool = typer.Option(False, "-V", "--version", callback=_version, is_eager=True,
                                 help=_("Print the version, Python, platform and data "
                                        "digests, and exit.")),
) -> None:
    # no docstring: typer would show it as the help (untranslated); HELP is the help
    return None


def _plain_metavar(make_metavar: Callable[..., str]) -> Callable[..., str]:
    """typer writes a required argument as {WEBUI_DIR} in usage lines; users (and click's
    own convention) expect WEBUI_DIR. Optional ones stay [WEBUI_DIR]."""
    def wrapped(self: typer.core.TyperArgument, ctx: Any, *, usage: bool = False) -> str:
        shown = make_metavar(self, ctx, usage=usage)
        if usage and self.required and shown.startswith("{") and "}" in shown:
            shown = shown.replace("{", "", 1).replace("}", "", 1)
        return shown
    return wrapped


typer.core.TyperArgument.make_metavar = _plain_metavar(  # type: ignore[method-assign]
    typer.core.TyperArgument.make_metavar)
click_text.install()  # "Usage:", "Options", "Show this message and exit." translated too

gpu_cmd.register(app)
profiles_cmd.register(app)
verify_cmd.register(app)
mirror_cmd.register(app)
install_cmd.register(app)
doctor_cmd.register(app)
launch_cmd.register(app)
models_cmd.register(app)
ext_cmd.register(app)
installs_cmd.register(app)
update_cmd.register(app)


def _click_error(exc: BaseException, name: str) -> bool:
    """Typer may ship its own copy of click, so match click's exceptions by class name."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


# What follows `--` on the command line: passed to the WebUI untouched (sdboot launch).
PASSTHROUGH: list[str] = []


# Commands that only read: a Ctrl-C there leaves nothing behind. Keys are the command
# words; the value is the option that makes the command change things (None: never does).
_READ_ONLY: dict[tuple[str, ...], str | None] = {
    ("gpu",): None, ("profiles",): None, ("resolve",): None, ("verify",): None,
    ("doctor",): "--fix", ("mirror", "list"): None, ("mirror", "test"): None,
    ("mirror", "status"): None, ("models", "list"): None, ("ext", "list"): None,
    ("snapshots",): None, ("list",): None,
}
# Commands that change things but know what an interruption leaves (when the command
# registers nothing more precise with sdboot.errors.on_interrupt / keep_on_interrupt).
_ATOMIC = N_("each file is written whole or not at all; 'sdboot mirror status WEBUI_DIR' "
             "shows what is applied")
_NOTES: dict[tuple[str, ...], str] = {
    ("launch",): N_("nothing was changed; run the same command to start the WebUI again"),
    ("mirror", "apply"): _ATOMIC, ("mirror", "revert"): _ATOMIC,
}


def _command_words(args: list[str]) -> tuple[str, ...]:
    words = [a for a in args if not a.startswith("-")][:2]
    return tuple(words)


def interrupt_hint(args: list[str], exc: BaseException | None) -> str:
    """What the interruption kept: the note the command registered, else "nothing was
    changed" for a dry run or a command that only reads, else a careful neutral hint."""
    from sdboot.errors import KEPT_UNKNOWN, interrupt_note

    note = interrupt_note(exc)
    if note:
        return note
    if "--dry-run" in args:
        return NOTHING_CHANGED
    words = _command_words(args)
    for key, text in _NOTES.items():
        if words[:len(key)] == key:
            return text
    for key, changer in _READ_ONLY.items():
        if words[:len(key)] == key and (changer is None or changer not in args):
            return NOTHING_CHANGED
    return KEPT_UNKNOWN


def _interrupted(args: list[str], exc: BaseException | None, verbose: bool) -> NoReturn:
    import signal

    with contextlib.suppress(ValueError, OSError):  # a second Ctrl-C must not add a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if verbose:
        traceback.print_exc()
    print_error(t("interrupted"), local_or_lookup(interrupt_hint(args, exc)))
    sys.exit(130)


def _os_error(exc: OSError, verbose: bool) -> NoReturn:
    from sdboot.errors import describe_os_error

    if isinstance(exc, BrokenPipeError) and exc.filename is None:
        # stdout went away (`sdboot mirror list | head -1`): stop quietly, like other tools
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    if verbose:
        traceback.print_exc()
    message, hint, code = describe_os_error(exc)
    print_error(message, hint)
    sys.exit(code)


def _decode_error(exc: UnicodeError, verbose: bool) -> NoReturn:
    if verbose:
        traceback.print_exc()
    if isinstance(exc, UnicodeDecodeError):
        print_error(t("a file is not UTF-8 text ({reason} at byte {start})",
                      reason=exc.reason, start=exc.start),
                    t("save the file as UTF-8 (run again with -v to see which file was read)"))
        sys.exit(2)
    print_error(t("this terminal cannot show some of the text ({error})", error=exc),
                t("use a UTF-8 terminal, or set PYTHONIOENCODING=utf-8"))
    sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" in args:
        cut = args.index("--")
        PASSTHROUGH[:] = args[cut + 1:]
        args = args[:cut]
    # -v works anywhere on the line (`sdboot gpu -v` as well as `sdboot -v gpu`).
    verbose = any(a in ("-v", "--verbose") for a in args)
    args = [a for a in args if a not in ("-v", "--verbose")]
    try:
        command = typer.main.get_command(app)
        # Not command.main(): typer's main turns Ctrl-C into a silent exit 130, before
        # anyone could say what the interruption kept. Shell completion requests
        # (_SDBOOT_COMPLETE, set by the script --install-completion writes) answer and exit.
        command._main_shell_completion({}, "sdboot", None)
        with command.make_context("sdboot", args) as root_ctx:
            rv = command.invoke(root_ctx)
        rc = rv if isinstance(rv, int) else 0
    except SdbootError as exc:
        if verbose:
            traceback.print_exc()
        print_error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, EOFError) as exc:
        _interrupted(args, exc, verbose)
    except OSError as exc:  # disk full, name too long, permission denied...: not a bug
        _os_error(exc, verbose)
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:
        _decode_error(exc, verbose)
    except Exception as exc:  # noqa: BLE001 - a bug: short message unless -v
        if _click_error(exc, "Exit"):  # --help, --version, typer.Exit(code)
            sys.exit(int(getattr(exc, "exit_code", 0)))
        if _click_error(exc, "NoArgsIsHelpError"):
            ctx = getattr(exc, "ctx", None)
            sys.stderr.write((ctx.get_help() if ctx else "") + "\n")
            sys.exit(2)
        if _click_error(exc, "UsageError"):
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx else "sdboot"
            print_error(click_text.usage_error(exc.format_message()),  # type: ignore[attr-defined]
                        t("run '{command} --help' to see the options", command=where))
            sys.exit(2)
        if _click_error(exc, "ClickException"):
            print_error(exc.format_message(),  # type: ignore[attr-defined]
                        t("run 'sdboot --help'"))
            sys.exit(int(getattr(exc, "exit_code", 1)))
        if _click_error(exc, "Abort"):  # click's form of Ctrl-C / end of input at a prompt
            _interrupted(args, exc, verbose)
        if verbose:
            traceback.print_exc()
        print_error(t("internal error: {error}", error=repr(exc)),
                    t("run again with -v for the traceback and report it"))
        sys.exit(1)
    sys.exit(rc)
