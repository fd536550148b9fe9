"""The imported graph's top level in the program's order, with `-> name` and `@name` where a tensor
is read away from where it was made (U-Net's skips, GoogLeNet's auxiliary heads, a split's parts).
"""
from __future__ import annotations

import re

import networkx as nx

from ..errors import ArchError
from ..ops import REGISTRY, Add, ChannelSlice
from .items import LayerItem, MergeItem, Name, Ref, SplitItem, layer_of, nodes_of, output_of

# ---- the sequence, with named tensors ----------------------------------------------------------------------------


_COUNTER_NAME = re.compile(r"^([A-Za-z_]+?)_?\d*$")
# Module and value names exporters make up, which say nothing a reader could use as a tensor's name.
GENERIC_NAMES = {"getitem", "cat", "val", "node", "x", "t", "out", "input", "output", "layer", "features",
                  "classifier", "add", "mul", "view", "flatten", "reshape", "identity", "sequential", "branch", "b",
                  "shortcut", "downsample", "block", "stem", "head", "module", "op", "relu", "conv", "bn", "fc"}


def _telling(name: str) -> bool:
    """Whether a module's name from the exporter is worth a tensor's name (`enc1`, not `relu3`)."""

    match = _COUNTER_NAME.match(name)
    if not name.isidentifier() or match is None:
        return False
    base = match.group(1).lower()
    return base not in REGISTRY and base not in GENERIC_NAMES and not name.isdigit()


def sequence(graph: nx.DiGraph, source: str, outputs: dict[str, str], found: dict) -> list:
    """The top level in the program's order: layers, merges and composites, with `-> name` and `@name`."""
    owner: dict[str, str] = {}
    # the outermost composite owns its nodes: a node inside a nested one belongs to the outer one
    for merge in sorted(found, key=lambda m: len(nodes_of([found[m]]))):
        for n in nodes_of([found[merge]]):
            owner[n] = merge
    found = {m: c for m, c in found.items() if owner[m] == m}
    top = nx.DiGraph()
    for n in graph.nodes:
        if n == source:
            continue
        top.add_node(owner.get(n, n))
    for u, v in graph.edges:
        a, b = owner.get(u, u), owner.get(v, v)
        if a != b and u != source:
            top.add_edge(a, b)
    main = next(iter(outputs.values()))
    main_owner = owner.get(main, main)
    on_main = nx.ancestors(top, main_owner) | {main_owner}
    first_index = {n: min(layer_of(graph, x).index for x in nodes_of([found[n]])) if n in found else layer_of(graph, n).index
                   for n in top.nodes}
    order = list(nx.lexicographical_topological_sort(top, key=lambda n: (n in on_main, first_index[n])))

    items: list = []
    current = source
    wanted: dict[str, None] = {}  # tensors read away from where they were made
    split_done: set[str] = set()
    for n in order:
        if n in split_done:
            continue
        if n in found:
            item, inputs = found[n], [found[n].fork]
        elif isinstance(layer_of(graph, n).op, ChannelSlice):
            parts = _split_parts(graph, n)
            split_done.update(parts)
            item, inputs = SplitItem(parts), [layer_of(graph, n).inputs[0]]
            for part in parts:
                wanted[part] = None
        else:
            layer = layer_of(graph, n)
            inputs = list(layer.inputs)
            if len(inputs) > 1 and isinstance(layer.op, Add) and current in inputs:
                inputs.remove(current)
                inputs.insert(0, current)  # addition commutes: no @ for the tensor at hand
            item = LayerItem(n) if len(inputs) == 1 else MergeItem(n, inputs[1:])
        if inputs[0] != current:
            items.append(Ref(inputs[0]))
            wanted[inputs[0]] = None
        for other in inputs[1:]:
            wanted[other] = None
        items.append(item)
        current = output_of(item)
    for name, node in list(outputs.items())[1:]:
        wanted[node] = None
    if current != main:
        items.append(Ref(main))
        wanted[main] = None
    return _named(graph, items, wanted, outputs, source)


def _split_parts(graph, node: str) -> list[str]:
    """The slices of one tensor that `node` is one of, in channel order; they must cut all its channels."""
    source = layer_of(graph, node).inputs[0]
    parts = sorted((s for s in graph.successors(source) if isinstance(layer_of(graph, s).op, ChannelSlice)),
                   key=lambda s: layer_of(graph, s).op.start)
    edges = [(layer_of(graph, p).op.start, layer_of(graph, p).op.stop) for p in parts]
    channels = layer_of(graph, source).shape[0]
    if edges[0][0] != 0 or edges[-1][1] != channels or any(a[1] != b[0] for a, b in zip(edges, edges[1:])):
        raise ArchError(f"channel slices {edges} of a {channels}-channel tensor do not cut it into parts one after"
                        " another; archdsl writes slices as a split of all the channels")
    return parts


def _named(graph, items: list, wanted: dict, outputs: dict[str, str], source: str) -> list:
    """Names for the tensors read away from where they were made: an output's own name, the module's
    name the exporter recorded (`enc1`), else t1, t2, …"""
    names: dict[str, str] = {source: "input"}
    taken = {"input", "output"}
    by_node = {node: name for name, node in outputs.items()}
    main = next(iter(outputs.values()))
    for node in sorted(wanted, key=lambda n: layer_of(graph, n).index):
        if node in names:
            continue
        candidates = []
        if node in by_node and (node != main or by_node[node] != "output"):
            candidates.append(by_node[node])
        hint = layer_of(graph, node).hint
        if hint and _telling(hint.rsplit(".", 1)[-1]):
            candidates.append(hint.rsplit(".", 1)[-1])
        name = next((_identifier(c) for c in candidates if _identifier(c) not in taken), None)
        if name is None:
            k = 1
            while f"t{k}" in taken:
                k += 1
            name = f"t{k}"
        taken.add(name)
        names[node] = name
    if main in by_node and by_node[main] != "output" and main not in names:
        names[main] = _identifier(by_node[main])
    out = []
    for item in items:
        if isinstance(item, Ref):
            out.append(Ref(names[item.name]))
            continue
        if isinstance(item, MergeItem):
            item = MergeItem(item.node, [names[r] for r in item.refs])
        if isinstance(item, SplitItem):
            out.append(SplitItem(item.nodes, [names[n] for n in item.nodes]))
            continue
        out.append(item)
        produced = output_of(item)
        if produced in names and produced != source:
            out.append(Name(names[produced]))
    return out


def _identifier(text: str) -> str:
    text = re.sub(r"\W", "_", text)
    if not text or text[0].isdigit():
        text = "t_" + text
    return text


