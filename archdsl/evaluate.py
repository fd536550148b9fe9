"""Evaluate the spec's small expression language: arithmetic on block parameters.

Only numbers, names bound to numbers, + − * / // % and the few functions in
`FUNCTIONS` exist: a spec never executes code. `/` of whole numbers must divide
exactly (a channel count of 21.33 is a bug in the spec, not something to round
silently); `//` floors. The functions round the way the papers' code does, so that
a width or depth multiplier gives the published networks: `divisible(c * width, 8)`
is torchvision's `_make_divisible`, `ceil(n * depth)` EfficientNet's repeats.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from . import ast
from .errors import SpecArgumentError, SpecNameError, did_you_mean

SYMBOLS = {"true": True, "false": False}
MAX_MAGNITUDE = 10**15  # keeps `((c*c)*c)*…` from building huge integers


class Symbol(str):
    """A bare word used as a value: `pad=same`, `mode=bilinear`, or a layer type passed to a block
    (`bneck(…, hardswish)`), which the block's body then writes as a layer (`nl`)."""


class ShapeDependent:
    """A value that depends on a tensor's shape (`in_channels`), where shapes are not known yet.

    The layer budget counts a spec before any shape exists: it binds the shape names
    to this, and arithmetic on it gives it back, so that block arguments still
    evaluate; only a repetition count may not be one (see `expand.repeat_count`).
    """

    def _same(self, *_):
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _same
    __neg__ = __abs__ = __ceil__ = __floor__ = __round__ = _same

    def __gt__(self, other):  # never "too large": its real value is checked when shapes are known
        return False

    __lt__ = __ge__ = __le__ = __gt__

    def __repr__(self) -> str:
        return "a shape-dependent value"


SHAPE_DEPENDENT = ShapeDependent()


def evaluate(expr: ast.Expr, env: dict[str, Any], strict: bool) -> Any:
    """The value of `expr`. With `strict`, every name must be a bound parameter."""
    if isinstance(expr, ast.Num):
        return expr.value
    if isinstance(expr, ast.Dims):
        return expr.values
    if isinstance(expr, ast.Str):
        return expr.value
    if isinstance(expr, ast.Var):
        if expr.name in env:
            return env[expr.name]
        if expr.name.lower() in SYMBOLS:
            return SYMBOLS[expr.name.lower()]
        if _names_a_layer_type(expr.name):
            return Symbol(expr.name.lower())
        if strict:
            from .ops import REGISTRY

            hint = did_you_mean(expr.name, env) or did_you_mean(expr.name, REGISTRY)
            from .expand import SHAPE_NAMES

            declared = [name for name in env if name not in SHAPE_NAMES]  # not the input's sizes, in_channels, …
            bound = f" (parameters here: {', '.join(declared)})" if declared else ""
            raise SpecNameError(f"undefined name '{expr.name}'{bound}{hint or '.'} Received: {expr.name}", expr.span)
        return Symbol(expr.name)
    if isinstance(expr, ast.Neg):
        return -_number(evaluate(expr.operand, env, True), expr.operand)
    if isinstance(expr, ast.BinOp):
        left = _number(evaluate(expr.left, env, True), expr.left)
        right = _number(evaluate(expr.right, env, True), expr.right)
        return _apply(expr, left, right)
    if isinstance(expr, ast.Call):
        return _call(expr, env)
    if isinstance(expr, ast.RefArg):
        raise SpecArgumentError(
            f"a tensor cannot be a value here: a block's arguments and arithmetic take numbers, sizes such as 2x2"
            f" and names (a block reads the current tensor; merges such as add(@{expr.name}) take tensors)."
            f" Received: @{expr.name}",
            expr.span,
        )
    raise SpecArgumentError(f"this cannot be used as a value here. Received: {type(expr).__name__}", expr.span)


def _names_a_layer_type(word: str) -> bool:
    from .ops import REGISTRY  # the ops never evaluate expressions: no cycle

    return word.lower() in REGISTRY


def _number(value: Any, expr: ast.Expr) -> int | float:
    if isinstance(value, ShapeDependent):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecArgumentError(f"arithmetic needs numbers. Received: {value!r}", expr.span)
    return value


def _apply(expr: ast.BinOp, left, right):
    op = expr.op
    if op in ("/", "//", "%") and right == 0:
        raise SpecArgumentError(f"division by zero. Received: {left} {op} {right}", expr.span)
    if op == "+":
        result = left + right
    elif op == "-":
        result = left - right
    elif op == "*":
        result = left * right
    elif op == "//":
        result = left // right
    elif op == "%":
        result = left % right
    else:
        result = left / right
        if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
            if left % right:
                raise SpecArgumentError(
                    f"{left}/{right} is not a whole number; use // to round down. Received: {left} / {right}", expr.span
                )
            result = left // right
    if abs(result) > MAX_MAGNITUDE:
        raise SpecArgumentError(f"value too large. Received: {left} {op} {right}", expr.span)
    return result


# ---- functions ----


def divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """`value` rounded to a multiple of `divisor` (at least `min_value`, by default `divisor`), and
    one `divisor` more where rounding lost more than 10%: torchvision's `_make_divisible`, which
    MobileNet and EfficientNet apply to every channel count a width multiplier gives."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _positive_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# name → (the function, how many arguments: (fewest, most or None), how it is written)
FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[int, int | None], str]] = {
    "divisible": (divisible, (2, 3), "divisible(value, divisor[, min_value])"),
    "ceil": (math.ceil, (1, 1), "ceil(value)"),
    "floor": (math.floor, (1, 1), "floor(value)"),
    "max": (max, (2, None), "max(a, b, …)"),
    "min": (min, (2, None), "min(a, b, …)"),
}


def _call(expr: ast.Call, env: dict[str, Any]) -> Any:
    if expr.name not in FUNCTIONS:
        raise SpecNameError(
            f"unknown function '{expr.name}'{did_you_mean(expr.name, FUNCTIONS)}"
            f" (the arithmetic has {', '.join(FUNCTIONS)}). Received: {expr.name}(…)",
            expr.span,
        )
    function, (fewest, most), signature = FUNCTIONS[expr.name]
    for arg in expr.args:
        if arg.keyword is not None:
            raise SpecArgumentError(f"{expr.name} takes positional arguments: {signature}. Received: {arg.keyword}=…", arg.span)
    if len(expr.args) < fewest or (most is not None and len(expr.args) > most):
        raise SpecArgumentError(f"{expr.name} takes {signature}. Received: {len(expr.args)} arguments", expr.span)
    values = [_number(evaluate(arg.value, env, True), arg.value) for arg in expr.args]
    shape_dependent = next((v for v in values if isinstance(v, ShapeDependent)), None)
    if shape_dependent is not None:  # counted before shapes exist: the value is not known yet
        return shape_dependent
    if not all(math.isfinite(v) for v in values):
        raise SpecArgumentError(f"{expr.name} needs finite numbers. Received: {', '.join(map(repr, values))}", expr.span)
    if expr.name == "divisible" and not all(_positive_whole(v) for v in values[1:]):
        raise SpecArgumentError(
            f"divisible's divisor (and min_value) must be whole numbers ≥ 1. Received: {', '.join(map(repr, values[1:]))}",
            expr.span,
        )
    result = function(*values)
    if abs(result) > MAX_MAGNITUDE:
        raise SpecArgumentError(f"value too large. Received: {expr.name}(…) = {result}", expr.span)
    return result
