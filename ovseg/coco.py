"""COCO scoring with pycocotools (the one module that imports it).

- ``rle_from_mask(mask)``: compressed RLE of a full ``(H, W)`` mask by ``pycocotools.mask.encode``
  (the reference :func:`ovseg.rle.rle_from_crop` is tested against).
- ``evaluate(ground_truth, detections, box_convention=)``: COCOeval ``bbox`` and ``segm`` stats
  (12 floats each). ``box_convention="omz"`` scores boxes as OMZ's Accuracy Checker does
  (:func:`omz_boxes`: every predicted box one pixel wider and higher), which the cards used.

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

from .errors import ConfigError
from .options import BOX_CONVENTIONS, BoxConvention

__all__ = ["rle_from_mask", "evaluate", "omz_boxes", "BOX_CONVENTIONS", "BoxConvention"]


def omz_boxes(bboxes_xywh: np.ndarray) -> np.ndarray:
    """Predicted COCO boxes as the Accuracy Checker scores them.

    Args:
        bboxes_xywh: ``(N, 4)`` x, y, width, height in original-image pixels (COCO's ``bbox``).

    Returns:
        a new float64 ``(N, 4)`` array: x, y unchanged, width + 1 and height + 1 (AC computes
        ``x_max - x_min + 1`` from the corners). The ground truth must *not* go through this.
    """
    boxes = np.array(bboxes_xywh, dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] += 1.0
    return boxes


def _with_box_convention(detections: Sequence[dict[str, Any]], box_convention: str) -> Sequence[dict[str, Any]]:
    if box_convention == "coco" or not detections:
        return detections
    widened = omz_boxes(np.array([d["bbox"] for d in detections], dtype=np.float64))
    return [{**d, "bbox": box.tolist()} for d, box in zip(detections, widened, strict=True)]




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
    box_convention: BoxConvention = "coco",
) -> tuple[dict[str, list[float]], str]:
    """Run COCOeval on ``detections`` against ``ground_truth``.

    ``box_convention`` (see :data:`BoxConvention`) changes only the ``bbox`` scoring: ``"omz"``
    widens every detection's box by :func:`omz_boxes` first (the Accuracy Checker's rule);
    ``segm`` and the ground truth are never changed.

    Returns:
        ``{iou_type: [12 stats]}`` (AP first, 0..1; -1 where COCOeval has no ground truth for a
        stat; all 0 when there are no detections) and the text pycocotools printed (its 12-line
        summaries), captured rather than printed.
    """
    if box_convention not in BOX_CONVENTIONS:
        raise ConfigError(f"expected box convention 'coco' or 'omz', got {box_convention!r}")
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
            if iou_type == "segm":
                dets = [{k: v for k, v in d.items() if k != "bbox"} for d in detections]
            elif iou_type == "bbox":
                dets = _with_box_convention(detections, box_convention)
            else:
                dets = detections
            print(f"-- {iou_type} --")
            ev = COCOeval(ground_truth, ground_truth.loadRes(list(dets)), iou_type)
            if image_ids is not None:
                ev.params.imgIds = list(image_ids)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            stats[iou_type] = [float(v) for v in ev.stats]
    return stats, text.getvalue()
