"""`archdsl render SPEC -o FILE`: draw a network with Graphviz (svg, png, pdf, or .dot source)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEPTH_HELP = (
    "levels of blocks to draw, as du --max-depth counts folders: 1 draws the top-level layers and"
    " each top-level block (inception, residual, se, your own) as one box with its totals; 2 opens"
    " those blocks and shows the blocks inside them as boxes; 0 draws the whole network as one box."
    " An inception's branches and a residual's shortcut are parts of their block, not a level."
    " Default: everything open"
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "render",
        help="draw a network: svg, png, pdf (through Graphviz's dot) or .dot source",
        description="Draw a network as a graph: one box per layer (its token, output shape and"
        " parameters), edges labelled with the shapes they carry, blocks as clusters. The format"
        " comes from the output file's extension; .svg, .png and .pdf need Graphviz's `dot`"
        " program (apt-get install graphviz), .dot does not.",
    )
    p.add_argument("spec", metavar="SPEC", help="spec file (.arch)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the diagram: FILE.svg, .png, .pdf, or .dot/.gv (Graphviz source)")
    p.add_argument("--depth", type=int, metavar="N", help=DEPTH_HELP)
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB", type=str.upper, help="top to bottom (default) or left to right")
    p.add_argument("--strict", action="store_true", help="make warnings (a layer that doesn't fit) errors")


def run(args: argparse.Namespace) -> int:
    import archdsl
    from archdsl.render import render, RenderError, output_format

    if args.depth is not None and args.depth < 0:
        raise RenderError(f"--depth must be 0 or more (0: the whole network as one box). Received: --depth {args.depth}")
    output_format(Path(args.output))  # a bad extension fails before the spec is read
    net = archdsl.load(args.spec, strict=args.strict)
    for warning in net.warnings:
        print(warning.format(), file=sys.stderr)
    path = render(net, args.output, depth=args.depth, rankdir=args.rankdir)
    print(f"{path}: {net.name}, {len(net.layers) - 1} layers{'' if args.depth is None else f', depth {args.depth}'}")
    return 0
