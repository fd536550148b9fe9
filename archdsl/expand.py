"""AST → graph IR: expand blocks, repetitions, composites and defaults into layers.

Shapes are inferred as each layer is added, because expansion needs them: a
residual's projection shortcut exists only where the body changes the shape,
and squeeze-and-excitation sizes its fc layers from the channels it sees.
Errors are raised at the spec position of the layer that failed.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx

from . import ast
from .errors import ArchError, ExpansionError, ShapeError, SpecArgumentError, SpecNameError, Span, did_you_mean
from .evaluate import evaluate
from .ir import BlockInstance, Layer
from .ops import REGISTRY, BatchNorm, Call, Concat, Conv, Add, FC, GlobalAvgPool, Input, Op, ReLU, Scale, Sigmoid, Value
from .shapes import MAX_SIZE, Shape, fmt_shape

# The most layers one spec may expand to. A spec is checked against it before
# anything is built (see `count_layers`), so nested repetitions that would
# expand to billions of layers fail at once instead of exhausting memory.
MAX_LAYERS = 250_000
# How deep blocks, brackets and composites may nest inside one another (counted in
# terms, through block calls): expansion recurses, and must stay far from Python's limit.
MAX_NESTING = 100

COMPOSITE_KINDS = {ast.Inception: "inception", ast.Residual: "residual", ast.SqueezeExcite: "se"}

_FAMILY = re.compile(r"^([a-z_]+?)(\d+(?:x\d+)*)?$")


@functools.lru_cache(maxsize=4096)  # a spec writes the same few names over and over
def split_family(name: str) -> tuple[str, str | None]:
    """`conv3x3` → ('conv', '3x3'); `FC` → ('fc', None); `soft-max` → ('soft-max', None)."""
    lowered = name.lower()
    match = _FAMILY.match(lowered)
    if not match:
        return lowered, None
    return match.group(1), match.group(2)


def spec_families() -> list[str]:
    return sorted(name for name, cls in REGISTRY.items() if not cls.hidden)


@dataclass
class FileContext:
    """What one file declares: blocks (its own and imported), `after` and `defaults`."""

    spec: ast.Spec
    blocks: dict[str, tuple[ast.BlockDef, "FileContext"]] = field(default_factory=dict)
    afters: dict[str, ast.After] = field(default_factory=dict)
    defaults: dict[str, tuple[ast.Arg, ...]] = field(default_factory=dict)


@dataclass
class Scope:
    prefix: str
    path: tuple[str, ...]  # block instance ids, outermost first
    names: dict[str, str]  # tensor names → node names
    env: dict[str, Any]
    ctx: FileContext
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def instance(self) -> str | None:
        return self.path[-1] if self.path else None

    def child(self, instance: str, *, share_names: bool, env: dict | None = None, ctx: FileContext | None = None) -> "Scope":
        return Scope(
            prefix=instance + ".",
            path=self.path + (instance,),
            names=self.names if share_names else {},
            env=self.env if env is None else env,
            ctx=self.ctx if ctx is None else ctx,
        )


class Expander:
    def __init__(self, main: FileContext):
        self.main = main
        self.graph = nx.DiGraph()
        self.graph.graph["blocks"] = {}
        self.graph.graph["tensor_names"] = {}  # node → the name a spec gave it with `-> name`
        self.block_stack: list[str] = []
        self.depth = 0  # how many terms are being expanded inside one another
        self.batchnorms = 0  # how many bn layers have been added: a residual asks whether its body made one

    # ---- graph building ----
    def shape(self, node: str) -> Shape:
        return self.graph.nodes[node]["layer"].shape

    def _unique(self, scope: Scope, base: str) -> str:
        while True:
            scope.counters[base] = scope.counters.get(base, 0) + 1
            name = f"{scope.prefix}{base}{scope.counters[base]}"
            if name not in self.graph and name not in self.graph.graph["blocks"]:
                return name

    def add(self, scope: Scope, op: Op, inputs: tuple[str, ...], span: Span | None, token: str, *, inserted=False, name=None) -> str:
        shapes = tuple(self.shape(i) for i in inputs)
        try:
            shape = op.output_shape(shapes)
        except ArchError as err:
            raise err.with_span(span) from None
        if max(shape, default=0) > MAX_SIZE:
            raise ShapeError(f"{token or op.describe()} makes a dimension larger than {MAX_SIZE:,}. Received: output shape {fmt_shape(shape)}", span)
        node = f"{scope.prefix}{name}" if name else self._unique(scope, op.family)
        layer = Layer(node, op, inputs, shape, span, scope.path, token or op.describe(), inserted)
        self.graph.add_node(node, layer=layer)
        for i in inputs:
            self.graph.add_edge(i, node)
        if isinstance(op, BatchNorm):
            self.batchnorms += 1
        return node

    def new_instance(self, scope: Scope, kind: str, name: str, span: Span | None) -> str:
        instance = self._unique(scope, name)
        self.graph.graph["blocks"][instance] = BlockInstance(instance, kind, name, span, scope.instance)
        return instance

    # ---- the walk ----
    def run(self) -> nx.DiGraph:
        spec = self.main.spec
        if spec.input is None:
            span = spec.body[0].span if spec.body else Span(spec.source, 1, 1, 1, 1)
            raise SpecArgumentError(
                "the spec has no input; expected a line like `input 3x224x224` (C×H×W) before the layers."
                " Received: no `input`",
                span,
            )
        shape, span = spec.input
        if any(d < 1 or d > MAX_SIZE for d in shape):
            raise ShapeError(f"input sizes must be between 1 and {MAX_SIZE:,}. Received: input {fmt_shape(shape)}", span)
        if not spec.body:
            raise SpecArgumentError("the spec has no layers after its input. Received: only declarations", span)
        scope = Scope("", (), {}, {}, self.main)
        node = "input"
        self.graph.add_node(node, layer=Layer(node, Input(shape), (), shape, span, (), "input", True))
        self.graph.graph["input"] = node
        self.graph.graph["main_sink"] = self.seq(spec.body, node, scope)
        return self.graph

    def seq(self, terms, current: str, scope: Scope, in_after: bool = False) -> str:
        for term in terms:
            current = self.term(term, current, scope, in_after)
        return current

    def term(self, term: ast.Term, current: str, scope: Scope, in_after: bool = False) -> str:
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise nesting_error(term, self.block_stack)
            return self._term(term, current, scope, in_after)
        finally:
            self.depth -= 1

    def _term(self, term: ast.Term, current: str, scope: Scope, in_after: bool = False) -> str:
        if isinstance(term, ast.Layer):
            return self.layer(term, current, scope, in_after)
        if isinstance(term, ast.Group):
            return self.seq(term.terms, current, scope, in_after)
        if isinstance(term, ast.Repeat):
            count = repeat_count(term, scope.env)
            for _ in range(count):
                current = self.term(term.term, current, scope, in_after)
            return current
        if isinstance(term, ast.Inception):
            return self.inception(term, current, scope, self.new_instance(scope, "inception", "inception", term.span))
        if isinstance(term, ast.Residual):
            return self.residual(term, current, scope, self.new_instance(scope, "residual", "residual", term.span))
        if isinstance(term, ast.SqueezeExcite):
            return self.squeeze_excite(term, current, scope, self.new_instance(scope, "se", "se", term.span))
        if isinstance(term, ast.Ref):
            return self.lookup(term.name, term.span, scope)
        if isinstance(term, ast.NameAs):
            return self.name_tensor(term, current, scope)
        raise AssertionError(f"unhandled term {type(term).__name__}")

    # ---- names ----
    def lookup(self, name: str, span: Span, scope: Scope) -> str:
        if name in scope.names:
            return scope.names[name]
        if name == "input" and scope.prefix == "":
            return self.graph.graph["input"]
        known = list(scope.names) + (["input"] if scope.prefix == "" else [])
        listing = f" (named here: {', '.join(known)})" if known else " (no tensor is named here yet)"
        raise SpecNameError(
            f"undefined tensor '@{name}'{did_you_mean(name, known)}{listing}; name a tensor with `-> {name}` first."
            f" Received: @{name}",
            span,
        )

    def name_tensor(self, term: ast.NameAs, current: str, scope: Scope) -> str:
        if term.name in scope.names:
            first = self.graph.nodes[scope.names[term.name]]["layer"].span
            where = f" (first at line {first.line})" if first else ""
            raise SpecNameError(f"the tensor name '{term.name}' is used twice{where}. Received: -> {term.name}", term.span)
        wanted = f"{scope.prefix}{term.name}"
        layer = self.graph.nodes[current]["layer"]
        renamable = (
            current not in self.graph.graph["tensor_names"]
            and layer.scope == scope.path
            and self.graph.out_degree(current) == 0
            and current != self.graph.graph["input"]
            and wanted not in self.graph
        )
        if renamable:
            current = self._rename(current, wanted)
        self.graph.graph["tensor_names"].setdefault(current, term.name)
        scope.names[term.name] = current
        return current

    def _rename(self, old: str, new: str) -> str:
        layer = self.graph.nodes[old]["layer"]
        preds = list(self.graph.predecessors(old))
        self.graph.remove_node(old)
        self.graph.add_node(new, layer=replace(layer, name=new))
        for p in preds:
            self.graph.add_edge(p, new)
        return new

    # ---- layers and block calls ----
    def layer(self, term: ast.Layer, current: str, scope: Scope, in_after: bool) -> str:
        if term.name in scope.ctx.blocks:
            return self.block_call(term, current, scope)
        family, kernel = split_family(term.name)
        cls = REGISTRY.get(family)
        if cls is None or cls.hidden:
            raise unknown_layer(term, family, scope.ctx)
        call, refs = self.build_call(term, family, kernel, scope)
        inputs = (current, *(self.lookup(name, span, scope) for name, span in refs))
        if len(inputs) < cls.min_inputs or (cls.max_inputs is not None and len(inputs) > cls.max_inputs):
            raise arity_error(cls, len(inputs), term)
        try:
            op = cls.from_call(call, tuple(self.shape(i) for i in inputs))
        except ArchError as err:
            raise err.with_span(term.span) from None
        node = self.add(scope, op, inputs, term.span, term.text)
        after = scope.ctx.afters.get(cls.family)
        if after is not None and not in_after and call.follow_defaults:
            node = self.term(after.term, node, scope, in_after=True)
        return node

    def build_call(self, term: ast.Layer, family: str, kernel: str | None, scope: Scope):
        call = Call(family, term.text, term.span)
        if kernel is not None:
            sizes = tuple(int(k) for k in kernel.split("x"))
            call.kernel = Value(sizes if len(sizes) > 1 else sizes[0], term.name_span)
        if term.dimension is not None:
            call.dimension = Value(evaluate(term.dimension, scope.env, True), term.dimension.span)
        if term.stride is not None:
            call.stride = Value(evaluate(term.stride, scope.env, True), term.stride.span)
        refs = []
        for arg in term.args:
            if isinstance(arg.value, ast.RefArg):
                if arg.keyword is not None:
                    raise SpecArgumentError(f"a tensor is passed as @name, not as an option. Received: {arg.keyword}=@{arg.value.name}", arg.span)
                refs.append((arg.value.name, arg.value.span))
                continue
            value = Value(evaluate(arg.value, scope.env, False), arg.value.span)
            if arg.keyword is None:
                call.positional.append(value)
            elif arg.keyword in call.keywords:
                raise SpecArgumentError(f"the option '{arg.keyword}' is given twice. Received: {arg.keyword}={value.value!r}", arg.span)
            else:
                call.keywords[arg.keyword] = Value(value.value, arg.span)  # `name=value`: errors point at both
        follow = call.keywords.pop("after", None)
        if follow is not None:
            if follow.value is not False:
                raise SpecArgumentError(
                    f"after=false is the only use of 'after' on a layer: it skips the file's `after {family} = …`."
                    f" Received: after={follow.value!r}",
                    follow.span,
                )
            call.follow_defaults = False
        for arg in scope.ctx.defaults.get(REGISTRY[family].family, ()):
            if arg.keyword not in call.keywords:
                call.keywords[arg.keyword] = Value(evaluate(arg.value, {}, False), arg.value.span)
        return call, refs

    def block_call(self, term: ast.Layer, current: str, scope: Scope) -> str:
        block, ctx = scope.ctx.blocks[term.name]
        env = bind_arguments(block, term, scope.env)
        if block.name in self.block_stack:
            chain = " → ".join(self.block_stack + [block.name])
            raise ExpansionError(f"block '{block.name}' calls itself ({chain}); blocks cannot recurse", term.span)
        self.block_stack.append(block.name)
        # A block built around one composite (`residual<…> relu`) *is* that composite:
        # its layers are named `bottleneck3.conv1`, not `bottleneck3.residual1.conv1`.
        terms = block.body.terms if isinstance(block.body, ast.Group) else (block.body,)
        composites = [t for t in terms if type(t) in COMPOSITE_KINDS]
        kind = COMPOSITE_KINDS[type(composites[0])] if len(composites) == 1 else "block"
        instance = self.new_instance(scope, kind, block.name, term.span)
        inner = scope.child(instance, share_names=False, env=env, ctx=ctx)
        try:
            for t in terms:
                if kind != "block" and t is composites[0]:
                    handler = getattr(self, COMPOSITE_KINDS[type(t)] if kind != "se" else "squeeze_excite")
                    current = handler(t, current, inner, instance, own_scope=inner)
                else:
                    current = self.term(t, current, inner)
            return current
        finally:
            self.block_stack.pop()

    # ---- composites ----
    def inception(self, term: ast.Inception, current: str, scope: Scope, instance: str, own_scope: Scope | None = None) -> str:
        inner = own_scope or scope.child(instance, share_names=True)
        outputs = []
        for i, branch in enumerate(term.branches, 1):
            branch_id = f"{instance}.b{i}"
            self.graph.graph["blocks"][branch_id] = BlockInstance(branch_id, "branch", f"b{i}", branch.span, instance)
            branch_scope = inner.child(branch_id, share_names=True)
            outputs.append(self.seq(branch.terms, current, branch_scope))
        if len(outputs) == 1:
            return outputs[0]
        try:
            return self.add(inner, Concat(), tuple(outputs), term.span, "concat", inserted=True, name="concat")
        except ShapeError as err:
            sizes = "; ".join(f"branch {i}: {fmt_shape(self.shape(o))}" for i, o in enumerate(outputs, 1))
            raise ShapeError(f"inception branches must keep one spatial size to be concatenated. Received: {sizes}", term.span) from err

    def residual(self, term: ast.Residual, current: str, scope: Scope, instance: str, own_scope: Scope | None = None) -> str:
        inner = own_scope or scope.child(instance, share_names=True)
        batchnorms_before = self.batchnorms
        body = self.seq(term.body.terms, current, inner)
        body_uses_bn = self.batchnorms > batchnorms_before
        if term.shortcut is not None:
            shortcut_id = f"{instance}.shortcut"
            self.graph.graph["blocks"][shortcut_id] = BlockInstance(shortcut_id, "shortcut", "shortcut", term.shortcut.span, instance)
            shortcut = self.seq(term.shortcut.terms, current, inner.child(shortcut_id, share_names=True))
        elif self.shape(body) == self.shape(current):
            shortcut = current
        else:
            shortcut = self.projection(term, current, body, body_uses_bn, inner, instance)
        try:
            return self.add(inner, Add(), (body, shortcut), term.span, "add", inserted=True, name="add")
        except ShapeError:
            raise ShapeError(
                "the residual body and its shortcut must have one shape to be added."
                f" Received: body {fmt_shape(self.shape(body))}, shortcut {fmt_shape(self.shape(shortcut))}",
                term.span,
            ) from None

    def projection(self, term: ast.Residual, current: str, body: str, uses_bn: bool, scope: Scope, instance: str) -> str:
        """y = F(x) + W_s·x: a 1×1 conv with the body's stride, and bn where the body uses bn."""
        x, y = self.shape(current), self.shape(body)
        if len(x) != len(y) or any(o > i for i, o in zip(x[1:], y[1:])):
            raise ShapeError(
                "a residual body that changes the rank or grows the map needs an explicit shortcut:"
                " residual< body | shortcut >."
                f" Received: input {fmt_shape(x)}, body output {fmt_shape(y)}",
                term.span,
            )
        stride = tuple(math.ceil(i / o) for i, o in zip(x[1:], y[1:]))
        shortcut_id = f"{instance}.shortcut"
        self.graph.graph["blocks"][shortcut_id] = BlockInstance(shortcut_id, "shortcut", "shortcut", term.span, instance)
        inner = scope.child(shortcut_id, share_names=False)
        rank = len(x) - 1
        conv = Conv(y[0], (1,) * rank, stride, (0,) * rank, (1,) * rank, 1, None)
        node = self.add(inner, conv, (current,), term.span, conv.describe(), inserted=True, name="conv")
        if self.shape(node) != y:
            raise ShapeError(
                "no 1×1 projection maps the residual's input to its body's output; write the shortcut:"
                f" residual< body | shortcut >. Received: input {fmt_shape(x)}, body output {fmt_shape(y)}",
                term.span,
            )
        if uses_bn:
            node = self.add(inner, BatchNorm(), (node,), term.span, "bn", inserted=True, name="bn")
        return node

    def squeeze_excite(self, term: ast.SqueezeExcite, current: str, scope: Scope, instance: str, own_scope: Scope | None = None) -> str:
        """se<r>: global pooling, fc C/r, relu, fc C, sigmoid, then scale the channels."""
        inner = own_scope or scope.child(instance, share_names=True)
        shape = self.shape(current)
        ratio = evaluate(term.reduction, inner.env, True)
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
        squeeze = self.add(inner, GlobalAvgPool(), (current,), term.span, "gap", inserted=True, name="squeeze")
        node = self.add(inner, FC(channels // ratio), (squeeze,), term.span, f"fc-{channels // ratio}", inserted=True, name="fc1")
        node = self.add(inner, ReLU(), (node,), term.span, "relu", inserted=True, name="relu")
        node = self.add(inner, FC(channels), (node,), term.span, f"fc-{channels}", inserted=True, name="fc2")
        node = self.add(inner, Sigmoid(), (node,), term.span, "sigmoid", inserted=True, name="sigmoid")
        return self.add(inner, Scale(), (current, node), term.span, "scale", inserted=True, name="scale")


# ---- helpers shared with the size estimate ----


def repeat_count(term: ast.Repeat, env: dict) -> int:
    count = evaluate(term.count, env, True)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise SpecArgumentError(f"a repetition count must be a whole number ≥ 1. Received: * {count!r}", term.count.span)
    return count


def bind_arguments(block: ast.BlockDef, term: ast.Layer, env: dict) -> dict[str, Any]:
    """Bind a call's arguments to a block's parameters, Python-style (positional, then by name)."""
    names = [p.name for p in block.params]
    signature = f"{block.name}({', '.join(p.name + ('=…' if p.default else '') for p in block.params)})"
    if term.dimension is not None or term.stride is not None:
        raise SpecArgumentError(
            f"block '{block.name}' takes arguments in parentheses, as in {signature}. Received: {term.text}", term.span
        )
    bound: dict[str, Any] = {}
    positional = [a for a in term.args if a.keyword is None]
    if len(positional) > len(names):
        raise SpecArgumentError(
            f"block '{block.name}' takes {len(names)} argument{'s' * (len(names) != 1)}: {signature}."
            f" Received: {len(positional)}",
            positional[len(names)].span,
        )
    for param, arg in zip(block.params, positional):
        bound[param.name] = evaluate(arg.value, env, True)
    for arg in term.args:
        if arg.keyword is None:
            continue
        if arg.keyword not in names:
            raise SpecNameError(
                f"block '{block.name}' has no parameter '{arg.keyword}'{did_you_mean(arg.keyword, names)};"
                f" expected {signature}. Received: {arg.keyword}=…",
                arg.span,
            )
        if arg.keyword in bound:
            raise SpecArgumentError(f"'{arg.keyword}' is given twice in {signature}. Received: {term.text}", arg.span)
        bound[arg.keyword] = evaluate(arg.value, env, True)
    for param in block.params:
        if param.name not in bound:
            if param.default is None:
                raise SpecArgumentError(
                    f"block '{block.name}' needs a value for '{param.name}': {signature}. Received: {term.text}",
                    term.span,
                )
            bound[param.name] = evaluate(param.default, bound, True)
    return bound


def nesting_error(term, blocks: list[str]) -> ExpansionError:
    chain = " → ".join(blocks if len(blocks) <= 6 else blocks[:3] + ["…"] + blocks[-2:])
    return ExpansionError(
        f"the spec nests more than {MAX_NESTING} levels deep (blocks calling blocks, brackets, composites)."
        f" Received: {f'the block calls {chain}' if blocks else 'brackets and composites inside one another'}",
        term.span,
    )


def unknown_layer(term: ast.Layer, family: str, ctx: FileContext) -> SpecNameError:
    candidates = spec_families() + list(ctx.blocks)
    hint = did_you_mean(family, candidates) or did_you_mean(term.name, candidates)
    return SpecNameError(
        f"unknown layer '{term.name}'{hint or '.'} Expected a layer type"
        f" ({', '.join(spec_families()[:12])}, …) or a block. Received: {term.text}",
        term.name_span,
    )


def arity_error(cls: type[Op], received: int, term: ast.Layer) -> SpecArgumentError:
    if cls.max_inputs == 1:
        return SpecArgumentError(f"{cls.family} takes one input, the current tensor; @name arguments are for add and concat. Received: {received} inputs", term.span)
    return SpecArgumentError(
        f"{cls.family} needs the current tensor and at least one more, as in {cls.family}(@e1). Received: {received} input",
        term.span,
    )
