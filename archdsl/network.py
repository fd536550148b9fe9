"""`Network`: a checked spec — the graph IR with its analysis — and the door to the backends.

Backends are imported only when asked for (`to_torch`, `to_tvm`, `render`), so
loading and checking a network never imports torch or tvm.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ast
from .errors import ArchWarning, ShapeError
from .ir import BlockInstance, Layer, layers_in_order
from .shapes import Shape


@dataclass
class Network:
    name: str
    graph: Any  # networkx.DiGraph
    spec: ast.Spec
    path: Path | None
    warnings: list[ArchWarning] = field(default_factory=list)

    # ---- what the analysis found ----
    @property
    def input_shape(self) -> Shape:
        return self.layer(self.graph.input).shape

    @property
    def layers(self) -> list[Layer]:
        """Every layer, in a topological order; the first is the input."""
        return layers_in_order(self.graph)

    def layer(self, name: str) -> Layer:
        return self.graph.nodes[name]["layer"]

    @property
    def blocks(self) -> dict[str, BlockInstance]:
        return self.graph.blocks

    @property
    def output_nodes(self) -> dict[str, str]:
        """Output name → node name; the main output comes first."""
        return self.graph.outputs

    @property
    def outputs(self) -> dict[str, Shape]:
        return {name: self.layer(node).shape for name, node in self.output_nodes.items()}

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def activation_memory(self) -> int:
        """Bytes of every layer's output at batch 1, fp32 (an upper bound on what inference holds)."""
        return sum(layer.memory for layer in self.layers)

    @functools.cached_property
    def module_paths(self) -> dict[str, str]:
        """Layer name → the dotted path of its submodule in `to_torch()`'s module (see `naming`)."""
        from .naming import module_paths

        return module_paths(self)

    def module_path(self, layer_name: str) -> str:
        return self.module_paths[layer_name]

    @property
    def train_settings(self) -> tuple[ast.Setting, ...]:
        return self.spec.train

    # ---- backends, imported lazily ----
    def to_torch(self, **kwargs):
        from .backends.torch import to_torch

        return to_torch(self, **kwargs)

    def to_tvm(self, state_dict=None, target=None, **kwargs):
        from .backends.tvm import to_tvm

        return to_tvm(self, state_dict=state_dict, target=target, **kwargs)

    def inspect(self, checkpoint, dataset: str | None = None, device: str = "cpu"):
        """What the network trained into `checkpoint` sees: an `archdsl.inspect.Inspection` (numpy answers)."""
        from .inspect import Inspection

        return Inspection.open(self, checkpoint, dataset, device)

    def features(self, checkpoint, layer: str | None = None, split: str = "test", dataset: str | None = None,
                 device: str = "cpu"):
        """(vectors (N, D), labels (N,)) of `layer` (default: the input of the last fc) on a split, as numpy arrays."""
        found = self.inspect(checkpoint, dataset, device).features(layer, split)
        return found.vectors, found.labels

    def render(self, path, **kwargs):
        from .render import render

        return render(self, path, **kwargs)

    def __repr__(self) -> str:
        return f"<Network {self.name}: input {self.input_shape}, {len(self.graph) - 1} layers, {self.params:,} params, {self.macs:,} MACs>"


def name_outputs(graph) -> dict[str, str]:
    """Outputs are the tensors nothing consumes, named by their `-> name` or 'output'."""
    main = graph.main_sink
    sinks = [n for n in graph.nodes if graph.out_degree(n) == 0 and n != graph.input]
    if main not in sinks:  # the main chain ended on a tensor that is consumed elsewhere
        sinks.append(main)
    sinks.sort(key=lambda n: n != main)
    outputs: dict[str, str] = {}
    for node in sinks:
        name = graph.tensor_names.get(node, "output")
        if name in outputs:
            layer = graph.nodes[node]["layer"]
            other = graph.nodes[outputs[name]]["layer"]
            raise ShapeError(
                f"two outputs are both called '{name}' (lines {other.line} and {layer.line}); name each branch's"
                f" end with -> NAME. Received: outputs {outputs[name]} and {node}",
                layer.span,
            )
        outputs[name] = node
    return outputs
