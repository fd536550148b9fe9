"""AST → graph IR: expand blocks, repetitions, composites and defaults into layers.

Shapes are inferred as each layer is added, because expansion needs them: a
residual's projection shortcut exists only where the body changes the shape,
and squeeze-and-excitation sizes its fc layers from the channels it sees.
Errors are raised at the spec position of the layer that failed.

How each construct expands lives in `terms` and `composites`, beside how it is
counted; the `Expander` holds the graph and the mechanics they share: adding a
layer, opening a block instance, naming tensors, reading a layer's arguments.
"""
from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

from . import ast
from .errors import ArchError, ExpansionError, ShapeError, SpecArgumentError, SpecNameError, Span, did_you_mean
from .evaluate import ShapeDependent, evaluate
from .ir import BlockInstance, BlockKind, IRGraph, Layer
from .ops import REGISTRY, Call, Input, Op, Trait, Value
from .shapes import MAX_SIZE, Shape, fmt_shape

# The most layers one spec may expand to. A spec is counted against it before
# anything is built (`budget.count_layers`), so nested repetitions that would
# expand to billions of layers fail at once instead of exhausting memory; the
# expander checks it again as it adds layers.
MAX_LAYERS = 50_000
# How deep blocks, brackets and composites may nest inside one another (counted in
# terms, through block calls): expansion recurses, and must stay far from Python's limit.
MAX_NESTING = 100
# Names a block body may read besides its parameters: its input tensor's sizes.
SHAPE_NAMES = ("in_channels", "in_depth", "in_height", "in_width", "in_length")

_FAMILY = re.compile(r"^([a-z_]+?)([0-9]+(?:x[0-9]+)*)?$")


@functools.lru_cache(maxsize=4096)  # a spec writes the same few names over and over
def split_family(name: str) -> tuple[str, str | None]:
    """`conv3x3` → ('conv', '3x3'); `FC` → ('fc', None); `soft-max` → ('soft-max', None)."""
    lowered = name.lower()
    match = _FAMILY.match(lowered)
    if not match:
        return lowered, None
    return match.group(1), match.group(2)


def resolve_family(name: str) -> tuple[type[Op] | None, str | None]:
    """The op class a written name means, and the kernel digits glued to it.

    A registered name wins as a whole (`relu6` is relu6, not relu with a kernel of 6);
    digits are a kernel size only for an op that takes one (`conv3`, `maxpool3x3`).
    """
    lowered = name.lower()
    if lowered in REGISTRY:
        return REGISTRY[lowered], None
    family, kernel = split_family(name)
    cls = REGISTRY.get(family)
    if cls is None or (kernel is not None and not cls.takes_kernel):
        return None, None
    return cls, kernel


def spec_families() -> list[str]:
    """Every name a spec may write for a layer type, aliases included."""
    return sorted(REGISTRY)


def layer_types() -> list[str]:
    """Every layer type once, by its family name (for messages that list them all)."""
    return sorted({cls.family for cls in REGISTRY.values()})


