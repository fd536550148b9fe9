"""archdsl: write a convolutional network as the papers do, check it, compile it.

    >>> import archdsl
    >>> net = archdsl.load("specs/vgg16.arch")
    >>> net.params, net.macs
    (138357544, 15470264320)
"""
from __future__ import annotations

import os

from .errors import ArchError, ArchWarning
from .network import Network

__version__ = "0.1.0"
__all__ = ["load", "Network", "ArchError", "ArchWarning", "__version__"]


def load(path_or_text: str | os.PathLike, *, strict: bool = False, max_layers: int | None = None) -> Network:
    """Parse, expand and check a spec (a path, or the spec's text) into a `Network`.

    Raises `ArchError` (with `.span`, the file position) for any problem in the
    spec. With `strict`, a layer whose windows don't fit its input is an error
    instead of a warning.
    """
    from .expand import MAX_LAYERS
    from .loader import build_graph, load_source
    from .network import name_outputs
    from .passes import run_all

    source, path = load_source(path_or_text)
    spec, graph = build_graph(source, path, max_layers or MAX_LAYERS)
    warnings = run_all(graph)
    if strict and warnings:
        raise ArchError(warnings[0].message, warnings[0].span)
    graph.outputs = name_outputs(graph)
    name = spec.name[0] if spec.name else (path.stem if path is not None else "network")
    return Network(name, graph, spec, path, warnings)
