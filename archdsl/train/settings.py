"""Reading one `train` setting's value: the AST (`Num`, `Var`, `Call`, `ListValue`) to Python values.

Every reader takes the `Setting` and raises `ArchError` at its span, so a bad
value in a spec is reported at the spec line, and a bad `--set key=value` at the
command line text (parsed by the same grammar, see `parse_override`).
"""
from __future__ import annotations

from typing import Any

from archdsl import ast
from archdsl.errors import ArchError, Source, did_you_mean
from archdsl.evaluate import Symbol, evaluate

COMMAND_LINE = "command line"


def parse_override(key: str, text: str) -> ast.Setting:
    """`--set key=value` as the spec would have written it, spanned on the command line text."""
    from archdsl.parser import parse

    source = Source(COMMAND_LINE, f"train {{ {key} = {text} }}")
    spec = parse(source)
    if len(spec.train) != 1:
        raise ArchError(f"expected one value for --set {key}=…, got {text!r}")
    return spec.train[0]


def raw_override(key: str, text: str) -> ast.Setting:
    """A string value taken verbatim (paths, dotted layer names), spanned on the command line."""
    source = Source(COMMAND_LINE, f"--{key.replace('_', '-')} {text}")
    start = len(key) + 4
    span = ast_span(source, start, start + len(text))
    return ast.Setting(key, ast.Str(text, span), span)


def ast_span(source: Source, start_col: int, end_col: int):
    from archdsl.errors import Span

    return Span(source, 1, start_col, 1, end_col)


def _scalar(setting: ast.Setting, expr) -> Any:
    if isinstance(expr, (ast.Call, ast.ListValue)):
        raise ArchError(f"train setting '{setting.key}' expects a single value here", expr.span)
    return evaluate(expr, {}, strict=False)


def number(setting: ast.Setting, kind: type, minimum: float | None = None, maximum: float | None = None,
           exclusive_min: bool = False) -> int | float:
    value = _scalar(setting, setting.value)
    what = "a whole number" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ArchError(f"train setting '{setting.key}' expects {what}, got {_show(value)}", setting.value.span)
    low_ok = minimum is None or (value > minimum if exclusive_min else value >= minimum)
    if not low_ok or (maximum is not None and value > maximum):
        bound = f"> {minimum}" if exclusive_min else f">= {minimum}"
        if maximum is not None:
            bound += f" and <= {maximum}"
        raise ArchError(f"train setting '{setting.key}' must be {bound}, got {value}", setting.value.span)
    return kind(value)


def boolean(setting: ast.Setting) -> bool:
    value = _scalar(setting, setting.value)
    if not isinstance(value, bool):
        raise ArchError(f"train setting '{setting.key}' expects true or false, got {_show(value)}", setting.value.span)
    return value


def text(setting: ast.Setting) -> str:
    """A name or a quoted string: `dataset = digits`, `dataset = "data/mnist"`."""
    value = setting.value
    if isinstance(value, ast.Str):
        return value.value
    if isinstance(value, ast.Var):
        return value.name
    raise ArchError(
        f"train setting '{setting.key}' expects a name or a quoted string, got {_describe(value)};"
        f' quote paths: {setting.key} = "path/to/it"',
        value.span,
    )


def call(setting: ast.Setting, expr, known: dict[str, tuple[str, ...]], what: str) -> tuple[str, dict[str, Any]]:
    """`name` or `name(args)` → (name, keyword arguments), checked against `known` (name → parameter order)."""
    if isinstance(expr, (ast.Var, ast.Str)):
        name, args = (expr.name if isinstance(expr, ast.Var) else expr.value), ()
    elif isinstance(expr, ast.Call):
        name, args = expr.name, expr.args
    else:
        raise ArchError(f"train setting '{setting.key}' expects {what} name such as {next(iter(known))}, "
                        f"got {_describe(expr)}", expr.span)
    lowered = name.lower()
    if lowered not in known:
        raise ArchError(
            f"unknown {what} '{name}'{did_you_mean(lowered, known)} (expected one of {', '.join(known)})", expr.span
        )
    order = known[lowered]
    values: dict[str, Any] = {}
    for position, arg in enumerate(args):
        if arg.keyword is None:
            if position >= len(order):
                raise ArchError(f"{lowered} takes at most {len(order)} positional values ({', '.join(order)})", arg.span)
            key = order[position]
        else:
            key = arg.keyword
            if key not in order:
                hint = did_you_mean(key, order)
                takes = ", ".join(order) if order else "no arguments"
                raise ArchError(f"{lowered} has no argument '{key}'{hint} (it takes {takes})", arg.span)
        if key in values:
            raise ArchError(f"{lowered}: argument '{key}' given twice", arg.span)
        value = evaluate(arg.value, {}, strict=False)
        if isinstance(value, Symbol):
            value = str(value)
        values[key] = value
    return lowered, values


def call_list(setting: ast.Setting, known: dict[str, tuple[str, ...]], what: str) -> tuple[tuple[str, dict], ...]:
    """`[crop(pad=4), flip]`, a single `flip`, or `none` / `[]` for nothing."""
    value = setting.value
    if isinstance(value, ast.Var) and value.name.lower() == "none":
        return ()
    items = value.items if isinstance(value, ast.ListValue) else (value,)
    return tuple(call(setting, item, known, what) for item in items)


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _describe(expr) -> str:
    if isinstance(expr, ast.ListValue):
        return "a list"
    if isinstance(expr, ast.Call):
        return f"a call {expr.name}(…)"
    if isinstance(expr, ast.Num):
        return repr(expr.value)
    return type(expr).__name__.lower()
