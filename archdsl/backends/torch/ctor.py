"""`Ctor`: an `nn.Module` constructor call as data, e.g. nn.Conv2d(3, 64, kernel_size=7, ...).

The emitters return this instead of a module so that one description serves both
the standalone source file (`source()`) and `to_torch()`, which executes that source.
A layer torch.nn has no module for names a `LocalModule`: a small class that the
generated file defines itself, as torchvision's model files define LayerNorm2d, so
that the file still needs nothing but torch.
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
class LocalModule:
    """An nn.Module class written into the generated file (see `local_modules`)."""

    name: str
    source: str  # the class definition, at the file's top level


@dataclass(frozen=True)
class Ctor:
    cls: str  # a class in torch.nn ("Conv2d", "BatchNorm2d", ...), or the name of `local`
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()  # in order; only the values that differ from PyTorch's defaults
    local: LocalModule | None = None  # defined in the generated file rather than in torch.nn

    @property
    def qualname(self) -> str:
        """How the generated file names the class: `nn.Conv2d`, or `LayerScale` for a local one."""
        return self.cls if self.local is not None else f"nn.{self.cls}"

    def source(self) -> str:
        parts = [_literal(a) for a in self.args] + [f"{k}={_literal(v)}" for k, v in self.kwargs]
        return f"{self.qualname}({', '.join(parts)})"


def ctor(cls: str | LocalModule, *args: Any, defaults: dict[str, Any] | None = None, **kwargs: Any) -> Ctor:
    """A Ctor with the keyword arguments equal to `defaults` left out, as a person would write it."""
    defaults = defaults or {}
    kept = tuple((k, v) for k, v in kwargs.items() if k not in defaults or _literal(v) != _literal(defaults[k]))
    if isinstance(cls, LocalModule):
        return Ctor(cls.name, args, kept, cls)
    return Ctor(cls, args, kept)
