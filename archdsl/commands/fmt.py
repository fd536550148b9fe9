"""`archdsl fmt [--check] FILE…`: lay specs out one way, comments kept (see archdsl/formatter.py)."""
from __future__ import annotations

import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("fmt", help="format spec files in place (spacing, case, comment alignment)")
    p.add_argument("files", nargs="+", metavar="FILE", help="spec file(s) (.arch); - reads stdin and writes stdout")
    p.add_argument("--check", action="store_true",
                   help="change nothing; exit 1 when a file would change (for CI)")


def run(args) -> int:
    from archdsl.errors import ArchError
    from archdsl.files import write_text
    from archdsl.formatter import format_text
    from archdsl.loader import read_source

    status = 0
    for name in args.files:
        try:
            if name == "-":
                text = sys.stdin.read()
                formatted = format_text(text, "<stdin>")
                if args.check:
                    status |= formatted != text
                else:
                    sys.stdout.write(formatted)
                continue
            path = Path(name)
            text = read_source(path).text
            formatted = format_text(text, name, path.resolve())
            if formatted == text:
                continue
            if args.check:
                print(f"would reformat {name}", file=sys.stderr)
                status = 1
                continue
            write_text(path, formatted)  # in one step: an interrupted write never leaves half a spec
            print(f"reformatted {name}", file=sys.stderr)
        except ArchError as err:
            print(err.format(), file=sys.stderr)
            status = 1
    return status
