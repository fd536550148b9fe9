"""`archdsl import`: an ONNX model → a spec a person would write, and its weights as a checkpoint.

    imported = import_onnx("resnet50.onnx")      # or a onnx.ModelProto
    imported.text         the spec (blocks, `* n`, residual<…>, after/defaults, paper tokens)
    imported.network      archdsl.load(imported.text): the checked Network
    imported.state        {state_dict key of imported.network.to_torch(): numpy array}

The pipeline: `model.read` (onnx, shapes inferred with the batch fixed to 1) → `convert` (a
converter per ONNX op type) → `composites` (by dominators) → `sequence` (named tensors) →
`blocks` (by isomorphism) →
`write` (tokens, after/defaults, lines) → the text is loaded back, and the loaded network must
be isomorphic to the imported graph layer for layer (networkx's DiGraphMatcher), which is also
how each ONNX initialiser finds its place in the checkpoint.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
from networkx.algorithms import isomorphism

from ..errors import ArchError
from ..ops import Add, Role


@dataclass
class Imported:
    text: str
    network: object  # archdsl.Network
    state: dict  # state_dict key → numpy array
    stopped: ArchError | None = None  # with partial=True: the node where conversion stopped
    blocks: list = field(default_factory=list)


def import_onnx(source, *, partial: bool = False, name: str | None = None) -> Imported:
    """Import an ONNX file (a path or a ModelProto). An op archdsl cannot express raises `UnsupportedOp`
    naming the node, its op type and what is missing; with `partial`, the graph up to it is imported."""
    from . import blocks as blocks_mod, composites, convert, model as model_mod, sequence, write
    from .items import Call, Repeat

    onnx_model = model_mod.read(source)
    builder = convert.Builder(onnx_model)
    stopped = None
    for node in onnx_model.nodes:
        if id(node) in builder.done:
            continue
        try:
            if not convert.as_activation(node, builder):
                convert.convert_node(node, builder)
        except convert.UnsupportedOp as err:
            if not partial:
                raise
            stopped = err
            break
    graph = builder.graph
    outputs = _outputs(onnx_model, builder, stopped is not None)
    needed = set().union(*(nx.ancestors(graph, n) | {n} for n in outputs.values()))
    graph.remove_nodes_from([n for n in list(graph) if n not in needed])
    if len(graph) < 2:
        if stopped:
            raise ArchError(f"nothing to import before the first node archdsl cannot express ({stopped.message})")
        raise ArchError("nothing to import: the graph's output is its input (it has no layer archdsl counts)")
    composites.normalise_concats(graph)
    composites.nest_concats(graph, builder.input)
    found = composites.composites(graph, builder.input, set(outputs.values()))
    items = sequence.sequence(graph, builder.input, outputs, found)
    blocks_items = blocks_mod.blocks(graph, items)
    blocks = []
    for item in blocks_items:
        call = item.call if isinstance(item, Repeat) else item
        if isinstance(call, Call) and call.block not in blocks:
            blocks.append(call.block)
    writer = write.Writer(graph, blocks)
    writer.decide(blocks_items)
    network_name = name or _network_name(onnx_model)
    lines = write.header(network_name, graph.nodes[builder.input]["layer"].shape)
    lines += writer.after_lines()
    for block in blocks:
        lines += [""] + writer.block_lines(block)
    lines += [""] + writer.body_lines(blocks_items)
    text = "\n".join(lines) + "\n"
    network = _load(text)
    state = _weights(graph, network)
    return Imported(text, network, state, stopped, blocks)


def _outputs(onnx_model, builder, partial: bool) -> dict[str, str]:
    """Output name → layer, the main output first. After a partial conversion, the last layer made is
    the main output and every other layer nothing reads is an output too (named after itself)."""
    outputs: dict[str, str] = {}
    for tensor in onnx_model.outputs:
        if tensor in builder.producer:
            outputs.setdefault(_identifier(tensor), builder.producer[tensor])
    if partial:
        graph = builder.graph
        ends = sorted((n for n in graph if graph.out_degree(n) == 0 and n != builder.input),
                      key=lambda n: -graph.nodes[n]["layer"].index)
        if ends:
            named = {v: k for k, v in outputs.items()}
            outputs = {"output": ends[0], **{named.get(n, n): n for n in ends[1:]}}
    if not outputs:
        raise ArchError("the ONNX graph's outputs are not computed by any layer archdsl imported")
    return outputs


def _identifier(tensor: str) -> str:
    """An output's name as a spec writes it (`-> name`): a word, not a number, and not `input`, which
    names the network's input."""
    name = re.sub(r"\W", "_", tensor)
    return name if name and not name[0].isdigit() and name != "input" else "out_" + name


