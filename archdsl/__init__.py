"""archdsl: write a convolutional network as the papers do, check it, compile it.

    >>> import archdsl
    >>> net = archdsl.load("specs/vgg16.arch")
    >>> net.params, net.macs
    (138357544, 15470264320)
"""
from __future__ import annotations

import os
from typing import Mapping

from .errors import ArchError, ArchWarning
from .network import Network

__version__ = "0.1.0"
__all__ = ["load", "Network", "ArchError", "ArchWarning", "__version__"]


def load(path_or_text: str | os.PathLike, *, strict: bool = False, max_layers: int | None = None,
         files: Mapping[str | os.PathLike, str] | None = None) -> Network:
    """Parse, expand and check a spec (a path, or the spec's text) into a `Network`.

    Raises `ArchError` (with `.span`, the file position) for any problem in the
    spec. With `strict`, a layer whose windows don't fit its input is an error
    instead of a warning. `files` maps paths to texts that replace those files'
    contents on disk, the spec's own or a `use`d one's (an editor's unsaved buffers).
    """
    from .expand import MAX_LAYERS
    from .loader import Loader, build_network, load_source
    from .parser import parse

    source, path = load_source(path_or_text, files)
    spec = parse(source)
    ctx = Loader(files).main_context(spec, path)
    return build_network(spec, ctx, path, strict=strict, max_layers=max_layers or MAX_LAYERS)
