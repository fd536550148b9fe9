"""How the editor features write what archdsl knows: an op's declaration, a list of shapes."""
from __future__ import annotations

from ..ops import Op, Option
from ..shapes import Shape, fmt_shape


def op_doc(cls: type[Op]) -> str:
    """The op's one-line description: its `doc`, else its docstring's first line."""
    if cls.doc:
        return cls.doc
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def option_default(option: Option) -> str:
    """An option's default as a spec writes it (`same`, `1e-05`, `true`), or `auto` where archdsl decides."""
    value = option.default
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def options_line(cls: type[Op]) -> str:
    """`pad` (same), `dilation` (1), …: what the op takes, with its declared defaults."""
    if not cls.options:
        return "no options"
    return ", ".join(f"`{o.name}` ({option_default(o)})" for o in cls.options)


def family_names(cls: type[Op]) -> str:
    return " / ".join(f"`{name}`" for name in (cls.family, *cls.aliases))


def shapes_text(shapes: list[Shape], most: int = 3) -> str:
    """One shape, or the distinct ones in order (`256x56x56 | 512x28x28 | …`) when expansions differ."""
    distinct = list(dict.fromkeys(shapes))
    if len(distinct) == 1:
        return fmt_shape(distinct[0])
    shown = " | ".join(fmt_shape(s) for s in distinct[:most])
    return shown + (" | …" if len(distinct) > most else "")
