"""`Ctor`: an `nn.Module` constructor call as data, e.g. nn.Conv2d(3, 64, kernel_size=7, ...).

The emitters return this instead of a module so that one description serves both
the standalone source file (`source()`) and `to_torch()`, which executes that source.
A layer torch.nn has no module for names a `LocalModule`: a small class that the
generated file defines itself, as torchvision's model files define LayerNorm2d, so
that the file still needs nothing but torch. A generated block class is constructed
the same way (`Bottleneck(256, c=128, s=2)`, namespace ""), and a stage is an
`nn.Sequential` whose arguments are such calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Expr:
    """Source text standing where a value goes: a block class's parameter (`4 * c`)."""

    text: str

    def __repr__(self) -> str:
        return self.text


def _literal(value: Any) -> str:
    """Python source for a constructor argument; a tuple of equal sizes prints as one int."""
    if isinstance(value, Ctor):
        return value.source()
    if isinstance(value, tuple) and value and len(set(value)) == 1 and all(isinstance(v, (int, Expr)) for v in value):
        return _literal(value[0])
    return repr(value)


@dataclass(frozen=True)
class LocalModule:
    """An nn.Module class written into the generated file (see `local_modules`)."""

    name: str
    source: str  # the class definition, at the file's top level


@dataclass(frozen=True)
class Ctor:
    cls: str  # a class in torch.nn ("Conv2d", "BatchNorm2d", …), the name of `local`, or a generated block class
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()  # every keyword argument, in order
    defaults: tuple[tuple[str, Any], ...] = ()  # PyTorch's defaults: a keyword equal to its default is not written
    local: LocalModule | None = None  # defined in the generated file rather than in torch.nn
    namespace: str = "nn."  # "" for the generated file's own classes

    @property
    def qualname(self) -> str:
        """How the generated file names the class: `nn.Conv2d`, or `LayerScale` for a local one."""
        return self.cls if self.local is not None else f"{self.namespace}{self.cls}"

    def written_kwargs(self) -> list[tuple[str, Any]]:
        defaults = dict(self.defaults)
        return [(k, v) for k, v in self.kwargs if k not in defaults or _literal(v) != _literal(defaults[k])]

    def source(self) -> str:
        parts = _compressed([_literal(a) for a in self.args]) + [f"{k}={_literal(v)}" for k, v in self.written_kwargs()]
        return f"{self.qualname}({', '.join(parts)})"


def _compressed(parts: list[str]) -> list[str]:
    """Three or more equal module constructions in a row, as a stage has them, written once:
    `*[Bottleneck(256, c=64) for _ in range(5)]` (each still a module of its own)."""
    out: list[str] = []
    i = 0
    while i < len(parts):
        j = i
        while j < len(parts) and parts[j] == parts[i]:
            j += 1
        if j - i >= 3 and parts[i].endswith(")"):
            out.append(f"*[{parts[i]} for _ in range({j - i})]")
        else:
            out.extend(parts[i:j])
        i = j
    return out


def ctor(cls: str | LocalModule, *args: Any, defaults: dict[str, Any] | None = None, **kwargs: Any) -> Ctor:
    """A Ctor whose source leaves out the keyword arguments equal to `defaults`, as a person would write it."""
    defaults_items = tuple((defaults or {}).items())
    if isinstance(cls, LocalModule):
        return Ctor(cls.name, args, tuple(kwargs.items()), defaults_items, cls)
    return Ctor(cls, args, tuple(kwargs.items()), defaults_items)
