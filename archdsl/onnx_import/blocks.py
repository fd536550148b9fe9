"""Blocks in the imported spec: what occurs several times with the same wiring, written once.

A composite with the activations after it, a run written with named tensors that nothing after
it reads, or the layers of one module beside such composites, is a unit; units whose layers as
written are isomorphic (networkx's `DiGraphMatcher`, each layer labelled by its op without the
numbers that differ between units) are one parametrised `block`, its numbers the block's
parameters (`c`, `4*c`, `s`), called once per unit and `* n` where calls repeat.
"""
from __future__ import annotations

import dataclasses
import re
from collections import Counter

import networkx as nx
from networkx.algorithms import isomorphism

from ..ops import FC, REGISTRY, Add, AvgPool, ChannelSlice, Conv, Deconv, MaxPool, Trait
from .items import (
    Block, Call, Composite, Inception, LayerItem, MergeItem, Name, Ref, Repeat, Residual, SplitItem, SqueezeExcite,
    layer_of, all_items, nodes_of,
)
from .sequence import GENERIC_NAMES

# ---- blocks ---------------------------------------------------------------------------------------------------------

_KEYWORDS = {"block", "network", "input", "after", "defaults", "use", "train", "inception", "residual", "se"}
# The numbers of a layer that a block may take as parameters; the rest label the layer.
SLOTS = {Conv: ("out_channels", "stride", "groups"), Deconv: ("out_channels", "stride", "groups"),
         FC: ("out_features",), MaxPool: ("stride",), AvgPool: ("stride",)}
# A block that neither a class nor a module path names is called after the composite it is.
_COMPOSITE_NAMES = {Residual: "residual_block", Inception: "inception_block", SqueezeExcite: "se_block"}
_PREFIX = {"out_channels": "c", "out_features": "n", "stride": "s", "groups": "g", "ratio": "r", "squeeze": "c"}


def _is_tail(graph, item, shape_kept: bool = False) -> bool:
    """An activation after a composite, taken into its block (ResNet's relu after the add); with
    `shape_kept`, any layer without weights that keeps the shape (ShuffleNet's shuffle after its concat)."""
    if not isinstance(item, LayerItem):
        return False
    layer = layer_of(graph, item.node)
    if layer.op.has(Trait.ELEMENTWISE):
        return True
    return shape_kept and not layer.weights and len(layer.inputs) == 1 \
        and layer_of(graph, layer.inputs[0]).shape == layer.shape


def units(graph, items: list) -> list[tuple[int, int]]:
    """(start, end) of each run that could be a block: a composite and the activations after it; and,
    where the exporter recorded module paths, the layers of one module that is a sibling of such a
    composite's (torchvision's InvertedResidual without its shortcut, beside those with one)."""
    spans = []
    i = 0
    while i < len(items):
        if isinstance(items[i], Composite) and not isinstance(items[i], SqueezeExcite):  # se<…> alone is short
            j = i + 1
            while j < len(items) and _is_tail(graph, items[j]):
                j += 1
            spans.append((i, j))
            i = j
        else:
            i += 1
    composite_spans = list(spans)
    covered = {k for a, b in spans for k in range(a, b)}
    for a, b in _named_segments(items):
        if covered & set(range(a, b)):
            continue
        while b < len(items) and b not in covered and _is_tail(graph, items[b], shape_kept=True):
            b += 1
        spans.append((a, b))
        covered |= set(range(a, b))
    paths = [_common_path(graph, nodes_of(items[a:b])) for a, b in composite_spans]
    siblings = {(p.rsplit(".", 1)[0] if "." in p else "", p.count(".")) for p in paths if p}
    k = 0
    while k < len(items):
        if k in covered or not isinstance(items[k], LayerItem):
            k += 1
            continue
        hint = layer_of(graph, items[k].node).hint or ""
        parts = hint.split(".")
        prefix = next((".".join(parts[: depth + 1]) for parent, depth in sorted(siblings)
                       if len(parts) > depth + 1 and ".".join(parts[:depth]) == parent), None)
        end = k
        while prefix and end < len(items) and end not in covered \
                and isinstance(items[end], (LayerItem, SqueezeExcite)) \
                and all(((layer_of(graph, n).hint or "") + ".").startswith(prefix + ".") for n in nodes_of([items[end]])):
            end += 1
        if prefix and len(nodes_of(items[k:end])) >= 3:
            spans.append((k, end))
            k = end
        else:
            k += 1
    return sorted(spans)


