"""``ovseg quantize MODEL --calib DIR [--annotations JSON] -o OUT.xml``: an INT8 IR with NNCF."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from ..options import IGNORED_SCOPES, QUANTIZE_INSTALL_HINT
from .common import bounded_float_arg, positive_int_arg

#: argparse type: AP points, e.g. ``--max-drop 1.0``.
_points = bounded_float_arg(0.0, 100.0, "AP points")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "quantize",
        help=f"INT8 IR by post-training quantization on real images (NNCF: {QUANTIZE_INSTALL_HINT})",
        description="Calibrate on the images of a folder (preprocessed exactly as ovseg runs the model) and "
        "write an INT8 IR with NNCF. The last weighted layer of each head stays in float unless "
        "--ignored-scope none. With --annotations, NNCF's accuracy control keeps more ops in float until "
        "neither box nor mask AP on the folder's annotated images falls by more than --max-drop points.",
    )
    parser.add_argument("model", metavar="MODEL", help="float IR .xml (its .bin beside it), .onnx, or a catalogue name")
    parser.add_argument("--calib", required=True, metavar="DIR", help="folder of calibration images")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.xml", help="INT8 IR to write (its folder must exist)")
    parser.add_argument(
        "--annotations", metavar="JSON",
        help="COCO instances of (some of) the calibration images: turns on the accuracy control",
    )
    parser.add_argument(
        "--max-drop", type=_points, default=1.0, metavar="AP",
        help="accuracy control: largest allowed drop, AP points, box and mask each (default 1.0)",
    )
    parser.add_argument(
        "--ignored-scope", choices=IGNORED_SCOPES, default="heads",
        help="heads (default): keep the last weighted layer of every head in float; none: quantize all",
    )
    parser.add_argument(
        "--subset-size", type=positive_int_arg, default=300, metavar="N",
        help="calibration images used, at most (default 300)",
    )
    parser.add_argument(
        "--preset", choices=("performance", "mixed"), default="mixed",
        help="NNCF preset: mixed (default; asymmetric activations, for SiLU / Swish networks too) or performance (symmetric)",
    )
    parser.add_argument(
        "--resize", choices=("fit", "stretch"), default="fit",
        help="preprocessing of the calibration images (default fit: the 0033 family's)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..evaluation import load_annotations
    from ..quantize import calibration_images, quantize_model

    images = calibration_images(args.calib)
    annotations, validation = None, []
    if args.annotations:
        annotations = load_annotations(args.annotations)
        by_name = {path.name: path for path in images}
        validation = sorted(
            (int(entry["id"]), by_name[Path(entry["file_name"]).name])
            for entry in annotations.dataset["images"]
            if Path(entry["file_name"]).name in by_name
        )
        if not validation:
            raise DatasetError(f"expected annotations of images in {args.calib}, got none of its {len(images)} file(s)")
    used = min(len(images), args.subset_size)
    with tqdm(total=used, unit="img", desc="calibration images", file=sys.stderr, disable=None) as bar:
        report = quantize_model(
            args.model, images, args.output, ignored=args.ignored_scope, subset_size=args.subset_size, resize=args.resize,
            preset=args.preset, annotations=annotations, validation=validation, max_drop=args.max_drop, on_image=bar.update,
            nncf_log_level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        )
    print(f"wrote {report.output} ({report.fake_quantize} FakeQuantize, ignored scope {args.ignored_scope}: "
          f"{len(report.ignored)} op(s) kept in float, {report.calibration_images} calibration images, "
          f"{report.duration_s:.1f} s)")
    if report.accuracy:
        (fb, fm), (qb, qm) = report.accuracy["float"], report.accuracy["int8"]
        print(f"on {len(validation)} annotated image(s): box AP {fb:.1f} -> {qb:.1f}, mask AP {fm:.1f} -> {qm:.1f}")
    return 0
