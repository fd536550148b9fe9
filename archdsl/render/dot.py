"""A `View` → a `graphviz.Digraph`: nodes, nested clusters, edges, title and legend.

Everything is emitted in the IR's order (a topological order), so the same
spec always gives the same .dot source, byte for byte.

Two looks: compact (the default) draws a layer's folded followers in its box,
the resolved tokens, and a shape on an edge only where the shape changes;
`compact=False` (`--full`) draws every layer with its shape, and every edge's.
`DotWriter` says what each node, cluster and edge is; `to_digraph` assembles
them, and the interactive viewer (`viewer`) assembles the same pieces again in
the browser as blocks open and close.
"""
from __future__ import annotations

import graphviz

from ..network import Network
from ..shapes import fmt_shape
from . import labels, style
from .collapse import Box, Edge, View
from .wrap import Wrapping


class DotWriter:
    """The label and attributes of every node, cluster and edge of one view."""

    def __init__(self, net: Network, view: View, compact: bool = False, ids: bool = False, templates: bool = False):
        self.net, self.view, self.compact, self.ids, self.templates = net, view, compact, ids, templates
        self.hierarchy = view.hierarchy
        self.output_names: dict[str, list[str]] = {}
        for name, node in net.output_nodes.items():
            self.output_names.setdefault(node, []).append(name)
        self.entering = entry_shapes(view)

    def graph_attrs(self, kinds: set, rankdir: str) -> dict[str, str]:
        net = self.net
        legend = style.legend_html(kinds)
        return {
            **style.GRAPH_ATTRS,
            **(style.COMPACT_GRAPH_ATTRS if self.compact else {}),
            "rankdir": rankdir,
            "label": labels.title(net.name, net.input_shape, net.outputs, net.params, net.macs, legend),
        }

    def kinds(self) -> set:
        return {style.COLLAPSED if box.collapsed else box.head.op.kind for box in self.view.boxes.values()}

    def node(self, box: Box) -> tuple[str, dict[str, str]]:
        """A box's label and attributes."""
        outs = [name for layer in box.layers for name in self.output_names.get(layer.name, ())]
        extra = {**(style.OUTPUT_ATTRS if outs else {}), **({"id": box.id} if self.ids else {})}
        label_of = self.hierarchy.label
        if box.collapsed:
            label = labels.box_label(box, exit_shapes(self.net, box), outs, self.net.name,
                                     label_of(box.id) if box.block else None, self.compact)
            return label, {"fillcolor": style.COLLAPSED_COLOUR, **style.COLLAPSED_ATTRS, **extra}
        colour = {"fillcolor": style.kind_colour(box.head.op.kind)}
        if self.compact:
            shown = fmt_shape(box.layers[-1].shape) if outs or box.id not in self.entering else None
            return labels.chain_label(box, outs, label_of(box.id), shown, self.templates), {**colour, **extra}
        return labels.layer_label(box.head, outs, label_of(box.id)), {**colour, **extra}

    def point(self, point: str) -> dict[str, str]:
        return {**style.POINT_ATTRS, **({"id": point} if self.ids else {})}

    def frame(self, item: str) -> dict[str, str]:
        """A cluster's attributes, its label among them."""
        frame = self.view.clusters[item]
        attrs = {**style.CLUSTER_COMMON, **style.frame_attrs(frame)}
        attrs.setdefault("label", labels.cluster_label(frame, self.hierarchy.label(item)))
        if self.ids:
            attrs["id"] = f"cluster_{item}"
        return attrs

    def edge(self, edge: Edge, shape: bool | None = None) -> tuple[str | None, dict[str, str]]:
        """An edge's label (None: none) and attributes; `shape` overrides whether it shows its shape."""
        attrs = dict(style.SKIP_EDGE_ATTRS) if edge.skip else {}
        if edge.head in self.view.points:
            attrs["arrowhead"] = "none"
        if shape is None:
            shape = edge.labelled and (not self.compact or shows_shape(edge, self.entering))
        name = self.net.graph.tensor_names.get(edge.tensor.name) if edge.labelled else None
        return labels.edge_label(edge.tensor, name, shape) or None, attrs


def to_digraph(net: Network, view: View, rankdir: str = "TB", compact: bool = False,
               wrapping: Wrapping | None = None, ids: bool = False, templates: bool = False) -> graphviz.Digraph:
    """`ids`: give every node and cluster its view id as its SVG id; `templates`: a block's own
    spelling of each token under the resolved one (a block's definition view)."""
    writer = DotWriter(net, view, compact, ids, templates)
    graph = graphviz.Digraph(name=net.name, graph_attr=writer.graph_attrs(writer.kinds(), rankdir),
                             node_attr=style.NODE_ATTRS, edge_attr=style.EDGE_ATTRS)

    def fill(g: graphviz.Digraph, cluster: str | None) -> None:
        for item in view.contents.get(cluster, ()):
            if item in view.points:
                g.node(item, "", **writer.point(item))
            elif item in view.boxes and item not in view.clusters:
                label, attrs = writer.node(view.boxes[item])
                g.node(item, label, **attrs)
            else:
                # Graphviz draws a subgraph as a box only when its name starts with "cluster".
                with g.subgraph(name=f"cluster_{item}", graph_attr=writer.frame(item)) as sub:
                    fill(sub, item)

    fill(graph, None)
    for edge in view.edges:
        label, attrs = writer.edge(edge)
        if wrapping is not None and wrapping.crosses(edge):
            attrs.update(style.WRAPPED_EDGE_ATTRS)
        graph.edge(edge.tail, edge.head, label, **attrs)
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
