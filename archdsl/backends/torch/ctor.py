"""`Ctor`: an `nn.Module` constructor call as data, e.g. nn.Conv2d(3, 64, kernel_size=7, ...).

The emitters return this instead of a module so that one description serves both
the standalone source file (`source()`) and `to_torch()`, which executes that source.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _literal(value: Any) -> str:
    """Python source for a constructor argument; a tuple of equal sizes prints as one int."""
    if isinstance(value, tuple) and value and len(set(value)) == 1 and all(isinstance(v, int) for v in value):
        return repr(value[0])
    return repr(value)


@dataclass(frozen=True)
class Ctor:
    cls: str  # a class in torch.nn: "Conv2d", "BatchNorm2d", ...
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()  # in order; only the values that differ from PyTorch's defaults

    def source(self) -> str:
        parts = [_literal(a) for a in self.args] + [f"{k}={_literal(v)}" for k, v in self.kwargs]
        return f"nn.{self.cls}({', '.join(parts)})"


def ctor(cls: str, *args: Any, defaults: dict[str, Any] | None = None, **kwargs: Any) -> Ctor:
    """A Ctor with the keyword arguments equal to `defaults` left out, as a person would write it."""
    defaults = defaults or {}
    kept = tuple((k, v) for k, v in kwargs.items() if k not in defaults or _literal(v) != _literal(defaults[k]))
    return Ctor(cls, args, kept)
