"""Completion, from what the registry, the grammar and the analysis declare (no list kept here):

- a word where a layer goes: every layer family and alias (`ops.REGISTRY`), the blocks in scope
  with their parameters, the grammar's keywords (`residual< … >`, `block`, `train { … }`);
- inside a layer's parentheses: the options it takes with their declared defaults (a block's
  parameters for a block call), then an option's default after `name=`;
- after `@`: the tensors named in this scope, with their shapes;
- inside `train { … }`: the settings with their defaults, then the values a setting takes;
- inside `use "…"`: the spec files beside this one.

The context is read from the text before the cursor, so completion works while the line does
not parse yet; names come from the latest analysis that had a syntax tree.
"""
from __future__ import annotations

import re

from lsprotocol import types

from ..expand import resolve_family
from ..ops import REGISTRY
from .analysis import Analysis, block_around, names_in_scope
from .grammar_words import KeywordKind, keywords
from .hover import signature
from .positions import Lines, span_key
from .text import family_names, op_doc, option_default, options_line, shapes_text
from .train_settings import canonical, settings

_CALL_OPEN = re.compile(r"(?:^|[\s\[<|=])(defaults\s+)?([A-Za-z_][A-Za-z0-9_]*)(?:-[^\s()\[\]<>|]*)?(?:/[^\s()\[\]<>|]*)?\(([^()]*)$")
_AT = re.compile(r"@([A-Za-z0-9_]*)$")
_USE = re.compile(r'^\s*use\s+"([^"]*)$')
_SETTING_KEY = re.compile(r"^\s*([A-Za-z_]*)$")
_SETTING_VALUE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(.*)$")
_AFTER_OR_DEFAULTS = re.compile(r"^\s*(after|defaults)\s+[A-Za-z_]*$")
MAX_FILES = 200


def completion(analysis: Analysis | None, lines: Lines, position: types.Position) -> types.CompletionList:
    """`analysis`: the latest of this document that has a syntax tree (None: there is none yet)."""
    line, col = lines.offset(position)
    prefix = lines.line(line - 1)[: col - 1]
    before = "\n".join(lines.lines[: line - 1] + [prefix])
    items = _items(analysis, lines, line, col, prefix, before)
    return types.CompletionList(is_incomplete=False, items=items)


def _items(analysis, lines, line, col, prefix, before) -> list[types.CompletionItem]:
    if "#" in _strip_strings(prefix):
        return []  # in a comment
    match = _USE.match(prefix)
    if match:
        return _files(analysis, match.group(1))
    if _in_train_section(before):
        return _train_items(prefix)
    match = _AT.search(prefix)
    if match:
        return _tensors(analysis, line, col) if analysis is not None else _names_in_text(lines.text)
    match = _CALL_OPEN.search(prefix)
    if match:
        return _arguments(analysis, match.group(2), match.group(3), bool(match.group(1)))
    if _AFTER_OR_DEFAULTS.match(prefix):
        return _families()
    at_line_start = re.fullmatch(r"\s*[A-Za-z_]*", prefix) is not None  # statements start a line
    return _families() + _blocks(analysis) + _keywords(at_line_start)


def _strip_strings(text: str) -> str:
    return re.sub(r'"[^"\n]*"', '""', text)


def _in_train_section(before: str) -> bool:
    code = "\n".join(line.split("#", 1)[0] for line in _strip_strings(before).split("\n"))
    opened = [m.end() for m in re.finditer(r"\btrain\s*\{", code)]
    return bool(opened) and "}" not in code[opened[-1]:]


# ---- layer words ----


def _families() -> list[types.CompletionItem]:
    items = []
    for name, cls in sorted(REGISTRY.items()):
        documentation = f"{family_names(cls)}: {op_doc(cls)}\n\nOptions: {options_line(cls)}\n\nExample: `{cls.example}`"
        items.append(types.CompletionItem(
            label=name,
            kind=types.CompletionItemKind.Function,
            detail=f"layer {cls.family}" + (f", e.g. {cls.example}" if cls.example else ""),
            documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=documentation),
            sort_text=f"1{name}",
        ))
    return items


def _blocks(analysis: Analysis | None) -> list[types.CompletionItem]:
    if analysis is None:
        return []
    blocks = ({name: block for name, (block, _) in analysis.ctx.blocks.items()} if analysis.ctx is not None
              else {b.name: b for b in analysis.spec.blocks})
    items = []
    for name, block in sorted(blocks.items()):
        required = [p.name for p in block.params if p.default is None]
        snippet = f"{name}(" + ", ".join(f"${{{i}:{p}}}" for i, p in enumerate(required, 1)) + ")" if required else name
        items.append(types.CompletionItem(
            label=name,
            kind=types.CompletionItemKind.Module,
            detail=f"block {signature(block)}",
            documentation=f"defined at {block.span}",
            insert_text=snippet,
            insert_text_format=types.InsertTextFormat.Snippet,
            sort_text=f"0{name}",
        ))
    return items


