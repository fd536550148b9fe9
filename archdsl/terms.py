"""The plain terms of a spec — a layer, a block call, `[ … ]`, `* n`, `@name`, `-> name`, `split -> a, b` — each with
its expansion and its count side by side, as `composites` has them for `inception`, `residual`, `se`.

`expand(term, ex, current, scope, in_after)` adds the term's layers to the expander's
graph after the tensor `current` and returns the tensor it ends on; `count(term,
counter, env, ctx, in_after)` says, from the syntax alone, how many layers that is
at most. `TERMS` maps each AST class to its rule; `expand.Expander` and
`budget.LayerCounter` only dispatch.
"""
from __future__ import annotations

import dataclasses

from . import ast
from .composites import COMPOSITES
from .errors import ArchError, ExpansionError, ShapeError, SpecArgumentError
from .evaluate import Symbol, evaluate
from .ir import BlockKind, Stage
from .ops import ChannelSlice
from .shapes import fmt_shape


def bind_layer_type(term: ast.Layer, env) -> tuple[ast.Layer, str]:
    """A layer written as a block parameter that names a layer type (`nl`, bound to `hardswish`) is
    that layer: the term with the type's name, and the token as a table shows it (`hardswish`)."""
    bound = env.get(term.name)
    if not isinstance(bound, Symbol):
        return term, term.text
    return dataclasses.replace(term, name=str(bound)), str(bound) + term.text[len(term.name):]


class Layer:
    """`conv3-64`: one layer, then the file's `after` for its family; or a call of a block."""

    def count(self, term: ast.Layer, counter, env, ctx, in_after) -> int:
        term, _ = bind_layer_type(term, env)
        if term.name in ctx.blocks:
            return BLOCK_CALL.count(term, counter, env, ctx, in_after)
        from .expand import resolve_family

        cls = resolve_family(term.name)[0]
        after = ctx.afters.get(cls.family) if cls is not None else None
        return 1 + (counter.term(after.term, {}, ctx, True) if after and not in_after else 0)

    def expand(self, term: ast.Layer, ex, current, scope, in_after) -> str:
        term, token = bind_layer_type(term, scope.env)
        if term.name in scope.ctx.blocks:
            return BLOCK_CALL.expand(term, ex, current, scope, in_after)
        from .expand import arity_error, resolve_family, unknown_layer

        cls, kernel = resolve_family(term.name)
        if cls is None:
            raise unknown_layer(term, scope.ctx)
        call, refs = ex.build_call(term, cls, kernel, scope)
        inputs = (current, *(ex.lookup(name, span, scope) for name, span in refs))
        if len(inputs) < cls.min_inputs or (cls.max_inputs is not None and len(inputs) > cls.max_inputs):
            raise arity_error(cls, len(inputs), term)
        try:
            op = cls.from_call(call, tuple(ex.shape(i) for i in inputs))
        except ArchError as err:
            raise err.with_span(term.span) from None
        node = ex.add(scope, op, inputs, term.span, token)
        after = scope.ctx.afters.get(cls.family)
        if after is not None and not in_after and call.follow_defaults:
            node = ex.term(after.term, node, scope, in_after=True)
        return node


class BlockCall:
    """`bottleneck(128, s=2)`: the block's body, inlined under a new instance (`bottleneck3.conv1`).

    A block built around one composite (`residual<…> relu`) *is* that composite: its
    layers are named `bottleneck3.conv1`, not `bottleneck3.residual1.conv1`.
    """

    def count(self, term: ast.Layer, counter, env, ctx, in_after) -> int:
        from .evaluate import SHAPE_DEPENDENT
        from .expand import bind_arguments, inside_block, shape_names

        block, block_ctx = ctx.blocks[term.name]
        if not self.count_depends_on_arguments(block, block_ctx, counter):
            bound, key = {}, (id(block),)  # every call of it counts alike: count it once
        else:
            bound = bind_arguments(block, term, env, shape_names(None, SHAPE_DEPENDENT))
            key = (id(block), tuple(sorted((k, repr(v)) for k, v in bound.items())))
        if key in counter.memo:
            return counter.memo[key]
        with inside_block(counter.stack, block.name, term):
            count = counter.term(block.body, bound, block_ctx)
        count = max(count, 1)  # a call is a step of expansion even where it adds no layer
        counter.memo[key] = counter.within_limit(count, term)
        return count

    def count_depends_on_arguments(self, block: ast.BlockDef, ctx, counter, depth: int = 0) -> bool:
        """Whether a block's layer count can change with its arguments: only through a repetition
        count that reads a name, in its body or in a block it calls. Blocks whose count cannot
        are counted once, however many distinct arguments they are called with."""
        from .expand import MAX_NESTING

        key = ("depends", id(block))
        if depth > MAX_NESTING:  # too deep to tell here: the walk itself refuses such a chain
            return True
        if key not in counter.memo:
            counter.memo[key] = True  # while looking (a recursive block is refused by the walk)
            counter.memo[key] = any(self._reads_a_name(t, ctx, counter, depth) for t in _walk(block.body))
        return counter.memo[key]

    def _reads_a_name(self, term, ctx, counter, depth: int) -> bool:
        if isinstance(term, ast.Repeat):
            return any(isinstance(e, ast.Var) for e in _expressions(term.count))
        if isinstance(term, ast.Layer) and term.name in ctx.blocks:
            callee, callee_ctx = ctx.blocks[term.name]
            return self.count_depends_on_arguments(callee, callee_ctx, counter, depth + 1)
        return False

    def expand(self, term: ast.Layer, ex, current, scope, in_after) -> str:
        from .expand import bind_arguments, inside_block, shape_names

        block, ctx = scope.ctx.blocks[term.name]
        env = bind_arguments(block, term, scope.env, shape_names(ex.shape(current)))
        with inside_block(ex.block_stack, block.name, term):
            terms = block.body.terms if isinstance(block.body, ast.Group) else (block.body,)
            composites = [t for t in terms if type(t) in COMPOSITES]
            composite = COMPOSITES[type(composites[0])] if len(composites) == 1 else None
            kind = composite.kind if composite else BlockKind.BLOCK
            args = tuple((p.name, env[p.name]) for p in block.params)
            instance = ex.new_instance(scope, kind, block.name, term.span, entry=current, user=True, args=args)
            inner = scope.child(instance, share_names=False, env=env, ctx=ctx)
            for t in terms:
                if composite is not None and t is composites[0]:
                    current = ex.ended(t, composite.expand(t, ex, current, inner, instance))
                else:
                    current = ex.term(t, current, inner)
            return current