def _named_segments(items: list) -> list[tuple[int, int]]:
    """Runs of items written with named tensors that nothing outside them reads (ShuffleNetV2's unit:
    split, a branch, a concat): between two places where no name is still to be read. Names that
    are outputs stay outside blocks (a block's names are its own)."""
    defined: dict[str, int] = {}
    last_read: dict[str, int] = {}
    for k, item in enumerate(items):
        for name in _defines(item):
            defined[name] = k
        for name in _reads(item):
            last_read[name] = k
    outputs = {item.name for item in items if isinstance(item, Name) and item.name not in last_read}
    if "input" in last_read:
        return []  # @input is the network's own name: no block can read it
    open_until = [0] * (len(items) + 1)
    for name, k in defined.items():
        for p in range(k + 1, last_read.get(name, k) + 1):
            open_until[p] = 1
    cuts = [p for p in range(len(items) + 1) if not open_until[p]]
    spans = []
    for a, b in zip(cuts, cuts[1:]):
        segment = items[a:b]
        names = {n for item in segment for n in _defines(item)}
        if b - a >= 2 and names and not names & outputs and any(_reads(item) for item in segment):
            spans.append((a, b))
    return spans


def _defines(item) -> list[str]:
    if isinstance(item, Name):
        return [item.name]
    if isinstance(item, SplitItem):
        return list(item.names)
    return []


def _reads(item) -> list[str]:
    if isinstance(item, Ref):
        return [item.name]
    if isinstance(item, MergeItem):
        return list(item.refs)
    return []


def _common_path(graph, nodes: list[str], share: float = 1.0) -> str:
    """The longest module path that the recorded paths of (a `share` of) the layers start with ('' if none)."""
    hints = [(layer_of(graph, n).hint or "").split(".") for n in nodes]
    if not hints or not all(h and h[0] for h in hints):
        return ""
    common: list[str] = []
    while True:
        depth = len(common)
        counts = Counter(tuple(h[: depth + 1]) for h in hints if len(h) > depth and h[:depth] == common)
        if not counts:
            break
        best, count = counts.most_common(1)[0]
        if count < share * len(hints):
            break
        common = list(best)
    return ".".join(common)


def _digest(g: nx.DiGraph) -> str:
    """Weisfeiler-Lehman hash of a unit's graph: equal for isomorphic units (a bucket before matching)."""
    import warnings

    if not len(g):
        return ""
    labelled = nx.DiGraph()
    labelled.add_nodes_from((n, {"label": repr(d["label"])}) for n, d in g.nodes(data=True))
    labelled.add_edges_from((u, v, {"port": str(d["port"])}) for u, v, d in g.edges(data=True))
    with warnings.catch_warnings():  # networkx 3.5 changed directed hashes; ours are compared with each other only
        warnings.simplefilter("ignore")
        return nx.weisfeiler_lehman_graph_hash(labelled, node_attr="label", edge_attr="port")


def _label(graph, node: str, se: dict) -> tuple:
    """What must agree for two layers to be one in a block: the op and its numbers but the slots',
    and for se<…>'s layers, what se<…> writes but its ratio."""
    op = layer_of(graph, node).op
    if node in se:
        kind, _value, *options = se[node]
        return (type(op).__name__, "se", kind, tuple(options))
    if isinstance(op, ChannelSlice):  # a part of a split: which one, and the sizes where they differ
        layer = layer_of(graph, node)
        parts = sorted((layer_of(graph, s).op for s in graph.successors(layer.inputs[0])
                        if isinstance(layer_of(graph, s).op, ChannelSlice)), key=lambda o: o.start)
        sizes = [o.stop - o.start for o in parts]
        return ("ChannelSlice", parts.index(op), len(parts), None if len(set(sizes)) == 1 else tuple(sizes))
    slots = SLOTS.get(type(op), ())
    fields = tuple((f.name, getattr(op, f.name)) for f in dataclasses.fields(op) if f.name not in slots)
    return (type(op).__name__, fields)


