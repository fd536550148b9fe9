"""Long networks wrapped into columns (top to bottom) or rows (left to right): `--wrap N`.

A chain of 40 ranks is a strip no page holds. Wrapping cuts the top-level sequence
(layers, blocks, stages) into N runs of about equal length; Graphviz still lays out
everything, and is told only two things: the first box of each run sits on one rank
(`rank=same`, ordered by invisible edges), and edges from one run to another do not
pull the runs apart (`constraint=false`). `auto` picks the N that lets the drawing be
printed largest on a page of ordinary proportions (11 × 8.5 inches, upright for a
diagram drawn top to bottom, on its side for one drawn left to right): a network
that fits as it is stays one run.
"""
from __future__ import annotations

from dataclasses import dataclass

from .collapse import Edge, View

# Rough sizes, in inches, of what dot draws: how far one rank advances along the
# drawing's length, and how much room a box takes across it, per direction.
RANK_LENGTH = {"TB": 1.25, "LR": 2.8}
BOX_BREADTH = {"TB": 2.2, "LR": 1.3}
PAGE = (11.0, 8.5)  # inches: along the drawing's length, and across it
MAX_RUNS = 12


@dataclass(frozen=True)
class Wrapping:
    run_of: dict[str, int]  # box or point id → its run
    heads: tuple[str, ...]  # the first box of each run

    def crosses(self, edge: Edge) -> bool:
        return self.run_of[edge.tail] != self.run_of[edge.head]

    def align(self, graph) -> None:
        """Put the runs' first boxes on one rank, in order."""
        with graph.subgraph() as same:
            same.attr(rank="same")
            for head in self.heads:
                same.node(head)
            for a, b in zip(self.heads, self.heads[1:]):
                same.edge(a, b, style="invis")


def ranks(view: View) -> dict[str, int]:
    """Each box's and point's rank along the drawing (the longest path to it)."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from([*view.boxes, *view.points])
    graph.add_edges_from((edge.tail, edge.head) for edge in view.edges)
    rank = dict.fromkeys(graph, 0)
    for item in nx.topological_sort(graph):
        for after in graph.successors(item):
            rank[after] = max(rank[after], rank[item] + 1)
    return rank


def _items(view: View) -> list[list[str]]:
    """The boxes and points under each top-level item, in drawing order."""
    def under(item: str) -> list[str]:
        if item not in view.clusters:
            return [item]
        return [leaf for child in view.contents.get(item, ()) for leaf in under(child)]

    return [under(item) for item in view.contents.get(None, ())]


def auto_runs(view: View, rankdir: str) -> int:
    """How many runs let the drawing be printed largest on a page (1: it fits as it is)."""
    rank = ranks(view)
    length = max(rank.values(), default=0) + 1
    breadth = max(sum(1 for r in rank.values() if r == k) for k in set(rank.values()))

    def scale(n: int) -> float:
        """How much a page shrinks the drawing cut into n runs (1: not at all)."""
        along = length / n * RANK_LENGTH[rankdir]
        across = breadth * n * BOX_BREADTH[rankdir]
        return min(PAGE[0] / along, PAGE[1] / across, 1.0)

    best = 1
    for n in range(2, min(MAX_RUNS, max(length // 2, 1)) + 1):
        if scale(n) > scale(best) * 1.05:  # a cut must earn its place
            best = n
    return best


def wrap(view: View, runs: int) -> Wrapping | None:
    """Cut the top-level sequence into at most `runs` runs, the longest as short as it can be (None: one run)."""
    items = _items(view)
    if runs <= 1 or len(items) < 2:
        return None
    rank = ranks(view)
    extents = [(min(rank[leaf] for leaf in leaves), max(rank[leaf] for leaf in leaves)) for leaves in items]

    def cut(longest: int) -> list[int]:
        """Where runs start when none may be longer than `longest` ranks (greedy: each run as long as it may)."""
        starts, first, end = [0], extents[0][0], extents[0][1]
        for i, (start, stop) in enumerate(extents[1:], 1):
            end = max(end, stop)
            if end - first + 1 > longest:
                starts.append(i)
                first, end = start, stop
        return starts

    low = max(stop - start + 1 for start, stop in extents)
    high = max(stop for _, stop in extents) + 1
    while low < high:  # the shortest longest run that needs no more than `runs` runs
        middle = (low + high) // 2
        if len(cut(middle)) <= runs:
            high = middle
        else:
            low = middle + 1
    starts = cut(low)
    if len(starts) < 2:
        return None
    run_of: dict[str, int] = {}
    heads: list[str] = []
    for run, (begin, end) in enumerate(zip(starts, [*starts[1:], len(items)])):
        leaves = [leaf for item in items[begin:end] for leaf in item]
        heads.append(min(leaves, key=lambda leaf: rank[leaf]))
        run_of.update(dict.fromkeys(leaves, run))
    return Wrapping(run_of, tuple(heads))
