"""The language server finds `use`d files as the loader does, ARCHDSL_PATH included: an error in a
library found on the search path is shown at its `use` line, and editing that library re-checks
the specs that use it."""
from __future__ import annotations

from archdsl.lsp.analysis import analyse, reachable


def test_a_library_on_archdsl_path_is_followed(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    library = shared / "blocks.arch"
    library.write_text("block b(c) = [conv3-c cnov3-c]\n")
    project = tmp_path / "project"
    project.mkdir()
    spec = project / "main.arch"
    text = 'network main\nuse "blocks.arch"\ninput 3x32x32\nb(8)\n'
    spec.write_text(text)
    monkeypatch.setenv("ARCHDSL_PATH", str(shared))

    assert reachable(spec.resolve(), {}) == {library.resolve()}  # whose edits re-check main.arch
    (problem,) = analyse(text, spec).problems
    assert problem.span.line == 2  # the `use` line, not 1:1
    assert "cnov3" in problem.message and problem.origin.line == 1