def shape_names(shape: Shape | None, unknown: Any = None) -> dict[str, Any]:
    """What a block body reads of its input: `in_channels`, and `in_height`/`in_width` (2-D),
    `in_depth` (3-D) or `in_length` (1-D). With no shape (the layer budget), each is `unknown`."""
    if shape is None:
        return {name: unknown for name in SHAPE_NAMES}
    spatial = shape[1:]
    names = {1: ("in_length",), 2: ("in_height", "in_width"), 3: ("in_depth", "in_height", "in_width")}
    return {"in_channels": shape[0], **dict(zip(names.get(len(spatial), ()), spatial))}


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
    def __init__(self, main: FileContext, max_layers: int = MAX_LAYERS):
        self.main = main
        self.max_layers = max_layers
        self.graph = IRGraph()
        self.block_stack: list[str] = []
        self.depth = 0  # how many terms are being expanded inside one another
        self.batchnorms = 0  # how many bn layers have been added: a residual asks whether its body made one
        # One list per label being expanded: the layers, block instances and stages built
        # inside it, in order (`terms.Labelled` decides from them what the label names).
        self.collectors: list[list[str]] = []
        self.stage_of: dict[str, str] = {}  # a stage's member → the stage's id
        self.renamed: dict[str, str] = {}  # node → its name after `-> name` renamed it

    # ---- graph building ----
    def shape(self, node: str) -> Shape:
        return self.graph.nodes[node]["layer"].shape

    def _unique(self, scope: Scope, base: str) -> str:
        separator = "_" if base[-1:].isdigit() else ""  # relu6_1, not relu61
        while True:
            scope.counters[base] = scope.counters.get(base, 0) + 1
            name = f"{scope.prefix}{base}{separator}{scope.counters[base]}"
            if name not in self.graph and name not in self.graph.blocks:
                return name

    def add(self, scope: Scope, op: Op, inputs: tuple[str, ...], span: Span | None, token: str, *, inserted=False, name=None) -> str:
        if len(self.graph) > self.max_layers:  # the budget counted from the syntax; this holds whatever it missed
            raise ExpansionError(f"the spec expands to more than {self.max_layers:,} layers. Received: more by here", span)
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
        for collected in self.collectors:
            collected.append(node)
        if op.has(Trait.CANCELS_BIAS):
            self.batchnorms += 1
        return node

    def new_instance(self, scope: Scope, kind: BlockKind, name: str, span: Span | None, *, entry: str, user=False,
                     args: tuple[tuple[str, Any], ...] = ()) -> str:
        instance = self._unique(scope, name)
        self.graph.blocks[instance] = BlockInstance(instance, kind, name, span, scope.instance, user=user, entry=entry,
                                                    args=args)
        for collected in self.collectors:
            collected.append(instance)
        return instance

    def new_part(self, instance: str, kind: BlockKind, name: str, span: Span | None, *, entry: str, inserted=False) -> str:
        """A part of a composite (an inception's branch, a residual's shortcut): `{instance}.{name}`."""
        part = f"{instance}.{name}"
        self.graph.blocks[part] = BlockInstance(part, kind, name, span, instance, entry=entry, inserted=inserted)
        return part

    def complete(self, instance: str, **facts) -> None:
        """Record what expanding a composite found out: its merge node, its skip input, its shortcut."""
        self.graph.blocks[instance] = replace(self.graph.blocks[instance], **facts)

    # ---- the walk ----
    def run(self) -> IRGraph:
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
        self.graph.input = node
        self.graph.main_sink = self.seq(spec.body, node, scope)
        if self.renamed:  # terms that ended on a layer `-> name` renamed afterwards
            for nodes in self.graph.term_outputs.values():
                nodes[:] = [self.renamed.get(n, n) for n in nodes]
        if len(self.graph) == 1:
            raise SpecArgumentError("the network has no layers: its body expands to nothing (a `* 0`?)", spec.body[0].span)
        return self.graph

    def seq(self, terms, current: str, scope: Scope, in_after: bool = False) -> str:
        for term in terms:
            current = self.term(term, current, scope, in_after)
        return current

    def term(self, term: ast.Term, current: str, scope: Scope, in_after: bool = False) -> str:
        from .terms import TERMS

        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise nesting_error(term, self.block_stack)
            return self.ended(term, TERMS[type(term)].expand(term, self, current, scope, in_after))
        finally:
            self.depth -= 1

    def ended(self, term, node: str) -> str:
        """Record that one expansion of `term` ended on the tensor `node` (`IRGraph.term_outputs`)."""
        self.graph.term_outputs.setdefault(term.span, []).append(node)
        return node

    # ---- names ----
    def lookup(self, name: str, span: Span, scope: Scope) -> str:
        if name in scope.names:
            return scope.names[name]
        if name == "input" and scope.prefix == "":
            return self.graph.input
        known = list(scope.names) + (["input"] if scope.prefix == "" else [])
        listing = f" (named here: {', '.join(known)})" if known else " (no tensor is named here yet)"
        raise SpecNameError(
            f"undefined tensor '@{name}'{did_you_mean(name, known)}{listing}; name a tensor with `-> {name}` first."
            f" Received: @{name}",
            span,
        )

    def name_tensor(self, term: ast.NameAs, current: str, scope: Scope) -> str:
        if term.name == "input" and scope.prefix == "":
            raise SpecNameError(
                "'input' names the network's input (@input); give this tensor another name. Received: -> input",
                term.span,
            )
        if term.name in scope.names:
            first = self.graph.nodes[scope.names[term.name]]["layer"].span
            where = f" (first at line {first.line})" if first else ""
            raise SpecNameError(f"the tensor name '{term.name}' is used twice{where}. Received: -> {term.name}", term.span)
        wanted = f"{scope.prefix}{term.name}"
        layer = self.graph.nodes[current]["layer"]
        renamable = (
            current not in self.graph.tensor_names
            and layer.scope == scope.path
            and self.graph.out_degree(current) == 0
            and current != self.graph.input
            and wanted not in self.graph
            and wanted not in self.graph.blocks
        )
        if renamable:
            current = self._rename(current, wanted)
        self.graph.tensor_names.setdefault(current, term.name)
        scope.names[term.name] = current
        return current

    def _rename(self, old: str, new: str) -> str:
        layer = self.graph.nodes[old]["layer"]
        preds = list(self.graph.predecessors(old))
        self.graph.remove_node(old)
        self.graph.add_node(new, layer=replace(layer, name=new))
        self.renamed[old] = new
        for p in preds:
            self.graph.add_edge(p, new)
        for collected in self.collectors:
            if old in collected:
                collected[collected.index(old)] = new
        if old in self.graph.labels:
            self.graph.labels[new] = self.graph.labels.pop(old)
        if old in self.stage_of:  # the last layer of a stage, named after it: `"s": [conv conv] -> x`
            stage = self.graph.stages[self.stage_of[old]]
            members = tuple(new if m == old else m for m in stage.members)
            self.graph.stages[stage.id] = replace(stage, members=members)
            self.stage_of[new] = self.stage_of.pop(old)
        for instance, block in self.graph.blocks.items():  # a composite that ended on the renamed layer
            if old in (block.merge, block.skip):
                self.complete(instance, merge=new if block.merge == old else block.merge,
                              skip=new if block.skip == old else block.skip)
        return new

    # ---- a layer's arguments ----
    def build_call(self, term: ast.Layer, cls: type[Op], kernel: str | None, scope: Scope):
        family = cls.family
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
            # `name=value`: errors point at both
            call.give(arg.keyword, Value(evaluate(arg.value, scope.env, False), arg.span if arg.keyword else arg.value.span))
        follow = call.keywords.pop("after", None)
        if follow is not None:
            if follow.value is not False:
                raise SpecArgumentError(
                    f"after=false is the only use of 'after' on a layer: it skips the file's `after {family} = …`."
                    f" Received: after={follow.value!r}",
                    follow.span,
                )
            call.follow_defaults = False
        for arg in scope.ctx.defaults.get(family, ()):
            if arg.keyword not in call.keywords:
                call.keywords[arg.keyword] = Value(evaluate(arg.value, {}, False), arg.value.span)
        return call, refs


