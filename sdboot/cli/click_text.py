"""typer's own words on a --help page in the user's language: the section titles (Arguments,
Options, Commands), "Usage:", the help and completion options' texts and the "default:" /
"required" notes. typer looks the section titles and notes up through gettext's
`gettext`, imported at its load; its vendored click writes the rest as literals. install()
points the lookup at sdboot's catalogs and gives those literals a translation; English
output stays byte for byte what typer writes. The ids are listed here, so the catalog test
knows them. usage_error() does the same for click's usage errors (No such option, Missing
argument...), which it writes in English only."""

from __future__ import annotations

import re
from typing import Any

from sdboot.i18n import N_, Text, _

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
    _wrap_by_cells(formatting)
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


def _wrap_by_cells(formatting: Any) -> None:
    """Chinese --help fits the terminal: click measures text in characters, so a line of
    Chinese (two cells a character) came out twice the terminal's width. Widths are counted
    in cells, and a paragraph with wide characters breaks between them (as cli/terminal.py
    breaks doctor's lines); text without any wraps exactly as click wraps it."""
    from rich.cells import cell_len

    click_wrap = formatting.wrap_text
    strip_ansi = getattr(formatting, "strip_ansi", None) or (lambda text: text)

    def wrap_text(text: str, width: int = 78, initial_indent: str = "",
                  subsequent_indent: str = "", preserve_paragraphs: bool = False) -> str:
        if not _WIDE.search(text):
            return str(click_wrap(text, width, initial_indent, subsequent_indent,
                                  preserve_paragraphs))
        from sdboot.cli.terminal import breaks  # wide text only: not on every start

        out = []
        paragraphs = re.split(r"\n[ \t]*\n", text.expandtabs()) if preserve_paragraphs \
            else [text]
        for para in paragraphs:
            lines = para.splitlines()
            if lines and lines[0].strip() == "\b":  # click's "keep as written" block
                out.append("\n".join(initial_indent + line for line in lines[1:]))
                continue
            plain = " ".join(line.strip() for line in lines)
            first = max(width - len(initial_indent), 10)
            cuts = breaks(plain, first, len(subsequent_indent) - len(initial_indent))
            pieces = [plain[a:b].rstrip()
                      for a, b in zip([0, *cuts], [*cuts, len(plain)], strict=True)]
            out.append("\n".join((initial_indent if i == 0 else subsequent_indent) + piece
                                 for i, piece in enumerate(pieces)))
        return "\n\n".join(out)

    formatting.wrap_text = wrap_text
    formatting.term_len = lambda text: cell_len(strip_ansi(text))


_WIDE = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")


def _table(*rows: tuple[str, str]) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(pattern), msgid) for pattern, msgid in rows]


# click's usage errors, as its vendored copy words them; the English stays as click wrote it
_USAGE = _table(
    (r"No such option: (?P<name>\S+) \(Possible options: (?P<options>.+)\)",
     N_("No such option: {name} (possible options: {options})")),
    (r"No such option: (?P<name>\S+)", N_("No such option: {name}")),
    (r"No such command (?P<name>'.+')\. Did you mean (?P<guess>'.+')\?",
     N_("No such command {name}. Did you mean {guess}?")),
    (r"No such command (?P<name>'.+')\.", N_("No such command {name}.")),
    (r"Missing argument (?P<name>.+)\.", N_("Missing argument {name}.")),
    (r"Missing option (?P<name>.+)\.", N_("Missing option {name}.")),
    (r"Missing parameter (?P<name>.+)\.", N_("Missing parameter {name}.")),
    (r"Missing command\.", N_("Missing command.")),
    (r"Got unexpected extra argument\(s\) \((?P<args>.*)\)",
     N_("Got unexpected extra argument(s) ({args})")),
    (r"Option (?P<name>'.+') requires an argument\.",
     N_("Option {name} requires an argument.")),
    (r"Option (?P<name>'.+') requires (?P<count>\d+) arguments\.",
     N_("Option {name} requires {count} arguments.")),
    (r"Option (?P<name>'.+') does not take a value\.",
     N_("Option {name} does not take a value.")),
    (r"Invalid value for (?P<name>.+?): (?P<reason>.+)",
     N_("Invalid value for {name}: {reason}")),
    (r"Invalid value: (?P<reason>.+)", N_("Invalid value: {reason}")),
)
_REASONS = _table(
    (r"(?P<value>.+) is not in the range (?P<range>.+)\.",
     N_("{value} is not in the range {range}.")),
    (r"(?P<value>.+) is not a valid (?P<kind>.+)\.", N_("{value} is not a valid {kind}.")),
    (r"(?P<value>.+) is not one of (?P<choices>.+)\.",
     N_("{value} is not one of {choices}.")),
)

# click's names of its number types, as they appear in "'x' is not a valid {kind}."
_KINDS = {"integer": N_("integer"), "int range": N_("integer"), "float": N_("number"),
          "float range": N_("number")}


def _translated(text: str, table: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, msgid in table:
        match = pattern.fullmatch(text)
        if match:
            values = dict(match.groupdict())
            if "reason" in values:
                values["reason"] = _translated(values["reason"], _REASONS)
            if values.get("kind") in _KINDS:
                values["kind"] = _(_KINDS[values["kind"]])
            try:
                return _(msgid).format(**values)
            except (KeyError, IndexError, ValueError):
                return text
    return text


def usage_error(text: str) -> Text:
    """click's usage error: the English as click wrote it, the translation in .localized."""
    return Text(text, _translated(text, _USAGE))
