"""`archdsl render SPEC -o FILE`: draw a network (svg, png, pdf, .dot source, the interactive
.html page, or with --style blocks the paper-style figure and its .tex)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEPTH_HELP = (
    "levels of blocks to draw, as du --max-depth counts folders: 1 draws the top-level layers and"
    " each top-level block (inception, residual, se, your own) as one box with its totals; 2 opens"
    " those blocks and shows the blocks inside them as boxes; 0 draws the whole network as one box."
    " An inception's branches, a residual's shortcut and a labelled stage are no level."
    " Default: everything open (an .html page opens at 1 for large networks)"
)


def wrap_count(text: str):
    """--wrap: 'auto' or a whole number ≥ 1 (argparse reports anything else as a usage error)."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of columns ≥ 1, or auto. Received: {text}")
    return value


def add_display_options(p) -> None:
    """What `render` and `view` share: the depth."""
    p.add_argument("spec", metavar="SPEC", help="spec file (.arch)")
    p.add_argument("--depth", type=int, metavar="N", help=DEPTH_HELP)
    p.add_argument("--strict", action="store_true", help="make warnings (a layer that doesn't fit) errors")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "render",
        help="draw a network: svg, png, pdf, .dot, an interactive .html page, or a paper-style figure",
        description="Draw a network. Compact by default: a layer's bn and activation fold into its box"
        " (conv3-64 · bn · relu), edges show a shape only where it changes, long networks wrap into"
        " columns; --full draws every layer. The format comes from the output file's extension: .svg,"
        " .png and .pdf need Graphviz's `dot` program (apt-get install graphviz), .dot does not; .html"
        " writes one self-contained page with pan, zoom and blocks that open on click (`archdsl view`"
        " opens it). --style blocks draws feature maps as 3-D boxes, as the AlexNet and VGG papers"
        " do (.svg, .pdf, .png, or .tex for TikZ).",
    )
    add_display_options(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="FILE.svg, .png, .pdf, .dot/.gv (Graphviz source), .html (interactive), or .tex (--style blocks)")
    p.add_argument("--full", action="store_true", help="every layer its own box, every edge its shape (no folding, no wrapping)")
    p.add_argument("--wrap", type=wrap_count, metavar="N",
                   help="cut the network into N columns (N rows with --rankdir LR); auto (the default when compact)"
                   " picks N for a page's proportions; 1: one column")
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB", type=str.upper, help="top to bottom (default) or left to right")
    p.add_argument("--block", metavar="NAME",
                   help="draw one block alone, its first call (its definition view: resolved tokens, and the"
                   " block's own spelling, conv3-c/s, under them)")
    p.add_argument("--style", choices=("graph", "blocks"), default="graph",
                   help="graph (default): boxes and arrows; blocks: feature maps as 3-D boxes, as in the papers")


def run(args: argparse.Namespace) -> int:
    import archdsl
    from archdsl.render import RenderError, output_format, render

    if args.depth is not None and args.depth < 0:
        raise RenderError(f"--depth must be 0 or more (0: the whole network as one box). Received: --depth {args.depth}")
    output_format(Path(args.output), args.style)  # a bad extension fails before the spec is read
    net = archdsl.load(args.spec, strict=args.strict)
    for warning in net.warnings:
        print(warning.format(), file=sys.stderr)
    path = render(net, args.output, depth=args.depth, rankdir=args.rankdir, full=args.full, wrap=args.wrap,
                  style=args.style, block=args.block)
    print(f"{path}: {net.name}, {len(net.layers) - 1} layers{'' if args.depth is None else f', depth {args.depth}'}")
    return 0