# ---- helpers shared with the layer budget ----


def repeat_count(term: ast.Repeat, env: dict) -> int:
    count = evaluate(term.count, env, True)
    if isinstance(count, ShapeDependent):
        raise SpecArgumentError(
            "a repetition count cannot depend on a tensor's shape (in_channels, …): the layer budget counts"
            " the spec before shapes exist. Received: a count computed from the input's shape",
            term.count.span,
        )
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise SpecArgumentError(f"a repetition count must be a whole number ≥ 0. Received: * {count!r}", term.count.span)
    return count


def bind_arguments(block: ast.BlockDef, term: ast.Layer, env: dict, implicit: dict[str, Any] | None = None) -> dict[str, Any]:
    """Bind a call's arguments to a block's parameters, Python-style (positional, then by name).

    `implicit` holds the names a body may read without declaring them (its input's
    sizes, see `shape_names`); a parameter of the same name wins.
    """
    names = [p.name for p in block.params]
    signature = f"{block.name}({', '.join(p.name + ('=…' if p.default else '') for p in block.params)})"
    if term.dimension is not None or term.stride is not None:
        raise SpecArgumentError(
            f"block '{block.name}' takes arguments in parentheses, as in {signature}. Received: {term.text}", term.span
        )
    bound: dict[str, Any] = dict(implicit or {})
    given: set[str] = set()
    positional = [a for a in term.args if a.keyword is None]
    if len(positional) > len(names):
        raise SpecArgumentError(
            f"block '{block.name}' takes {len(names)} argument{'s' * (len(names) != 1)}: {signature}."
            f" Received: {len(positional)}",
            positional[len(names)].span,
        )
    for param, arg in zip(block.params, positional):
        bound[param.name] = evaluate(arg.value, env, True)
        given.add(param.name)
    for arg in term.args:
        if arg.keyword is None:
            continue
        if arg.keyword not in names:
            raise SpecNameError(
                f"block '{block.name}' has no parameter '{arg.keyword}'{did_you_mean(arg.keyword, names)};"
                f" expected {signature}. Received: {arg.keyword}=…",
                arg.span,
            )
        if arg.keyword in given:
            raise SpecArgumentError(f"'{arg.keyword}' is given twice in {signature}. Received: {term.text}", arg.span)
        bound[arg.keyword] = evaluate(arg.value, env, True)
        given.add(arg.keyword)
    for param in block.params:
        if param.name not in given:
            if param.default is None:
                raise SpecArgumentError(
                    f"block '{block.name}' needs a value for '{param.name}': {signature}. Received: {term.text}",
                    term.span,
                )
            bound[param.name] = evaluate(param.default, bound, True)
    return bound


