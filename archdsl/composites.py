"""The composites `inception<…>`, `residual<…>` and `se<r>`: how each expands, and how it counts.

Each composite is one class holding both walks that must agree: `expand` adds its
layers to the graph (it needs shapes: a residual's projection exists only where
the body changes the shape, SE sizes its fc layers from the channels it sees),
and `count` bounds, from the syntax alone, how many layers `expand` can add, so
that the layer budget refuses a huge spec before anything is built. `count` is
never below what `expand` builds (tests/test_properties.py checks it).
"""
from __future__ import annotations

import math

from . import ast
from .errors import ShapeError, SpecArgumentError
from .evaluate import evaluate
from .ir import BlockKind
from .ops import FC, BatchNorm, Concat, Conv, Add, GlobalAvgPool, ReLU, Scale, Sigmoid
from .shapes import fmt_shape


class Composite:
    kind: BlockKind
    keyword: str

    def count(self, term, counter, env, ctx) -> int:
        raise NotImplementedError

    def expand(self, term, ex, current: str, scope, instance: str) -> str:
        """Add the composite's layers after `current` to block instance `instance`; return its output."""
        raise NotImplementedError


class Inception(Composite):
    """Branches side by side on one input, concatenated on channels. An empty branch passes its
    input through (DenseNet's layer is `inception< | bn relu conv3-32 >`, the input and its features)."""

    kind, keyword = BlockKind.INCEPTION, "inception"

    def count(self, term: ast.Inception, counter, env, ctx) -> int:
        return 1 + counter.seq([t for b in term.branches for t in b.terms], env, ctx)

    def expand(self, term: ast.Inception, ex, current, scope, instance) -> str:
        if not any(branch.terms for branch in term.branches):
            raise SpecArgumentError(
                "an inception needs at least one branch with layers (an empty branch passes its input through)."
                " Received: inception< >",
                term.span,
            )
        outputs = []
        for i, branch in enumerate(term.branches, 1):
            branch_id = ex.new_part(instance, BlockKind.BRANCH, f"b{i}", branch.span, entry=current)
            outputs.append(ex.seq(branch.terms, current, scope.child(branch_id, share_names=True)))
        if len(outputs) == 1:
            return outputs[0]
        try:
            merge = ex.add(scope, Concat(), tuple(outputs), term.span, "concat", inserted=True, name="concat")
        except ShapeError as err:
            sizes = "; ".join(f"branch {i}: {fmt_shape(ex.shape(o))}" for i, o in enumerate(outputs, 1))
            raise ShapeError(f"inception branches must keep one spatial size to be concatenated. Received: {sizes}", term.span) from err
        ex.complete(instance, entry=current, merge=merge)
        return merge


