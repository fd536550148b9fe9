"""Element-wise formulas: how an activation says what it computes, once, for every backend.

An activation declares `formula = "x * tanh(softplus(x))"`: an expression in `x`, the
op's own fields (`alpha`), numbers, + − * / **, comparisons, and the functions in
`FUNCTIONS`. Each backend evaluates the same parsed formula with its own primitives
(PyTorch source text, TVM Relax ops, numpy arrays for the tests), so a new activation
needs no emitter of its own.

It is parsed with Python's `ast` and only the nodes below are accepted: a formula is
data, never run as code.
"""
from __future__ import annotations

import ast
import functools
from dataclasses import dataclass

# name → number of arguments
FUNCTIONS = {
    "exp": 1, "log": 1, "tanh": 1, "sigmoid": 1, "erf": 1, "sqrt": 1, "abs": 1, "softplus": 1,
    "clip": 3,  # clip(v, low, high) with constant bounds
    "where": 3,  # where(condition, if_true, if_false)
}
_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
_COMPARE = {ast.Gt: "gt", ast.Lt: "lt", ast.GtE: "ge", ast.LtE: "le"}


class FormulaError(ValueError):
    """A formula written with something this module does not accept (a bug in an op class)."""


@dataclass(frozen=True)
class Node:
    op: str  # "x", "const", "field", a FUNCTIONS name, or a _BINARY/_COMPARE/"neg" name
    args: tuple = ()
    value: float | str | None = None


@functools.lru_cache(maxsize=None)
def parse(text: str) -> Node:
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise FormulaError(f"formula {text!r} is not an expression: {exc.msg}") from None
    return _node(tree, text)


def _node(tree, text: str) -> Node:
    if isinstance(tree, ast.Name):
        return Node("x") if tree.id == "x" else Node("field", value=tree.id)
    if isinstance(tree, ast.Constant) and isinstance(tree.value, (int, float)) and not isinstance(tree.value, bool):
        return Node("const", value=float(tree.value))
    if isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.USub):
        return Node("neg", (_node(tree.operand, text),))
    if isinstance(tree, ast.BinOp) and type(tree.op) in _BINARY:
        return Node(_BINARY[type(tree.op)], (_node(tree.left, text), _node(tree.right, text)))
    if isinstance(tree, ast.Compare) and len(tree.ops) == 1 and type(tree.ops[0]) in _COMPARE:
        return Node(_COMPARE[type(tree.ops[0])], (_node(tree.left, text), _node(tree.comparators[0], text)))
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id in FUNCTIONS and not tree.keywords:
        if len(tree.args) != FUNCTIONS[tree.func.id]:
            raise FormulaError(f"formula {text!r}: {tree.func.id} takes {FUNCTIONS[tree.func.id]} arguments")
        return Node(tree.func.id, tuple(_node(a, text) for a in tree.args))
    raise FormulaError(f"formula {text!r}: '{ast.unparse(tree)}' is not allowed (x, numbers, fields, + - * / **, "
                       f"comparisons and {', '.join(FUNCTIONS)})")


def evaluate(node: Node, x, fields: dict[str, float], prims):
    """The formula's value, built with `prims`: an object with one method per op name and
    `const(value)`; fields of the op come in as constants."""
    if node.op == "x":
        return x
    if node.op == "const":
        return prims.const(node.value)
    if node.op == "field":
        if node.value not in fields:
            raise FormulaError(f"formula uses '{node.value}', which is not a field of the op ({', '.join(fields) or 'none'})")
        return prims.const(float(fields[node.value]))
    return getattr(prims, node.op)(*(evaluate(a, x, fields, prims) for a in node.args))
