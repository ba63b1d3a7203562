"""``ovseg predict IMAGE_OR_DIR... --model M [-o DIR]``: an overlay PNG and a JSON per image."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ImageError, OvsegError
from ..options import DEFAULT_PASTE, PASTE_MODES
from .common import add_model_options, expand_inputs, segmenter_from_args

if TYPE_CHECKING:
    from ..result import Result


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "predict",
        help="segment images: an overlay PNG and a JSON per image",
        description="Segment images and write, per image, DIR/NAME.png (the overlay) and "
        "DIR/NAME.json (instances with COCO RLE masks).",
    )
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or directories of images")
    add_model_options(parser)
    parser.add_argument("-o", "--output", default="out", metavar="DIR", help="output directory (default ./out)")
    parser.add_argument(
        "--paste", choices=PASTE_MODES, default=DEFAULT_PASTE, help=f"mask paste algorithm (default {DEFAULT_PASTE})"
    )
    parser.set_defaults(func=run)


def result_json(result: Result, image: str, model: str, device: str) -> dict[str, Any]:
    """The per-image JSON document (boxes in original pixels, COCO ids, RLE masks)."""
    height, width = result.image_hw
    return {
        "image": image,
        "height": height,
        "width": width,
        "model": model,
        "device": device,
        "speed_ms": {k: round(v, 2) for k, v in result.speed_ms.items()},
        "instances": result.to_records(),
    }


def _write_png(path: Path, image: Any) -> None:
    import cv2

    if not cv2.imwrite(str(path), image):
        raise OvsegError(f"cannot write {path}")


def _summary(result: Result) -> str:
    """'3 instance(s) (person 0.97, car 0.88, dog 0.51)', at most five named."""
    if not len(result):
        return "0 instance(s)"
    named = [f"{label} {score:.2f}" for label, score in zip(result.labels[:5], result.scores[:5].tolist(), strict=True)]
    more = [f"+{len(result) - 5} more"] if len(result) > 5 else []
    return f"{len(result)} instance(s) ({', '.join(named + more)})"


def run(args: argparse.Namespace) -> int:
    from ..draw import Overlay
    from ..files import atomic_write
    from ..images import read_image

    inputs = list(expand_inputs(args.inputs))
    if not inputs:
        raise ImageError(f"expected image files or directories with images, got none in {args.inputs}")
    segmenter = segmenter_from_args(args, paste=args.paste)
    overlay = Overlay()
    out_dir = Path(args.output)
    failed: list[str] = []
    used: set[str] = set()
    for path in inputs:
        try:
            image = read_image(path)
            result = segmenter(image)
        except ImageError as error:
            print(f"ovseg: error: {error}", file=sys.stderr)
            failed.append(str(path))
            continue
        stem = path.stem
        n = 2
        while stem in used:  # two inputs with one name, from different folders
            stem, n = f"{path.stem}-{n}", n + 1
        used.add(stem)
        png, doc = out_dir / f"{stem}.png", out_dir / f"{stem}.json"
        drawn = overlay(image, result)
        text = json.dumps(result_json(result, str(path), str(args.model), args.device)) + "\n"
        atomic_write(png, functools.partial(_write_png, image=drawn))
        atomic_write(doc, functools.partial(Path.write_text, data=text))
        print(f"{path}: {_summary(result)} -> {png}, {doc} [{sum(result.speed_ms.values()):.0f} ms]")
    if failed:
        shown = ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else "")
        print(f"ovseg: {len(failed)} of {len(inputs)} input(s) failed: {shown}", file=sys.stderr)
        return 2
    return 0
