"""Diagnostics: every error and warning of the analysis, at its range in this document."""
from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from .analysis import Analysis, Problem, Severity
from .positions import Lines

SOURCE = "archdsl"
_SEVERITY = {Severity.ERROR: types.DiagnosticSeverity.Error, Severity.WARNING: types.DiagnosticSeverity.Warning}


def diagnostics(analysis: Analysis, lines: Lines) -> list[types.Diagnostic]:
    return [diagnostic(problem, lines) for problem in analysis.problems]


def diagnostic(problem: Problem, lines: Lines) -> types.Diagnostic:
    related = None
    if problem.origin is not None:  # the real place, in a used file
        origin = problem.origin
        related = [types.DiagnosticRelatedInformation(
            location=types.Location(uri=Path(origin.source.name).resolve().as_uri(),
                                    range=Lines(origin.source.text).range(origin)),
            message="the problem is here",
        )]
    return types.Diagnostic(
        range=lines.range(problem.span),
        message=problem.message,
        severity=_SEVERITY[problem.severity],
        source=SOURCE,
        related_information=related,
    )
