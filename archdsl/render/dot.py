"""A `View` → a `graphviz.Digraph`: nodes, nested clusters, edges, title and legend.

Everything is emitted in the IR's order (a topological order), so the same
spec always gives the same .dot source, byte for byte.
"""
from __future__ import annotations

import graphviz

from ..network import Network
from ..shapes import fmt_shape
from . import labels, style
from .collapse import Box, View


def to_digraph(net: Network, view: View, rankdir: str = "TB") -> graphviz.Digraph:
    output_names: dict[str, list[str]] = {}
    for name, node in net.output_nodes.items():
        output_names.setdefault(node, []).append(name)
    tensor_names = net.graph.tensor_names

    kinds = {style.COLLAPSED if box.collapsed else box.layers[0].op.kind for box in view.boxes.values()}
    legend = style.legend_html(kinds)
    graph = graphviz.Digraph(
        name=net.name,
        graph_attr={
            **style.GRAPH_ATTRS,
            "rankdir": rankdir,
            "label": labels.title(net.name, net.input_shape, net.outputs, net.params, net.macs, legend),
        },
        node_attr=style.NODE_ATTRS,
        edge_attr=style.EDGE_ATTRS,
    )

    def outputs_of(box: Box) -> list[str]:
        return [name for layer in box.layers for name in output_names.get(layer.name, ())]

    def add_node(g: graphviz.Digraph, box: Box) -> None:
        outs = outputs_of(box)
        extra = style.OUTPUT_ATTRS if outs else {}
        if box.collapsed:
            label = labels.box_label(box, exit_shapes(net, box), outs, net.name)
            g.node(box.id, label, fillcolor=style.COLLAPSED_COLOUR, **style.COLLAPSED_ATTRS, **extra)
        else:
            layer = box.layers[0]
            g.node(box.id, labels.layer_label(layer, outs), fillcolor=style.kind_colour(layer.op.kind), **extra)

    def fill(g: graphviz.Digraph, cluster: str | None) -> None:
        for item in view.contents.get(cluster, ()):
            if item in view.boxes and item not in view.clusters:
                add_node(g, view.boxes[item])
                continue
            block = view.clusters[item]
            attrs = {**style.CLUSTER_COMMON, **style.CLUSTER_ATTRS[block.kind]}
            attrs.setdefault("label", labels.cluster_label(block))
            # Graphviz draws a subgraph as a box only when its name starts with "cluster".
            with g.subgraph(name=f"cluster_{item}", graph_attr=attrs) as sub:
                fill(sub, item)

    fill(graph, None)
    for edge in view.edges:
        attrs = style.SKIP_EDGE_ATTRS if edge.skip else {}
        label = labels.edge_label(edge.tensor, tensor_names.get(edge.tensor.name))
        graph.edge(edge.tail, edge.head, label, **attrs)
    return graph


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
