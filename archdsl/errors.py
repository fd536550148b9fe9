"""One exception root for everything a user can get wrong, carrying a source span.

Every message a user sees is formatted the way compilers do it:

    specs/vgg.arch:12:5: error: unknown layer 'cnov3'; did you mean 'conv'?
        cnov3-64
        ^~~~~~~~

so that editors can jump to the spot, and so that the CLI never shows a traceback.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Iterable


@dataclass(frozen=True)
class Source:
    """The text of one spec file (or of a string passed to `archdsl.load`)."""

    name: str
    text: str = field(repr=False)

    @functools.cached_property
    def lines(self) -> list[str]:
        # Split on "\n" only, as the parser counts lines: str.splitlines() also breaks at
        # form feeds, \x1c-\x1e, \x85 and \u2028, which would show the wrong line.
        return [line.removesuffix("\r") for line in self.text.split("\n")]

    def line(self, number: int) -> str:
        lines = self.lines  # split once: every layer's token and error excerpt reads its line
        return lines[number - 1] if 0 < number <= len(lines) else ""


# The most characters of a source line an error shows.
EXCERPT_WIDTH = 120


@dataclass(frozen=True)
class Span:
    """Where something was written: 1-based line and column, end exclusive."""

    source: Source
    line: int
    col: int
    end_line: int
    end_col: int

    @property
    def file(self) -> str:
        return self.source.name

    def __str__(self) -> str:
        return f"{self.source.name}:{self.line}:{self.col}"

    def excerpt(self) -> str:
        """The source line with a caret under the span (clipped to that line)."""
        text = self.source.line(self.line)
        if not text.strip():
            return ""
        # control characters (a binary file's, an escape sequence) are not echoed to the terminal
        text = "".join(c if c.isprintable() or c == "\t" else "\ufffd" for c in text)
        expanded = text.expandtabs(4)
        indent = len(text[: self.col - 1].expandtabs(4))
        end = self.end_col if self.end_line == self.line else len(text) + 1
        width = max(1, len(text[self.col - 1 : end - 1].expandtabs(4)))
        if len(expanded) > EXCERPT_WIDTH:  # a line of thousands of characters: the part around the caret
            start = max(0, min(indent - EXCERPT_WIDTH // 4, len(expanded) - EXCERPT_WIDTH))
            shown = expanded[start : start + EXCERPT_WIDTH]
            lead = "…" if start else ""
            expanded = lead + shown + ("…" if start + EXCERPT_WIDTH < len(expanded) else "")
            indent = indent - start + len(lead)
            width = min(width, EXCERPT_WIDTH - (indent - len(lead)))
        return f"    {expanded}\n    {' ' * indent}^{'~' * (width - 1)}"


def _format(kind: str, message: str, span: Span | None) -> str:
    if span is None:
        return f"{kind}: {message}"
    excerpt = span.excerpt()
    head = f"{span}: {kind}: {message}"
    return f"{head}\n{excerpt}" if excerpt else head


# The most characters of a message, and of one word in it. A message that interpolates
# a huge spec's text (a path of thousands of characters, a call with 10,000 arguments)
# keeps each word's ends, then the message's head, which says what is wrong, and its
# tail, which says what was received.
MESSAGE_WIDTH = 1000
WORD_WIDTH = 240
_LONG_WORD = re.compile(r"\S{%d,}" % (WORD_WIDTH + 1))


def clip_message(message: str) -> str:
    if len(message) <= WORD_WIDTH:
        return message
    message = _LONG_WORD.sub(lambda m: f"{m.group()[:WORD_WIDTH // 2]}…{m.group()[-WORD_WIDTH // 3:]}", message)
    if len(message) <= MESSAGE_WIDTH:
        return message
    head, tail = message[: MESSAGE_WIDTH * 2 // 3], message[-(MESSAGE_WIDTH // 3):]
    return f"{head} … ({len(message) - len(head) - len(tail):,} characters left out) … {tail}"


class ArchError(Exception):
    """The root of every error archdsl reports to a user.

    `span` is where in a spec the problem was written, when it was written
    anywhere; backends raise it without a span for problems outside a spec
    (a missing dataset, a checkpoint that does not fit).
    """

    def __init__(self, message: str, span: Span | None = None):
        message = clip_message(message)
        super().__init__(message)
        self.message = message
        self.span = span

    def with_span(self, span: Span | None) -> "ArchError":
        """This error, placed at `span` unless it already has a place."""
        if self.span is None and span is not None:
            self.span = span
        return self

    def format(self) -> str:
        return _format("error", self.message, self.span)

    def __str__(self) -> str:
        return self.format()


class SpecSyntaxError(ArchError):
    """The text is not a spec: a token where the grammar has no place for it."""


class SpecNameError(ArchError):
    """An unknown layer, block, option or tensor name."""


class SpecArgumentError(ArchError):
    """A layer or block got arguments it cannot take."""


class ShapeError(ArchError):
    """Tensor shapes that do not fit together."""


class ExpansionError(ArchError):
    """Blocks that recurse or expand to more layers than archdsl will build."""


class SpecImportError(ArchError):
    """A `use` that names a missing file, or files that import each other."""


@dataclass(frozen=True)
class ArchWarning:
    """Something legal but probably wrong (a layer whose windows skip input rows)."""

    message: str
    span: Span | None = None

    def format(self) -> str:
        return _format("warning", self.message, self.span)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest candidate, or '' when none is close."""
    import difflib  # only when something is misspelled: it costs start-up time otherwise

    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(name.lower(), list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