def _unit_graph(graph, items) -> tuple[nx.DiGraph, dict]:
    """The layers of a unit as written (archdsl's inserted projections left out), labelled for isomorphism."""
    se = {n: ("ratio" if item.ratio is not None else "squeeze", item.ratio or item.squeeze, item.act, item.gate,
              item.form) for item in all_items(items) if isinstance(item, SqueezeExcite) for n in item.layers}
    written = set(nodes_of(items))
    for item in all_items(items):
        if isinstance(item, Residual) and item.shortcut is None:
            written -= set(item.inserted)
    g = nx.DiGraph()
    for n in written:
        g.add_node(n, label=_label(graph, n, se))
    for n in written:
        layer = layer_of(graph, n)
        commutes = isinstance(layer.op, Add)
        for port, i in enumerate(layer.inputs):
            if i in written:
                g.add_edge(i, n, port=0 if commutes else port)
    return g, se


def blocks(graph, items: list, hints: bool = True) -> list:
    """The sequence with each unit that occurs at least twice replaced by a call of a block."""
    spans = units(graph, items)
    prepared = []
    for start, end in spans:
        g, se = _unit_graph(graph, items[start:end])
        digest = _digest(g)
        prepared.append((start, end, g, se, digest))
    groups: list[list] = []  # [(start, end, graph, se, mapping to the group's first)]
    for start, end, g, se, digest in prepared:
        for group in groups:
            first = group[0]
            if first[4] != digest:
                continue
            matcher = isomorphism.DiGraphMatcher(first[2], g, node_match=lambda a, b: a["label"] == b["label"],
                                                 edge_match=lambda a, b: a["port"] == b["port"])
            if matcher.is_isomorphic():
                group.append((start, end, g, se, digest, dict(matcher.mapping)))
                break
        else:
            groups.append([(start, end, g, se, digest, {n: n for n in g})])
    calls: dict[int, tuple[int, Call]] = {}
    made: list[Block] = []
    taken_names: set[str] = set()
    for group in groups:
        if len(group) < 2:
            continue
        block = _block(graph, items, group, taken_names)
        made.append(block)
        for (start, end, *_rest), args in zip(group, block_args(graph, block, group)):
            call = Call(block, args, nodes_of(items[start:end]))
            block.calls.append(call)
            calls[start] = (end, call)
    out = []
    i = 0
    while i < len(items):
        if i in calls:
            end, call = calls[i]
            if out and isinstance(out[-1], Repeat) and out[-1].call.block is call.block and out[-1].call.args == call.args:
                out[-1].count += 1
            else:
                out.append(Repeat(call, 1))
            i = end
        else:
            out.append(items[i])
            i += 1
    return [r.call if isinstance(r, Repeat) and r.count == 1 else r for r in out]


def _slot_values(graph, node: str, se: dict) -> list[tuple[str, int]]:
    op = layer_of(graph, node).op
    values = []
    if node in se:
        return values  # se<…>'s layers: its ratio is the slot
    for name in SLOTS.get(type(op), ()):
        value = getattr(op, name)
        if isinstance(value, tuple):
            if len(set(value)) != 1:
                continue  # sizes like 1x2 stay part of the label
            value = value[0]
        values.append((name, value))
    return values