def _keywords(at_line_start: bool) -> list[types.CompletionItem]:
    items = []
    for keyword in keywords():
        if keyword.kind is not KeywordKind.COMPOSITE and not at_line_start:
            continue
        items.append(types.CompletionItem(
            label=keyword.word,
            kind=types.CompletionItemKind.Keyword,
            detail=keyword.kind.value,
            insert_text=keyword.snippet,
            insert_text_format=types.InsertTextFormat.Snippet,
            sort_text=f"2{keyword.word}",
        ))
    return items


# ---- inside a layer's parentheses ----


def _arguments(analysis: Analysis | None, name: str, written: str, in_defaults: bool) -> list[types.CompletionItem]:
    given = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*=", written))
    value = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*[^,]*$", written)
    block = None
    if analysis is not None and not in_defaults:
        blocks = analysis.ctx.blocks if analysis.ctx is not None else {b.name: (b, None) for b in analysis.spec.blocks}
        block = blocks.get(name, (None, None))[0]
    if block is not None:
        return [types.CompletionItem(label=f"{p.name}=", kind=types.CompletionItemKind.Variable,
                                     detail="parameter of " + signature(block)) for p in block.params if p.name not in given]
    cls = REGISTRY.get(name.lower()) if in_defaults else resolve_family(name)[0]
    if cls is None:
        return []
    if value is not None:  # after `pad=`: the declared default
        option = next((o for o in cls.options if o.name == value.group(1)), None)
        if option is None or option.default is None:
            return []
        return [types.CompletionItem(label=option_default(option), kind=types.CompletionItemKind.Value,
                                     detail=f"default of {option.name}")]
    return [
        types.CompletionItem(
            label=f"{o.name}=", kind=types.CompletionItemKind.Property,
            detail=f"default {option_default(o)}", documentation=o.doc or None,
            insert_text=f"{o.name}=", sort_text=f"{i:02d}",
        )
        for i, o in enumerate(cls.options) if o.name not in given
    ]


# ---- names ----


def _tensors(analysis: Analysis | None, line: int, col: int) -> list[types.CompletionItem]:
    if analysis is None:
        return []
    chain = analysis.nodes_at(line, col)
    block = block_around(chain)
    items = []
    if block is None:
        shape = analysis.spec.input[0] if analysis.spec.input is not None else None
        items.append(types.CompletionItem(label="input", kind=types.CompletionItemKind.Variable,
                                          detail=shapes_text([shape]) if shape else "the input"))
    seen = set()
    for name in names_in_scope(analysis.spec, block):
        if name.name in seen:
            continue
        seen.add(name.name)
        nodes = analysis.outputs_at.get(span_key(name.span), [])
        shapes = [analysis.net.layer(n).shape for n in nodes if n in analysis.net.graph] if analysis.net else []
        items.append(types.CompletionItem(label=name.name, kind=types.CompletionItemKind.Variable,
                                          detail=shapes_text(shapes) if shapes else f"named at line {name.span.line}"))
    return items


def _names_in_text(text: str) -> list[types.CompletionItem]:
    """Without any syntax tree yet: the names the text gives with `-> name`."""
    names = dict.fromkeys(["input", *re.findall(r"->\s*([A-Za-z_][A-Za-z0-9_]*)", _strip_strings(text))])
    return [types.CompletionItem(label=name, kind=types.CompletionItemKind.Variable) for name in names]


def _files(analysis: Analysis | None, typed: str) -> list[types.CompletionItem]:
    if analysis is None or analysis.path is None:
        return []
    base = analysis.path.parent
    items = []
    for path in sorted(base.glob("**/*.arch"))[:MAX_FILES]:
        if path.resolve() == analysis.path:
            continue
        relative = path.relative_to(base).as_posix()
        items.append(types.CompletionItem(label=relative, kind=types.CompletionItemKind.File))
    return items


# ---- the train section ----


def _train_items(prefix: str) -> list[types.CompletionItem]:
    match = _SETTING_VALUE.match(prefix)
    if match:
        info = settings().get(canonical(match.group(1)))
        if info is None:
            return []
        items = [types.CompletionItem(
            label=choice.text, kind=types.CompletionItemKind.EnumMember,
            insert_text=(f"{choice.name}(" + ", ".join(f"{a}=${{{i}}}" for i, a in enumerate(choice.arguments, 1)) + ")"
                         if choice.arguments else choice.name),
            insert_text_format=types.InsertTextFormat.Snippet,
            detail=f"a value of {info.key}",
        ) for choice in info.choices]
        items.append(types.CompletionItem(label=info.default, kind=types.CompletionItemKind.Value,
                                          detail=f"the default of {info.key}", sort_text="~"))
        return items
    if _SETTING_KEY.match(prefix):
        return [types.CompletionItem(
            label=info.key, kind=types.CompletionItemKind.Property, detail=f"default {info.default}",
            insert_text=f"{info.key} = ", documentation=(
                "values: " + ", ".join(c.text for c in info.choices)) if info.choices else None,
        ) for info in settings().values()]
    return []
