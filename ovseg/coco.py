"""COCO: run-length encoding, results JSON, and evaluation with pycocotools.

Contract (pycocotools conventions, hidden behind these functions):

- ``rle_from_crop(crop, offset, image_hw)``: compressed RLE ``{"size": [H, W], "counts": str}``
  of a box-local bool mask, computed from the crop alone (no H x W array), identical to
  ``pycocotools.mask.encode`` of the full mask. RLE runs go down the columns (column-major),
  alternating 0-runs and 1-runs, starting with a (possibly empty) 0-run; pycocotools compresses
  the run lengths into the string.
- ``result_to_coco(result, image_id)``: COCO *results* dicts: ``image_id``, official
  ``category_id`` (1..90), ``bbox`` ``[x, y, w, h]``, ``score``, ``segmentation``.
- ``evaluate(ground_truth, detections, box_convention=)``: COCOeval ``bbox`` and ``segm`` stats
  (12 floats each). ``box_convention="omz"`` scores boxes as OMZ's Accuracy Checker does
  (:func:`omz_boxes`: every predicted box one pixel wider and higher), which the cards used.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pycocotools.mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .errors import ConfigError
from .labels import coco_category_id
from .result import Result

__all__ = [
    "rle_counts", "rle_from_crop", "rle_from_mask", "result_to_coco", "evaluate", "omz_boxes",
    "STAT_NAMES", "BOX_CONVENTIONS", "BoxConvention",
]

#: Names of COCOeval's 12 summary stats, in order.
STAT_NAMES: tuple[str, ...] = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)


#: ``coco``: boxes scored as COCO gives them (``w = x2 - x1``), what pycocotools and detectron2
#: report. ``omz``: OMZ's Accuracy Checker ``coco_orig_precision`` with its default
#: ``include_boundaries: True`` (AC 2021.2 to 2024.6): each *predicted* box ``x2 - x1 + 1`` wide
#: and ``y2 - y1 + 1`` high, the ground truth left as it is; the cards' box AP was made so.
BoxConvention = Literal["coco", "omz"]
BOX_CONVENTIONS: tuple[str, ...] = ("coco", "omz")


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


def rle_counts(crop: np.ndarray, offset: tuple[int, int], image_hw: tuple[int, int]) -> list[int]:
    """Uncompressed COCO RLE counts of a ``(h, w)`` bool crop at ``offset`` = (x, y) in an
    ``image_hw`` image.

    Each crop column is padded with a zero above and below so that no run crosses columns;
    run boundaries found there are mapped to column-major image positions.
    """
    height, width = image_hw
    x0, y0 = offset
    h, w = crop.shape
    if h == 0 or w == 0 or not crop.any():
        return [height * width]
    padded = np.zeros((w, h + 2), dtype=np.int8)
    padded[:, 1:-1] = crop.T
    steps = np.diff(padded.ravel())
    starts = np.flatnonzero(steps == 1) + 1
    ends = np.flatnonzero(steps == -1) + 1

    def to_image(flat: np.ndarray) -> np.ndarray:
        col, row = np.divmod(flat, h + 2)
        return (x0 + col) * height + y0 + row - 1

    starts, ends = to_image(starts), to_image(ends)
    # A run that ends at the bottom of a full-height column and one that starts at the top of
    # the next column are one run in column-major order.
    joined = ends[:-1] == starts[1:]
    if joined.any():
        starts = np.concatenate([starts[:1], starts[1:][~joined]])
        ends = np.concatenate([ends[:-1][~joined], ends[-1:]])
    bounds = np.empty(2 * starts.size + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, height * width
    bounds[1:-1:2], bounds[2:-1:2] = starts, ends
    counts = np.diff(bounds).tolist()
    if counts[-1] == 0:  # the mask reaches the last pixel: no closing 0-run
        counts.pop()
    return counts


def _compress(counts: list[int], image_hw: tuple[int, int]) -> dict[str, Any]:
    height, width = image_hw
    rle = mask_util.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def rle_from_crop(crop: np.ndarray, offset: tuple[int, int], image_hw: tuple[int, int]) -> dict[str, Any]:
    """Compressed COCO RLE (``counts`` a str) of a box-local mask, without an H x W array."""
    return _compress(rle_counts(crop, offset, image_hw), image_hw)


def rle_from_mask(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE of a full ``(H, W)`` mask, by ``pycocotools.mask.encode``."""
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode("ascii")}


def result_to_coco(result: Result, image_id: int) -> list[dict[str, Any]]:
    """COCO results dicts, one per instance of ``result`` (see the module docstring)."""
    detections = []
    for inst in result:
        x1, y1, x2, y2 = inst.box
        detections.append(
            {
                "image_id": int(image_id),
                "category_id": coco_category_id(inst.class_id),
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "score": round(inst.score, 5),
                "segmentation": rle_from_crop(inst.mask_crop, inst.mask_offset, result.image_hw),
            }
        )
    return detections


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
