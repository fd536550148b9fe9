"""A figure as a few primitives (polygons, lines, text), and the writers that put it on paper:
matplotlib for .svg, .pdf and .png, TikZ source (.tex) by hand.

Coordinates are in points (1/72 inch), y upwards, as both PDF and TikZ count them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import files
from .output import RenderError

FONT_PT = 8.0


@dataclass(frozen=True)
class Polygon:
    points: tuple[tuple[float, float], ...]
    fill: str  # "#rrggbb"
    stroke: str = "#34495e"
    width: float = 0.5
    role: str = ""  # what it is, for tests and TikZ comments: "face", "kernel"


@dataclass(frozen=True)
class Line:
    start: tuple[float, float]
    end: tuple[float, float]
    colour: str = "#566573"
    width: float = 0.4
    dashed: bool = False
    arrow: bool = False


@dataclass(frozen=True)
class Text:
    at: tuple[float, float]
    text: str
    size: float = FONT_PT
    anchor: str = "middle"  # start, middle or end, horizontally
    baseline: str = "bottom"  # bottom (text above `at`), top (below), center
    bold: bool = False
    colour: str = "#1c2833"


@dataclass
class Figure:
    items: list = field(default_factory=list)

    def add(self, item) -> None:
        self.items.append(item)

    def bounds(self, margin: float = 6) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) around everything, text estimated at 0.55 em a character."""
        xs, ys = [], []
        for item in self.items:
            if isinstance(item, Polygon):
                xs += [p[0] for p in item.points]
                ys += [p[1] for p in item.points]
            elif isinstance(item, Line):
                xs += [item.start[0], item.end[0]]
                ys += [item.start[1], item.end[1]]
            else:
                width = text_width(item.text, item.size, item.bold)
                left = {"start": 0, "middle": -width / 2, "end": -width}[item.anchor]
                low = {"bottom": 0, "top": -item.size, "center": -item.size / 2}[item.baseline]
                xs += [item.at[0] + left, item.at[0] + left + width]
                ys += [item.at[1] + low, item.at[1] + low + item.size]
        return min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin


def text_width(text: str, size: float, bold: bool = False) -> float:
    return len(text) * size * (0.6 if bold else 0.55)


# ---- matplotlib: .svg, .pdf, .png ----


def write_matplotlib(figure: Figure, path: Path, fmt: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        from matplotlib.patches import FancyArrowPatch
        from matplotlib.patches import Polygon as MplPolygon
    except ImportError:
        raise RenderError("--style blocks as .svg, .pdf or .png needs matplotlib: pip install matplotlib"
                          " (a .tex figure needs nothing)") from None
    x0, y0, x1, y1 = figure.bounds()
    width, height = (x1 - x0) / 72, (y1 - y0) / 72
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "archdsl", "pdf.fonttype": 42,
                                "font.family": "DejaVu Sans"}):
        fig = plt.figure(figsize=(width, height), dpi=150)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_axis_off()
        for z, item in enumerate(figure.items):
            if isinstance(item, Polygon):
                ax.add_patch(MplPolygon(item.points, closed=True, facecolor=item.fill, edgecolor=item.stroke,
                                        linewidth=item.width, joinstyle="round", zorder=z))
            elif isinstance(item, Line):
                if item.arrow:
                    ax.add_patch(FancyArrowPatch(item.start, item.end, arrowstyle="-|>", mutation_scale=6,
                                                 color=item.colour, linewidth=item.width * 2, zorder=z))
                else:
                    ax.plot(*zip(item.start, item.end), color=item.colour, linewidth=item.width,
                            linestyle=(0, (2, 1.5)) if item.dashed else "-", zorder=z)
            else:
                ax.text(*item.at, item.text, fontsize=item.size, ha={"start": "left", "middle": "center", "end": "right"}[item.anchor],
                        va=item.baseline if item.baseline != "center" else "center_baseline",
                        fontweight="bold" if item.bold else "normal", color=item.colour, zorder=z)
        files.save_figure(fig, path, format=fmt, metadata=_metadata(fmt))


def _metadata(fmt: str) -> dict:
    """No creation date in the file: the same spec gives the same figure."""
    return {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}.get(fmt, {})


# ---- TikZ ----

TIKZ_HEADER = """% {title}: drawn by archdsl (render --style blocks). Needs \\usepackage{{tikz}};
% put it in a figure with \\input{{{name}}}, or scale it with \\resizebox{{\\linewidth}}{{!}}{{\\input{{{name}}}}}.
"""


def tikz(figure: Figure, title: str, name: str) -> str:
    colours: dict[str, str] = {}

    def colour(hex_colour: str) -> str:
        if hex_colour not in colours:
            colours[hex_colour] = f"archdsl{len(colours) + 1}"
        return colours[hex_colour]

    body = []
    for item in figure.items:
        if isinstance(item, Polygon):
            path = " -- ".join(_pt(p) for p in item.points)
            body.append(f"\\filldraw[fill={colour(item.fill)}, draw={colour(item.stroke)}, line width={item.width:.2f}pt,"
                        f" line join=round] {path} -- cycle;")
        elif isinstance(item, Line):
            style = [f"draw={colour(item.colour)}", f"line width={item.width:.2f}pt"]
            if item.dashed:
                style.append("dash pattern=on 2pt off 1.5pt")
            if item.arrow:
                style.append("-stealth")
            body.append(f"\\draw[{', '.join(style)}] {_pt(item.start)} -- {_pt(item.end)};")
        else:
            anchor = {("start", "bottom"): "south west", ("middle", "bottom"): "south", ("end", "bottom"): "south east",
                      ("start", "top"): "north west", ("middle", "top"): "north", ("end", "top"): "north east",
                      ("start", "center"): "west", ("middle", "center"): "center", ("end", "center"): "east"}
            text = _tex_text(item.text)
            if item.bold:
                text = f"\\textbf{{{text}}}"
            body.append(f"\\node[anchor={anchor[(item.anchor, item.baseline)]}, inner sep=0pt, text={colour(item.colour)},"
                        f" font=\\fontsize{{{item.size:g}}}{{{item.size * 1.2:g}}}\\selectfont] at {_pt(item.at)} {{{text}}};")
    definitions = [f"\\definecolor{{{name_}}}{{HTML}}{{{hex_[1:].upper()}}}" for hex_, name_ in colours.items()]
    return (TIKZ_HEADER.format(title=title, name=name) + "\\begin{tikzpicture}[x=1pt, y=1pt]\n"
            + "".join(f"  {line}\n" for line in definitions + body) + "\\end{tikzpicture}\n")


def _pt(point: tuple[float, float]) -> str:
    return f"({point[0]:.2f},{point[1]:.2f})"


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "#": r"\#", "$": r"\$", "%": r"\%", "&": r"\&",
                "_": r"\_", "^": r"\^{}", "~": r"\~{}", "×": r"$\times$", "·": r"$\cdot$"}


def _tex_text(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(c, c) for c in text)