class Residual(Composite):
    """y = F(x) + x, or F(x) + S(x) with a written shortcut, or F(x) + W_s·x where F changes the shape."""

    kind, keyword = BlockKind.RESIDUAL, "residual"
    PROJECTION_LAYERS = 2  # a 1×1 conv (an fc on vectors), and a bn where the body has one

    def count(self, term: ast.Residual, counter, env, ctx) -> int:
        shortcut = counter.seq(term.shortcut.terms, env, ctx) if term.shortcut else self.PROJECTION_LAYERS
        return 1 + counter.seq(term.body.terms, env, ctx) + shortcut

    def expand(self, term: ast.Residual, ex, current, scope, instance) -> str:
        if not term.body.terms:
            raise SpecArgumentError(
                "a residual needs a body: residual< conv3-64 bn relu conv3-64 bn > adds the body's output to its input."
                " Received: an empty body",
                term.body.span if term.body.span.end_col > term.body.span.col else term.span,
            )
        batchnorms_before = ex.batchnorms
        body = ex.seq(term.body.terms, current, scope)
        shortcut_id = None
        if term.shortcut is not None:
            shortcut_id = ex.new_part(instance, BlockKind.SHORTCUT, "shortcut", term.shortcut.span, entry=current)
            skip = ex.seq(term.shortcut.terms, current, scope.child(shortcut_id, share_names=True))
        elif ex.shape(body) == ex.shape(current):
            skip = current
        else:
            shortcut_id = ex.new_part(instance, BlockKind.SHORTCUT, "shortcut", term.span, entry=current, inserted=True)
            skip = self.projection(term, ex, current, body, ex.batchnorms > batchnorms_before, scope.child(shortcut_id, share_names=False))
        try:
            merge = ex.add(scope, Add(), (body, skip), term.span, "add", inserted=True, name="add")
        except ShapeError:
            raise ShapeError(
                "the residual body and its shortcut must have one shape to be added."
                f" Received: body {fmt_shape(ex.shape(body))}, shortcut {fmt_shape(ex.shape(skip))}",
                term.span,
            ) from None
        ex.complete(instance, entry=current, merge=merge, skip=skip, shortcut=shortcut_id)
        return merge

    def projection(self, term, ex, current: str, body: str, uses_bn: bool, scope) -> str:
        """W_s·x: a 1×1 conv with the body's stride (an fc on vectors), and a bn where the body uses bn."""
        x, y = ex.shape(current), ex.shape(body)
        if len(x) != len(y) or any(o > i for i, o in zip(x[1:], y[1:])):
            raise ShapeError(
                "a residual body that changes the rank or grows the map needs an explicit shortcut:"
                " residual< body | shortcut >."
                f" Received: input {fmt_shape(x)}, body output {fmt_shape(y)}",
                term.span,
            )
        rank = len(x) - 1
        if rank == 0:  # a vector: the projection is a fully connected layer
            op = FC(y[0], bias=not uses_bn)
        else:
            stride = tuple(math.ceil(i / o) for i, o in zip(x[1:], y[1:]))
            op = Conv(y[0], (1,) * rank, stride, (0,) * rank, (1,) * rank, 1, None)
        node = ex.add(scope, op, (current,), term.span, op.describe(), inserted=True, name="fc" if rank == 0 else "conv")
        if ex.shape(node) != y:
            raise ShapeError(
                "no 1×1 projection maps the residual's input to its body's output; write the shortcut:"
                f" residual< body | shortcut >. Received: input {fmt_shape(x)}, body output {fmt_shape(y)}",
                term.span,
            )
        if uses_bn:
            node = ex.add(scope, BatchNorm(), (node,), term.span, "bn", inserted=True, name="bn")
        return node


class SqueezeExcite(Composite):
    """se<r>: global pooling, fc C/r, relu, fc C, sigmoid, then scale the channels (Hu et al., 2018)."""

    kind, keyword = BlockKind.SE, "se"
    LAYERS = ("squeeze", "fc1", "relu", "fc2", "sigmoid", "scale")

    def count(self, term: ast.SqueezeExcite, counter, env, ctx) -> int:
        return len(self.LAYERS)

    def expand(self, term: ast.SqueezeExcite, ex, current, scope, instance) -> str:
        shape = ex.shape(current)
        ratio = evaluate(term.reduction, scope.env, True)
        if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
            raise SpecArgumentError(f"se<r> needs a whole reduction ratio r ≥ 1. Received: r={ratio!r}", term.span)
        if len(shape) < 2:
            raise ShapeError(f"se<{ratio}> needs a C×H×W input. Received: input shape {fmt_shape(shape)}", term.span)
        channels = shape[0]
        if channels % ratio:
            raise ShapeError(
                f"se<{ratio}> needs a channel count that r divides, as / does in specs. Received: C={channels}, r={ratio}",
                term.span,
            )
        squeeze = ex.add(scope, GlobalAvgPool(), (current,), term.span, "gap", inserted=True, name="squeeze")
        node = ex.add(scope, FC(channels // ratio), (squeeze,), term.span, f"fc-{channels // ratio}", inserted=True, name="fc1")
        node = ex.add(scope, ReLU(), (node,), term.span, "relu", inserted=True, name="relu")
        node = ex.add(scope, FC(channels), (node,), term.span, f"fc-{channels}", inserted=True, name="fc2")
        node = ex.add(scope, Sigmoid(), (node,), term.span, "sigmoid", inserted=True, name="sigmoid")
        merge = ex.add(scope, Scale(), (current, node), term.span, "scale", inserted=True, name="scale")
        ex.complete(instance, entry=current, merge=merge, skip=current)
        return merge


COMPOSITES: dict[type, Composite] = {
    ast.Inception: Inception(),
    ast.Residual: Residual(),
    ast.SqueezeExcite: SqueezeExcite(),
}
