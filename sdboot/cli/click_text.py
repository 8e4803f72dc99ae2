"""typer's own words on a --help page in the user's language: the section titles (Arguments,
Options, Commands), "Usage:", the help and completion options' texts and the "default:" /
"required" notes. typer looks the section titles and notes up through gettext's
`gettext`, imported at its load; its vendored click writes the rest as literals. install()
points the lookup at sdboot's catalogs and gives those literals a translation; English
output stays byte for byte what typer writes. The ids are listed here, so the catalog test
knows them."""

from __future__ import annotations

from typing import Any

from sdboot.i18n import N_, _

TYPER_TEXTS = (N_("Arguments"), N_("Options"), N_("Commands"), N_("default: {default}"),
               N_("required"), N_("env var: {var}"), N_("(dynamic)"), N_("Aborted!"))
USAGE = N_("Usage: ")
HELP_OPTION = N_("Show this message and exit.")
COMPLETION = (N_("Install completion for the current shell."),
              N_("Show completion for the current shell, to copy it or customize the "
                 "installation."))


def install() -> None:
    """Once, before the first command is built (sdboot.cli does it at import)."""
    import gettext
    import sys

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "typer" and getattr(module, "_", None) is gettext.gettext:
            module._ = _  # type: ignore[attr-defined]
    try:
        from typer._click import core, formatting
    except ImportError:  # a typer without its own click: its texts stay English
        return
    write_usage = formatting.HelpFormatter.write_usage

    def usage(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        write_usage(self, prog, args, _(USAGE) if prefix is None else prefix)

    formatting.HelpFormatter.write_usage = usage  # type: ignore[method-assign]
    get_help_option = core.Command.get_help_option

    def help_option(self: Any, ctx: Any) -> Any:
        option = get_help_option(self, ctx)
        if option is not None and option.help == HELP_OPTION:
            option.help = _(HELP_OPTION)
        return option

    core.Command.get_help_option = help_option  # type: ignore[method-assign]
    from typer import main

    completion_options = main.get_install_completion_arguments

    def completion() -> Any:
        options = completion_options()
        for option in options:
            text = getattr(option, "help", None)
            if text in COMPLETION:
                option.help = _(text)  # type: ignore[attr-defined]
        return options

    main.get_install_completion_arguments = completion
