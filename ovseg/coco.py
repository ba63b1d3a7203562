"""COCO scoring with pycocotools (the one module that imports it).

- ``rle_from_mask(mask)``: compressed RLE of a full ``(H, W)`` mask by ``pycocotools.mask.encode``
  (the reference :func:`ovseg.rle.rle_from_crop` is tested against).
- ``evaluate(ground_truth, detections)``: COCOeval ``bbox`` and ``segm`` stats (12 floats each).

COCO results dicts come from :meth:`ovseg.result.Result.to_coco`; RLE of box-local masks from
:mod:`ovseg.rle` (numpy only).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pycocotools.mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = ["rle_from_mask", "evaluate"]


def rle_from_mask(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE of a full ``(H, W)`` mask, by ``pycocotools.mask.encode``."""
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode("ascii")}


def evaluate(
    ground_truth: COCO,
    detections: Sequence[dict[str, Any]],
    *,
    image_ids: Sequence[int] | None = None,
    iou_types: Sequence[str] = ("bbox", "segm"),
) -> tuple[dict[str, list[float]], str]:
    """Run COCOeval on ``detections`` against ``ground_truth``.

    Returns:
        ``{iou_type: [12 stats]}`` (AP first, 0..1; -1 where COCOeval has no ground truth for a
        stat; all 0 when there are no detections) and the text pycocotools printed (its 12-line
        summaries), captured rather than printed.
    """
    stats: dict[str, list[float]] = {}
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        for iou_type in iou_types:
            if not detections:
                stats[iou_type] = [0.0] * 12  # nothing found: no precision, no recall
                continue
            # loadRes takes a detection's area from its bbox whenever it has one; for segm the
            # area must be the mask's (it decides small / medium / large), so drop the bbox there,
            # as detectron2 does.
            dets = [{k: v for k, v in d.items() if k != "bbox"} for d in detections] if iou_type == "segm" else detections
            print(f"-- {iou_type} --")
            ev = COCOeval(ground_truth, ground_truth.loadRes(list(dets)), iou_type)
            if image_ids is not None:
                ev.params.imgIds = list(image_ids)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            stats[iou_type] = [float(v) for v in ev.stats]
    return stats, text.getvalue()
