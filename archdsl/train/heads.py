"""The network as trained: logits at every output, and a head sized for the data.

Two rewrites of the IR (on a copy; the spec's own Network is untouched):

* A trailing softmax (VGG's `soft-max`) is removed, so every output gives
  logits. Cross-entropy then runs on those logits (log-softmax inside, stable)
  instead of on log(softmax(x)), which underflows to -inf for confident wrong
  answers. Softmax has no parameters, so the weights trained this way are
  exactly the weights of the spec as written, and argmax (top-k) is unchanged.
* `with_classes(net, n)` replaces the last fc (or 1x1 conv) before each output
  with a fresh one of n outputs: a dataset with another number of classes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from archdsl.errors import ArchError
from archdsl.network import Network
from archdsl.ops import FC, Conv, Softmax, Trait


def _copy(net: Network) -> Network:
    graph = net.graph.copy()
    graph.graph = dict(net.graph.graph)
    graph.outputs = dict(net.output_nodes)
    return Network(net.name, graph, net.spec, net.path, list(net.warnings))


def strip_softmax(net: Network) -> tuple[Network, list[str]]:
    """`net` with a trailing softmax removed from each output; the names of the removed layers."""
    removed = []
    result = _copy(net)
    graph = result.graph
    for out_name, node in list(result.output_nodes.items()):
        layer = graph.nodes[node]["layer"]
        if not isinstance(layer.op, Softmax) or graph.out_degree(node) or len(layer.inputs) != 1:
            continue
        producer = layer.inputs[0]
        graph.remove_node(node)
        graph.outputs[out_name] = producer
        removed.append(node)
    if removed:  # backends may look for the main output's node here
        graph.main_sink = next(iter(graph.outputs.values()))
    return result, removed


def head_layer(net: Network, output_node: str):
    """The fc or conv whose outputs are the classes of `output_node`, or None.

    It is looked for back through layers that keep their input's channels (activations,
    dropout, pooling, flatten after a global pool).
    """
    node = output_node
    while True:
        layer = net.layer(node)
        if isinstance(layer.op, (FC, Conv)):
            return layer
        if not layer.op.has(Trait.KEEPS_CHANNELS) or len(layer.inputs) != 1:
            return None
        node = layer.inputs[0]


@dataclass(frozen=True)
class Head:
    output: str  # output name
    layer: str  # the layer that makes the classes
    classes: int
    line: int | None
    text: str


def heads(net: Network) -> list[Head]:
    """Each output's class count and the layer that sets it (main output first)."""
    result = []
    for out_name, node in net.output_nodes.items():
        shape = net.layer(node).shape
        layer = head_layer(net, node)
        classes = shape[0]
        text = layer.token if layer is not None else net.layer(node).token
        result.append(Head(out_name, layer.name if layer else node, classes, layer.line if layer else None, text))
    return result


def trained_head_size(net: Network, payload: dict) -> int | None:
    """The class count a checkpoint's head was trained with, when it is not the spec's (a fine-tune
    to other data), else None: the run's record if it kept one, else the head weight's own size."""
    head = heads(net)[0]
    trained = payload.get("num_classes")
    if trained is None:
        weight = payload["model"].get(f"{net.module_path(head.layer)}.weight")
        trained = int(weight.shape[0]) if weight is not None and weight.ndim else head.classes
    return None if trained == head.classes else trained


def with_classes(net: Network, classes: int) -> tuple[Network, list[str]]:
    """`net` with every output's head replaced by a fresh one of `classes` outputs; the replaced layers."""
    result = _copy(net)
    replaced = []
    for out_name, node in result.output_nodes.items():
        if net.layer(node).shape[0] == classes:
            continue
        head = head_layer(result, node)
        if head is None:
            raise ArchError(
                f"output '{out_name}' ends in {net.layer(node).token or node}, not in an fc or conv layer whose "
                f"size could be changed to {classes} classes; end the spec with fc-{classes}",
                net.layer(node).span,
            )
        op = head.op
        new_op = dataclasses.replace(op, **{"out_features" if isinstance(op, FC) else "out_channels": classes})
        _replace_downstream(result, head.name, new_op, classes, node)
        replaced.append(head.name)
    return result, replaced


def _replace_downstream(net: Network, head: str, new_op, classes: int, output_node: str) -> None:
    """Give the head its new op and every layer from it to the output the new class count."""
    graph = net.graph
    node = output_node
    chain = []
    while node != head:
        chain.append(node)
        node = net.layer(node).inputs[0]
    chain.append(head)
    for name in chain:
        layer = net.layer(name)
        shape = (classes, *layer.shape[1:])
        inputs = tuple(net.layer(i).shape for i in layer.inputs)
        op = new_op if name == head else layer.op
        params = op.params(inputs) if name == head else layer.params
        graph.nodes[name]["layer"] = dataclasses.replace(layer, op=op, shape=shape, params=params)


def train_network(net: Network, classes: int | None) -> tuple[Network, list[str], list[str]]:
    """(the network to train, the softmax layers removed, the heads replaced)."""
    stripped, removed = strip_softmax(net)
    if classes is None:
        return stripped, removed, []
    resized, replaced = with_classes(stripped, classes)
    return resized, removed, replaced
