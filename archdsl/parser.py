"""Text → `archdsl.ast.Spec`: lark parses, `ToAst` builds frozen dataclasses.

Lark's own exceptions never leave this module: they become `SpecSyntaxError`
with the position, what the grammar expected there and what it received.
"""
from __future__ import annotations

import itertools
import re

from lark import Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import ast
from .errors import ArchError, Source, Span, SpecSyntaxError
from .grammar import parser as lark_parser

# How the grammar's terminals read in an error message.
_TERMINAL_WORDS = {
    "LAYER_NAME": "a layer",
    "SOFTMAX_DASH": "a layer",
    "NAME": "a name",
    "INT": "a number",
    "FLOAT": "a number",
    "DIMS": "sizes like 3x224x224",
    "STRING": 'a "quoted" path or label',
    "$END": "the end of the file",
}


# The most digits a number may be written with. Sizes stop at 10^15 and train values
# at 2^32 long before this; the bound keeps Python's int() (which refuses 4,300
# digits) and every later step from seeing a number of thousands of digits.
MAX_DIGITS = 100
_DIGIT_RUNS = re.compile(r"[0-9]{%d,}" % (MAX_DIGITS + 1))


def _check_digits(source: Source, tok: Token) -> None:
    """A SpecSyntaxError when a token (a number, sizes, a glued kernel as in conv3x3) holds a too-long number."""
    match = _DIGIT_RUNS.search(str(tok))
    if match is None:
        return
    digits = match.group()
    line, col = tok.line, tok.column + match.start()
    raise SpecSyntaxError(
        f"a number written with {len(digits):,} digits; expected at most {MAX_DIGITS} digits."
        f" Received: {digits[:6]}…{digits[-3:]}",
        Span(source, line, col, line, col + len(digits)),
    )


# The most tokens one spec file may hold. Parsing costs about 20 µs a token, so a
# file of a million one-letter layers would keep `check` (and the editor) busy for
# most of a minute before any later limit could speak; real specs hold a few
# thousand. Counted with one regular expression, which errs on the side of more
# tokens than lark sees (`soft-max` counts three).
MAX_TOKENS = 100_000
_TOKENS = re.compile(r'#[^\n]*|"[^"\n]*"|[A-Za-z0-9_.]+|\S')


def _check_token_count(source: Source) -> None:
    """A SpecSyntaxError at the first token past MAX_TOKENS, found before lark reads any of them."""
    tokens = _TOKENS.finditer(source.text)
    past = next(itertools.islice(tokens, MAX_TOKENS, None), None)
    if past is None:
        return
    line = source.text.count("\n", 0, past.start()) + 1
    col = past.start() - (source.text.rfind("\n", 0, past.start()) + 1) + 1
    raise SpecSyntaxError(
        f"the spec holds more than {MAX_TOKENS:,} tokens (names, numbers and symbols), the most archdsl reads in"
        f" one file; write repeated layers once, with `* n` or a block. Received: token {MAX_TOKENS + 1:,} here",
        Span(source, line, col, line, col + len(past.group())),
    )


def _span(source: Source, meta_or_token) -> Span:
    m = meta_or_token
    if isinstance(m, Token):
        return Span(source, m.line, m.column, m.end_line, m.end_column)
    if getattr(m, "empty", False):
        return Span(source, 1, 1, 1, 1)
    return Span(source, m.line, m.column, m.end_line, m.end_column)