@contextlib.contextmanager
def inside_block(stack: list[str], name: str, term: ast.Layer) -> Iterator[None]:
    """Walk into block `name`'s body, called by `term`: `stack` holds the blocks being walked,
    outermost first, so that a block calling itself is refused instead of recursing."""
    if name in stack:
        chain = " → ".join(stack + [name])
        raise ExpansionError(f"block '{name}' calls itself ({chain}); blocks cannot recurse", term.span)
    stack.append(name)
    try:
        yield
    finally:
        stack.pop()


def nesting_error(term, blocks: list[str]) -> ExpansionError:
    chain = " → ".join(blocks if len(blocks) <= 6 else blocks[:3] + ["…"] + blocks[-2:])
    return ExpansionError(
        f"the spec nests more than {MAX_NESTING} levels deep (blocks calling blocks, brackets, composites)."
        f" Received: {f'the block calls {chain}' if blocks else 'brackets and composites inside one another'}",
        term.span,
    )


def unknown_layer(term: ast.Layer, ctx: FileContext) -> SpecNameError:
    candidates = spec_families() + list(ctx.blocks)
    family = split_family(term.name)[0]
    hint = did_you_mean(term.name.lower(), candidates) or did_you_mean(family, candidates)
    cls = REGISTRY.get(family)
    if cls is not None and not cls.takes_kernel and family != term.name.lower():
        what = f"no layer type is called '{term.name}' ({family} takes no size glued to its name)"
    else:
        what = f"unknown layer '{term.name}'"
    blocks = f"; blocks here: {', '.join(sorted(ctx.blocks))}" if ctx.blocks else ""
    return SpecNameError(
        f"{what}{hint or '.'} Expected a layer type ({', '.join(layer_types())}) or a block{blocks}."
        f" Received: {term.text}",
        term.name_span,
    )


def arity_error(cls: type[Op], received: int, term: ast.Layer) -> SpecArgumentError:
    if cls.max_inputs == 1:
        return SpecArgumentError(f"{cls.family} takes one input, the current tensor; @name arguments are for merges such as add and concat. Received: {received} inputs", term.span)
    return SpecArgumentError(
        f"{cls.family} needs the current tensor and at least one more, as in {cls.family}(@e1). Received: {received} input",
        term.span,
    )
