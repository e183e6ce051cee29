"""The ``modal-noisy`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from modal_noisy import __version__

    parser = argparse.ArgumentParser(
        prog="modal-noisy",
        description="Find and fix wrong labels in class-imbalanced image data (co-teaching with "
        "Variance of Gradients, then active label cleaning with an expert in the loop).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