def _block(graph, items, group, taken_names: set[str]) -> Block:
    first_start, first_end, g, se, _d, _m = group[0]
    template = items[first_start:first_end]
    order = [n for n in nodes_of(template) if n in g]
    columns: list[tuple[tuple[str, str], tuple[int, ...]]] = []
    for n in order:
        for name, _ in _slot_values(graph, n, se):
            values = []
            for start, end, g2, se2, _d2, mapping in group:
                other = mapping[n]
                values.append(dict(_slot_values(graph, other, se2))[name])
            columns.append(((n, name), tuple(values)))
    for item in [i for i in all_items(template) if isinstance(i, SqueezeExcite)]:
        kind = "ratio" if item.ratio is not None else "squeeze"
        values = []
        for start, end, g2, se2, _d2, mapping in group:
            values.append(se2[mapping[item.layers[0]]][1])
        columns.append(((item.merge, kind), tuple(values)))
    params: list[tuple[str, tuple[int, ...]]] = []
    slots: dict = {}
    for (node, name), values in columns:
        slots[(node, name)] = _express(values, params, _PREFIX.get(name, "p"))
    defaults = {}
    for param, values in params:
        common, count = Counter(values).most_common(1)[0]
        if param[0] in "sgr" and count * 2 > len(values):
            defaults[param] = common
    block_name = _block_name(graph, group, template, taken_names)
    order = [p for p, _ in params if p not in defaults] + [p for p, _ in params if p in defaults]
    return Block(block_name, order, defaults, template, slots, values=dict(params))


def block_args(graph, block: Block, group) -> list[tuple]:
    """Each occurrence's arguments, one per parameter."""
    return [tuple(block.values[p][k] for p in block.params) for k in range(len(group))]


def _express(values: tuple[int, ...], params: list, prefix: str):
    """A constant, an existing parameter, a multiple of one (`4*c`), or a new parameter."""
    if len(set(values)) == 1:
        return values[0]
    for name, known in params:
        if known == values:
            return name
    for name, known in params:
        if not all(known):
            continue
        for factor in (2, 3, 4, 6, 8):
            if all(v == factor * k for v, k in zip(values, known)):
                return f"({factor}*{name})"
            if all(k == factor * v for v, k in zip(values, known)):
                return f"({name}/{factor})"
    n = 1 + sum(1 for p, _ in params if p.rstrip("0123456789") == prefix)
    name = prefix if n == 1 else f"{prefix}{n}"
    params.append((name, values))
    return name


def _block_name(graph, group, template, taken: set[str]) -> str:
    """The PyTorch class the exporter recorded for the occurrences (`Bottleneck` → bottleneck), or the
    module's name in its path (`denselayer3` → denselayer), else what the block is (residual_block)."""
    candidates = []
    for start, end, g, *_ in group:
        common = None
        for n in g:
            classes = [c.rsplit(".", 1)[-1] for c in layer_of(graph, n).classes[1:]
                       if not c.startswith(("torch.", "aten."))]
            common = classes if common is None else [c for c in common if c in classes]
        candidates.append(common[-1] if common else None)
    name = None
    if all(candidates):
        prefix = _common_prefix(candidates)
        name = _snake(prefix) if len(prefix) >= 3 else None
    if name is None:
        words = {re.sub(r"_?\d+[a-z]?$", "", _common_path(graph, list(g), 0.6).rsplit(".", 1)[-1]) for _s, _e, g, *_ in group}
        word = words.pop() if len(words) == 1 else ""
        if len(word) >= 3 and word.isidentifier() and word.lower() not in GENERIC_NAMES:
            name = _snake(word)
    if name is None:
        kind = next((type(i) for i in template if isinstance(i, Composite)), None)
        name = _COMPOSITE_NAMES.get(kind, "unit")

    if name in REGISTRY or name in _KEYWORDS:
        name += "_block"  # a block may not take a layer type's name, nor a keyword's
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}{k}"
    taken.add(name)
    return name


def _common_prefix(names: list[str]) -> str:
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    # cut at a word boundary of CamelCase
    if prefix not in names:
        words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", prefix)
        full = [re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", n) for n in names]
        keep = []
        for i, word in enumerate(words):
            if all(i < len(f) and f[i] == word for f in full):
                keep.append(word)
            else:
                break
        prefix = "".join(keep)
    return prefix


def _snake(name: str) -> str:
    name = name.strip("_")
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    return re.sub(r"\W", "_", name)
