"""Activations that exporters write as several ONNX operators (GELU as Div, Erf, Add, Mul, Mul;
Mish as Softplus, Tanh, Mul; SiLU as Sigmoid, Mul), recognised by what they compute.

From a tensor x, the element-wise nodes that read only x, constants and each other's outputs form a
region; for each tensor y of the region, the nodes it needs are evaluated on sample values of x
with numpy, and compared with each element-wise activation archdsl has, computed from its `formula`
(archdsl.formula) with its options at their defaults. A match is that activation, x → y, whatever
operators the exporter chose.
"""
from __future__ import annotations

import dataclasses
import math

ELEMENTWISE = {
    "Add", "Sub", "Mul", "Div", "Pow", "Erf", "Tanh", "Sigmoid", "Softplus", "Exp", "Log", "Sqrt", "Relu",
    "Clip", "Neg", "Abs", "Max", "Min", "HardSigmoid", "HardSwish", "Reciprocal", "Identity", "Mish", "Elu",
    "LeakyRelu", "Where", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Cast", "Gelu",
}


def _samples():
    import numpy as np

    return np.concatenate([np.linspace(-8.0, 8.0, 321), [-1e-3, 1e-3, 0.0]]).astype(np.float64)


class NumpyPrimitives:
    """`archdsl.formula`'s primitives on numpy arrays."""

    def __init__(self):
        import numpy as np

        self.np = np

    def const(self, value):
        return self.np.float64(value)

    def add(self, a, b): return a + b  # noqa: E704
    def sub(self, a, b): return a - b  # noqa: E704
    def mul(self, a, b): return a * b  # noqa: E704
    def div(self, a, b): return a / b  # noqa: E704
    def pow(self, a, b): return a ** b  # noqa: E704
    def neg(self, a): return -a  # noqa: E704
    def gt(self, a, b): return a > b  # noqa: E704
    def lt(self, a, b): return a < b  # noqa: E704
    def ge(self, a, b): return a >= b  # noqa: E704
    def le(self, a, b): return a <= b  # noqa: E704
    def exp(self, a): return self.np.exp(a)  # noqa: E704
    def log(self, a): return self.np.log(a)  # noqa: E704
    def tanh(self, a): return self.np.tanh(a)  # noqa: E704
    def sigmoid(self, a): return 1 / (1 + self.np.exp(-a))  # noqa: E704
    def erf(self, a): return self.np.frompyfunc(math.erf, 1, 1)(a).astype(self.np.float64)  # noqa: E704
    def sqrt(self, a): return self.np.sqrt(a)  # noqa: E704
    def abs(self, a): return self.np.abs(a)  # noqa: E704
    def softplus(self, a): return self.np.logaddexp(0, a)  # noqa: E704
    def clip(self, a, low, high): return self.np.clip(a, low, high)  # noqa: E704
    def where(self, c, a, b): return self.np.where(c, a, b)  # noqa: E704


def _evaluate_node(node, values: dict, constants: dict, attrs: dict):
    import numpy as np

    p = NumpyPrimitives()
    args = []
    for t in node.input:
        if not t:
            args.append(None)
        elif t in values:
            args.append(values[t])
        else:
            args.append(np.asarray(constants[t], dtype=np.float64))
    op = node.op_type
    a = args[0] if args else None
    binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power,
              "Greater": np.greater, "Less": np.less, "GreaterOrEqual": np.greater_equal, "LessOrEqual": np.less_equal}
    if op in binary:
        return binary[op](args[0], args[1])
    unary = {"Erf": p.erf, "Tanh": np.tanh, "Sigmoid": p.sigmoid, "Softplus": p.softplus, "Exp": np.exp, "Log": np.log,
             "Sqrt": np.sqrt, "Neg": np.negative, "Abs": np.abs, "Reciprocal": np.reciprocal, "Identity": lambda v: v,
             "Cast": lambda v: v, "Relu": lambda v: np.maximum(v, 0)}
    if op in unary:
        return unary[op](a)
    if op == "Clip":
        low = attrs.get("min", args[1] if len(args) > 1 and args[1] is not None else -np.inf)
        high = attrs.get("max", args[2] if len(args) > 2 and args[2] is not None else np.inf)
        return np.clip(a, low, high)
    if op in ("Max", "Min"):
        out = args[0]
        for b in args[1:]:
            out = (np.maximum if op == "Max" else np.minimum)(out, b)
        return out
    if op == "HardSigmoid":
        return np.clip(attrs.get("alpha", 0.2) * a + attrs.get("beta", 0.5), 0, 1)
    if op == "HardSwish":
        return a * np.clip(a / 6 + 0.5, 0, 1)
    if op == "Mish":
        return a * np.tanh(p.softplus(a))
    if op == "Elu":
        return np.where(a > 0, a, attrs.get("alpha", 1.0) * (np.exp(a) - 1))
    if op == "LeakyRelu":
        return np.where(a > 0, a, attrs.get("alpha", 0.01) * a)
    if op == "Where":
        return np.where(args[0], args[1], args[2])
    if op == "Gelu":
        return 0.5 * a * (1 + p.erf(a / math.sqrt(2)))
    raise KeyError(op)


