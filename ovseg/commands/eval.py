"""``ovseg eval``: COCO box and mask AP of a model, by the card's protocol."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..options import BOX_CONVENTIONS, CARD_PASTE, PASTE_MODES, RESIZE_POLICIES
from .common import add_model_options, compile_config, positive_int_arg, refuse_local_options, segmenter_from_args


def _image_ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 139,285, got {text!r}") from None


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "eval",
        help="COCO box and mask AP of a model (the card's protocol)",
        description="Run every image through the model with no score threshold, map classes to COCO ids, "
        "encode masks as RLE and score them with pycocotools' COCOeval (bbox and segm).",
    )
    add_model_options(parser, threshold=None)
    parser.add_argument("--images", required=True, metavar="DIR", help="image folder (e.g. val2017/)")
    parser.add_argument("--annotations", required=True, metavar="JSON", help="COCO instances file (e.g. instances_val2017.json)")
    parser.add_argument(
        "--resize", choices=RESIZE_POLICIES, default=None,
        help="fit: max height 480, max width 640 (fixed input); short-long: max short side 480, max long side 640 "
        "(portrait images through the network reshaped to 640x480); stretch: plain resize (0228, 1039, 1040, "
        "person-0007). Default: the catalogue model's own rule, else fit",
    )
    parser.add_argument(
        "--paste", choices=PASTE_MODES, default=CARD_PASTE,
        help=f"mask paste algorithm (default {CARD_PASTE}: the protocol behind the card's AP)",
    )
    parser.add_argument(
        "--box-convention", choices=BOX_CONVENTIONS, default="coco",
        help="coco (default): boxes as COCO gives them (pycocotools, detectron2); omz: every predicted box "
        "x2-x1+1 wide and y2-y1+1 high, as OMZ's Accuracy Checker scores them (coco_orig_precision, "
        "include_boundaries), which the cards' box AP used. Mask AP is the same in both",
    )
    parser.add_argument("--limit", type=positive_int_arg, metavar="N", help="evaluate the first N images (by id)")
    parser.add_argument("--image-ids", type=_image_ids, metavar="ID,ID", help="evaluate only these image ids")
    parser.add_argument("--results", metavar="JSON", help="write the COCO results (detections) here")
    parser.add_argument("--stats", metavar="JSON", help="write the 12 COCOeval stats per iou type and the settings here")
    parser.add_argument("--nireq", type=positive_int_arg, help="infer requests in flight (default: the device's optimum)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..evaluation import eval_settings, evaluate_model, load_annotations, select_images
    from ..files import atomic_write, check_writable
    from ..model import compiled_property

    refuse_local_options(args)  # a URL with local compile options: one line, before any work

    check_writable(args.results)
    check_writable(args.stats)
    coco = load_annotations(args.annotations)
    entries = select_images(coco, args.images, image_ids=args.image_ids, limit=args.limit)
    config = compile_config(args)
    config.setdefault("PERFORMANCE_HINT", "THROUGHPUT")
    segmenter = segmenter_from_args(args, threshold=0.0, paste=args.paste, resize=args.resize, config=config)
    precision = compiled_property(next(iter(segmenter.compiled_models.values()), None), "INFERENCE_PRECISION_HINT")
    print(f"model {args.model} on {args.device}, {len(entries)} image(s), resize {segmenter.resize}, paste {args.paste}, "
          f"precision {precision or 'unknown'}", file=sys.stderr)
    with tqdm(total=len(entries), unit="img", desc="eval", file=sys.stderr, disable=None) as bar:
        report = evaluate_model(
            segmenter, coco, args.images, entries, nireq=args.nireq, on_image=bar.update, box_convention=args.box_convention
        )
    print(report.summary_text, end="")
    box_ap, mask_ap = report.stats["bbox"][0] * 100, report.stats["segm"][0] * 100
    boxes_as = " (omz boxes)" if args.box_convention == "omz" else ""
    print(f"box AP {box_ap:.1f}{boxes_as} | mask AP {mask_ap:.1f} | {len(entries)} images | {report.ms_per_image:.0f} ms/image")

    if args.results:
        text = json.dumps(report.detections)
        atomic_write(Path(args.results), lambda tmp: tmp.write_text(text))
    if args.stats:
        settings = eval_settings(segmenter, report, annotations=args.annotations, config=config)
        doc = json.dumps({"bbox": report.stats["bbox"], "segm": report.stats["segm"], "settings": settings}, indent=2)
        atomic_write(Path(args.stats), lambda tmp: tmp.write_text(doc + "\n"))
    if not report.detections:
        print("ovseg: warning: the model produced no detections on the selected images: every AP is 0", file=sys.stderr)
    return 0
