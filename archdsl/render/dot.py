"""A `View` → a `graphviz.Digraph`: nodes, nested clusters, edges, title and legend.

Everything is emitted in the IR's order (a topological order), so the same
spec always gives the same .dot source, byte for byte.

Two looks: compact (the default) draws a layer's folded followers in its box,
the resolved tokens, and a shape on an edge only where the shape changes;
`compact=False` (`--full`) draws every layer with its shape, and every edge's.
"""
from __future__ import annotations

import graphviz

from ..network import Network
from ..shapes import fmt_shape
from . import labels, style
from .collapse import Box, Edge, View
from .wrap import Wrapping


def to_digraph(net: Network, view: View, rankdir: str = "TB", compact: bool = False,
               wrapping: Wrapping | None = None, ids: bool = False) -> graphviz.Digraph:
    """`ids`: give every node and cluster its view id as its SVG id (the interactive viewer finds them by it)."""
    output_names: dict[str, list[str]] = {}
    for name, node in net.output_nodes.items():
        output_names.setdefault(node, []).append(name)
    tensor_names = net.graph.tensor_names
    hierarchy = view.hierarchy

    kinds = {style.COLLAPSED if box.collapsed else box.head.op.kind for box in view.boxes.values()}
    legend = style.legend_html(kinds)
    graph = graphviz.Digraph(
        name=net.name,
        graph_attr={
            **style.GRAPH_ATTRS,
            **(style.COMPACT_GRAPH_ATTRS if compact else {}),
            "rankdir": rankdir,
            "label": labels.title(net.name, net.input_shape, net.outputs, net.params, net.macs, legend),
        },
        node_attr=style.NODE_ATTRS,
        edge_attr=style.EDGE_ATTRS,
    )
    entering = entry_shapes(view)

    def outputs_of(box: Box) -> list[str]:
        return [name for layer in box.layers for name in output_names.get(layer.name, ())]

    def add_node(g: graphviz.Digraph, box: Box) -> None:
        outs = outputs_of(box)
        extra = {**(style.OUTPUT_ATTRS if outs else {}), **({"id": box.id} if ids else {})}
        if box.collapsed:
            label = labels.box_label(box, exit_shapes(net, box), outs, net.name,
                                     hierarchy.label(box.id) if box.block else None, compact)
            g.node(box.id, label, fillcolor=style.COLLAPSED_COLOUR, **style.COLLAPSED_ATTRS, **extra)
        elif compact:
            shown = fmt_shape(box.layers[-1].shape) if outs or box.id not in entering else None
            label = labels.chain_label(box, outs, hierarchy.label(box.id), shown)
            g.node(box.id, label, fillcolor=style.kind_colour(box.head.op.kind), **extra)
        else:
            layer = box.head
            g.node(box.id, labels.layer_label(layer, outs, hierarchy.label(box.id)),
                   fillcolor=style.kind_colour(layer.op.kind), **extra)

    def fill(g: graphviz.Digraph, cluster: str | None) -> None:
        for item in view.contents.get(cluster, ()):
            if item in view.points:
                g.node(item, "", **style.POINT_ATTRS)
                continue
            if item in view.boxes and item not in view.clusters:
                add_node(g, view.boxes[item])
                continue
            frame = view.clusters[item]
            attrs = {**style.CLUSTER_COMMON, **style.frame_attrs(frame)}
            attrs.setdefault("label", labels.cluster_label(frame, hierarchy.label(item)))
            if ids:
                attrs["id"] = f"cluster_{item}"
            # Graphviz draws a subgraph as a box only when its name starts with "cluster".
            with g.subgraph(name=f"cluster_{item}", graph_attr=attrs) as sub:
                fill(sub, item)

    fill(graph, None)
    for edge in view.edges:
        attrs = dict(style.SKIP_EDGE_ATTRS) if edge.skip else {}
        if wrapping is not None and wrapping.crosses(edge):
            attrs.update(style.WRAPPED_EDGE_ATTRS)
        if edge.head in view.points:
            attrs["arrowhead"] = "none"
        shape = edge.labelled and (not compact or shows_shape(edge, entering))
        name = tensor_names.get(edge.tensor.name) if edge.labelled else None
        graph.edge(edge.tail, edge.head, labels.edge_label(edge.tensor, name, shape) or None, **attrs)
    if wrapping is not None:
        wrapping.align(graph)
    return graph


def entry_shapes(view: View) -> dict[str, set]:
    """The shapes that enter each box or point (a box with no edge in, the input, has none)."""
    shapes: dict[str, set] = {}
    for edge in view.edges:
        shapes.setdefault(edge.head, set()).add(edge.tensor.shape)
    return shapes


def shows_shape(edge: Edge, entering: dict[str, set]) -> bool:
    """A compact edge shows its shape only where the box it leaves changed the shape."""
    into_tail = entering.get(edge.tail)
    return into_tail is not None and edge.tensor.shape not in into_tail


def exit_shapes(net: Network, box: Box) -> list[str]:
    """The shapes that leave a collapsed block (usually one: the block's result)."""
    inside = {layer.name for layer in box.layers}
    outputs = set(net.output_nodes.values())
    shapes: list[str] = []
    for layer in box.layers:
        leaves = layer.name in outputs or any(s not in inside for s in net.graph.successors(layer.name))
        shape = fmt_shape(layer.shape)
        if leaves and shape not in shapes:
            shapes.append(shape)
    return shapes or [fmt_shape(box.layers[-1].shape)]
