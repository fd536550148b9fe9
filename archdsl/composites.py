"""The composites `inception<…>`, `residual<…>` and `se<…>`: how each expands, and how it counts.

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
from .errors import ShapeError, SpecArgumentError, did_you_mean
from .evaluate import evaluate
from .ir import BlockKind
from .ops import FC, REGISTRY, Activation, Add, BatchNorm, Call, Concat, Conv, GlobalAvgPool, Mul, Option, Value
from .ops.base import choice, positive_int
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
    """se<r>: global pooling, a squeeze to C/r, an activation, back to C, a gate, then the input's
    channels scaled by the gate (Hu et al., 2018). Options, as the papers and torchvision vary it:

      r        the reduction ratio: squeeze to C/r channels (positional: `se<16>`)
      squeeze  the squeezed channels themselves, instead of r: `se<squeeze=max(1, in_channels // 4)>`
      act      the activation in between: relu (default), silu, … any element-wise one
      gate     the gate: sigmoid (default) or hardsigmoid, …
      form     fc (default: fully connected layers, Hu et al.) or conv (1×1 convolutions with biases
               on the pooled C×1×1, as torchvision's SqueezeExcitation: 4-D weights)
    """

    kind, keyword = BlockKind.SE, "se"
    LAYERS = ("squeeze", "fc1", "act", "fc2", "gate", "scale")
    OPTIONS = (
        Option("r", None, "the reduction ratio: squeeze to C/r channels", position=0),
        Option("squeeze", None, "the squeezed channels, instead of r"),
        Option("act", "relu", "the activation between the two layers"),
        Option("gate", "sigmoid", "the gate's activation"),
        Option("form", "fc", "fc (fully connected) or conv (1×1 convolutions)"),
    )
    FORMS = ("fc", "conv")
    NUMBERS = frozenset({"r", "squeeze"})  # options that are arithmetic on parameters; the others take words

    def count(self, term: ast.SqueezeExcite, counter, env, ctx) -> int:
        return len(self.LAYERS)

    def expand(self, term: ast.SqueezeExcite, ex, current, scope, instance) -> str:
        shape = ex.shape(current)
        options = self.options(term, scope.env)
        if len(shape) < 2:
            raise ShapeError(f"se needs a C×H×W input. Received: input shape {fmt_shape(shape)}", term.span)
        channels, rank = shape[0], len(shape) - 1
        squeezed = self.squeezed(term, options, channels)
        act, gate = (self.activation(term, options, role) for role in ("act", "gate"))
        if options["form"] == "conv":  # 1×1 convolutions with biases on the pooled C×1×1
            fc1, fc2 = (Conv(c, (1,) * rank, (1,) * rank, (0,) * rank, (1,) * rank, 1, True) for c in (squeezed, channels))
        else:
            fc1, fc2 = FC(squeezed), FC(channels)
        names = dict(zip(self.LAYERS, ("squeeze", "fc1", act.family, "fc2", gate.family, "scale")))
        if act.family == gate.family:
            names["act"], names["gate"] = "act", "gate"
        node = current
        for role, op in zip(self.LAYERS, (GlobalAvgPool(), fc1, act, fc2, gate)):
            node = ex.add(scope, op, (node,), term.span, op.describe(), inserted=True, name=names[role])
        merge = ex.add(scope, Mul(), (current, node), term.span, "mul", inserted=True, name=names["scale"])
        ex.complete(instance, entry=current, merge=merge, skip=current)
        return merge

    def options(self, term: ast.SqueezeExcite, env) -> dict:
        call = Call("se", "se<…>", term.span)
        for arg in term.args:
            if isinstance(arg.value, ast.RefArg):
                raise SpecArgumentError(f"se takes options, not tensors. Received: @{arg.value.name}", arg.span)
            strict = arg.keyword is None or arg.keyword in self.NUMBERS  # `act=silu` is a word, not a name
            call.give(arg.keyword, Value(evaluate(arg.value, env, strict), arg.span))
        options = call.take_options(self.OPTIONS)
        call.finish()
        options["form"] = choice(options["form"], "form", self.FORMS, "se", term.span)
        return options

    def squeezed(self, term, options: dict, channels: int) -> int:
        ratio, squeeze = options["r"], options["squeeze"]
        if (ratio is None) == (squeeze is None):
            raise SpecArgumentError(
                "se needs the reduction ratio r or the squeezed channels, one of them: se<16>, se<squeeze=8>."
                f" Received: {'both' if ratio is not None else 'neither'}",
                term.span,
            )
        if squeeze is not None:
            return positive_int(squeeze, "squeeze", term.span, "se")
        if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
            raise SpecArgumentError(f"se<r> needs a whole reduction ratio r ≥ 1. Received: r={ratio!r}", term.span)
        if channels % ratio:
            raise ShapeError(
                f"se<{ratio}> needs a channel count that r divides, as / does in specs (or squeeze=…)."
                f" Received: C={channels}, r={ratio}",
                term.span,
            )
        return channels // ratio

    def activation(self, term, options: dict, role: str) -> Activation:
        name = options[role]
        cls = REGISTRY.get(name.lower()) if isinstance(name, str) else None
        if cls is None or not issubclass(cls, Activation):
            known = sorted(f for f, c in REGISTRY.items() if issubclass(c, Activation))
            hint = did_you_mean(name, known) if isinstance(name, str) else ""
            raise SpecArgumentError(
                f"se: {role} must be an element-wise activation ({', '.join(known)}){hint or '.'} Received: {role}={name!r}",
                term.span,
            )
        return cls()


COMPOSITES: dict[type, Composite] = {
    ast.Inception: Inception(),
    ast.Residual: Residual(),
    ast.SqueezeExcite: SqueezeExcite(),
}
