"""The language's keywords, read from the grammar (`grammar/archdsl.lark`), not kept by hand:
completion offers them, and the editor grammars are generated and tested against them."""
from __future__ import annotations

import enum
import functools
from dataclasses import dataclass


class KeywordKind(enum.Enum):
    STATEMENT = "statement"  # `network NAME`, `use "…"`, `block …`: followed by a word
    COMPOSITE = "composite"  # `residual< … >`, `se<r>`: followed by `<`
    SECTION = "section"  # `train { … }`: followed by `{`


@dataclass(frozen=True)
class Keyword:
    word: str
    kind: KeywordKind
    encloses_terms: bool = False  # a composite whose `< … >` holds layers (not one expression)

    @property
    def snippet(self) -> str:
        if self.kind is KeywordKind.COMPOSITE:
            return f"{self.word}< $0 >" if self.encloses_terms else f"{self.word}<$1>$0"
        if self.kind is KeywordKind.SECTION:
            return f"{self.word} {{\n\t$0\n}}"
        return f"{self.word} $0"


@functools.lru_cache(maxsize=1)
def keywords() -> tuple[Keyword, ...]:
    """Every word the grammar spells out, with what follows it in its rule."""
    from ..grammar import parser

    lark = parser()
    literals = {t.name: t.pattern.value for t in lark.terminals if t.pattern.type == "str"}
    words = {name: value for name, value in literals.items() if value.isidentifier()}
    found: dict[str, Keyword] = {}
    for rule in lark.rules:
        symbols = [s.name for s in rule.expansion]
        if not symbols or symbols[0] not in words:
            continue
        word = words[symbols[0]]
        follows = literals.get(symbols[1]) if len(symbols) > 1 else None
        inside = symbols[2] if len(symbols) > 2 else ""
        if follows == "<":  # a composite: of layers (`residual< … >`, whose rule holds branches) or of a value (`se<r>`)
            kind, terms = KeywordKind.COMPOSITE, inside == "branch"
        elif follows == "{":
            kind, terms = KeywordKind.SECTION, False
        else:
            kind, terms = KeywordKind.STATEMENT, False
        previous = found.get(word)
        found[word] = Keyword(word, kind, terms or (previous.encloses_terms if previous else False))
    return tuple(sorted(found.values(), key=lambda k: k.word))
