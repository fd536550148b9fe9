"""Code actions: the did-you-mean fixes of the diagnostics, as edits.

A message such as "unknown layer 'cnov3'; did you mean 'conv'?" names what was written and
what was meant; the fix replaces the one with the other inside the problem's range (keeping a
kernel size glued to a layer name: `cnov3` → `conv3`).
"""
from __future__ import annotations

import re

from lsprotocol import types

from ..expand import split_family
from .analysis import Analysis, Problem
from .diagnostics import diagnostic
from .positions import Lines

_MEANT = re.compile(r"did you mean '([^']+)'\?")
_QUOTED = re.compile(r"'([^']+)'")


def fix(problem: Problem) -> tuple[str, str] | None:
    """(what was written, what to write instead) for a problem whose message suggests a name."""
    if problem.origin is not None:
        return None
    meant = _MEANT.search(problem.message)
    if meant is None:
        return None
    right = meant.group(1)
    written_text = _text(problem)
    for wrong in _QUOTED.findall(problem.message):
        wrong = wrong.lstrip("@")
        if wrong == right or wrong not in written_text:
            continue
        family, kernel = split_family(wrong)
        if kernel is not None and not any(c.isdigit() for c in right) and family != wrong.lower():
            return wrong, right + kernel  # the suggestion names the family: keep the kernel size
        return wrong, right
    return None


def _text(problem: Problem) -> str:
    span = problem.span
    lines = span.source.lines[span.line - 1: span.end_line]
    if not lines:
        return ""
    if len(lines) == 1:
        return lines[0][span.col - 1: span.end_col - 1]
    return "\n".join([lines[0][span.col - 1:], *lines[1:-1], lines[-1][: span.end_col - 1]])


def code_actions(analysis: Analysis, lines: Lines, uri: str, wanted: types.Range) -> list[types.CodeAction]:
    actions = []
    for problem in analysis.problems:
        found = fix(problem)
        if found is None or not _overlaps(lines.range(problem.span), wanted):
            continue
        wrong, right = found
        span = problem.span
        start_in_span = _text(problem).index(wrong)
        line, col = span.line, span.col
        head = _text(problem)[:start_in_span]
        if "\n" in head:
            line += head.count("\n")
            col = len(head.rsplit("\n", 1)[1]) + 1
        else:
            col += len(head)
        edit_range = types.Range(start=lines.position(line, col), end=lines.position(line, col + len(wrong)))
        actions.append(types.CodeAction(
            title=f"Replace '{wrong}' with '{right}'",
            kind=types.CodeActionKind.QuickFix,
            diagnostics=[diagnostic(problem, lines)],
            is_preferred=True,
            edit=types.WorkspaceEdit(changes={uri: [types.TextEdit(range=edit_range, new_text=right)]}),
        ))
    return actions


def _overlaps(a: types.Range, b: types.Range) -> bool:
    start = lambda r: (r.start.line, r.start.character)  # noqa: E731
    end = lambda r: (r.end.line, r.end.character)  # noqa: E731
    return start(a) <= end(b) and start(b) <= end(a)