@v_args(meta=True, inline=True)
class ToAst(Transformer):
    """Builds the AST. Method names match the grammar's rules and `-> alias` names."""

    def __init__(self, source: Source):
        super().__init__(visit_tokens=False)  # no token callbacks here: skipping them is faster
        self.source = source

    def _s(self, meta) -> Span:
        return _span(self.source, meta)

    # ---- expressions ----
    def number(self, meta, tok):
        _check_digits(self.source, tok)
        text = str(tok)
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return ast.Num(value, self._s(meta))

    def var(self, meta, tok):
        return ast.Var(str(tok), self._s(meta))

    def dims(self, meta, tok):
        _check_digits(self.source, tok)
        return ast.Dims(tuple(int(v) for v in str(tok).split("x")), self._s(meta))

    def string(self, meta, tok):
        return ast.Str(str(tok)[1:-1], self._s(meta))

    def ref_arg(self, meta, tok):
        return ast.RefArg(str(tok), self._s(meta))

    def _binop(op):  # noqa: N805 - a factory for the four arithmetic methods below
        def method(self, meta, left, right):
            return ast.BinOp(op, left, right, self._s(meta))

        return method

    add = _binop("+")
    sub = _binop("-")
    mul = _binop("*")
    div = _binop("/")
    floordiv = _binop("//")
    mod = _binop("%")
    del _binop

    def neg(self, meta, operand):
        return ast.Neg(operand, self._s(meta))

    # ---- arguments ----
    def arglist(self, meta, *args):
        return tuple(a if isinstance(a, ast.Arg) else ast.Arg(None, a, a.span) for a in args)

    def keyword_arg(self, meta, name, value):
        return ast.Arg(str(name), value, self._s(meta))

    # ---- terms ----
    def layer(self, meta, name, dimension, stride, args):
        _check_digits(self.source, name)  # a glued kernel size: conv3x3
        return ast.Layer(str(name), self._s(name), dimension, stride, args or (), self._s(meta))

    def group(self, meta, *terms):
        return ast.Group(tuple(terms), self._s(meta))

    def branch(self, meta, *terms):
        return ast.Branch(tuple(terms), self._s(meta))

    def inception(self, meta, *branches):
        return ast.Inception(tuple(branches), self._s(meta))

    def residual(self, meta, body, shortcut):
        return ast.Residual(body, shortcut, self._s(meta))

    def se(self, meta, args):
        return ast.SqueezeExcite(args or (), self._s(meta))

    def split(self, meta, sizes, *names):
        return ast.Split(sizes or (), tuple((str(n), self._s(n)) for n in names), self._s(meta))

    def ref(self, meta, name):
        return ast.Ref(str(name), self._s(meta))

    def name_as(self, meta, name):
        return ast.NameAs(str(name), self._s(meta))

    def repeat(self, meta, term, count):
        return ast.Repeat(term, count, self._s(meta))

    def labelled(self, meta, text, term):
        label = " ".join(str(text)[1:-1].split())
        if not label:
            raise SpecSyntaxError(
                'a label needs text, as in "conv2_x": basic(64) * 2. Received: an empty label', self._s(text)
            )
        return ast.Labelled(label, self._s(text), term, self._s(meta))

    # ---- statements ----
    def network_decl(self, meta, name):
        return ("network", (str(name), self._s(name)))

    def input_decl(self, meta, tok):
        _check_digits(self.source, tok)
        return ("input", (tuple(int(v) for v in str(tok).split("x")), self._s(meta)))

    def use_stmt(self, meta, path):
        return ast.Use(str(path)[1:-1], self._s(meta))

    def param(self, meta, name, default):
        return ast.Param(str(name), default, self._s(meta))

    def block_def(self, meta, name, *rest):
        *params, body = rest
        params = tuple(p for p in params if p is not None)
        return ast.BlockDef(str(name), params, body, self._s(meta))

    def after_stmt(self, meta, family, term):
        return ast.After(str(family).lower(), term, self._s(meta))

    def defaults_stmt(self, meta, family, args):
        return ast.Defaults(str(family).lower(), args, self._s(meta))

    def call(self, meta, name, args):
        return ast.Call(str(name), args or (), self._s(meta))

    def list(self, meta, *items):
        return ast.ListValue(tuple(i for i in items if i is not None), self._s(meta))

    def setting(self, meta, key, value):
        return ast.Setting(str(key), value, self._s(meta))

    def train_section(self, meta, *settings):
        return ("train", (tuple(settings), self._s(meta)))

    def start(self, meta, *items):
        return items


def _describe_expected(expected: set[str]) -> str:
    parser = lark_parser()
    words = []
    for name in sorted(expected):
        word = _TERMINAL_WORDS.get(name)
        if word is None:
            try:
                pattern = parser.get_terminal(name).pattern
                word = f"'{pattern.value}'" if pattern.type == "str" else name.lower()
            except KeyError:
                word = name.lower()
        if word not in words:
            words.append(word)
    if len(words) > 8:
        words = words[:8] + ["…"]
    return ", ".join(words)


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    return repr(str(token))


