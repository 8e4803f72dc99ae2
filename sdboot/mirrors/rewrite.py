"""Launch-file rewriting, the seed's way of mirroring GitHub: text in, text out. Only the
string literals that Python's own tokenizer finds are touched (comments, commented-out
assignments and code stay as they are), and every byte outside the rewritten URLs, line
endings included, is kept. Applying twice equals applying once; a new prefix replaces the
old one; prefix None brings the URLs back to their upstream form."""

from __future__ import annotations

import io
import tokenize
from dataclasses import dataclass

from sdboot.errors import SdbootError
from sdboot.i18n import t
from sdboot.mirrors.table import retarget

# Python 3.12 splits f-strings into FSTRING_START/MIDDLE/END tokens and 3.14 adds t-strings;
# before 3.12 an f-string is one STRING token. Absent names are None.
_OPENERS = {t for t in (getattr(tokenize, "FSTRING_START", None),
                        getattr(tokenize, "TSTRING_START", None)) if t is not None}
_CLOSERS = {t for t in (getattr(tokenize, "FSTRING_END", None),
                        getattr(tokenize, "TSTRING_END", None)) if t is not None}


@dataclass(frozen=True)
class UrlChange:
    line: int
    old: str
    new: str


@dataclass(frozen=True)
class Rewrite:
    text: str
    changes: tuple[UrlChange, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def literal_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of every string literal, f-strings whole."""
    return [(start, end) for start, end, _line in _literals(text)]


def _literals(text: str) -> list[tuple[int, int, int]]:
    """(start, end, line) of every string literal. Linear in the size of the text: the
    offset of each line is computed once, and every token's position is one lookup."""
    starts = [0]  # offset of each line as the tokenizer numbers them (split at \n only)
    for line in io.StringIO(text, newline=""):
        starts.append(starts[-1] + len(line))

    def offset(pos: tuple[int, int]) -> int:
        return starts[pos[0] - 1] + pos[1]

    spans: list[tuple[int, int, int]] = []
    depth = 0
    opened = (0, 0)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text, newline="").readline):
            if tok.type in _OPENERS:
                if depth == 0:
                    opened = (offset(tok.start), tok.start[0])
                depth += 1
            elif tok.type in _CLOSERS:
                depth -= 1
                if depth == 0:
                    spans.append((opened[0], offset(tok.end), opened[1]))
            elif tok.type == tokenize.STRING and depth == 0:
                spans.append((offset(tok.start), offset(tok.end), tok.start[0]))
    except (tokenize.TokenError, SyntaxError) as exc:
        raise SdbootError(t("the launch file is not valid Python ({error})", error=exc),
                          t("restore it with `git checkout -- <file>` and try again")) from None
    return spans


def rewrite_text(text: str, prefix: str | None, host_bases: tuple[str, ...] = ()) -> Rewrite:
    """Retarget the GitHub URLs inside the string literals of Python source `text`. The
    output is built from a list of pieces, each byte of the input copied once."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom):]
    out: list[str] = [bom]
    changes: list[UrlChange] = []
    pos = 0
    for start, end, line in _literals(body):
        literal = body[start:end]
        new = retarget(literal, prefix, host_bases)
        if new == literal:
            continue
        changes.append(UrlChange(line, literal, new))
        out.append(body[pos:start])
        out.append(new)
        pos = end
    out.append(body[pos:])
    return Rewrite("".join(out), tuple(changes))


def check_compiles(text: str, name: str) -> None:
    try:
        compile(text.removeprefix("\ufeff"), name, "exec", dont_inherit=True)
    except SyntaxError as exc:  # a bug in the rewrite, never the user's fault
        raise AssertionError(f"rewritten {name} does not compile: {exc}") from exc
