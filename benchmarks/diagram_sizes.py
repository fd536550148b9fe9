"""How big are the zoo's diagrams, every layer drawn (`--full`, as archdsl drew them before) and compact?

    python benchmarks/diagram_sizes.py [SPEC…]

For each spec, the size of the drawing Graphviz's dot lays out: the SVG's width and
height in points, and in pixels as `-o net.png` writes it (96 dpi), with the aspect
(height / width; a portrait page is 1.41). Three diagrams side by side: `--full`
(one box per layer, every edge its shape, one column: the diagrams before compact
ones), compact (the default: folded followers, auto-wrapped columns), and compact
left to right (`--rankdir LR`, auto-wrapped into rows).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import archdsl  # noqa: E402
from archdsl.render import to_digraph  # noqa: E402

DEFAULT = ["lenet5", "alexnet", "vgg16", "resnet18", "resnet50", "googlenet", "unet_small"]
CASES = {"--full": dict(full=True), "compact": {}, "compact LR": dict(rankdir="LR")}


def size(net, **options) -> tuple[float, float]:
    svg = to_digraph(net, **options).pipe(format="svg").decode()
    width, height = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups()
    return float(width), float(height)


def main(names: list[str]) -> None:
    print("| spec | diagram | boxes | SVG, pt | PNG, px | height / width |")
    print("|---|---|---:|---:|---:|---:|")
    for name in names:
        net = archdsl.load(REPO / "specs" / f"{name}.arch")
        for case, options in CASES.items():
            source = to_digraph(net, **options).source
            boxes = len(re.findall(r"^\t+\"?[\w.>#]+\"? \[label=<", source, re.M))
            width, height = size(net, **options)
            px = f"{round(width * 96 / 72)}×{round(height * 96 / 72)}"
            print(f"| {name} | {case} | {boxes} | {width:.0f}×{height:.0f} | {px} | {height / width:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