def _syntax_error(source: Source, exc: UnexpectedInput) -> SpecSyntaxError:
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            lines = source.text.rstrip().splitlines() or [""]
            line, col = len(lines), max(1, len(lines[-1]))
            span = Span(source, line, col, line, col + 1)
        else:
            span = _span(source, tok)
        message = (
            f"{'the spec ends too early' if tok.type == '$END' else f'unexpected {_describe_token(tok)}'};"
            f" expected {_describe_expected(exc.accepts or exc.expected)}."
            f" Received: {_describe_token(tok)}"
        )
        return SpecSyntaxError(message, span)
    if isinstance(exc, UnexpectedCharacters):
        char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else ""
        span = Span(source, exc.line, exc.column, exc.line, exc.column + 1)
        expected = _describe_expected(set(exc.allowed or ()))
        return SpecSyntaxError(f"unexpected character {char!r}; expected {expected}. Received: {char!r}", span)
    if isinstance(exc, UnexpectedEOF):
        lines = source.text.rstrip().splitlines() or [""]
        span = Span(source, len(lines), max(1, len(lines[-1])), len(lines), len(lines[-1]) + 1)
        return SpecSyntaxError(f"the spec ends too early; expected {_describe_expected(set(exc.expected))}", span)
    return SpecSyntaxError(str(exc), None)


# How deep the syntax tree may nest (brackets, composites, arithmetic): the passes
# after the parser recurse, and must stay far from Python's recursion limit.
MAX_DEPTH = 100


def _check_depth(source: Source, tree: Tree) -> None:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SpecSyntaxError(
                f"the spec nests more than {MAX_DEPTH} levels deep (brackets, composites or arithmetic)."
                f" Received: level {depth} here",
                _span(source, node.meta),
            )
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def parse(source: Source) -> ast.Spec:
    """Parse one spec file's text into an `ast.Spec`."""
    if not source.text.strip() or all(line.lstrip().startswith("#") or not line.strip() for line in source.text.splitlines()):
        raise SpecSyntaxError(
            "empty spec; expected at least `input CxHxW` and one layer. Received: an empty file",
            Span(source, 1, 1, 1, 1),
        )
    _check_token_count(source)
    try:
        tree = lark_parser().parse(source.text)
    except UnexpectedInput as exc:
        raise _syntax_error(source, exc) from None
    _check_depth(source, tree)
    try:
        items = ToAst(source).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ArchError):
            raise exc.orig_exc from None
        raise
    return _assemble(source, items)


def _assemble(source: Source, items) -> ast.Spec:
    name = input_ = train_span = None
    uses, blocks, afters, defaults, train, body = [], [], [], [], [], []
    for item in items:
        if isinstance(item, tuple):
            kind, value = item
            if kind == "network":
                if name is not None:
                    raise SpecSyntaxError("the network is named twice; expected one `network NAME`", value[1])
                name = value
            elif kind == "input":
                if input_ is not None:
                    raise SpecSyntaxError(
                        "a second `input`; a spec has one input (name tensors with `-> name` for branches)", value[1]
                    )
                input_ = value
            else:  # train
                if train_span is not None:
                    raise SpecSyntaxError("a second `train` section; merge the settings into one", value[1])
                train, train_span = list(value[0]), value[1]
        elif isinstance(item, ast.Use):
            uses.append(item)
        elif isinstance(item, ast.BlockDef):
            blocks.append(item)
        elif isinstance(item, ast.After):
            afters.append(item)
        elif isinstance(item, ast.Defaults):
            defaults.append(item)
        else:
            body.append(item)
    return ast.Spec(
        source=source,
        name=name,
        input=input_,
        uses=tuple(uses),
        blocks=tuple(blocks),
        afters=tuple(afters),
        defaults=tuple(defaults),
        train=tuple(train),
        train_span=train_span,
        body=tuple(body),
    )