class Group:
    """`[ … ]`: its terms in order."""

    def count(self, term: ast.Group, counter, env, ctx, in_after) -> int:
        return counter.seq(term.terms, env, ctx, in_after)

    def expand(self, term: ast.Group, ex, current, scope, in_after) -> str:
        return ex.seq(term.terms, current, scope, in_after)


class Repeat:
    """`term * n`: the term n times in a row; `* 0` is nothing at all."""

    def count(self, term: ast.Repeat, counter, env, ctx, in_after) -> int:
        from .expand import repeat_count

        n = repeat_count(term, env)
        if n == 0:
            return 0
        inner = max(counter.term(term.term, env, ctx, in_after), 1)  # each copy is a step, even an empty one
        total = n * inner
        if total > counter.limit:
            raise ExpansionError(
                f"this expands to {total:,} layers; archdsl builds at most {counter.limit:,}."
                f" Received: {n:,} × {inner:,} layers",
                term.span,
            )
        return total

    def expand(self, term: ast.Repeat, ex, current, scope, in_after) -> str:
        from .expand import repeat_count

        for _ in range(repeat_count(term, scope.env)):
            current = ex.term(term.term, current, scope, in_after)
        return current


class Ref:
    """`@name`: continue from a named tensor. It adds no layer, but counts as one step of
    expansion, so that a spec of nothing but names called 2^40 times is refused too."""

    def count(self, term, counter, env, ctx, in_after) -> int:
        return 1

    def expand(self, term: ast.Ref, ex, current, scope, in_after) -> str:
        return ex.lookup(term.name, term.span, scope)


class NameAs:
    """`-> name`: name the current tensor (one step of expansion, as `@name`)."""

    def count(self, term, counter, env, ctx, in_after) -> int:
        return 1

    def expand(self, term: ast.NameAs, ex, current, scope, in_after) -> str:
        return ex.name_tensor(term, current, scope)