def recognise(x: str, model, produced, attributes) -> tuple[type, str, list] | None:
    """The activation computed from tensor `x` by the element-wise nodes that read it: (its class,
    the tensor it ends on, the nodes it takes), the largest such region first; None if none."""
    import numpy as np

    from ..formula import evaluate, parse
    from ..ops import REGISTRY, Activation

    region = _region(x, model, produced)
    if not region:
        return None
    outputs = {t: n for n in region for t in n.output}
    constants = model.constants
    candidates = []
    for y, last in outputs.items():
        needed = _needed(y, outputs, x)
        if needed is None:
            continue
        needed_ids = {id(n) for n in needed}
        leaks = any(t != y and any(id(c) not in needed_ids for c in model.consumers.get(t, [])) for n in needed for t in n.output)
        if leaks:
            continue
        candidates.append((len(needed), y, needed))
    candidates.sort(key=lambda c: -c[0])
    samples = _samples()
    references = []
    for cls in dict.fromkeys(REGISTRY.values()):
        if isinstance(cls, type) and issubclass(cls, Activation) and cls.formula:
            try:
                op = cls()
            except TypeError:  # no defaults for its options: not one a plain activation could be
                continue
            fields = {f.name: getattr(op, f.name) for f in dataclasses.fields(op)}
            with np.errstate(all="ignore"):
                references.append((cls, evaluate(parse(cls.formula), samples, fields, NumpyPrimitives())))
    for _, y, needed in candidates:
        values = {x: samples}
        try:
            with np.errstate(all="ignore"):
                for n in sorted(needed, key=lambda n: model.nodes.index(n)):
                    result = _evaluate_node(n, values, constants, attributes(n))
                    values[n.output[0]] = np.broadcast_to(np.asarray(result, dtype=np.float64), samples.shape)
        except (KeyError, ValueError, TypeError):
            continue
        got = values[y]
        for cls, expected in references:
            if np.allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True):
                return cls, y, needed
    return None


def _region(x: str, model, produced) -> list:
    """Element-wise nodes reachable from x whose other inputs are scalars or the region's own tensors."""
    region: list = []
    known = {x}
    frontier = [x]
    seen = set()
    while frontier:
        tensor = frontier.pop()
        for node in model.consumers.get(tensor, []):
            if id(node) in seen or node.op_type not in ELEMENTWISE or node.domain not in ("", "ai.onnx"):
                continue
            if all(not t or t in known or _scalar(t, model) for t in node.input) and len(node.output) == 1:
                seen.add(id(node))
                region.append(node)
                known.update(node.output)
                frontier.extend(node.output)
    return region


def _scalar(tensor: str, model) -> bool:
    value = model.constants.get(tensor)
    return value is not None and value.size == 1


def _needed(y: str, outputs: dict, x: str) -> list | None:
    """The region's nodes that y depends on (none outside: only x and constants)."""
    out = []
    stack = [y]
    seen = set()
    while stack:
        t = stack.pop()
        if t == x or t in seen:
            continue
        seen.add(t)
        node = outputs.get(t)
        if node is None:
            continue  # a constant
        out.append(node)
        stack.extend(i for i in node.input if i)
    return out
