"""Argument types the commands share (not a command itself)."""
from __future__ import annotations

import argparse


def boolean(text: str) -> bool:
    """`--strict false`: true/false (also yes/no, 1/0)."""
    if text.lower() in ("true", "yes", "1"):
        return True
    if text.lower() in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
