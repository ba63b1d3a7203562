"""The ``ovseg`` command: a thin layer over the library, and the only place that prints.

Each subcommand lives in ``ovseg/commands/<name>.py`` with ``register(subparsers)``; this
module builds the parser, runs the chosen command and turns every :class:`OvsegError` into one
line on stderr and exit code 2 (never a traceback).
"""

from __future__ import annotations

import argparse
import difflib
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from ._version import __version__
from .commands import COMMANDS
from .errors import OvsegError

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" suggestions for mistyped subcommands and options."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # A suggestion only for what argparse did not know: a value outside an argument's choices
        # (the closest of those choices) or an unrecognized option (the closest option of the
        # command); none for a value that was wrong ("argument --http-port: expected a port ...").
        close: list[str] = []
        invalid = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if invalid:
            listed = [c.strip().strip("'\"") for c in invalid.group(2).split(",")]
            close = difflib.get_close_matches(invalid.group(1), listed, n=1, cutoff=0.6)
        elif message.startswith("unrecognized arguments"):
            options = [o for action in self._actions for o in action.option_strings]
            for action in self._actions:
                if isinstance(action, argparse._SubParsersAction):
                    # an option the command did not know is reported here, by the top parser
                    command = action.choices.get(getattr(self, "_command", None) or "")
                    if command is not None:
                        options += [o for a in command._actions for o in a.option_strings]
            for word in message.split(":", 1)[1].split():
                if word.startswith("-"):
                    close = difflib.get_close_matches(word.split("=", 1)[0], options, n=1, cutoff=0.6)
                    if close:
                        break
        if close:
            message += f" (did you mean {close[0]}?)"
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = super().parse_known_args(args, namespace)
        self._command = getattr(parsed, "command", None)  # for error(): the command's options
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ovseg",
        description="Instance segmentation with OpenVINO Open Model Zoo Mask R-CNN models "
        "(instance-segmentation-security-0033 / 0083 and family).",
    )
    parser.add_argument("--version", action="version", version=f"ovseg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what ovseg does")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input or failure, 130 ^C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="ovseg: %(levelname)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except OvsegError as error:
        print(f"ovseg: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file-system failure no command anticipated: still one line
        where = f" {error.filename}" if error.filename else ""
        print(f"ovseg: error:{where} {error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ovseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
