"""``ovseg fetch NAME... [--precision P] [--cache-dir DIR] [--mirror URL]``: download models."""

from __future__ import annotations

import argparse
from typing import Any

from ..catalog import DEFAULT_PRECISION, PRECISIONS
from .common import add_cache_option


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "fetch",
        help="download a catalogue model into the cache (verified by size and hash)",
        description="Download one precision of catalogue models (see `ovseg models`) into the "
        "model cache, checking size and hash; an interrupted download resumes when run again. "
        "Then use the name wherever a model is expected: `ovseg predict --model NAME ...`.",
    )
    parser.add_argument(
        "names", nargs="+", metavar="NAME", help="catalogue name, e.g. instance-segmentation-security-0083"
    )
    parser.add_argument(
        "-p", "--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
        help=f"which files (default {DEFAULT_PRECISION})",
    )
    add_cache_option(parser)
    parser.add_argument(
        "--mirror", metavar="URL",
        help="replace scheme and host of every URL, keeping the path (default $OVSEG_MIRROR)",
    )
    parser.add_argument("--force", action="store_true", help="download again even when cached")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog import load_catalog
    from ..download import fetch

    catalog = load_catalog()
    for name in args.names:
        catalog.get(name)  # every name checked before anything is downloaded
    for name in args.names:
        xml = fetch(
            name,
            args.precision,
            cache=args.cache_dir,
            mirror=args.mirror,
            catalog=catalog,
            force=args.force,
            progress=not args.quiet,
        )
        print(f"{name} {args.precision}: {xml}")
    return 0
