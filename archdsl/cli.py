"""The `archdsl` command. Exit codes: 0 fine, 1 an error in the spec or data, 2 a usage error."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .commands import COMMANDS


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `only`, just that command's (the others' modules stay unimported)."""
    parser = argparse.ArgumentParser(
        prog="archdsl",
        description="Write a convolutional network as the papers do; check, compile, train, tune and draw it.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"archdsl {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS if only is None else (only,):
        try:
            module = importlib.import_module(f"archdsl.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"archdsl.commands.{name}":
                raise
            continue  # a command whose module is not there yet
        module.add_parser(subparsers)
    return parser


def _unraisable(hook_args) -> None:
    """An error Python can only ignore (raised in a __del__), as one line, not a traceback.

    A loader worker killed while torch forks the others leaves a half-built iterator whose
    __del__ fails when the error being reported lets it go; the command has already said
    what went wrong. ARCHDSL_DEBUG=1 shows Python's own report.
    """
    if os.environ.get("ARCHDSL_DEBUG"):
        sys.__unraisablehook__(hook_args)
        return
    where = f" in {getattr(hook_args.object, '__qualname__', type(hook_args.object).__name__)}" \
        if hook_args.object is not None else ""
    print(f"archdsl: ignored while cleaning up{where}: {hook_args.exc_type.__name__}: {hook_args.exc_value}",
          file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    previous, sys.unraisablehook = sys.unraisablehook, _unraisable
    try:
        return _main(argv)
    finally:
        sys.unraisablehook = previous


def _main(argv: list[str] | None) -> int:
    try:
        code = _run(argv)
        if not sys.stdout.closed:  # the language server closes it when its client goes
            sys.stdout.flush()  # here, where a closed pipe can still be handled
    except BrokenPipeError:
        # `archdsl check *.arch | head -2`: the reader has what it wanted. Nothing more can be
        # shown, and Python's own flush at exit must not complain about it either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


def _run(argv: list[str] | None) -> int:
    from .errors import ArchError
    from .files import os_error

    argv = sys.argv[1:] if argv is None else list(argv)
    # `archdsl check …` builds only check's parser: importing every command's module
    # would slow the check down, and some of them pull in their backends.
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS else None)
    args = parser.parse_args(argv)
    module = importlib.import_module(f"archdsl.commands.{args.command}")
    try:
        return module.run(args) or 0
    except ArchError as err:
        print(err.format(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("archdsl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise
    except OSError as exc:  # the file system's refusal (a full disk, a read-only folder), not a bug
        where = exc.filename if exc.filename is not None else "a file"
        print(f"error: {os_error(exc, where, writing=None).message}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory; a smaller batch, input or network needs less", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug in archdsl, not in the user's spec
        if os.environ.get("ARCHDSL_DEBUG"):
            raise
        print(
            f"archdsl: internal error: {type(exc).__name__}: {exc}\n"
            "(this is a bug in archdsl; set ARCHDSL_DEBUG=1 for the traceback and please report it)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
