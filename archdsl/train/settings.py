"""Reading one `train` setting's value: the AST (`Num`, `Var`, `Call`, `ListValue`) to Python values.

Every reader takes the `Setting` and raises `ArchError` at its span, so a bad
value in a spec is reported at the spec line, and a bad `--set key=value` at the
command line text (parsed by the same grammar, see `parse_override`).
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, Mapping

from archdsl import ast
from archdsl.errors import ArchError, Source, Span, did_you_mean
from archdsl.evaluate import Symbol, evaluate

COMMAND_LINE = "command line"
FLOAT32_MAX = 3.4028234663852886e38  # training computes in 32-bit floats: a setting beyond this overflows there


def as_float32(value: float) -> float:
    """`value` as a 32-bit float holds it: infinite beyond its range, 0 below its smallest step."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


@dataclass(frozen=True)
class Range:
    """What one number may be: its kind (int, float or bool) and its bounds, open or closed.

    Every train setting and every argument of an optimizer, schedule or augmentation
    has one, so that a value that cannot work (momentum −0.9, step(0), lr = 1e999)
    is an error at its spec line before anything trains, not a crash an epoch later.
    """

    kind: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is excluded
    high_open: bool = False

    def describe(self) -> str:
        def show(bound: float) -> str:
            return str(bound) if isinstance(bound, int) else f"{bound:g}"

        if self.kind is bool:
            return "true or false"
        what = "a whole number" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            return f"{what} in {'(' if self.low_open else '['}{show(self.low)}, {show(self.high)}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {show(self.low)}"
        if self.high is not None:
            return f"{what} {'<' if self.high_open else '<='} {show(self.high)}"
        return what

    def check(self, value: Any, what: str, span: Span | None) -> Any:
        """`value` when it is in range (an int for a float range becomes a float), else an ArchError at `span`."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ArchError(f"{what} expects true or false, got {_show(value)}", span)
            return value
        wrong_kind = isinstance(value, bool) or not isinstance(value, (int, float)) or (
            self.kind is int and not isinstance(value, int))
        if wrong_kind or not math.isfinite(value):
            raise ArchError(f"{what} expects {self.describe()}, got {_show(value)}", span)
        # The optimizer and the schedule compute in 32-bit floats: lr = 1e39 overflows there (torch
        # raises mid-step), and lr = 1e-320 is 0. A float setting is checked as training will hold it.
        held = as_float32(value) if self.kind is float else value
        if not math.isfinite(held):
            raise ArchError(f"{what} expects {self.describe()} within what training's 32-bit floats hold "
                            f"(at most {FLOAT32_MAX:.2g} in size), got {_show(value)}", span)
        if self.out_of_range(value) or self.out_of_range(held):
            held_note = f" (which is {held:g} in training's 32-bit floats)" if held != value else ""
            raise ArchError(f"{what} must be {self.describe()}, got {_show(value)}{held_note}", span)
        return self.kind(value)

    def out_of_range(self, value: float) -> bool:
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return too_low or too_high

    def read(self, setting: ast.Setting) -> Any:
        """A scalar setting: `lr = 0.1`."""
        return self.check(_scalar(setting, setting.value), f"train setting '{setting.key}'", setting.value.span)


def parse_override(key: str, text: str) -> ast.Setting:
    """`--set key=value` as the spec would have written it, spanned on the command line text.

    The value is one value: nothing may follow it (`lr=0.1 } input 3x8x8` would
    otherwise add a spec after the section), and it holds no comment or line break.
    """
    from archdsl.parser import parse

    value = text.strip()
    prefix = f"train {{ {key} = "
    source = Source(COMMAND_LINE, f"{prefix}{value} }}")
    for bad, what in (("\n", "a line break"), ("\r", "a line break"), ("#", "a comment"), ("{", "braces"),
                      ("}", "braces")):
        if bad in value:
            col = len(prefix) + value.index(bad) + 1
            raise ArchError(f"--set {key}=… takes one value on one line, without {what}. Received: {text!r}",
                            Span(source, 1, col, 1, col + 1))
    spec = parse(source)
    if len(spec.train) != 1 or spec.body or spec.input or spec.uses or spec.blocks or spec.afters or spec.defaults \
            or spec.name:
        start = spec.train[0].span.end_col if spec.train else len(prefix) + 1
        raise ArchError(f"--set {key}=… takes one value; something follows it. Received: {text!r}",
                        Span(source, 1, start, 1, max(start + 1, len(prefix) + len(value) + 1)))
    return spec.train[0]


def raw_override(key: str, text: str) -> ast.Setting:
    """A string value taken verbatim (paths, dotted layer names), spanned on the command line."""
    source = Source(COMMAND_LINE, f"--{key.replace('_', '-')} {text}")
    start = len(key) + 4
    span = ast_span(source, start, start + len(text))
    return ast.Setting(key, ast.Str(text, span), span)


def ast_span(source: Source, start_col: int, end_col: int):
    from archdsl.errors import Span

    return Span(source, 1, start_col, 1, end_col)


def _scalar(setting: ast.Setting, expr) -> Any:
    if isinstance(expr, (ast.Call, ast.ListValue)):
        raise ArchError(f"train setting '{setting.key}' expects a single value here", expr.span)
    return evaluate(expr, {}, strict=False)


def boolean(setting: ast.Setting) -> bool:
    value = _scalar(setting, setting.value)
    if not isinstance(value, bool):
        raise ArchError(f"train setting '{setting.key}' expects true or false, got {_show(value)}", setting.value.span)
    return value


def text(setting: ast.Setting) -> str:
    """A name or a quoted string: `dataset = digits`, `dataset = "data/mnist"`."""
    value = setting.value
    if isinstance(value, ast.Str):
        return value.value
    if isinstance(value, ast.Var):
        return value.name
    raise ArchError(
        f"train setting '{setting.key}' expects a name or a quoted string, got {_describe(value)};"
        f' quote paths: {setting.key} = "path/to/it"',
        value.span,
    )


def call(setting: ast.Setting, expr, known: Mapping[str, Mapping[str, Range]], what: str) -> tuple[str, dict[str, Any]]:
    """`name` or `name(args)` → (name, keyword arguments), checked against `known`.

    `known` maps each name to its parameters, in positional order, and each parameter to its Range.
    """
    if isinstance(expr, (ast.Var, ast.Str)):
        name, args = (expr.name if isinstance(expr, ast.Var) else expr.value), ()
    elif isinstance(expr, ast.Call):
        name, args = expr.name, expr.args
    else:
        raise ArchError(f"train setting '{setting.key}' expects {what} name such as {next(iter(known))}, "
                        f"got {_describe(expr)}", expr.span)
    lowered = name.lower()
    if lowered not in known:
        raise ArchError(
            f"unknown {what} '{name}'{did_you_mean(lowered, known)} (expected one of {', '.join(known)})", expr.span
        )
    order = known[lowered]
    values: dict[str, Any] = {}
    for position, arg in enumerate(args):
        if arg.keyword is None:
            if position >= len(order):
                raise ArchError(f"{lowered} takes at most {len(order)} positional values ({', '.join(order)})", arg.span)
            key = list(order)[position]
        else:
            key = arg.keyword
            if key not in order:
                hint = did_you_mean(key, order)
                takes = ", ".join(order) if order else "no arguments"
                raise ArchError(f"{lowered} has no argument '{key}'{hint} (it takes {takes})", arg.span)
        if key in values:
            raise ArchError(f"{lowered}: argument '{key}' given twice", arg.span)
        value = evaluate(arg.value, {}, strict=False)
        if isinstance(value, Symbol):
            value = str(value)
        values[key] = order[key].check(value, f"{lowered}: argument '{key}'", arg.span)
    return lowered, values


def call_list(setting: ast.Setting, known: Mapping[str, Mapping[str, Range]], what: str) -> tuple[tuple[str, dict], ...]:
    """`[crop(pad=4), flip]`, a single `flip`, or `none` / `[]` for nothing."""
    value = setting.value
    if isinstance(value, ast.Var) and value.name.lower() == "none":
        return ()
    items = value.items if isinstance(value, ast.ListValue) else (value,)
    return tuple(call(setting, item, known, what) for item in items)


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _describe(expr) -> str:
    if isinstance(expr, ast.ListValue):
        return "a list"
    if isinstance(expr, ast.Call):
        return f"a call {expr.name}(…)"
    if isinstance(expr, ast.Num):
        return repr(expr.value)
    return type(expr).__name__.lower()
