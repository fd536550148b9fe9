"""`render --style blocks`: the papers' 3-D feature maps, as matplotlib writes them (.svg, .pdf,
.png) and as TikZ source that LaTeX compiles."""
from __future__ import annotations

import math
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import archdsl
from archdsl.cli import main
from archdsl.render import RenderError, render
from archdsl.render.blocks import OBLIQUE, figure, geometry, steps
from archdsl.render.drawing import Polygon, Text

REPO = Path(__file__).resolve().parents[1]


def load(name: str):
    return archdsl.load(REPO / "specs" / f"{name}.arch")


def boxes_of(fig) -> list[tuple[float, float, float]]:
    """(thickness, height, depth) of every box drawn, from its three faces (front, top, side)."""
    faces = [item for item in fig.items if isinstance(item, Polygon) and item.role == "face"]
    found = []
    for front, top, _ in zip(faces[0::3], faces[1::3], faces[2::3]):
        (x0, y0), (x1, _), (_, y2), _ = front.points
        depth = (top.points[2][0] - top.points[1][0]) / OBLIQUE[0]
        found.append((round(x1 - x0, 3), round(y2 - y0, 3), round(depth, 3)))
    return found


def texts(fig) -> list[str]:
    return [item.text for item in fig.items if isinstance(item, Text)]


def test_vgg16_is_its_maps_with_one_caption_per_run_of_alike_layers():
    net = load("vgg16")
    found = steps(net, None)
    captions = [(" / ".join(s.lines), s.count) for s in found]
    assert captions == [
        ("input", 1), ("conv3-64 · relu", 2), ("maxpool", 1), ("conv3-128 · relu", 2), ("maxpool", 1),
        ("conv3-256 · relu", 3), ("maxpool", 1), ("conv3-512 · relu", 3), ("maxpool", 1), ("conv3-512 · relu", 3),
        ("maxpool", 1), ("FC-4096 · relu · dropout(0.5)", 2), ("FC-1000 · soft-max", 1)]
    fig = figure(net)
    assert len(boxes_of(fig)) == sum(count for _, count in captions) == 22  # every map, the input's too
    assert "conv3-64 · relu ×2" in texts(fig) and "224" in texts(fig) and "4096" in texts(fig)


def test_sides_follow_the_map_on_a_log_scale():
    boxes = boxes_of(figure(load("vgg16")))
    heights = {}
    for (thickness, height, depth), step_shape in zip(boxes, [s.shape for s in steps(load("vgg16"), None)
                                                                for _ in range(s.count)]):
        assert (thickness, height, depth) == tuple(round(v, 3) for v in geometry(step_shape))
        if len(step_shape) == 3:
            heights[step_shape[1]] = height
    # halving the map takes the same off its side each time: 224 → 112 → 56 → 28 → 14 → 7
    steps_down = [heights[n] - heights[n // 2] for n in (224, 112, 56, 28, 14)]
    assert max(steps_down) - min(steps_down) < 1e-6 and steps_down[0] > 0
    assert geometry((512, 7, 7))[0] > geometry((64, 7, 7))[0]  # more channels, a thicker box
    assert geometry((4096,))[1] > geometry((1000,))[1]  # a vector is a bar as tall as its length's log


def test_alexnet_draws_each_window_on_the_map_it_slides_over():
    net = load("alexnet")
    fig = figure(net)
    kernels = [item for item in fig.items if isinstance(item, Polygon) and item.role == "kernel"]
    windowed = [s for s in steps(net, None) if s.kernel is not None]
    # 5 convolutions (conv3-384 twice, drawn ×2 with one window) and 3 poolings; no window over a vector
    assert len(kernels) == len(windowed) == 7
    # conv11-96/4 slides 11 of 227: its window is 11/227 of the input's side (8 % at least, to be seen),
    # drawn on the input's box
    first = kernels[0]
    input_box = boxes_of(fig)[0]
    height = first.points[3][1] - first.points[0][1]  # its upright edge, on the map's height × width face
    assert math.isclose(height, max(11 / 227, 0.08) * input_box[1], rel_tol=1e-6)
    conv2, pooled = kernels[2], boxes_of(fig)[2]  # conv5-256 over the pooled 27x27 map: 5/27 of its side
    assert math.isclose(conv2.points[3][1] - conv2.points[0][1], 5 / 27 * pooled[1], rel_tol=1e-6)
    assert "conv11-96/4(pad=valid) · relu" in texts(fig)


def test_resnet_stages_and_googlenet_modules_are_named_as_in_the_papers():
    resnet = texts(figure(load("resnet50")))
    assert all(stage in resnet for stage in ("conv2_x", "conv3_x", "conv4_x", "conv5_x"))
    google = texts(figure(load("googlenet")))
    assert "inception (3a)" in google and "inception (5b)" in google
    assert not any("auxiliary" in t for t in google)  # side heads are not on the main path


@pytest.mark.parametrize("suffix", [".svg", ".pdf", ".png", ".tex"])
def test_every_format_is_written_and_the_same_every_time(suffix, tmp_path):
    net = load("alexnet")
    first = render(net, tmp_path / "a" / f"alexnet{suffix}", style="blocks").read_bytes()
    assert first == render(net, tmp_path / "b" / f"alexnet{suffix}", style="blocks").read_bytes()
    if suffix == ".svg":
        root = ET.fromstring(first)
        words = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
        assert "conv5-256 · relu" in words and "227" in words  # text kept as text
    elif suffix == ".pdf":
        assert first.startswith(b"%PDF-")
    elif suffix == ".png":
        assert first.startswith(b"\x89PNG")
    else:
        assert first.decode().count("\\begin{tikzpicture}") == 1


def test_the_tikz_figure_compiles_with_latex(tmp_path):
    latex = shutil.which("pdflatex")
    if latex is None:
        pytest.skip("no pdflatex (`make system-deps` installs texlive-latex-base and texlive-pictures)")
    for name in ("alexnet", "resnet50"):
        render(load(name), tmp_path / f"{name}.tex", style="blocks")
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\\usepackage{tikz}\\begin{document}\n"
        "\\noindent\\resizebox{\\linewidth}{!}{\\input{alexnet}}\n\n\\noindent\\resizebox{\\linewidth}{!}{\\input{resnet50}}\n"
        "\\end{document}\n")
    done = subprocess.run([latex, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "paper.pdf").read_bytes().startswith(b"%PDF-")
    assert "Overfull" not in done.stdout and "Undefined" not in done.stdout


def test_bad_formats_and_styles(tmp_path, capsys):
    net = load("lenet5")
    with pytest.raises(RenderError, match="paper-style figure's .*expected one of .pdf, .png, .svg, .tex"):
        render(net, tmp_path / "x.html", style="blocks")
    with pytest.raises(RenderError, match="style must be graph or blocks"):
        render(net, tmp_path / "x.svg", style="cubes")
    spec = str(REPO / "specs" / "lenet5.arch")
    with pytest.raises(SystemExit) as info:
        main(["render", spec, "-o", str(tmp_path / "x.svg"), "--style", "cubes"])
    assert info.value.code == 2 and "invalid choice: 'cubes'" in capsys.readouterr().err
