"""`to_torch()`: execute the generated source and instantiate its class.

Executing the same text `archdsl compile --target torch` writes means the module
and the standalone file are one implementation, and `forward` is plain
straight-line Python: no interpreter loop over the graph, no lowering overhead.
"""
from __future__ import annotations

import functools
import linecache

from .codegen import generate_source
from .plan import build_plan


def to_torch(net, *, init: str = "auto"):
    """An `nn.Module` for `net`: parameters named after the spec's layers, `net.params` of them.

    `forward` takes N×C×H×W (batch first) and returns a tensor, or, when the spec has
    several outputs, a dict by output name with the main output first. Weights follow
    `init` ("kaiming", "xavier", "torch", or "auto": the spec's `train { init }`, else
    kaiming) and are deterministic under `torch.manual_seed`. Build it under
    `with torch.device("meta"):` to count parameters of a big network without memory.
    The source it runs is `type(model).archdsl_source`.
    """
    plan = build_plan(net)
    source = generate_source(net, init=init, plan=plan)
    return load_class(source, plan.class_name)()


def load_class(source: str, class_name: str):
    """Execute generated source as a module and return its class `class_name`.

    The source is registered with linecache so that tracebacks and `inspect` show
    the generated lines, as they would for the file on disk. Its classes (the
    network's and the small modules torch.nn lacks) pickle by their source, so
    `copy.deepcopy`, `torch.save(model)` and worker processes work although no
    importable module defines them.
    """
    return _namespace(source, class_name)[class_name]


@functools.lru_cache(maxsize=64)
def _namespace(source: str, main_class: str) -> dict:
    filename = f"<archdsl:{main_class}:{abs(hash(source)):x}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module_name = f"archdsl.generated.{main_class}"
    namespace = {"__name__": module_name, "__file__": filename}
    exec(compile(source, filename, "exec"), namespace)
    for value in list(namespace.values()):
        if isinstance(value, type) and value.__module__ == module_name:
            value.archdsl_source = source
            value.archdsl_main_class = main_class
            value.__reduce_ex__ = _reduce_ex
    return namespace


def _reduce_ex(self, protocol):
    cls = type(self)
    return _rebuild, (cls.archdsl_source, cls.__name__, cls.archdsl_main_class), self.__dict__


def _rebuild(source: str, class_name: str, main_class: str | None = None):
    cls = _namespace(source, main_class or class_name)[class_name]
    return cls.__new__(cls)
