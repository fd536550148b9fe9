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
        parts = _compressed(list(self.args)) + [f"{k}={_literal(v)}" for k, v in self.written_kwargs()]
        return f"{self.qualname}({', '.join(parts)})"


def _compressed(args: list[Any]) -> list[str]:
    """Three or more module constructions of one class in a row, as a stage has them, written once:
    `*[Bottleneck(256, c=64) for _ in range(5)]`, or with the numbers that grow by a step written as
    such, `*[DenseLayer(64 + 32 * i) for i in range(6)]` (each still a module of its own)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        j = i + 1
        while j < len(args) and _progression(args[i:j + 1]) is not None:
            j += 1
        run = args[i:j]
        if len(run) >= 3:
            template = _progression(run)
            loop = "i" if "{i}" in template else "_"
            out.append(f"*[{template.replace('{i}', 'i')} for {loop} in range({len(run)})]")
        else:
            out.extend(_literal(a) for a in run)
        i = j
    return out


def _progression(run: list[Any]) -> str | None:
    """The source of `run`'s constructions with `{i}` for the index, if they differ only in whole numbers
    that each grow by a constant step; else None."""
    if not all(isinstance(c, Ctor) and c.local is None for c in run):
        return None
    first = run[0]
    if any((c.cls, c.namespace, len(c.args), [k for k, _ in c.kwargs]) !=
           (first.cls, first.namespace, len(first.args), [k for k, _ in first.kwargs]) for c in run):
        return None
    columns = list(zip(*([*c.args, *(v for _, v in c.kwargs)] for c in run)))
    values = []
    for column in columns:
        if len(set(map(_literal, column))) == 1:
            values.append(column[0])
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in column):
            step = column[1] - column[0]
            if any(b - a != step for a, b in zip(column, column[1:])):
                return None
            values.append(Expr(f"{column[0]} + {step} * {{i}}" if step > 0 else f"{column[0]} - {-step} * {{i}}"))
        else:
            return None
    args = values[: len(first.args)]
    kwargs = tuple(zip([k for k, _ in first.kwargs], values[len(first.args):]))
    return Ctor(first.cls, tuple(args), kwargs, first.defaults, first.local, first.namespace).source()


def ctor(cls: str | LocalModule, *args: Any, defaults: dict[str, Any] | None = None, **kwargs: Any) -> Ctor:
    """A Ctor whose source leaves out the keyword arguments equal to `defaults`, as a person would write it."""
    defaults_items = tuple((defaults or {}).items())
    if isinstance(cls, LocalModule):
        return Ctor(cls.name, args, tuple(kwargs.items()), defaults_items, cls)
    return Ctor(cls, args, tuple(kwargs.items()), defaults_items)
