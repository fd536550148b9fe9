"""`archdsl render`: every zoo spec through the real `dot`, golden .dot files, depth
collapsing, compact folding, wrapping, labels, the composite blocks' drawing, and the CLI's errors.

Golden files: `ARCHDSL_UPDATE_GOLDEN=1 pytest tests/test_render.py` rewrites them.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import archdsl
from archdsl.ir import BlockKind
from archdsl.cli import main
from archdsl.render import RenderError, render, to_digraph
from archdsl.ops import REGISTRY
from archdsl.render.collapse import build_view

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted((REPO / "specs").glob("*.arch"))
GOLDEN = Path(__file__).parent / "golden"
SVG = "{http://www.w3.org/2000/svg}"


# Small specs for the features, independent of how the zoo writes its networks.
RESNET = """
network mini_resnet
input 3x32x32
after conv = bn
block basic(c, s=1) = [residual< conv3-c/s relu conv3-c > relu]
conv3-16 relu
basic(16) basic(32, s=2)
gap fc-10
"""
INCEPTION_SE = """
network mini_inception
input 16x8x8
block stage(c) = [inception< conv1-c | conv1-c conv3-c | maxpool3/1(pad=1) > se<4>]
stage(8) stage(8)
gap fc-10
"""
SKIPS = """
network mini_unet
input 1x16x16
conv3-8 -> enc1
maxpool conv3-16
upsample(2) concat(@enc1) conv1-2
"""
AUX = """
network mini_aux
input 3x32x32
conv3-8 -> trunk
gap fc-5 -> aux
@trunk conv3-8 gap fc-10
"""


# ---------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=None)
def load_spec(path: Path):
    """Each zoo spec is loaded once for the whole file (ResNet-152 takes a moment)."""
    return archdsl.load(path)


def svg_of(net, tmp_path: Path, **kwargs) -> ET.Element:
    path = render(net, tmp_path / f"{net.name}-{kwargs.get('depth')}.svg", **kwargs)
    return ET.parse(path).getroot()  # parses, or the test fails: the SVG is well-formed XML


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


def expected_boxes(net, depth: int | None) -> int:
    """The diagram's node count, computed apart from archdsl.render.collapse."""
    if depth is None:
        return len(net.layers)
    if depth == 0:
        return 1
    boxes = set()
    for layer in net.layers:
        counted = [i for i in layer.scope if not net.blocks[i].kind.is_part]
        boxes.add(counted[depth - 1] if len(counted) >= depth else layer.name)
    return len(boxes)