def _network_name(onnx_model) -> str:
    base = onnx_model.path.stem if onnx_model.path is not None else onnx_model.graph_name
    name = re.sub(r"[^0-9A-Za-z_]", "_", base or "imported")
    return name if name and (name[0].isalpha() or name[0] == "_") else "net_" + name


def _load(text: str):
    import archdsl

    try:
        return archdsl.load(text)
    except ArchError as err:  # a bug of the writer: the text it wrote is not a spec for this graph
        raise ArchError(f"archdsl wrote a spec it cannot read back ({err.message}); this is a bug in archdsl's"
                        f" importer. The text:\n{text}") from None


def _weights(graph: nx.DiGraph, network) -> dict:
    """The imported layers matched one to one with the loaded spec's (isomorphism of the two graphs,
    layer by layer: op and shape equal, inputs in the same order but for commutative adds); each
    imported layer's tensors under its match's state_dict key."""
    import numpy as np

    ours = network.graph

    def same_layer(a, b) -> bool:
        x, y = a["layer"], b["layer"]
        return type(x.op) is type(y.op) and x.op == y.op and tuple(x.shape) == tuple(y.shape)

    ports_imported = _ports(graph)
    ports_ours = _ports(ours)
    nx.set_edge_attributes(graph, ports_imported, "port")
    nx.set_edge_attributes(ours, ports_ours, "port")
    matcher = isomorphism.DiGraphMatcher(ours, graph, node_match=same_layer,
                                         edge_match=lambda a, b: a["port"] == b["port"])
    if not matcher.is_isomorphic():
        raise ArchError("archdsl wrote a spec whose graph differs from the ONNX graph it imported; this is a bug in"
                        " archdsl's importer. The text:\n" + _text_of(network))
    state = {}
    for ours_name, imported_name in matcher.mapping.items():
        layer = ours.nodes[ours_name]["layer"]
        weights = graph.nodes[imported_name]["layer"].weights
        shapes = tuple(ours.nodes[i]["layer"].shape for i in layer.inputs)
        for tensor, weight in layer.op.weights(shapes).items():
            key = f"{network.module_path(ours_name)}.{tensor}"
            value = weights.get(tensor)
            if value is None and weight.role is Role.STEP_COUNT:
                value = np.zeros(weight.shape, dtype=np.int64)
            elif value is None:
                raise ArchError(f"the importer found no tensor '{tensor}' for layer '{ours_name}' ({layer.op.describe()});"
                                " this is a bug in archdsl's importer")
            value = np.require(value, np.int64 if weight.dtype == "int64" else np.float32, ["C", "W"])
            state[key] = value if value.shape == tuple(weight.shape) else value.reshape(weight.shape)
    return state


def _ports(graph) -> dict:
    ports = {}
    for node, data in graph.nodes(data=True):
        layer = data["layer"]
        commutes = isinstance(layer.op, Add)
        for port, source in enumerate(layer.inputs):
            ports[(source, node)] = 0 if commutes else port
    return ports


def _text_of(network) -> str:
    return network.spec.source.text if getattr(network.spec, "source", None) else ""


def save_checkpoint(state: dict, path) -> Path:
    """The imported weights as a checkpoint archdsl reads (a state_dict saved with torch.save)."""
    import torch

    from .. import files

    path = Path(path)
    files.make_folder(path.parent if str(path.parent) else ".")
    with files.atomic_write(path) as file:
        torch.save({key: torch.from_numpy(value) for key, value in state.items()}, file)
    return path
