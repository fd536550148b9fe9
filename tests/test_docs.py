"""The docs' examples are tests: every spec in docs/language.md and docs/ir.md must do what the text says.

Fenced code blocks are picked out by their info string:

    ```arch            a spec that `archdsl.load(text)` accepts without a warning
    ```arch-warning    a spec that loads with at least one warning, and fails with strict=True
    ```arch-error      a spec that `archdsl.load(text)` rejects with an ArchError
    ```arch-fragment   only parsed (it is a piece of a spec, not a whole one)
    ```console         `$ archdsl check …` and its exact output (stderr, then stdout)

In `arch` and `arch-warning` blocks a comment `# → 64x56x56` states the output
shape of the last layer built from the terms that end on its line (for a block
call or a composite: its last layer).

An `arch…` block may carry `file=NAME` (```arch file=lib/blocks.arch): it is
written to NAME in a scratch folder, where every example runs, so that a `use
"lib/blocks.arch"` in a later example and `$ archdsl check NAME` in a console
block find it. `specs/` in that folder is the repository's zoo. A block that
carries `shows=PATH` (```arch-fragment shows=specs/lib/efficientnet.arch) shows
that file of the repository, and must be exactly its text. In a console
block a line `…` stands for any number of output lines, and a `…` within a line
for any text (the list of every layer type in an error, which grows with each op).

After a deliberate change to what `archdsl check` prints, rewrite the console
blocks that have no `…` with `ARCHDSL_UPDATE_DOCS=1 pytest tests/test_docs.py`,
and read the diff.
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

import archdsl
from archdsl.cli import main as cli_main
from archdsl.errors import ArchError, Source
from archdsl.ops import REGISTRY
from archdsl.parser import parse

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "docs" / "language.md", ROOT / "docs" / "ir.md")
KINDS = ("arch", "arch-warning", "arch-error", "arch-fragment", "console")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Example:
    doc: Path
    line: int
    kind: str
    file: str | None
    text: str
    shows: str | None = None  # the repository file the example shows as it is

    @property
    def id(self) -> str:
        return f"{self.doc.name}:{self.line}:{self.kind}"


def examples(doc: Path) -> list[Example]:
    text = doc.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        words = match.group(1).split()
        if not words or words[0] not in KINDS:
            continue
        attrs = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        line = text.count("\n", 0, match.start()) + 1
        found.append(Example(doc, line, words[0], attrs.get("file"), match.group(2), attrs.get("shows")))
    return found


ALL = [e for doc in DOCS if doc.is_file() for e in examples(doc)]
SPECS = [e for e in ALL if e.kind.startswith("arch")]
CONSOLE = [e for e in ALL if e.kind == "console"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder holding every `file=` example, and `specs/` pointing at the zoo."""
    work = tmp_path_factory.mktemp("docs")
    (work / "specs").symlink_to(ROOT / "specs", target_is_directory=True)
    for example in SPECS:
        if example.file:
            path = work / example.file
            assert not path.exists(), f"{example.id}: file={example.file} is written by two examples"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(example.text, encoding="utf-8")
    return work


def test_the_docs_have_examples():
    assert (ROOT / "docs" / "language.md").is_file()
    kinds = {e.kind for e in ALL}
    assert {"arch", "arch-error", "console"} <= kinds
    assert len([e for e in ALL if e.kind == "arch-fragment"]) <= 5, "keep arch-fragment for the few that cannot load"


@pytest.mark.parametrize("example", SPECS, ids=lambda e: e.id)
def test_spec_example(example: Example, workdir: Path, monkeypatch):
    monkeypatch.chdir(workdir)  # `use` in a spec given as text is relative to the working folder
    if example.shows:
        assert example.text == (ROOT / example.shows).read_text(encoding="utf-8"), (
            f"{example.id} shows {example.shows}, but not as the file now reads"
        )
    if example.kind == "arch-fragment":
        parse(Source(example.id, example.text))
        return
    if example.kind == "arch-error":
        with pytest.raises(ArchError):
            archdsl.load(example.text)
        return
    net = archdsl.load(example.text)
    _check_shape_notes(example, net)
    if example.kind == "arch-warning":
        assert net.warnings, f"{example.id} is marked arch-warning but loads without a warning"
        with pytest.raises(ArchError):
            archdsl.load(example.text, strict=True)
    else:
        assert not net.warnings, "\n".join(w.format() for w in net.warnings)


SHAPE_NOTE = re.compile(r"#.*?→\s*(\d+(?:x\d+)*)")


def _built_on(net, line: int):
    """The last layer built from a term of the main spec that ends on `line`."""
    source = net.spec.source
    here = {
        b.id for b in net.blocks.values() if b.span is not None and b.span.source is source and b.span.end_line == line
    }
    built = [
        layer
        for layer in net.layers
        if (layer.span is not None and layer.span.source is source and layer.span.end_line == line)
        or here.intersection(layer.scope)
    ]
    return built[-1] if built else None


def _check_shape_notes(example: Example, net) -> None:
    for number, text in enumerate(example.text.splitlines(), 1):
        note = SHAPE_NOTE.search(text)
        if note is None:
            continue
        layer = _built_on(net, number)
        where = f"{example.doc.name}:{example.line + number}"
        assert layer is not None, f"{where}: `# → {note.group(1)}` on a line that builds no layer"
        shape = "x".join(map(str, layer.shape))
        assert shape == note.group(1), f"{where}: {layer.name} ({layer.token}) is {shape}, the comment says {note.group(1)}"


def _matches(expected: list[str], actual: list[str]) -> bool:
    def line_pattern(line: str) -> str:
        if line.strip() == "…":  # any number of lines
            return r"(?:[^\n]*\n)*?"
        return r"[^\n]*?".join(re.escape(part) for part in line.split("…")) + r"\n"  # … in a line: any text

    pattern = "".join(line_pattern(line) for line in expected)
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual)) is not None


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


@pytest.mark.parametrize("example", CONSOLE, ids=lambda e: e.id)
def test_console_example(example: Example, workdir: Path, monkeypatch, capsys):
    command, *expected = example.text.splitlines()
    assert command.startswith("$ archdsl "), f"{example.id}: a console block starts with `$ archdsl …`"
    monkeypatch.chdir(workdir)
    capsys.readouterr()
    cli_main(shlex.split(command[2:])[1:])
    captured = capsys.readouterr()
    actual = _lines(captured.err + captured.out)
    if os.environ.get("ARCHDSL_UPDATE_DOCS") and not any("…" in line for line in expected):
        text = example.doc.read_text(encoding="utf-8")
        fresh = "".join(line + "\n" for line in [command, *actual])
        example.doc.write_text(text.replace("```console\n" + example.text, "```console\n" + fresh, 1), encoding="utf-8")
        return
    assert _matches(_lines("\n".join(expected)), actual), (
        f"{example.id}: `{command[2:]}` prints\n" + "\n".join(actual)
    )


def test_every_layer_type_has_an_example():
    """A new layer type (ops/*.py, @register) is not done until the reference shows it."""
    text = "\n".join(e.text for e in SPECS).lower()
    missing = [
        name
        for name, cls in sorted(REGISTRY.items())
        if not cls.hidden and not re.search(rf"(?<![a-z_-]){re.escape(name)}(?![a-z_])", text)
    ]
    assert not missing, f"layer types with no example in docs/language.md: {', '.join(missing)}"
