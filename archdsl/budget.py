"""How many layers a spec expands to, computed without expanding it.

Repetitions multiply and block calls are memoized by their arguments, so the
count of `[[[conv3-64] * 1000] * 1000] * 1000` takes microseconds. The expander
refuses specs above `expand.MAX_LAYERS` before building anything.
"""
from __future__ import annotations

from typing import Any

from . import ast
from .errors import ExpansionError
from .ops import REGISTRY


class LayerCounter:
    def __init__(self, limit: int):
        self.limit = limit
        self.memo: dict[tuple, int] = {}
        self.stack: list[str] = []
        self.depth = 0

    def seq(self, terms, env: dict[str, Any], ctx, in_after=False) -> int:
        return sum(self.term(t, env, ctx, in_after) for t in terms)

    def term(self, term, env, ctx, in_after=False) -> int:
        from .expand import MAX_NESTING, nesting_error

        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise nesting_error(term, self.stack)
            return self._term(term, env, ctx, in_after)
        finally:
            self.depth -= 1

    def _term(self, term, env, ctx, in_after=False) -> int:
        from .expand import repeat_count, split_family

        if isinstance(term, ast.Layer):
            if term.name in ctx.blocks:
                return self.block(term, env, ctx)
            cls = REGISTRY.get(split_family(term.name)[0])
            after = ctx.afters.get(cls.family) if cls is not None else None
            return 1 + (self.term(after.term, {}, ctx, True) if after and not in_after else 0)
        if isinstance(term, ast.Group):
            return self.seq(term.terms, env, ctx, in_after)
        if isinstance(term, ast.Repeat):
            n = repeat_count(term, env)
            inner = self.term(term.term, env, ctx, in_after)
            total = n * inner
            if total > self.limit:
                raise ExpansionError(
                    f"this expands to {total:,} layers; archdsl builds at most {self.limit:,}."
                    f" Received: {n:,} × {inner:,} layers",
                    term.span,
                )
            return total
        if isinstance(term, ast.Inception):
            return 1 + sum(self.seq(b.terms, env, ctx) for b in term.branches)
        if isinstance(term, ast.Residual):
            shortcut = self.seq(term.shortcut.terms, env, ctx) if term.shortcut else 2
            return 1 + self.seq(term.body.terms, env, ctx) + shortcut
        if isinstance(term, ast.SqueezeExcite):
            return 6
        return 0  # references and names add no layers

    def block(self, term: ast.Layer, env, ctx) -> int:
        from .expand import bind_arguments

        block, block_ctx = ctx.blocks[term.name]
        bound = bind_arguments(block, term, env)
        key = (id(block), tuple(sorted((k, repr(v)) for k, v in bound.items())))
        if key in self.memo:
            return self.memo[key]
        if block.name in self.stack:
            chain = " → ".join(self.stack + [block.name])
            raise ExpansionError(f"block '{block.name}' calls itself ({chain}); blocks cannot recurse", term.span)
        self.stack.append(block.name)
        try:
            count = self.term(block.body, bound, block_ctx)
        finally:
            self.stack.pop()
        self.memo[key] = count
        return count


def count_layers(spec: ast.Spec, ctx, limit: int) -> int:
    """The number of layers `spec` expands to; raises ExpansionError above `limit`."""
    counter = LayerCounter(limit)
    total = 0
    for term in spec.body:
        total += counter.term(term, {}, ctx)
        if total > limit:
            raise ExpansionError(
                f"the spec expands to more than {limit:,} layers (at least {total:,} by here)."
                f" Received: a spec of {total:,}+ layers",
                term.span,
            )
    return total
