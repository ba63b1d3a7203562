"""``ovseg models [--cache-dir DIR] [--json]``: the model catalogue and what is cached."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..catalog import PRECISIONS
from .common import add_cache_option


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "models",
        help="list the Open Model Zoo models ovseg knows and which are cached",
        description="List the catalogue: name, interface family, input size (HxW), the card's "
        "COCO box/mask AP, download size per precision, and the precisions in the cache. "
        "Fetch one with `ovseg fetch NAME`; use it with `--model NAME`.",
    )
    add_cache_option(parser)
    parser.add_argument("--json", action="store_true", help="print the listing as JSON")
    parser.set_defaults(func=run)


def _mb(size: int | None) -> str:
    if size is None:
        return "?"
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def _ap(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def run(args: argparse.Namespace) -> int:
    from ..cache import cache_dir, cached_precisions
    from ..catalog import load_catalog

    catalog = load_catalog()
    rows: list[dict[str, Any]] = []
    for entry in catalog:
        rows.append(
            {
                "name": entry.name,
                "family": entry.family,
                "input_hw": list(entry.input_hw),
                "resize": entry.resize,
                "box_ap": entry.box_ap,
                "mask_ap": entry.mask_ap,
                "size_bytes": {p: entry.size_bytes(p) for p in entry.precisions},
                "cached": list(cached_precisions(entry, args.cache_dir)),
                "readable": entry.readable,
                "replaced_by": entry.replaced_by,
            }
        )
    if args.json:
        print(json.dumps({"cache_dir": str(cache_dir(args.cache_dir)), "models": rows}, indent=1))
        return 0
    header = ["NAME", "FAMILY", "INPUT", "BOX AP", "MASK AP", *PRECISIONS, "CACHED"]
    table = [header]
    for row in rows:
        cached = ", ".join(row["cached"]) or "-"
        if not row["readable"]:
            cached = f"unreadable by OpenVINO >= 2022.1: use {row['replaced_by']}"
        table.append(
            [
                row["name"],
                row["family"],
                "x".join(map(str, row["input_hw"])),
                _ap(row["box_ap"]),
                _ap(row["mask_ap"]),
                *(_mb(row["size_bytes"][p]) if p in row["size_bytes"] else "-" for p in PRECISIONS),
                cached,
            ]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
    print(f"cache: {cache_dir(args.cache_dir)}  (box/mask AP: the card's COCO val2017 figures, %)")
    return 0
