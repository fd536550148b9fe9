"""Find and compile the lark grammar (`grammar/archdsl.lark`).

In a wheel the grammar is installed as `archdsl/grammar/archdsl.lark`; in a
source checkout it sits in `grammar/` beside the package. The compiled LALR
tables are cached by lark in the temp directory, which keeps `archdsl check`'s
start-up short.
"""
from __future__ import annotations

import functools
from pathlib import Path

GRAMMAR_NAME = "archdsl.lark"


def grammar_path() -> Path:
    package = Path(__file__).resolve().parent
    for candidate in (package / "grammar" / GRAMMAR_NAME, package.parent / "grammar" / GRAMMAR_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"archdsl's grammar {GRAMMAR_NAME} is missing from {package}; reinstall archdsl")


@functools.lru_cache(maxsize=2)
def parser(keep_all_tokens: bool = False):
    """The LALR parser; with `keep_all_tokens`, its trees keep the punctuation too (the formatter reads them)."""
    from lark import Lark

    path = grammar_path()
    return Lark(
        path.read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
        keep_all_tokens=keep_all_tokens,
        cache=True,
    )
