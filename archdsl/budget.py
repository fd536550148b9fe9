"""How many layers a spec expands to, at most, computed without expanding it.

What is counted is steps of expansion: every layer, and every name, reference, block
call and repetition even where it adds no layer, so that the count bounds both the
graph and the time it takes to build it.

Repetitions multiply and block calls are memoized by their arguments, so the
count of `[[[conv3-64] * 1000] * 1000] * 1000` takes microseconds. How each
construct counts lives beside how it expands (`terms`, `composites`); this walk
only dispatches and keeps the limits:

* every running total is compared with the limit as it grows, so a count never
  runs on long after the answer is known to be "too many";
* the walk itself is bounded: blocks that call each other with ever new
  arguments (`block f1(a) = [f0(a*2) f0(a*2+1)]`, forty levels deep) defeat the
  memo, and would otherwise be counted one call at a time, 2^40 of them.

The expander refuses specs above `expand.MAX_LAYERS` this way before building anything.
"""
from __future__ import annotations

from typing import Any

from . import ast
from .errors import ExpansionError

# Terms the count may visit per layer of budget. A spec visits about one term per layer
# it builds, fewer where blocks and repetitions are counted once for many layers; past
# this, counting itself would be the hang.
WORK_PER_LAYER = 1


class LayerCounter:
    def __init__(self, limit: int):
        self.limit = limit
        self.memo: dict[tuple, int] = {}
        self.stack: list[str] = []
        self.depth = 0
        self.work = 0
        self.max_work = WORK_PER_LAYER * limit + 10_000

    def seq(self, terms, env: dict[str, Any], ctx, in_after=False) -> int:
        total = 0
        for term in terms:
            total = self.within_limit(total + self.term(term, env, ctx, in_after), term)
        return total

    def term(self, term, env, ctx, in_after=False) -> int:
        from .expand import MAX_NESTING, nesting_error
        from .terms import TERMS

        self.work += 1
        if self.work > self.max_work:
            raise ExpansionError(
                f"counting this spec's layers takes more than {self.max_work:,} steps: its blocks call each other"
                " with ever new arguments, so it would expand to more layers than archdsl builds."
                f" Received: {' → '.join(self.stack) or 'a spec'} called over and over",
                term.span,
            )
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise nesting_error(term, self.stack)
            return TERMS[type(term)].count(term, self, env, ctx, in_after)
        finally:
            self.depth -= 1

    def within_limit(self, count: int, term) -> int:
        if count > self.limit:
            raise ExpansionError(
                f"the spec expands to more than {self.limit:,} layers (at least {count:,} by here)."
                f" Received: a spec of {count:,}+ layers",
                term.span,
            )
        return count


def count_layers(spec: ast.Spec, ctx, limit: int) -> int:
    """At most how many layers `spec` expands to; raises ExpansionError above `limit`."""
    return LayerCounter(limit).seq(spec.body, {}, ctx)