def node_bounds(node: ET.Element) -> tuple[float, float, float, float]:
    """The bounding box of a node's outline (polygons and paths; its text lies inside)."""
    numbers: list[float] = []
    for shape in node:
        if shape.tag in (f"{SVG}polygon", f"{SVG}polyline"):
            numbers += [float(v) for v in re.split(r"[ ,]+", shape.get("points").strip())]
        elif shape.tag == f"{SVG}path":
            numbers += [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", shape.get("d"))]
    xs, ys = numbers[0::2], numbers[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def overlapping(boxes: list[tuple[float, float, float, float]]) -> list[tuple[int, int]]:
    boxes = sorted(boxes, key=lambda b: b[1])
    found = []
    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            if b[1] >= a[3] - 0.5:
                break  # sorted by top: nothing further down can reach a
            if b[0] < a[2] - 0.5 and a[0] < b[2] - 0.5:
                found.append((i, j))
    return found


def dot_source(net, **kwargs) -> str:
    return to_digraph(net, **kwargs).source


def edge_attrs(source: str, tail: str, head: str) -> str | None:
    """The attributes of the edge tail -> head in .dot source (ids are quoted when they hold a dot)."""
    match = re.search(rf'"?{re.escape(tail)}"? -> "?{re.escape(head)}"?(?: \[([^\]]*)\])?\n', source)
    return (match.group(1) or "") if match else None


# ---------------------------------------------------------------- the zoo through dot


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_zoo_spec_renders_to_svg_with_one_node_per_layer_when_full(spec, tmp_path):
    net = load_spec(spec)
    root = svg_of(net, tmp_path, full=True)
    assert len(groups(root, "node")) == expected_boxes(net, None) == len(net.layers)
    # Every block instance holding a layer is a cluster (inception branches and shortcuts too), and every stage.
    instances = {i for layer in net.layers for i in layer.scope}
    assert len(groups(root, "cluster")) == len(instances) + len(net.graph.stages)
    assert len(groups(root, "edge")) == sum(len(set(layer.inputs)) for layer in net.layers)


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_zoo_spec_at_a_depth_has_one_node_per_box(spec, depth, tmp_path):
    net = load_spec(spec)
    root = svg_of(net, tmp_path, depth=depth, full=True)
    assert len(groups(root, "node")) == expected_boxes(net, depth)


def test_depth_0_draws_the_whole_network_as_one_box(tmp_path):
    net = load_spec(REPO / "specs" / "googlenet.arch")
    root = svg_of(net, tmp_path, depth=0)  # compact: the same single box
    assert len(groups(root, "node")) == 1 and not groups(root, "edge") and not groups(root, "cluster")
    text = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "output aux1" in text and "output aux2" in text  # the box still names every output


def test_resnet152_depth_1_is_one_box_per_bottleneck(tmp_path):
    net = load_spec(REPO / "specs" / "resnet152.arch")
    view = build_view(net.graph, depth=1)
    bottlenecks = [b for b in view.boxes.values() if b.block is not None and b.block.name == "bottleneck"]
    assert len(bottlenecks) == 3 + 8 + 36 + 3
    # the only frames are the paper's four stages, conv2_x … conv5_x, around their bottlenecks
    assert len(view.boxes) < 60 and [f.label for f in view.clusters.values()] == ["conv2_x", "conv3_x", "conv4_x", "conv5_x"]
    root = svg_of(net, tmp_path, depth=1, full=True)
    assert len(groups(root, "node")) == len(view.boxes)


def test_resnet152_full_depth_lays_out_fast_without_overlaps(tmp_path):
    net = load_spec(REPO / "specs" / "resnet152.arch")
    start = time.perf_counter()
    root = svg_of(net, tmp_path, full=True)
    elapsed = time.perf_counter() - start
    assert elapsed < 20, f"dot took {elapsed:.1f} s on ResNet-152"  # about 1 s on a laptop
    nodes = groups(root, "node")
    assert len(nodes) == len(net.layers) > 500
    assert overlapping([node_bounds(n) for n in nodes]) == []


# ---------------------------------------------------------------- golden .dot files


@pytest.mark.parametrize("full", [False, True], ids=["compact", "full"])
@pytest.mark.parametrize("name", ["lenet5", "inception_naive"])
def test_dot_source_matches_golden(name, full, tmp_path):
    """The .dot output is deterministic; ARCHDSL_UPDATE_GOLDEN=1 rewrites tests/golden/NAME.dot (compact)
    and NAME_full.dot (--full, every layer: the diagrams archdsl drew before compact ones)."""
    net = load_spec(REPO / "specs" / f"{name}.arch")
    written = render(net, tmp_path / f"{name}.dot", full=full).read_text(encoding="utf-8")
    golden = GOLDEN / f"{name}{'_full' if full else ''}.dot"
    if os.environ.get("ARCHDSL_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(written, encoding="utf-8")
    assert golden.exists(), f"no {golden}; write it with ARCHDSL_UPDATE_GOLDEN=1"
    assert written == golden.read_text(encoding="utf-8"), f"{golden.name} changed; if on purpose, ARCHDSL_UPDATE_GOLDEN=1"


def test_dot_source_is_the_same_every_time():
    first = dot_source(archdsl.load(INCEPTION_SE))
    assert first == dot_source(archdsl.load(INCEPTION_SE))


# ---------------------------------------------------------------- what the diagram shows (--full)


def test_layer_node_shows_token_shape_and_params():
    source = dot_source(archdsl.load(RESNET), full=True)
    assert "<b>conv3-16</b>" in source
    assert "16x32x32 · 432 params" in source  # 3·3·3·16, no bias before bn
    assert "<b>conv3-c/s</b>" in source and "= conv3-32/2" in source  # a block's token, resolved
    assert 'label=" 16x32x32"' in edge_attrs(source, "conv1", "bn1")  # the tensor an edge carries
    assert 'label=<<table border="0"' in source and "mini_resnet" in source  # the title …
    assert "convolution" in source and "normalization" in source  # … with the legend


def test_residual_identity_skips_the_body_and_projection_shows_its_conv():
    source = dot_source(archdsl.load(RESNET), full=True)
    assert "dashed" in edge_attrs(source, "relu1", "basic1.add")  # the identity, around the body
    assert "dashed" not in edge_attrs(source, "basic1.bn2", "basic1.add")
    assert 'subgraph "cluster_basic2.shortcut"' in source
    assert "projection shortcut" in source and "<b>conv1-32/2</b>" in source


def test_identity_is_a_skip_even_when_the_block_starts_before_its_residual():
    net = archdsl.load("network t\ninput 8x8x8\nblock stage(c) = [conv3-c residual< conv3-c > relu]\nstage(8)\n")
    source = dot_source(net, full=True)
    assert "dashed" in edge_attrs(source, "stage1.conv1", "stage1.add")
    assert "dashed" not in edge_attrs(source, "stage1.conv2", "stage1.add")


def test_se_pass_through_is_a_skip():
    source = dot_source(archdsl.load(INCEPTION_SE), full=True)
    assert "dashed" in edge_attrs(source, "stage1.inception1.concat", "stage1.se1.scale")
    assert "dashed" not in edge_attrs(source, "stage1.se1.sigmoid", "stage1.se1.scale")


def test_inception_branches_are_clusters_side_by_side():
    net = archdsl.load(INCEPTION_SE)
    view = build_view(net.graph)
    branches = [c for c in view.clusters.values() if c.kind is BlockKind.BRANCH and c.parent == "stage1.inception1"]
    assert len(branches) == 3
    # The branches are siblings in their inception's cluster, so dot lays them out side by side.
    assert view.contents["stage1.inception1"][:3] == [b.id for b in branches]
    assert view.contents["stage1"] == ["stage1.inception1", "stage1.se1"]


def test_several_outputs_and_named_skips_are_marked():
    aux = dot_source(archdsl.load(AUX), full=True)
    assert aux.count("peripheries=2") == 2 and "output aux" in aux
    skips = dot_source(archdsl.load(SKIPS), full=True)
    edge = edge_attrs(skips, "enc1", "concat1")
    assert "@enc1 8x16x16" in edge and "dashed" in edge


# ---------------------------------------------------------------- compact (the default)


def test_compact_folds_elementwise_and_norm_followers_into_their_box():
    net = archdsl.load(RESNET)
    view = build_view(net.graph, compact=True)
    tokens = {box.id: [l.token for l in box.layers] for box in view.boxes.values()}
    assert tokens["conv1"] == ["conv3-16", "bn", "relu"]
    assert tokens["basic1.conv1"] == ["conv3-c/s", "bn", "relu"] and tokens["basic1.conv2"] == ["conv3-c", "bn"]
    assert tokens["basic1.add"] == ["add", "relu"]  # after the merge, its relu
    assert tokens["basic2.shortcut.conv"] == ["conv1-32/2", "bn"]  # inside the projection's own frame
    # every layer is drawn exactly once
    drawn = [l.name for box in view.boxes.values() for l in box.layers]
    assert sorted(drawn) == sorted(l.name for l in net.layers)
    source = dot_source(net)
    assert "<b>conv3-32/2</b> · bn · relu" in source and "conv3-c/s" not in source  # the resolved token first


def test_folding_follows_the_ops_traits_not_their_names():
    from archdsl.ops import Kind, Trait

    net = archdsl.load("input 3x16x16\nconv3-8 bn leakyrelu(0.1) dropout(0.2) maxpool softmax lrn -> x\n@x gap\n")
    boxes = [[l.op for l in box.layers] for box in build_view(net.graph, compact=True).boxes.values()]
    for ops in boxes:
        for op in ops[1:]:
            assert op.has(Trait.ELEMENTWISE) or op.kind is Kind.NORMALIZATION
    # input | conv bn leakyrelu dropout | maxpool | softmax lrn | gap: softmax mixes the channels, so it
    # keeps a box of its own, and lrn (a norm) joins it
    assert [len(ops) for ops in boxes] == [1, 4, 1, 2, 1]


@pytest.mark.parametrize("cls", sorted(set(REGISTRY.values()), key=lambda c: c.family), ids=lambda c: c.family)
def test_every_op_is_drawn_compact_and_in_blocks_with_no_edit_for_it(cls):
    """Diagrams know no op by name: each registered op's own example draws, every layer once."""
    net = archdsl.load(f"network example\ninput 8x16x16\n{cls.example}\n")
    view = build_view(net.graph, compact=True)
    assert sorted(l.name for box in view.boxes.values() for l in box.layers) == sorted(l.name for l in net.layers)
    assert dot_source(net).startswith("digraph example {")
    assert dot_source(net, full=True).startswith("digraph example {")
    from archdsl.render.blocks import figure

    assert figure(net).items  # the paper-style figure too


def test_a_new_activation_folds_into_its_box_by_its_trait():
    from dataclasses import dataclass

    from archdsl import ops

    @dataclass(frozen=True)
    class Squareplus(ops.Activation):
        family = "squareplus_test"
        example = "squareplus_test"
        formula = "0.5 * (x + sqrt(x * x + 4))"

    ops.register(Squareplus)
    try:
        net = archdsl.load("input 3x8x8\nconv3-8 squareplus_test maxpool\n")
        boxes = [[l.token for l in box.layers] for box in build_view(net.graph, compact=True).boxes.values()]
    finally:
        del ops.REGISTRY["squareplus_test"]
    assert boxes == [["input"], ["conv3-8", "squareplus_test"], ["maxpool"]]


def test_compact_edges_show_a_shape_only_where_it_changes():
    source = dot_source(archdsl.load(SKIPS))
    assert edge_attrs(source, "input", "enc1") == ""  # the input box shows its shape itself
    assert edge_attrs(source, "enc1", "maxpool1") == 'label=" @enc1 8x16x16"'  # 1 → 8 channels, and its name
    assert edge_attrs(source, "enc1", "concat1") == 'label=" @enc1 8x16x16" color="#2e86c1" fontcolor="#2e86c1" style=dashed weight=0'
    vgg = dot_source(load_spec(REPO / "specs" / "vgg16.arch"))
    assert 'label=" 64x224x224"' in edge_attrs(vgg, "conv1", "conv2")  # 3 → 64 channels
    assert edge_attrs(vgg, "conv2", "maxpool1") == ""  # 64x224x224 again: not repeated
    assert 'label=" 64x112x112"' in edge_attrs(vgg, "maxpool1", "conv3")
    assert "<i>output</i> 1000" in vgg  # an output's shape, which no edge shows, is on its box


def test_a_residuals_skip_stays_inside_its_blocks_frame():
    """The block's input enters its frame once, at a point inside it; the dashed identity and the
    projection start from there."""
    net = archdsl.load(RESNET)
    view = build_view(net.graph, compact=True)
    points = {p: frame for p, frame in view.points.items()}
    assert points == {"basic1>relu1": "basic1", "basic2>basic1.relu2": "basic2"}  # frame>tensor
    into = [(e.tail, e.head, e.skip) for e in view.edges if e.tail == "basic1>relu1"]
    assert into == [("basic1>relu1", "basic1.conv1", False), ("basic1>relu1", "basic1.add", True)]
    assert [(e.tail, e.head) for e in view.edges if e.head == "basic1>relu1"] == [("conv1", "basic1>relu1")]
    into_projection = {e.head for e in view.edges if e.tail == "basic2>basic1.relu2"}
    assert into_projection == {"basic2.conv1", "basic2.shortcut.conv"}


def test_skips_do_not_cross_frame_borders_in_the_drawing(tmp_path):
    """Through the real dot: every dashed edge of ResNet-18 lies inside its block's frame."""
    net = load_spec(REPO / "specs" / "resnet18.arch")
    root = svg_of(net, tmp_path)
    frames = {g.find(f"{SVG}title").text.removeprefix("cluster_"): node_bounds(g) for g in groups(root, "cluster")}
    dashed = [g for g in groups(root, "edge") if any(p.get("stroke-dasharray") for p in g.iter(f"{SVG}path"))]
    assert len(dashed) == 5  # the identity of the five blocks that keep their shape
    for edge in dashed:
        tail, head = edge.find(f"{SVG}title").text.split("->")
        block = head.rsplit(".", 1)[0]
        x0, y0, x1, y1 = node_bounds(edge)
        fx0, fy0, fx1, fy1 = frames[block]
        assert fx0 <= x0 and x1 <= fx1 and fy0 <= y0 and y1 <= fy1, f"{tail}->{head} leaves {block}'s frame"


def test_labels_title_frames_and_boxes():
    google = dot_source(load_spec(REPO / "specs" / "googlenet.arch"), depth=1)
    assert "<b>inception (4a)</b>" in google and "inception_module(192, 96, 208, 16, 48, 64)" in google
    resnet = dot_source(load_spec(REPO / "specs" / "resnet50.arch"))
    for stage in ("conv2_x", "conv3_x", "conv4_x", "conv5_x"):
        assert f"<b>{stage}</b>" in resnet
    layer = dot_source(archdsl.load('input 3x8x8\n"CONV1": conv3-8 relu\n'))
    assert "<b>CONV1</b><br/>conv3-8 · relu" in layer


def test_a_blocks_definition_view_draws_its_first_call_with_its_templates():
    net = load_spec(REPO / "specs" / "resnet50.arch")
    source = to_digraph(net, block="bottleneck").source
    first = [l for l in net.layers if "bottleneck1" in l.scope]
    nodes = re.findall(r'^\t+"?([\w.>#]+)"? \[label=<', source, re.M)
    assert nodes[0] == "stem1.maxpool1"  # the tensor the call reads, drawn as its input
    assert {l.name for l in first} >= set(nodes[1:]) and "bottleneck2.conv1" not in source
    assert "<b>conv1-256</b> · bn<br/>" in source and "<i>conv1-(4*c) · bn</i>" in source  # resolved, then the template
    assert "resnet50: bottleneck(64)" in source and "output 256x56x56" in source
    with pytest.raises(RenderError, match=r"no call of a block 'botleneck' to draw; did you mean 'bottleneck'\?"):
        to_digraph(net, block="botleneck")
    # elsewhere, the template is not shown: the resolved token only
    assert "<i>conv1-(4*c)" not in to_digraph(net).source


def test_wrap_cuts_a_long_chain_into_columns_side_by_side(tmp_path):
    net = load_spec(REPO / "specs" / "vgg16.arch")
    one = svg_of(net, tmp_path / "one", wrap=1)
    three = svg_of(net, tmp_path / "three", wrap=3)

    def size(root):
        return float(root.get("width").removesuffix("pt")), float(root.get("height").removesuffix("pt"))

    (w1, h1), (w3, h3) = size(one), size(three)
    assert h3 < h1 / 2 and w3 > w1  # (the title sets the width of one column)
    columns = sorted({round(node_bounds(n)[0]) for n in groups(three, "node") if n.find(f"{SVG}title").text in
                      ("input", "conv5", "conv10")})
    assert len(columns) == 3  # each column's first box starts a column of its own
    assert overlapping([node_bounds(n) for n in groups(three, "node")]) == []
    assert 'constraint=false' in dot_source(net, wrap=3) and "rank=same" in dot_source(net, wrap=3)
    assert "rank=same" not in dot_source(net, wrap=1) and "rank=same" not in dot_source(net, full=True)


def test_auto_wrap_brings_resnet18_near_a_page_and_leaves_lenet_alone(tmp_path):
    resnet = svg_of(load_spec(REPO / "specs" / "resnet18.arch"), tmp_path)
    width, height = (float(resnet.get(k).removesuffix("pt")) for k in ("width", "height"))
    assert 1 <= height / width <= 2.2, (width, height)  # full ResNet-18 used to be 393x4849 pt
    assert "rank=same" not in dot_source(load_spec(REPO / "specs" / "lenet5.arch"))


def test_rankdir_lr_wraps_into_rows(tmp_path):
    root = svg_of(load_spec(REPO / "specs" / "resnet18.arch"), tmp_path, rankdir="LR")
    width, height = (float(root.get(k).removesuffix("pt")) for k in ("width", "height"))
    assert 0.5 <= height / width <= 1.2, (width, height)  # a landscape page, not a 3684x186 strip


def test_depth_counts_block_levels_not_branches():
    net = archdsl.load(INCEPTION_SE)
    whole = build_view(net.graph, depth=0)
    assert list(whole.boxes) == ["network"] and whole.edges == []
    top = build_view(net.graph, depth=1)
    assert [b for b in top.boxes if b in net.blocks] == ["stage1", "stage2"]
    assert [(e.tail, e.head) for e in top.edges] == [("input", "stage1"), ("stage1", "stage2"), ("stage2", "gap1"), ("gap1", "fc1")]
    # A stage (level 1) holds an inception and an se (level 2); the branches are no level.
    second = build_view(net.graph, depth=2)
    assert [b.id for b in second.boxes.values() if b.collapsed] == [
        "stage1.inception1", "stage1.se1", "stage2.inception1", "stage2.se1"
    ]
    assert list(second.clusters) == ["stage1", "stage2"]
    third = build_view(net.graph, depth=3)
    assert not any(b.collapsed for b in third.boxes.values())
    assert sum(c.kind is BlockKind.BRANCH for c in third.clusters.values()) == 6
    assert build_view(net.graph, depth=9).boxes.keys() == build_view(net.graph).boxes.keys()


def test_collapsed_box_shows_name_output_shape_and_totals():
    net = archdsl.load(RESNET)
    source = dot_source(net, depth=1)
    block = net.blocks["basic2"]
    params = sum(layer.params for layer in net.layers if "basic2" in layer.scope)
    assert "<b>basic(32, s=2)</b>" in source and block.kind is BlockKind.RESIDUAL
    assert "32x16x16" in source and f"{params / 1e3:.3g}k params" in source


def test_rankdir_and_bad_arguments():
    net = archdsl.load(RESNET)
    assert "rankdir=LR" in dot_source(net, rankdir="LR")
    with pytest.raises(RenderError, match="rankdir"):
        to_digraph(net, rankdir="BT")
    with pytest.raises(RenderError, match="depth"):
        to_digraph(net, depth=-1)


def test_network_render_method_writes_dot(tmp_path):
    path = archdsl.load(RESNET).render(tmp_path / "net.gv", depth=1)
    assert path.read_text(encoding="utf-8").startswith("digraph mini_resnet {")


# ---------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def lenet() -> Path:
    return REPO / "specs" / "lenet5.arch"


def test_cli_writes_the_diagram(run_archdsl, lenet, tmp_path):
    out = tmp_path / "lenet.svg"
    done = run_archdsl("render", lenet, "-o", out, "--depth", "1", "--rankdir", "LR")
    assert done.returncode == 0, done.stderr
    assert ET.parse(out).getroot().tag == f"{SVG}svg"


def test_cli_creates_a_missing_output_folder(run_archdsl, lenet, tmp_path):
    out = tmp_path / "diagrams" / "zoo" / "lenet.dot"
    done = run_archdsl("render", lenet, "-o", out)
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("digraph")


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "{tmp}/net.jpg"], "cannot tell the diagram's format from {tmp}/net.jpg: expected one of .dot"),
        (["-o", "{tmp}/net"], "Received: no extension"),
        (["-o", "{tmp}/file.txt/sub/net.svg"], "cannot create the folder {tmp}/file.txt/sub"),
        (["-o", "{tmp}/file.txt/net.svg"], "{tmp}/file.txt is a file, not a folder"),
        (["-o", "{tmp}/net.svg", "--depth", "-1"], "--depth must be 0 or more"),
    ],
    ids=["extension", "no-extension", "folder-under-a-file", "folder-is-a-file", "negative-depth"],
)
def test_cli_errors_are_one_line_and_exit_1(lenet, tmp_path, capsys, args, message):
    (tmp_path / "file.txt").write_text("x")
    assert main(["render", str(lenet), *[a.format(tmp=tmp_path) for a in args]]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert message.format(tmp=tmp_path) in err


@pytest.mark.parametrize("args, message", [
    (["--wrap", "0"], "argument --wrap: expected a number of columns ≥ 1, or auto. Received: 0"),
    (["--wrap", "two"], "argument --wrap: expected a number of columns ≥ 1, or auto. Received: two"),
    (["--style", "cubes"], "argument --style: invalid choice: 'cubes'"),
], ids=["wrap-0", "wrap-word", "style"])
def test_cli_usage_errors_exit_2(lenet, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as info:
        main(["render", str(lenet), "-o", str(tmp_path / "net.svg"), *args])
    assert info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "net.svg").exists()


def test_cli_full_and_wrap_and_html(run_archdsl, tmp_path):
    vgg = REPO / "specs" / "vgg16.arch"
    for args in (["--full"], ["--wrap", "2"], ["--rankdir", "LR", "--wrap", "auto"]):
        out = tmp_path / f"vgg{len(args)}{args[-1]}.dot"
        assert main(["render", str(vgg), "-o", str(out), *args]) == 0
    assert "rank=same" not in (tmp_path / "vgg1--full.dot").read_text()
    assert "rank=same" in (tmp_path / "vgg22.dot").read_text()
    html = tmp_path / "lenet.html"
    done = run_archdsl("render", REPO / "specs" / "lenet5.arch", "-o", html)
    assert done.returncode == 0 and html.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert main(["render", str(REPO / "specs" / "lenet5.arch"), "-o", str(html), "--depth", "0"]) == 1


def test_cli_spec_error_is_reported_as_check_reports_it(tmp_path, capsys):
    spec = tmp_path / "bad.arch"
    spec.write_text("network bad\ninput 3x32x32\nconv3-64 cnov3-64\n")
    assert main(["render", str(spec), "-o", str(tmp_path / "bad.svg")]) == 1
    rendered = capsys.readouterr().err
    assert main(["check", str(spec)]) == 1
    assert rendered == capsys.readouterr().err
    assert rendered.startswith(f"{spec}:3:10: error: unknown layer 'cnov3'")
    assert not (tmp_path / "bad.svg").exists()


def _python_without_dot(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    """Run this Python with a PATH that holds no `dot` (an empty folder), as on a machine without Graphviz."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ARCHDSL_DEBUG"}
    env["PATH"] = str(empty)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_without_dot_svg_says_how_to_install_and_dot_source_still_works(lenet, tmp_path):
    code = (
        "import sys; from archdsl.cli import main\n"
        f"svg = main(['render', {str(lenet)!r}, '-o', {str(tmp_path / 'x.svg')!r}])\n"
        f"dot = main(['render', {str(lenet)!r}, '-o', {str(tmp_path / 'x.dot')!r}])\n"
        "print(svg, dot)\n"
    )
    done = _python_without_dot(tmp_path, code)
    assert done.stdout.split()[-2:] == ["1", "0"], done.stderr
    assert "apt-get install graphviz" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.svg").exists()
    assert (tmp_path / "x.dot").read_text(encoding="utf-8").startswith("digraph lenet5 {")



def test_new_ops_are_coloured_by_their_kind():
    """A layer type gets its colour from its kind: the mobile and modern families' ops needed no
    edit of the renderer. Drawn in full, every layer is one node, filled with its kind's colour."""
    from test_torch_backend import MODERN_OPS

    from archdsl.render.style import kind_colour

    net = archdsl.load(MODERN_OPS)
    source = dot_source(net, full=True)  # every layer its own box (compact folds norms and activations)
    for layer in net.layers:
        node = re.search(rf'^\s*"?{re.escape(layer.name)}"? \[.*fillcolor="([^"]+)"', source, re.MULTILINE)
        assert node, layer.name
        assert node.group(1) == kind_colour(layer.op.kind), layer.name
