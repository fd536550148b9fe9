"""One module per CLI command. Each has `add_parser(subparsers)` and `run(args) -> int`,
and imports its heavy dependencies (torch, tvm, graphviz) inside `run` only."""

COMMANDS = ("check", "compile", "train", "evaluate", "runs", "inspect", "embed", "tune", "run", "render", "view", "lsp", "fmt")
