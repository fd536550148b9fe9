"""The syntax tree of a spec: frozen dataclasses, one per construct of the grammar.

The parser builds these from lark's tree; `archdsl.expand` turns them into the
graph IR. Nothing here knows about shapes or layer semantics.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from .errors import Span

# ---- expressions (arithmetic on block parameters, option values) ----


@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Var:
    name: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / // %
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Dims:
    """`3x224x224` or `1x7`: a tuple of sizes."""

    values: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class Str:
    value: str
    span: Span


@dataclass(frozen=True)
class RefArg:
    """`@name` as an argument: `concat(@e1)`, `add(@x)`."""

    name: str
    span: Span


Expr = Union[Num, Var, BinOp, Neg, Dims, Str, RefArg, "Call"]


@dataclass(frozen=True)
class Arg:
    keyword: str | None
    value: Expr
    span: Span


# ---- layer terms ----


@dataclass(frozen=True)
class Layer:
    """`conv3-64/2(pad=valid)`: a name, an optional `-dimension`, `/stride`, and arguments.

    `name` is written as in the spec (`conv3x3`, `FC`, `soft-max`, or a block's name);
    the layer registry splits it into a family and a kernel size.
    """

    name: str
    name_span: Span
    dimension: Expr | None
    stride: Expr | None
    args: tuple[Arg, ...]
    span: Span

    @property
    def text(self) -> str:
        """The layer exactly as written, for tables and diagrams."""
        s = self.span
        if s.line != s.end_line:
            return s.source.line(s.line)[s.col - 1 :].strip()
        return s.source.line(s.line)[s.col - 1 : s.end_col - 1]


@dataclass(frozen=True)
class Group:
    terms: tuple["Term", ...]
    span: Span


@dataclass(frozen=True)
class Branch:
    terms: tuple["Term", ...]
    span: Span


@dataclass(frozen=True)
class Inception:
    branches: tuple[Branch, ...]
    span: Span


@dataclass(frozen=True)
class Residual:
    body: Branch
    shortcut: Branch | None  # None: identity, or a projection where shapes change
    span: Span


@dataclass(frozen=True)
class SqueezeExcite:
    """`se<16>`, `se<4, act=silu, gate=hardsigmoid, form=conv>`, `se<squeeze=8>`."""

    args: tuple["Arg", ...]
    span: Span


@dataclass(frozen=True)
class Split:
    """`split -> a, b` (equal parts) or `split(24, 40) -> a, b`: the channels cut into named parts."""

    sizes: tuple["Arg", ...]
    names: tuple[tuple[str, Span], ...]
    span: Span


@dataclass(frozen=True)
class Ref:
    """`@name`: continue from a named tensor."""

    name: str
    span: Span


@dataclass(frozen=True)
class NameAs:
    """`-> name`: name the current tensor."""

    name: str
    span: Span


@dataclass(frozen=True)
class Labelled:
    """`"conv2_x": basic(64) * 2`: the name a reader knows the term's layer, block or stage by."""

    label: str
    label_span: Span
    term: "Term"
    span: Span


@dataclass(frozen=True)
class Repeat:
    term: "Term"
    count: Expr
    span: Span


Term = Union[Layer, Group, Inception, Residual, SqueezeExcite, Split, Ref, NameAs, Repeat, Labelled]

# ---- statements ----


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: Term
    span: Span
    source: "Spec | None" = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class After:
    """`after conv = [bn relu]`."""

    family: str
    term: Term
    span: Span


@dataclass(frozen=True)
class Defaults:
    """`defaults maxpool(ceil=true)`."""

    family: str
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True)
class Call:
    """`name(args)` as a value: a function of the arithmetic (`divisible(c * width, 8)`, see
    `evaluate.FUNCTIONS`), or a call in the train section (`sgd(momentum=0.9)`, `crop(pad=4)`)."""

    name: str
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True)
class ListValue:
    items: tuple["SettingValue", ...]
    span: Span


SettingValue = Union[Expr, Call, ListValue]


@dataclass(frozen=True)
class Setting:
    key: str
    value: SettingValue
    span: Span


@dataclass(frozen=True)
class Use:
    path: str
    span: Span


@dataclass(frozen=True)
class Spec:
    """One parsed file. `body` is the top-level network, in order."""

    source: "object"  # errors.Source
    name: tuple[str, Span] | None
    input: tuple[tuple[int, ...], Span] | None
    uses: tuple[Use, ...]
    blocks: tuple[BlockDef, ...]
    afters: tuple[After, ...]
    defaults: tuple[Defaults, ...]
    train: tuple[Setting, ...]
    train_span: Span | None
    body: tuple[Term, ...]
