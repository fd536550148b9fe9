"""`archdsl fmt`: one layout for every spec, comments kept.

The grammar ignores comments and white space, so the formatter reads the parser's tokens
(with their punctuation) and takes the comments from the gaps between them. It keeps the
line structure as written and normalises the rest:

- a layer token is one word: `conv3-64/2(pad=valid, dilation=2)`, `conv1-(4*c)`;
- one space between terms and around `->`, `=` of statements and settings, `|`, `*` and the
  operators of arithmetic outside a token; none inside brackets, before `,` and a label's `:`,
  and after `@`;
  `residual< … >` and `inception< … >` are spaced inside, `se<16>` is not;
- indentation follows the brackets: 2 spaces inside `[`, `(` and `{`, 4 inside `< … >`,
  where a line starting with `|` sits 2 to the left so that branches line up;
- a layer name in mixed case is written in lower case (`ReLU` → `relu`); in lower case or
  all capitals (`FC-4096`, `LRN`, as the papers' tables print them) it stays;
- trailing `# → shape` comments of consecutive lines are aligned; any other trailing
  comment keeps its column where the code leaves room for it; at most one blank line in a
  row, no trailing spaces, one newline at the end.

The result is checked before it is returned: it must parse to the same tokens (layer names'
case aside) with the same comments, or `FormatError` is raised and nothing is written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from lark import Token, Tree
from lark.exceptions import UnexpectedInput

from .errors import ArchError, Source
from .expand import resolve_family
from .grammar import parser
from .parser import parse

INDENT = {"(": 2, "[": 2, "{": 2, "<": 4}
CLOSERS = {")": "(", "]": "[", "}": "{", ">": "<"}
_COMMENT = re.compile(r"#[^\n]*")
_SHAPE_COMMENT = re.compile(r"#\s*→")
# rules whose `=` binds a name to a value inside parentheses: `s=1`, `pad=valid`
_TIGHT_EQUALS = ("param", "keyword_arg")
_NAME_TYPES = ("LAYER_NAME", "NAME")
_CALLED = _NAME_TYPES + ("SPLIT",)  # written against their parentheses: conv3-8(pad=1), split(24, 40)


class FormatError(ArchError):
    """The formatter would change what a spec means (a bug in archdsl): nothing is written."""


@dataclass(frozen=True)
class Tok:
    value: str
    type: str
    line: int
    col: int
    rule: str  # the grammar rule whose tree holds the token
    layer: int | None  # which layer token (by its tree's id) it is part of, if any
    terms_inside: bool  # for `<` and `>`: the composite encloses layers (spaced), not one expression


def format_text(text: str, name: str = "<spec>", path: Path | None = None,
                files: Mapping[Path, str] | None = None) -> str:
    """The formatted spec. Raises ArchError for text that does not parse, FormatError if the layout failed."""
    source = Source(name, text)
    spec = parse(source)  # the syntax errors `check` gives, with their places
    blocks = _block_names(spec, path, files)
    tokens = list(_tokens(text))
    comments = _comments(text, tokens)
    lines = _layout(tokens, comments, blocks)
    result = _join(lines)
    _verify(text, result, name)
    return result


def _block_names(spec, path: Path | None, files) -> set[str] | None:
    """Every block name a layer token may call (own and imported); None where an import cannot be read."""
    from .loader import Loader

    try:
        return set(Loader(files).main_context(spec, path).blocks)
    except ArchError:
        return None


# ---- tokens and comments ----


def _tokens(text: str) -> Iterator[Tok]:
    """The tokens in order, each with the rule that holds it (an explicit stack: deep specs stay off
    Python's recursion limit)."""
    tree = parser(keep_all_tokens=True).parse(text)
    stack: list[tuple[Tree | Token, Tree | None, int | None]] = [(tree, None, None)]
    while stack:
        node, parent, layer = stack.pop()
        if isinstance(node, Token):
            terms = any(isinstance(c, Tree) and c.data == "branch" for c in parent.children)
            yield Tok(str(node), node.type, node.line, node.column, parent.data, layer, terms)
            continue
        if node.data == "layer":
            layer = id(node)
        stack.extend((child, node, layer) for child in reversed(node.children) if child is not None)


def _comments(text: str, tokens: list[Tok]) -> dict[int, tuple[str, int]]:
    """Line → (comment, its column): every comment lies in a gap between tokens."""
    found: dict[int, tuple[str, int]] = {}
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    bounds = [0] + [starts[t.line - 1] + t.col - 1 + len(t.value) for t in tokens]
    ends = [starts[t.line - 1] + t.col - 1 for t in tokens] + [len(text)]
    for begin, end in zip(bounds, ends):
        for match in _COMMENT.finditer(text, begin, end):
            line = text.count("\n", 0, match.start()) + 1
            found[line] = (match.group().rstrip(), match.start() - starts[line - 1])
    return found


# ---- layout ----


def _spacing(a: Tok, b: Tok) -> str:
    if a.layer is not None and a.layer == b.layer:
        return " " if a.value == "," else ""
    va, vb = a.value, b.value
    if va in ("(", "[") or vb in (")", "]", ",", ":"):  # `"conv2_x": …`: a label's colon follows it
        return ""
    if va == "," or va == ">":
        return " "
    if va == "@" or (va == "-" and a.rule == "neg"):
        return ""
    if vb == "(":
        return "" if a.type in _CALLED else " "
    if vb == "<":
        return ""
    if va == "<" or vb == ">":
        return " " if a.terms_inside or b.terms_inside else ""
    if "=" in (va, vb):
        return "" if (a if va == "=" else b).rule in _TIGHT_EQUALS else " "
    return " "


def _safe(a: Tok, b: Tok, space: str) -> str:
    """Never glue two tokens into one the lexer would read differently (`relu relu`, `- >`, `/ /`)."""
    if space:
        return space
    word = lambda ch: ch.isalnum() or ch == "_"  # noqa: E731
    if word(a.value[-1]) and word(b.value[0]):
        return " "
    if (a.value[-1], b.value[0]) in (("-", ">"), ("/", "/"), ("-", "-")):
        return " "
    if a.value.lower() == "soft" and b.value == "-":  # `soft -max` glued is the lexer's one token `soft-max`
        return " "
    return ""


def _case(tok: Tok, blocks: set[str] | None) -> str:
    """A layer name in mixed case → lower case; block names, lower case and all capitals stay."""
    value = tok.value
    is_family_name = tok.type in ("LAYER_NAME", "SOFTMAX_DASH") or (
        tok.type == "NAME" and tok.rule in ("after_stmt", "defaults_stmt"))
    if not is_family_name or blocks is None or value in blocks or value.islower() or value.isupper():
        return value
    return value.lower() if resolve_family(value)[0] is not None or tok.type == "SOFTMAX_DASH" else value


@dataclass
class _Line:
    indent: int
    code: str
    comment: str | None = None
    comment_col: int = 0  # where the comment stood in the original line

    @property
    def blank(self) -> bool:
        return not self.code and self.comment is None


def _layout(tokens: list[Tok], comments: dict[int, tuple[str, int]], blocks) -> list[_Line]:
    by_line: dict[int, list[Tok]] = {}
    for tok in tokens:
        by_line.setdefault(tok.line, []).append(tok)
    last = max([*by_line, *comments, 1])
    open_brackets: list[str] = []
    lines: list[_Line] = []
    for number in range(1, last + 1):
        toks = by_line.get(number, [])
        depth = list(open_brackets)
        for tok in toks:  # closers that start the line take their level with them
            if tok.value in CLOSERS and depth and depth[-1] == CLOSERS[tok.value]:
                depth.pop()
            else:
                break
        indent = sum(INDENT[b] for b in depth)
        if toks and toks[0].value == "|":
            indent = max(0, indent - 2)
        code = ""
        for i, tok in enumerate(toks):
            if i:
                code += _safe(toks[i - 1], tok, _spacing(toks[i - 1], tok))
            code += _case(tok, blocks)
            if tok.value in INDENT and tok.type != "STRING":
                open_brackets.append(tok.value)
            elif tok.value in CLOSERS and open_brackets and open_brackets[-1] == CLOSERS[tok.value]:
                open_brackets.pop()
        comment, column = comments.get(number, (None, 0))
        lines.append(_Line(indent if (code or comment) else 0, code, comment, column))
    return lines


def _join(lines: list[_Line]) -> str:
    # at most one blank line in a row, none at the start or the end
    kept: list[_Line] = []
    for line in lines:
        if line.blank and (not kept or kept[-1].blank):
            continue
        kept.append(line)
    while kept and kept[-1].blank:
        kept.pop()
    columns = _comment_columns(kept)
    out = []
    for i, line in enumerate(kept):
        text = " " * line.indent + line.code if line.code else ""
        if line.comment is not None:
            text = f"{text}{' ' * (columns[i] - len(text))}{line.comment}" if line.code else " " * line.indent + line.comment
        out.append(text.rstrip())
    return "\n".join(out) + "\n"


def _comment_columns(lines: list[_Line]) -> dict[int, int]:
    """Where each trailing comment starts: `# →` runs aligned, others where they stood if there is room."""
    columns: dict[int, int] = {}
    run: list[int] = []

    def close_run() -> None:
        if run:
            target = max(max(_code_end(lines[i]) + 2 for i in run), max(lines[i].comment_col for i in run))
            for i in run:
                columns[i] = target
            run.clear()

    for i, line in enumerate(lines):
        if line.code and line.comment is not None and _SHAPE_COMMENT.match(line.comment):
            run.append(i)
            continue
        close_run()
        if line.code and line.comment is not None:
            columns[i] = max(_code_end(line) + 2, line.comment_col)
    close_run()
    return columns


def _code_end(line: _Line) -> int:
    return line.indent + len(line.code)


# ---- the check ----


def _signature(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    tokens = list(_tokens(text))
    comments = [comment for _, (comment, _) in sorted(_comments(text, tokens).items())]
    return [(t.type, t.value.lower()) for t in tokens], comments


def _verify(before: str, after: str, name: str) -> None:
    try:
        same = _signature(before) == _signature(after)
    except UnexpectedInput:
        same = False
    if not same:
        raise FormatError(
            f"{name}: formatting would change the spec (a bug in archdsl fmt); the file is left as it is."
            " Please report it with the spec")
