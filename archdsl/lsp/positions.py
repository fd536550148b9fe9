"""Between archdsl's spans (1-based line and column, in characters, lines split at "\n" as the
parser counts them) and the LSP's positions (0-based line, column in the negotiated code units:
UTF-16 by default, UTF-8 or UTF-32 where the client asks for them)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from lsprotocol import types

from ..errors import Span

# the bytes one character takes in each encoding's code units
_UNITS = {
    types.PositionEncodingKind.Utf8: lambda ch: len(ch.encode("utf-8")),
    types.PositionEncodingKind.Utf16: lambda ch: 2 if ord(ch) > 0xFFFF else 1,
    types.PositionEncodingKind.Utf32: lambda ch: 1,
}


@dataclass(frozen=True)
class Lines:
    """One document's text as the parser counts its lines, and the client's code units."""

    text: str
    encoding: str = types.PositionEncodingKind.Utf16

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def _units(self, line: str, chars: int) -> int:
        count = _UNITS.get(self.encoding, _UNITS[types.PositionEncodingKind.Utf16])
        prefix = line[:chars]
        return chars if prefix.isascii() else sum(count(ch) for ch in prefix)

    def _chars(self, line: str, units: int) -> int:
        """The character index that `units` code units into `line` fall on (clamped to the line)."""
        if line.isascii():
            return max(0, min(units, len(line)))
        count = _UNITS.get(self.encoding, _UNITS[types.PositionEncodingKind.Utf16])
        used = 0
        for index, ch in enumerate(line):
            if used >= units:
                return index
            used += count(ch)
        return len(line)

    def line(self, number: int) -> str:
        lines = self.lines
        return lines[number] if 0 <= number < len(lines) else ""

    def position(self, line: int, col: int) -> types.Position:
        """A 1-based (line, column) in characters → an LSP position."""
        line0 = max(0, line - 1)
        return types.Position(line=line0, character=self._units(self.line(line0), max(0, col - 1)))

    def range(self, span: Span) -> types.Range:
        return types.Range(start=self.position(span.line, span.col), end=self.position(span.end_line, span.end_col))

    def offset(self, position: types.Position) -> tuple[int, int]:
        """An LSP position → a 1-based (line, column) in characters."""
        return position.line + 1, self._chars(self.line(position.line), position.character) + 1


def contains(span: Span, line: int, col: int) -> bool:
    """Whether the 1-based (line, col) is inside `span` or just after its end (where a cursor stops)."""
    start, end = (span.line, span.col), (span.end_line, span.end_col)
    return start <= (line, col) <= end


def span_key(span: Span) -> tuple[int, int, int, int]:
    return span.line, span.col, span.end_line, span.end_col
