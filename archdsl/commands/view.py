"""`archdsl view SPEC`: write the network's interactive page and open it in the browser."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def add_parser(subparsers) -> None:
    from .render import add_display_options

    p = subparsers.add_parser(
        "view",
        help="explore a network in the browser: pan, zoom, open blocks, a layer's figures on hover",
        description="Write the network's interactive page (the same as `archdsl render SPEC -o net.html`:"
        " one self-contained file, nothing fetched when it is viewed) and open it in the web browser."
        " Click a grey block to open it, its frame to close it; point at a layer for its shape,"
        " parameters, MACs, receptive field and the spec line that wrote it.",
    )
    add_display_options(p)
    p.add_argument("-o", "--output", metavar="FILE.html",
                   help="where to write the page (default: a file in the system's temporary folder)")
    p.add_argument("--no-open", action="store_true", help="write the page and print its path, without opening it")


def run(args: argparse.Namespace) -> int:
    import webbrowser

    import archdsl
    from archdsl.render import RenderError, render

    if args.output is not None and not args.output.lower().endswith(".html"):
        raise RenderError(f"archdsl view writes an .html page. Received: -o {args.output}")
    if args.depth is not None and args.depth < 1:
        raise RenderError(f"the page opens at --depth 1 or more (blocks open on click). Received: --depth {args.depth}")
    net = archdsl.load(args.spec, strict=args.strict)
    for warning in net.warnings:
        print(warning.format(), file=sys.stderr)
    if args.output is None:
        folder = Path(tempfile.gettempdir()) / "archdsl-view"
        path = folder / f"{net.name}.html"
    else:
        path = Path(args.output)
    render(net, path, depth=args.depth)
    print(f"{path}: {net.name}, {len(net.layers) - 1} layers")
    if args.no_open:
        return 0
    if not webbrowser.open(path.resolve().as_uri()):
        print(f"no web browser found here: open {path} in one", file=sys.stderr)
    return 0
