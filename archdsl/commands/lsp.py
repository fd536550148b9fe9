"""`archdsl lsp`: the language server, on stdin and stdout, for editors (see docs/editors.md)."""
from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("lsp", help="run the language server on stdio (for editors: diagnostics, hover, completion)")
    # editors' clients add --stdio (vscode-languageclient does); stdio is the only transport
    p.add_argument("--stdio", action="store_true", help="talk over stdin and stdout (the default and only transport)")


def run(args) -> int:
    from archdsl.errors import ArchError

    try:
        from archdsl.lsp.server import main
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("pygls", "lsprotocol", "cattrs", "attrs"):
            raise ArchError(f"archdsl lsp needs {exc.name}: pip install 'archdsl[lsp]'") from None
        raise
    return main()
