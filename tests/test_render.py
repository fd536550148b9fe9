"""`archdsl render`: every zoo spec through the real `dot`, golden .dot files, depth
collapsing, the composite blocks' drawing, and the CLI's errors.

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
    match = re.search(rf'"?{re.escape(tail)}"? -> "?{re.escape(head)}"? \[([^\]]*)\]', source)
    return match.group(1) if match else None


# ---------------------------------------------------------------- the zoo through dot


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_zoo_spec_renders_to_svg_with_one_node_per_layer(spec, tmp_path):
    net = load_spec(spec)
    root = svg_of(net, tmp_path)
    assert len(groups(root, "node")) == expected_boxes(net, None) == len(net.layers)
    # Every block instance holding a layer is a cluster (inception branches and shortcuts too).
    instances = {i for layer in net.layers for i in layer.scope}
    assert len(groups(root, "cluster")) == len(instances)
    assert len(groups(root, "edge")) == sum(len(set(layer.inputs)) for layer in net.layers)


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_zoo_spec_at_a_depth_has_one_node_per_box(spec, depth, tmp_path):
    net = load_spec(spec)
    root = svg_of(net, tmp_path, depth=depth)
    assert len(groups(root, "node")) == expected_boxes(net, depth)


def test_depth_0_draws_the_whole_network_as_one_box(tmp_path):
    net = load_spec(REPO / "specs" / "googlenet.arch")
    root = svg_of(net, tmp_path, depth=0)
    assert len(groups(root, "node")) == 1 and not groups(root, "edge") and not groups(root, "cluster")
    text = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "output aux1" in text and "output aux2" in text  # the box still names every output


def test_resnet152_depth_1_is_one_box_per_bottleneck(tmp_path):
    net = load_spec(REPO / "specs" / "resnet152.arch")
    view = build_view(net.layers, net.blocks, depth=1)
    bottlenecks = [b for b in view.boxes.values() if b.block is not None and b.block.name == "bottleneck"]
    assert len(bottlenecks) == 3 + 8 + 36 + 3
    assert len(view.boxes) < 60 and not view.clusters
    root = svg_of(net, tmp_path, depth=1)
    assert len(groups(root, "node")) == len(view.boxes)


def test_resnet152_full_depth_lays_out_fast_without_overlaps(tmp_path):
    net = load_spec(REPO / "specs" / "resnet152.arch")
    start = time.perf_counter()
    root = svg_of(net, tmp_path)
    elapsed = time.perf_counter() - start
    assert elapsed < 20, f"dot took {elapsed:.1f} s on ResNet-152"  # about 1 s on a laptop
    nodes = groups(root, "node")
    assert len(nodes) == len(net.layers) > 500
    assert overlapping([node_bounds(n) for n in nodes]) == []


# ---------------------------------------------------------------- golden .dot files


@pytest.mark.parametrize("name", ["lenet5", "inception_naive"])
def test_dot_source_matches_golden(name, tmp_path):
    """The .dot output is deterministic; ARCHDSL_UPDATE_GOLDEN=1 rewrites tests/golden/NAME.dot."""
    net = load_spec(REPO / "specs" / f"{name}.arch")
    written = render(net, tmp_path / f"{name}.dot").read_text(encoding="utf-8")
    golden = GOLDEN / f"{name}.dot"
    if os.environ.get("ARCHDSL_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(written, encoding="utf-8")
    assert golden.exists(), f"no {golden}; write it with ARCHDSL_UPDATE_GOLDEN=1"
    assert written == golden.read_text(encoding="utf-8"), f"{name}.dot changed; if on purpose, ARCHDSL_UPDATE_GOLDEN=1"


def test_dot_source_is_the_same_every_time():
    first = dot_source(archdsl.load(INCEPTION_SE))
    assert first == dot_source(archdsl.load(INCEPTION_SE))


# ---------------------------------------------------------------- what the diagram shows


def test_layer_node_shows_token_shape_and_params():
    source = dot_source(archdsl.load(RESNET))
    assert "<b>conv3-16</b>" in source
    assert "16x32x32 · 432 params" in source  # 3·3·3·16, no bias before bn
    assert "<b>conv3-c/s</b>" in source and "= conv3-32/2" in source  # a block's token, resolved
    assert 'label=" 16x32x32"' in edge_attrs(source, "conv1", "bn1")  # the tensor an edge carries
    assert 'label=<<table border="0"' in source and "mini_resnet" in source  # the title …
    assert "convolution" in source and "normalization" in source  # … with the legend


def test_residual_identity_skips_the_body_and_projection_shows_its_conv():
    source = dot_source(archdsl.load(RESNET))
    assert "dashed" in edge_attrs(source, "relu1", "basic1.add")  # the identity, around the body
    assert "dashed" not in edge_attrs(source, "basic1.bn2", "basic1.add")
    assert 'subgraph "cluster_basic2.shortcut"' in source
    assert "projection shortcut" in source and "<b>conv1-32/2</b>" in source


def test_identity_is_a_skip_even_when_the_block_starts_before_its_residual():
    net = archdsl.load("network t\ninput 8x8x8\nblock stage(c) = [conv3-c residual< conv3-c > relu]\nstage(8)\n")
    source = dot_source(net)
    assert "dashed" in edge_attrs(source, "stage1.conv1", "stage1.add")
    assert "dashed" not in edge_attrs(source, "stage1.conv2", "stage1.add")


def test_se_pass_through_is_a_skip():
    source = dot_source(archdsl.load(INCEPTION_SE))
    assert "dashed" in edge_attrs(source, "stage1.inception1.concat", "stage1.se1.scale")
    assert "dashed" not in edge_attrs(source, "stage1.se1.sigmoid", "stage1.se1.scale")


def test_inception_branches_are_clusters_side_by_side():
    net = archdsl.load(INCEPTION_SE)
    view = build_view(net.layers, net.blocks)
    branches = [c for c in view.clusters.values() if c.kind is BlockKind.BRANCH and c.parent == "stage1.inception1"]
    assert len(branches) == 3
    # The branches are siblings in their inception's cluster, so dot lays them out side by side.
    assert view.contents["stage1.inception1"][:3] == [b.id for b in branches]
    assert view.contents["stage1"] == ["stage1.inception1", "stage1.se1"]


def test_several_outputs_and_named_skips_are_marked():
    aux = dot_source(archdsl.load(AUX))
    assert aux.count("peripheries=2") == 2 and "output aux" in aux
    skips = dot_source(archdsl.load(SKIPS))
    edge = edge_attrs(skips, "enc1", "concat1")
    assert "@enc1 8x16x16" in edge and "dashed" in edge


def test_depth_counts_block_levels_not_branches():
    net = archdsl.load(INCEPTION_SE)
    whole = build_view(net.layers, net.blocks, depth=0)
    assert list(whole.boxes) == ["network"] and whole.edges == []
    top = build_view(net.layers, net.blocks, depth=1)
    assert [b for b in top.boxes if b in net.blocks] == ["stage1", "stage2"]
    assert [(e.tail, e.head) for e in top.edges] == [("input", "stage1"), ("stage1", "stage2"), ("stage2", "gap1"), ("gap1", "fc1")]
    # A stage (level 1) holds an inception and an se (level 2); the branches are no level.
    second = build_view(net.layers, net.blocks, depth=2)
    assert [b.id for b in second.boxes.values() if b.collapsed] == [
        "stage1.inception1", "stage1.se1", "stage2.inception1", "stage2.se1"
    ]
    assert list(second.clusters) == ["stage1", "stage2"]
    third = build_view(net.layers, net.blocks, depth=3)
    assert not any(b.collapsed for b in third.boxes.values())
    assert sum(c.kind is BlockKind.BRANCH for c in third.clusters.values()) == 6
    assert build_view(net.layers, net.blocks, depth=9).boxes.keys() == build_view(net.layers, net.blocks).boxes.keys()


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

