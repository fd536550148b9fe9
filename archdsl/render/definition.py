"""A block's definition view: `archdsl render SPEC --block bottleneck -o b.svg`.

The block drawn alone, as the papers draw their modules (GoogLeNet's Figure 2, ResNet's
Figure 5): its first call, from the tensor it reads to what it returns. Its boxes show
the resolved tokens (`conv3-128/2`) and, in small type under them, the template the
block's definition writes (`conv3-c/s`): this is the one view where the template is
the point.
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import did_you_mean
from ..ir import IRGraph
from ..network import Network
from ..ops import Input
from .labels import written
from .output import RenderError


def definition_network(net: Network, name: str) -> Network:
    """The first call of block `name` as a network of its own, reading the tensor the call reads."""
    calls = [b for b in net.blocks.values() if b.user and b.name == name]
    if not calls:
        defined = sorted({b.name for b in net.blocks.values() if b.user})
        known = f" (blocks called here: {', '.join(defined)})" if defined else " (this spec calls no block)"
        raise RenderError(f"no call of a block '{name}' to draw{did_you_mean(name, defined)}{known}."
                          f" Received: --block {name}")
    block = calls[0]
    inside = [layer for layer in net.layers if block.id in layer.scope]
    entry = net.layer(block.entry)
    graph = IRGraph()
    graph.add_node(entry.name, layer=replace(entry, op=Input(entry.shape), inputs=(), scope=(), token="input",
                                             params=0, macs=0))
    ids = {i for layer in inside for i in layer.scope if i == block.id or i.startswith(block.id + ".")}
    for layer in inside:  # the block's own frames only: the ones around its call are not drawn
        graph.add_node(layer.name, layer=replace(layer, scope=tuple(i for i in layer.scope if i in ids)))
        for source in layer.inputs:
            graph.add_edge(source, layer.name)
    graph.input = entry.name
    graph.blocks = {i: (replace(b, parent=None) if i == block.id else b) for i, b in net.blocks.items() if i in ids}
    stages = {s.id: s for s in net.graph.stages.values() if s.parent in ids}
    graph.stages = stages
    kept = set(graph) | ids | set(stages)
    graph.labels = {k: v for k, v in net.graph.labels.items() if k in kept}
    graph.tensor_names = {k: v for k, v in net.graph.tensor_names.items() if k in graph}
    names = {layer.name for layer in inside}
    leaving = [layer.name for layer in inside
               if layer.name in net.output_nodes.values() or any(s not in names for s in net.graph.successors(layer.name))]
    result = leaving[-1] if leaving else inside[-1].name  # what the call returns
    graph.main_sink = result
    graph.outputs = {"output": result}
    return Network(f"{net.name}: {written(block)}", graph, net.spec, net.path)
