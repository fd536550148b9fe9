"""Labels: `"conv2_x": TERM` names a layer, a block or a stage for diagrams and tables, and
changes nothing else (layer names, parameters)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import archdsl
from archdsl.cli import main
from archdsl.errors import ArchError, ExpansionError, SpecSyntaxError
from archdsl.hierarchy import Hierarchy

REPO = Path(__file__).resolve().parents[1]

RESNET = """
network labelled
input 3x32x32
after conv = bn
block basic(c, s=1) = [residual< conv3-c/s relu conv3-c > relu]
"conv1": conv3-16 relu
"conv2_x": basic(16) * 2
"conv3_x": [basic(32, s=2) "last block": basic(32)]
gap fc-10
"""


def test_a_layer_a_block_and_a_stage_are_labelled():
    net = archdsl.load(RESNET)
    graph = net.graph
    assert graph.labels == {"conv1": "conv1", "basic4": "last block"}  # the conv, not its after-bn
    stages = list(graph.stages.values())
    assert [(s.label, s.members, s.parent) for s in stages] == [
        ("conv2_x", ("basic1", "basic2"), None),
        ("conv3_x", ("basic3", "basic4"), None),
    ]
    hierarchy = Hierarchy(graph)
    assert hierarchy.known_as("basic3.conv1") == "conv3_x"
    assert hierarchy.known_as("basic3.shortcut.conv") == "conv3_x"  # a part of a block in the stage
    assert hierarchy.known_as("basic4.add") == "last block"  # the innermost label
    assert hierarchy.known_as("bn1") is None and hierarchy.known_as("fc1") is None
    assert list(hierarchy.ancestors("basic3.conv1")) == ["basic3", stages[1].id]


def test_labels_change_no_layer_name_nor_count():
    plain = archdsl.load(RESNET.replace('"conv2_x": ', "").replace('"conv3_x": ', "").replace('"last block": ', "")
                         .replace('"conv1": ', ""))
    net = archdsl.load(RESNET)
    assert [l.name for l in net.layers] == [l.name for l in plain.layers]
    assert (net.params, net.macs) == (plain.params, plain.macs)


def test_labels_inside_a_block_label_each_instance_and_nested_stages_nest():
    net = archdsl.load(
        'input 8x8x8\nblock unit(c) = ["a": conv3-c "pair": [relu conv1-c]]\n"outer": ["inner": [unit(8) unit(8)] relu]\n'
    )
    graph = net.graph
    assert graph.labels == {"unit1.conv1": "a", "unit2.conv1": "a"}
    by_label = {s.label: s for s in reversed(graph.stages.values())}  # the first of each
    assert by_label["pair"].parent == "unit1" and by_label["pair"].members == ("unit1.relu1", "unit1.conv2")
    assert by_label["inner"].members == ("unit1", "unit2")
    assert by_label["outer"].members == (by_label["inner"].id, "relu1")  # the inner stage claimed its blocks
    assert list(Hierarchy(graph).ancestors("unit2.conv2")) == [
        [s.id for s in graph.stages.values() if s.label == "pair" and s.parent == "unit2"][0],
        "unit2", by_label["inner"].id, by_label["outer"].id,
    ]


def test_a_label_follows_a_layer_renamed_by_its_tensor_name():
    net = archdsl.load('input 3x8x8\n"s": [conv3-8 conv3-8] -> x\n"one": conv3-8 -> y\n@x add(@y)\n')
    (stage,) = net.graph.stages.values()
    assert stage.members == ("conv1", "x") and net.graph.labels == {"y": "one"}


@pytest.mark.parametrize(
    "text, col, message",
    [
        ('input 3x8x8\nconv3-8 -> a\n"skip": @a\n', 1, 'the label "skip" names nothing'),
        ('input 3x8x8\nconv3-8\n"n": -> a\n', 1, 'the label "n" names nothing'),
        ('input 3x8x8\n"none": conv3-8 * 0\nrelu\n', 1, 'the label "none" names nothing'),
        ('input 3x8x8\n"a": "b": conv3-8\n', 1, 'labelled twice: "b" and "a"'),
    ],
    ids=["a-reference", "a-name", "times-zero", "twice"],
)
def test_a_label_with_nothing_to_name_is_an_error_at_the_label(text, col, message):
    with pytest.raises(ExpansionError) as info:
        archdsl.load(text)
    assert (info.value.span.line, info.value.span.col) == (3 if "skip" in text or '"n"' in text else 2, col)
    assert message in info.value.format() and "Received: " in info.value.format()


def test_an_empty_label_and_a_label_without_its_colon_are_syntax_errors():
    with pytest.raises(SpecSyntaxError, match="a label needs text"):
        archdsl.load('input 3x8x8\n"  ": conv3-8\n')
    with pytest.raises(SpecSyntaxError, match="expected ':'"):
        archdsl.load('input 3x8x8\n"x" conv3-8\n')


def test_check_shows_a_label_column_only_when_the_spec_labels_something(tmp_path, capsys):
    spec = tmp_path / "labelled.arch"
    spec.write_text(RESNET)
    assert main(["check", str(spec)]) == 0
    header, _, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["layer", "label", "op"]
    row = next(r for r in rows if r.startswith("basic3.conv1 "))
    assert row.split()[1] == "conv3_x"
    assert main(["check", str(REPO / "specs" / "lenet5.arch")]) == 0
    assert capsys.readouterr().out.split()[:2] == ["layer", "op"]
    assert main(["check", "--json", str(spec)]) == 0
    layers = {l["name"]: l for l in json.loads(capsys.readouterr().out)["layers"]}
    assert layers["basic4.add"]["label"] == "last block" and layers["fc1"]["label"] is None


def test_the_zoo_names_googlenets_modules_and_resnets_stages_as_the_papers():
    google = archdsl.load(REPO / "specs" / "googlenet.arch")
    modules = [google.graph.labels[i] for i, b in google.blocks.items() if b.name == "inception_module"]
    assert modules == [f"inception ({n})" for n in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    resnet = archdsl.load(REPO / "specs" / "resnet50.arch")
    stages = {s.label: len(s.members) for s in resnet.graph.stages.values()}
    assert stages == {"conv2_x": 3, "conv3_x": 4, "conv4_x": 6, "conv5_x": 3}  # the paper's [3, 4, 6, 3]


def test_a_label_inside_an_inception_branch_frames_that_branch():
    net = archdsl.load('input 8x8x8\ninception< "reduce": [conv1-4 conv3-4] | conv1-4 >\n')
    (stage,) = net.graph.stages.values()
    assert stage.parent == "inception1.b1" and stage.members == ("inception1.b1.conv1", "inception1.b1.conv2")


def test_errors_are_arch_errors_not_tracebacks(tmp_path, capsys):
    spec = tmp_path / "bad.arch"
    spec.write_text('input 3x8x8\nconv3-8 -> a\n"skip": @a\n')
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{spec}:3:1: error: the label \"skip\" names nothing") and "^~~~~~" in err
    assert issubclass(ExpansionError, ArchError)


def test_fmt_writes_a_label_with_its_colon_after_it():
    from archdsl.formatter import format_text

    text = 'input 3x8x8\n"conv1"  :conv3-8\n"stage" : [conv3-8 relu] * 2\n'
    assert format_text(text) == 'input 3x8x8\n"conv1": conv3-8\n"stage": [conv3-8 relu] * 2\n'
    for spec in ("googlenet", "resnet50"):  # the zoo's labelled specs are as fmt writes them
        path = REPO / "specs" / f"{spec}.arch"
        assert format_text(path.read_text(), str(path), path) == path.read_text()