class Split:
    """`split -> a, b`: the current tensor's channels cut into parts, each a layer named after its
    tensor; equal parts, or `split(24, 40) -> a, b` with each part's channels. ShuffleNetV2's channel
    split. The current tensor is then the last part, as after `-> b`."""

    def count(self, term: ast.Split, counter, env, ctx, in_after) -> int:
        return len(term.names)

    def expand(self, term: ast.Split, ex, current, scope, in_after) -> str:
        shape = ex.shape(current)
        start = 0
        for (name, span), size in zip(term.names, self.sizes(term, scope.env, shape)):
            op = ChannelSlice(start, start + size)
            node = ex.add(scope, op, (current,), term.span, op.describe())
            node = ex.name_tensor(ast.NameAs(name, span), node, scope)
            start += size
        return node

    def sizes(self, term: ast.Split, env, shape) -> list[int]:
        names = ", ".join(name for name, _ in term.names)
        parts, channels = len(term.names), shape[0]
        if parts < 2:
            raise SpecArgumentError(
                f"split cuts the channels into parts and names each: split -> {names}, b. Received: one name, {names}",
                term.span,
            )
        if not term.sizes:
            if channels % parts:
                raise ShapeError(
                    f"split -> {names} cuts the channels into {parts} equal parts, but {parts} does not divide them;"
                    f" give each part's size: split(…) -> {names}. Received: input shape {fmt_shape(shape)}",
                    term.span,
                )
            return [channels // parts] * parts
        sizes = []
        for arg in term.sizes:
            if arg.keyword is not None or isinstance(arg.value, ast.RefArg):
                written = f"{arg.keyword}=…" if arg.keyword is not None else f"@{arg.value.name}"
                raise SpecArgumentError(
                    f"split takes each part's channels, as in split(24, 40) -> a, b. Received: {written}", arg.span
                )
            size = evaluate(arg.value, env, True)
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise SpecArgumentError(f"split: a part's size must be a whole number ≥ 1. Received: {size!r}", arg.span)
            sizes.append(size)
        if len(sizes) != parts or sum(sizes) != channels:
            raise ShapeError(
                f"split({', '.join(map(str, sizes))}) -> {names} needs one size per part, summing to the"
                f" {channels} channels. Received: {len(sizes)} sizes for {parts} parts, summing to {sum(sizes)}",
                term.span,
            )
        return sizes


class Labelled:
    """`"conv2_x": basic(64) * 2`: the name diagrams and tables give what the term builds.

    A layer token labels its layer (not the `after` layers that follow it); a term that
    builds one block instance labels that block; anything else is a *stage*: the layers,
    blocks and inner stages the term builds at its own level, framed together.
    """

    def count(self, term: ast.Labelled, counter, env, ctx, in_after) -> int:
        return counter.term(term.term, env, ctx, in_after)

    def expand(self, term: ast.Labelled, ex, current, scope, in_after) -> str:
        collected: list[str] = []
        ex.collectors.append(collected)
        try:
            end = ex.term(term.term, current, scope, in_after)
        finally:
            ex.collectors.pop()
        level = [item for item in collected if _at_level(ex.graph, item, scope)]
        inner = term.term
        if isinstance(inner, ast.Layer) and inner.name not in scope.ctx.blocks:
            level = level[:1]  # the layer itself, not its `after`
        if not level:
            raise ExpansionError(
                f'the label "{term.label}" names nothing: a label names the layer, block or stage built by the'
                f" term after it, and this one builds no layer. Received: {_text(term)}",
                term.label_span,
            )
        if len(level) == 1 and level[0] not in ex.graph.stages:
            (target,) = level
            if target in ex.graph.labels:
                raise ExpansionError(
                    f'this is labelled twice: "{ex.graph.labels[target]}" and "{term.label}"; give it one label.'
                    f" Received: {_text(term)}",
                    term.label_span,
                )
            ex.graph.labels[target] = term.label
            return end
        members = tuple(item for item in level if item not in ex.stage_of)  # inner stages claimed theirs
        stage = Stage(f"stage#{len(ex.graph.stages) + 1}", term.label, term.span, scope.instance, members)
        ex.graph.stages[stage.id] = stage
        for member in members:
            ex.stage_of[member] = stage.id
        for outer in ex.collectors:
            outer.append(stage.id)
        return end


def _at_level(graph, item: str, scope) -> bool:
    """Whether `item` (a layer, block instance or stage) was written at `scope`'s own level."""
    if item in graph.stages:
        return graph.stages[item].parent == scope.instance
    if item in graph.blocks:
        return graph.blocks[item].parent == scope.instance
    return item in graph and graph.nodes[item]["layer"].scope == scope.path


def _text(term: ast.Labelled) -> str:
    """The labelled term as written (its first line)."""
    span = term.span
    line = span.source.line(span.line)
    return line[span.col - 1 : span.end_col - 1 if span.end_line == span.line else None].strip()


class CompositeTerm:
    """An inline `inception<…>`, `residual<…>` or `se<r>`: a new block instance around the composite."""

    def count(self, term, counter, env, ctx, in_after) -> int:
        return COMPOSITES[type(term)].count(term, counter, env, ctx)

    def expand(self, term, ex, current, scope, in_after) -> str:
        composite = COMPOSITES[type(term)]
        instance = ex.new_instance(scope, composite.kind, composite.keyword, term.span, entry=current)
        return composite.expand(term, ex, current, scope.child(instance, share_names=True), instance)


def _walk(term):
    """Every term inside `term`, itself included (through groups, repetitions and composites)."""
    yield term
    if isinstance(term, ast.Group):
        children = term.terms
    elif isinstance(term, (ast.Repeat, ast.Labelled)):
        children = (term.term,)
    elif isinstance(term, ast.Inception):
        children = [t for branch in term.branches for t in branch.terms]
    elif isinstance(term, ast.Residual):
        children = [*term.body.terms, *(term.shortcut.terms if term.shortcut else ())]
    else:
        children = ()
    for child in children:
        yield from _walk(child)


def _expressions(expr):
    """`expr` and every expression inside it: operands, and a function's arguments."""
    yield expr
    children = [getattr(expr, "left", None), getattr(expr, "right", None), getattr(expr, "operand", None)]
    if isinstance(expr, ast.Call):
        children += [arg.value for arg in expr.args]
    for child in children:
        if child is not None:
            yield from _expressions(child)


BLOCK_CALL = BlockCall()
TERMS = {
    ast.Layer: Layer(),
    ast.Group: Group(),
    ast.Repeat: Repeat(),
    ast.Ref: Ref(),
    ast.NameAs: NameAs(),
    ast.Split: Split(),
    ast.Labelled: Labelled(),
    **{kind: CompositeTerm() for kind in COMPOSITES},
}
