"""The interactive page: `archdsl render SPEC -o net.html`, opened by `archdsl view SPEC`.

One self-contained HTML file, nothing fetched when it is viewed: the network as a
model (JSON), Graphviz compiled to WebAssembly (`assets/graphviz/`, inlined), and a
small script (`assets/viewer.js`) that lays the graph out in the browser with that
Graphviz, pans and zooms it, opens and closes blocks on click, and shows a layer's
or a block's figures in a side panel.

The model holds the pieces of the compact diagram, written here by the same
`DotWriter` as `archdsl render`'s: every box's node statement, every frame's
attributes, every edge's, and for each block the node it becomes when closed.
The script only assembles them for the blocks open at the moment, so the page
draws exactly what `render` draws, block for block.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .. import files
from ..hierarchy import Hierarchy
from ..ir import BlockInstance
from ..network import Network
from ..report import human
from ..shapes import fmt_shape
from . import labels, style
from .collapse import Box, build_view, levels
from .output import RenderError

ASSETS = Path(__file__).with_name("assets")
GRAPHVIZ_JS = ASSETS / "graphviz" / "graphviz.js"
AUTO_DEPTH_BOXES = 60  # a network drawn in more boxes than this opens with its top-level blocks closed


def write_page(net: Network, path: Path, depth: int | None = None) -> None:
    files.write_text(path, page(net, depth))


def page(net: Network, depth: int | None = None) -> str:
    """The whole HTML page."""
    template = (ASSETS / "viewer.html").read_text(encoding="utf-8")
    parts = {
        "TITLE": _html_text(f"{net.name} — archdsl"),
        "STYLE": (ASSETS / "viewer.css").read_text(encoding="utf-8"),
        # `<` only ever stands in a JSON string, where \u003c reads the same: no `</script>` can end it early
        "MODEL": json.dumps(model(net, depth), separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c"),
        "GRAPHVIZ": _script_text(classic_script(GRAPHVIZ_JS.read_text(encoding="utf-8")), GRAPHVIZ_JS),
        "VIEWER": _script_text((ASSETS / "viewer.js").read_text(encoding="utf-8"), ASSETS / "viewer.js"),
    }
    return re.sub(r"@@(\w+)@@", lambda m: parts[m.group(1)], template)


def classic_script(module: str) -> str:
    """The vendored ES module as a classic script that sets `globalThis.ArchdslGraphviz`.

    A page opened from a file cannot import modules (its origin is opaque), so the
    module's closing `export{…}` becomes an assignment, inside a function of its own.
    """
    match = re.search(r"export\s*\{([^}]*)\}\s*;?\s*(//# sourceMappingURL=\S*\s*)?$", module)
    if match is None:
        raise RenderError(f"{GRAPHVIZ_JS} does not end in an export statement: is it the vendored file?")
    names = dict(reversed(item.split(" as ")) if " as " in item else (item, item)
                 for item in (part.strip() for part in match.group(1).split(",")))
    exports = ",".join(f"{exported}:{local}" for exported, local in names.items())
    return f'(function(){{"use strict";\n{module[:match.start()]}\nglobalThis.ArchdslGraphviz={{{exports}}};\n}})();'


def _script_text(text: str, origin: Path) -> str:
    """Script text as it is, once sure that the HTML parser reads all of it as one script."""
    if re.search(r"</script|<!--", text, flags=re.IGNORECASE):
        raise RenderError(f"{origin} holds `</script` or `<!--`, which would end its <script> element early")
    return text


def _html_text(text: str) -> str:
    from html import escape

    return escape(text)


def initial_closed(net: Network, depth: int | None, boxes: int) -> list[str]:
    """The blocks drawn closed when the page opens: those at `depth` (auto: 1 for large networks)."""
    if depth is None:
        depth = 1 if boxes > AUTO_DEPTH_BOXES else None
    if depth is None:
        return []
    if depth < 1:
        raise RenderError("the page opens at --depth 1 or more (blocks open on click); 0 would leave nothing to open."
                          f" Received: --depth {depth}")
    closed = {counted[depth - 1] for layer in net.layers
              if len(counted := levels(net.blocks, layer.scope)) >= depth}
    return sorted(closed, key=list(net.blocks).index)


def model(net: Network, depth: int | None = None) -> dict:
    """What viewer.js assembles and shows (see the module's doc)."""
    from graphviz import quoting

    from .dot import DotWriter

    view = build_view(net.graph, None, compact=True)
    writer = DotWriter(net, view, compact=True, ids=True)
    hierarchy: Hierarchy = view.hierarchy
    blocks = {i: b for i, b in view.clusters.items() if isinstance(b, BlockInstance) and not b.kind.is_part}

    def statement(item: str, label: str, attrs: dict) -> str:
        return f"{quoting.quote(item)}{quoting.attr_list(label, kwargs=attrs)}"

    nodes = {box_id: statement(box_id, *writer.node(box)) for box_id, box in view.boxes.items()}
    points = {p: statement(p, "", writer.point(p)) for p in view.points}
    frames = {item: quoting.attr_list(kwargs=writer.frame(item)) for item in view.clusters}
    closed_nodes, inside = {}, {}
    for block_id, block in blocks.items():
        layers = tuple(layer for layer in net.layers if block_id in layer.scope)
        box = Box(block_id, layers, block, hierarchy.parent(block_id), collapsed=True)
        closed_nodes[block_id] = statement(block_id, *writer.node(box))
        inside[block_id] = box
    edges = []
    for edge in view.edges:
        label, attrs = writer.edge(edge)
        leaving, _ = writer.edge(edge, shape=edge.labelled)  # leaving a closed block: its shape
        attrs.pop("arrowhead", None)  # the script says where the edge ends: at a point, or a closed block
        edges.append([edge.tail, edge.head, edge.tensor.name, label, leaving, quoting.a_list(kwargs=attrs)])
    kinds = writer.kinds() | ({style.COLLAPSED} if blocks else set())
    return {
        "name": net.name,
        "header": _header(writer.graph_attrs(kinds, "TB")),
        "contents": {item or "": children for item, children in view.contents.items()},
        "parents": {item: _parent(view, item) for item in [*view.boxes, *view.points, *view.clusters]},
        "nodes": nodes,
        "points": points,
        "frames": frames,
        "closable": closed_nodes,
        "edges": edges,
        "info": {**{box_id: box_info(net, box, hierarchy) for box_id, box in view.boxes.items()},
                 **{block_id: block_info(net, box, hierarchy) for block_id, box in inside.items()},
                 **{item: stage_info(net, item) for item in view.clusters if item in net.graph.stages}},
        "closed": initial_closed(net, depth, len(view.boxes)),
        "top": initial_closed(net, 1, len(view.boxes)),
    }


def _parent(view, item: str) -> str | None:
    if item in view.boxes:
        return view.boxes[item].cluster
    if item in view.points:
        return view.points[item]
    return view.hierarchy.parent(item)


def _header(graph_attrs: dict) -> str:
    from graphviz import quoting

    return (f"graph{quoting.attr_list(kwargs=graph_attrs)}\n"
            f"node{quoting.attr_list(kwargs=style.NODE_ATTRS)}\nedge{quoting.attr_list(kwargs=style.EDGE_ATTRS)}\n")


def _where(span) -> dict | None:
    """The spec line that wrote something: file, line number, and the line itself."""
    if span is None:
        return None
    return {"file": span.source.name, "line": span.line, "text": span.source.line(span.line).strip()}


def _rf(layer) -> str:
    values = layer.receptive_field
    if not values:
        return "-"
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def layer_row(layer) -> dict:
    return {
        "name": layer.name,
        "token": layer.token,
        "resolved": labels.resolved(layer),
        "kind": layer.op.kind.value,
        "shape": fmt_shape(layer.shape),
        "params": layer.params,
        "macs": layer.macs,
        "rf": _rf(layer),
        "where": _where(layer.span),
    }


def _totals(layers) -> dict:
    params = sum(layer.params for layer in layers)
    macs = sum(layer.macs for layer in layers)
    return {"params": params, "params_h": human(params), "macs": macs, "macs_h": human(macs),
            "layers": sum(1 for layer in layers if layer.op.kind.value != "input")}


def box_info(net: Network, box: Box, hierarchy: Hierarchy) -> dict:
    return {
        "type": "layers",
        "title": hierarchy.label(box.id) or " · ".join(labels.resolved(layer) for layer in box.layers),
        "label": hierarchy.known_as(box.id),
        "layers": [layer_row(layer) for layer in box.layers],
        "totals": _totals(box.layers),
        "shape": fmt_shape(box.layers[-1].shape),
        "rf": _rf(box.layers[-1]),
    }


def block_info(net: Network, box: Box, hierarchy: Hierarchy) -> dict:
    block = box.block
    from .dot import exit_shapes

    return {
        "type": "block",
        "title": hierarchy.label(block.id) or labels.written(block),
        "label": hierarchy.known_as(block.id),
        "call": labels.written(block),
        "kind": block.kind.value,
        "totals": _totals(box.layers),
        "shape": ", ".join(exit_shapes(net, box)),
        "rf": _rf(box.layers[-1]),
        "where": _where(block.span),
    }


def stage_info(net: Network, stage_id: str) -> dict:
    stage = net.graph.stages[stage_id]
    hierarchy = Hierarchy(net.graph)
    layers = [layer for layer in net.layers if stage_id in set(hierarchy.ancestors(layer.name))]
    return {"type": "stage", "title": stage.label, "label": stage.label, "totals": _totals(layers),
            "shape": fmt_shape(layers[-1].shape) if layers else "", "where": _where(stage.span)}
