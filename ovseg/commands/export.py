"""``ovseg export MODEL OUT.xml``: the slim export for serving (``raw_masks`` ``[S, 1, m, m]``)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_cache_option


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "export",
        help="write the slim export for serving: raw_masks with each slot's own class map (313 KB a frame, not 25 MB)",
        description="Write an IR whose graph gathers each slot's own class map into raw_masks [S,1,m,m] (the same "
        "port names, the other outputs unchanged), for OpenVINO Model Server, Triton or any KServe v2 server; ovseg "
        "decodes it to the same masks as the original. 0033 family only (the newer family's masks are already one "
        "per detection).",
    )
    parser.add_argument("model", metavar="MODEL", help="IR .xml (its .bin beside it), .onnx, or a catalogue name")
    parser.add_argument("output", metavar="OUT.xml", help="IR to write (.xml and .bin; its folder must exist)")
    add_cache_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import export_slim

    report = export_slim(args.model, args.output, cache=args.cache_dir)
    print(
        f"wrote {report.output} (and .bin): raw_masks {list(report.raw_masks_before)} -> {list(report.raw_masks_after)}, "
        f"{report.bytes_before / 1e6:.1f} MB -> {report.bytes_after / 1e3:.0f} KB a frame"
    )
    return 0
