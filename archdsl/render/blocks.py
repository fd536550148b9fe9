"""The paper-style figure (`--style blocks`): feature maps as 3-D boxes, as the AlexNet and VGG
figures draw them.

Each feature map along the network's main path (its input to its main output) is a
box: its height follows the map's height, its depth (drawn obliquely) the map's width,
its thickness the channels, each on a log scale so that 224 and 7 both stay visible. A
vector (after an fc) is a tall thin bar. The layer that makes a map is written above it
(`conv11-96/4 · relu`, or the spec's label), its sizes along its edges; a convolution's
or a pooling's window is drawn on the map it slides over, with the lines that project
it onto the next map. Maps of one stage, or repeated alike, stand side by side.

What to draw comes from the compact view (`collapse.build_view`), at depth 1 unless a
depth is given, so a GoogLeNet is its inception modules and a ResNet its blocks;
side branches (auxiliary heads) are left out, as in the papers' figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .. import files
from ..network import Network
from ..shapes import Shape
from . import labels, style
from .collapse import Box, View, build_view
from .drawing import FONT_PT, Figure, Line, Polygon, Text, text_width, tikz, write_matplotlib

# Sizes in points: a side of n pixels is A + B·log2(n) long.
SIDE = (6.0, 9.0)
THICKNESS = (2.0, 3.2)
BAR_WIDTH = 5.0
OBLIQUE = (0.45, 0.32)  # how far one point of depth moves right and up
GAP = 16.0  # between maps
MIN_WINDOW = 0.08  # a window is drawn at least this fraction of its map's side, to be seen
TOUCH = 3.0  # between the maps of one stage
DIM_PT = 6.0


@dataclass
class Step:
    """One feature map: the box that makes it, its shape, and what is written above it."""

    box: Box | None  # None: the network's input
    shape: Shape
    lines: list[str]  # the caption, top line first
    bold: bool  # whether the first line is a label
    kernel: tuple[int, ...] | None  # the window that slid over the previous map, where one did
    colour: str
    group: str | None  # steps of one group stand side by side
    count: int = 1


def log_side(n: int, scale=SIDE) -> float:
    return scale[0] + scale[1] * math.log2(max(n, 1))


def main_path(view: View, net: Network) -> list[str]:
    """The boxes from the input to the main output, through the longest way (a residual's body, not its skip)."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from([*view.boxes, *view.points])
    graph.add_edges_from((e.tail, e.head) for e in view.edges)
    where = {layer.name: box.id for box in view.boxes.values() for layer in box.layers}
    start, end = where[net.graph.input], where[net.output_nodes["output"]]
    best: dict[str, tuple[int, str | None]] = {start: (0, None)}
    for item in nx.topological_sort(graph):
        if item not in best:
            continue
        for after in graph.successors(item):
            if after not in best or best[after][0] < best[item][0] + 1:
                best[after] = (best[item][0] + 1, item)
    path, at = [], end
    while at is not None:
        path.append(at)
        at = best[at][1]
    return [item for item in reversed(path) if item in view.boxes]


def steps(net: Network, depth: int | None) -> list[Step]:
    view = build_view(net.graph, 1 if depth is None else depth, compact=True)
    hierarchy = view.hierarchy
    found: list[Step] = []
    for box_id in main_path(view, net):
        box = view.boxes[box_id]
        shape = box.layers[-1].shape
        if box.collapsed:
            label = hierarchy.label(box_id) if box.block else None
            title = labels.written(box.block) if box.block else net.name
            lines, bold = ([label, title] if label else [title]), bool(label)
            kernel = None
        elif box.head.name == net.graph.input:
            lines, bold, kernel = ["input"], False, None
        else:
            label = hierarchy.label(box_id)
            tokens = [labels.resolved(layer) for layer in box.layers]
            lines, bold = ([label] if label else []) + [" · ".join(tokens)], bool(label)
            kernel = _kernel(net, box)
        colour = style.COLLAPSED_COLOUR if box.collapsed else style.kind_colour(box.head.op.kind)
        step = Step(box, shape, lines, bold, kernel, colour, _group(view, box_id))
        previous = found[-1] if found else None
        keeps_map = step.kernel is None and not box.collapsed and not any(layer.params for layer in box.layers)
        if previous is not None and keeps_map and step.shape == previous.shape and previous.box is not None:
            previous.lines[-1] += " · " + step.lines[-1]  # a map the layer leaves as it was: one caption
            continue
        if previous is not None and previous.lines == step.lines and previous.shape == step.shape \
                and previous.kernel == step.kernel and previous.box is not None:
            previous.count += 1  # the same layer again: drawn once more, captioned once
            continue
        found.append(step)
    return found


def _kernel(net: Network, box: Box) -> tuple[int, ...] | None:
    """The window of the box's first layer, where it is smaller than the map it slides over."""
    head = box.head
    inputs = tuple(net.layer(name).shape for name in head.inputs)
    window = head.op.window(inputs) if inputs else None
    if window is None or not inputs or tuple(window.kernel) == tuple(inputs[0][1:]):
        return None
    return tuple(window.kernel)


def _group(view: View, box_id: str) -> str | None:
    """The stage a box stands in, if any: its maps are drawn side by side."""
    for frame in view.frames_around(box_id):
        if frame in view.hierarchy.graph.stages:
            return frame
    return None


@dataclass
class Cuboid:
    x: float
    y: float  # bottom of the front face
    thickness: float
    height: float
    depth: float

    @property
    def dx(self) -> float:
        return self.depth * OBLIQUE[0]

    @property
    def dy(self) -> float:
        return self.depth * OBLIQUE[1]

    @property
    def right(self) -> float:
        return self.x + self.thickness + self.dx

    @property
    def top(self) -> float:
        return self.y + self.height + self.dy

    def side_point(self, u: float, v: float) -> tuple[float, float]:
        """A point of the right-hand face (the map's height × width): u along the depth, v up, both 0…1."""
        return (self.x + self.thickness + u * self.dx, self.y + u * self.dy + v * self.height)


def geometry(shape: Shape) -> tuple[float, float, float]:
    """(thickness, height, depth) of a map's box, in points."""
    channels, spatial = shape[0], shape[1:]
    if not spatial:
        return BAR_WIDTH, log_side(channels), BAR_WIDTH
    height = log_side(spatial[-2] if len(spatial) >= 2 else spatial[-1])
    depth = log_side(spatial[-1]) if len(spatial) >= 2 else BAR_WIDTH
    return log_side(channels, THICKNESS), height, depth


def figure(net: Network, depth: int | None = None) -> Figure:
    found = steps(net, depth)
    fig = Figure()
    x = 0.0
    cuboids: list[Cuboid] = []
    for i, step in enumerate(found):
        thickness, height, deep = geometry(step.shape)
        dx, dy = deep * OBLIQUE[0], deep * OBLIQUE[1]
        caption = step.lines[:-1] + [step.lines[-1] + (f" ×{step.count}" if step.count > 1 else "")]
        width = max(thickness * step.count + TOUCH * (step.count - 1) + dx,
                    max(text_width(line, FONT_PT, step.bold and k == 0) for k, line in enumerate(caption)))
        together = i > 0 and step.group is not None and step.group == found[i - 1].group
        if i:
            x += TOUCH if together else GAP
        left = x + (width - (thickness * step.count + TOUCH * (step.count - 1) + dx)) / 2
        drawn = [Cuboid(left + n * (thickness + TOUCH), -(height + dy) / 2, thickness, height, deep)
                 for n in range(step.count)]
        for cuboid in drawn:
            _draw_cuboid(fig, cuboid, step.colour)
        cuboids.append((drawn[0], drawn[-1]))
        _dimensions(fig, drawn[0], drawn[-1], step.shape)
        cuboid = drawn[-1]
        top = cuboid.top + 4
        for k, line in enumerate(reversed(caption)):
            first = k == len(caption) - 1
            fig.add(Text((x + width / 2, top + k * (FONT_PT + 2)), line, FONT_PT + (1 if first and step.bold else 0),
                         bold=first and step.bold))
        if i and step.kernel is not None and len(found[i - 1].shape) > 1:
            _kernel_cone(fig, cuboids[-2][1], drawn[0], found[i - 1].shape, step.kernel)
        elif i and not together:
            fig.add(Line((cuboids[-2][1].right + 1.5, 0.0), (drawn[0].x - 1.5, 0.0), arrow=True))
        x += width
    for group in {step.group for step in found if step.group}:
        _stage_caption(fig, net, group, [c for pair, s in zip(cuboids, found) if s.group == group for c in pair])
    return fig


def _draw_cuboid(fig: Figure, c: Cuboid, colour: str) -> None:
    x, y, t, h = c.x, c.y, c.thickness, c.height
    fig.add(Polygon(((x, y), (x + t, y), (x + t, y + h), (x, y + h)), colour, role="face"))
    fig.add(Polygon(((x, y + h), (x + t, y + h), (x + t + c.dx, y + h + c.dy), (x + c.dx, y + h + c.dy)),
                    _shade(colour, 1.12), role="face"))
    fig.add(Polygon(((x + t, y), (x + t + c.dx, y + c.dy), (x + t + c.dx, y + h + c.dy), (x + t, y + h)),
                    _shade(colour, 0.85), role="face"))


def _dimensions(fig: Figure, first: Cuboid, c: Cuboid, shape: Shape) -> None:
    """The map's sizes along its edges: channels under the front, height beside it, width along the side."""
    grey = "#566573"
    fig.add(Text((c.x + c.thickness / 2, c.y - 2), str(shape[0]), DIM_PT, baseline="top", colour=grey))
    if len(shape) > 1:
        fig.add(Text((first.x - 1.5, first.y + first.height / 2), str(shape[-2] if len(shape) > 2 else shape[-1]),
                     DIM_PT, anchor="end", baseline="center", colour=grey))
    if len(shape) > 2:
        fig.add(Text((c.x + c.thickness + c.dx / 2 + 2, c.y + c.dy / 2 - 1), str(shape[-1]), DIM_PT,
                     anchor="start", baseline="top", colour=grey))


def _kernel_cone(fig: Figure, before: Cuboid, after: Cuboid, shape: Shape, kernel: tuple[int, ...]) -> None:
    """The window on the previous map's face, and the lines that project it onto the next map."""
    spatial = shape[1:]
    kh = kernel[-2] if len(kernel) >= 2 else kernel[-1]
    kw = kernel[-1]
    h = max(kh / (spatial[-2] if len(spatial) >= 2 else spatial[-1]), MIN_WINDOW)
    w = max(kw / spatial[-1], MIN_WINDOW) if len(spatial) >= 2 else 0.5
    u0, v0 = 0.5 - w / 2, 0.5 - h / 2
    corners = [before.side_point(u0, v0), before.side_point(u0 + w, v0), before.side_point(u0 + w, v0 + h),
               before.side_point(u0, v0 + h)]
    fig.add(Polygon(tuple(corners), "#f5cba7", stroke="#a04000", width=0.6, role="kernel"))
    target = after.side_point(0.5, 0.5) if after.depth > BAR_WIDTH else (after.x, after.y + after.height / 2)
    for corner in (corners[2], corners[1]):
        fig.add(Line(corner, target, colour="#a04000", width=0.35, dashed=True))


def _stage_caption(fig: Figure, net: Network, group: str, members: list[Cuboid]) -> None:
    """A stage's label under its maps, with a bracket."""
    left = min(c.x for c in members)
    right = max(c.right for c in members)
    bottom = min(c.y for c in members) - 12
    fig.add(Line((left, bottom), (right, bottom), colour="#7b7d7d", width=0.6))
    label = net.graph.stages[group].label
    fig.add(Text(((left + right) / 2, bottom - 2), label, FONT_PT, baseline="top", bold=True))


def _shade(hex_colour: str, factor: float) -> str:
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    shaded = [min(255, round(c * factor)) if factor < 1 else round(c + (255 - c) * (factor - 1) * 2) for c in rgb]
    return "#" + "".join(f"{min(255, max(0, c)):02x}" for c in shaded)


def write_figure(net: Network, path: Path, fmt: str, depth: int | None = None) -> None:
    fig = figure(net, depth)
    if fmt == "tex":
        files.write_text(path, tikz(fig, net.name, path.stem))
        return
    write_matplotlib(fig, path, fmt)
