"""Raw network outputs -> :class:`~ovseg.result.Result`: selection, box mapping, mask pasting.

Two steps, so that nothing large outlives an infer request:

1. :func:`gather_maskrcnn` reads the four outputs of the 0033 family (``classes`` ``[S]``,
   ``scores`` ``[S]``, ``boxes`` ``[S, 4]``, ``raw_masks`` ``[S, C, m, m]``; S = 100 slots,
   C = 81, m = 28), keeps the slots with class > 0 and score >= threshold, and copies out only
   their boxes, scores, classes and the *one* ``m x m`` map of each kept slot's class
   (``raw_masks[i, classes[i]]``). The result, :class:`Detections`, owns its memory, so the
   request may run again at once. :func:`gather_labels_boxes_masks` does the same for the
   newer OMZ family (``labels`` ``[N]`` 0-based, ``boxes`` ``[N, 5]`` with the score last,
   ``masks`` ``[N, m, m]``), so that both families decode through the same code.
2. :func:`decode` maps boxes back to original-image pixels, clips them, and pastes each
   probability map into its box at full resolution, keeping only the box-local crop.

Paste algorithms (``paste=``), both pure functions on arrays:

- ``"legacy"``: Detectron1 / OMZ ``segm_postprocess``, the one behind the card's AP. The map is
  padded by one zero pixel (``m + 2`` square), the box is enlarged about its centre by
  ``(m + 2) / m`` and truncated to int, the padded map is resized with ``cv2.resize``
  (INTER_LINEAR) to ``x1 - x0 + 1`` by ``y1 - y0 + 1`` pixels and thresholded ``> 0.5``.
  Reproduces OMZ bit for bit; its integer box costs up to a pixel of misalignment.
- ``"aligned"``: detectron2 / mmdetection 2.x. Each pixel centre ``(x + 0.5, y + 0.5)`` samples
  the map at ``((x + 0.5) - x1) / (x2 - x1) * m - 0.5`` (same for y), bilinear, zero outside the
  map, threshold ``>= 0.5``. Float boxes, no quantization. Evaluated separably, for all boxes
  at once, and only where the mask's edge lies (:func:`paste_aligned_many`).

Degenerate outputs never raise or leak NaN: slots with a non-finite score or box, or a class id
outside 1..C-1, are dropped (the latter with a logged warning); NaN in a map counts as 0. Only
structurally wrong outputs (missing tensors, wrong shapes) raise :class:`OutputError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import ConfigError, OutputError
from .labels import NUM_CLASSES
from .options import DEFAULT_PASTE, PASTE_MODES, PasteMode
from .preprocess import Transform
from .result import NO_CANDIDATES, Candidates, Result

__all__ = [
    "Detections",
    "gather_maskrcnn",
    "gather_labels_boxes_masks",
    "decode",
    "paste_legacy",
    "paste_aligned",
    "legacy_boxes",
    "paste_aligned_many",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detections:
    """Detections of one inference, still in the network-input frame (owned copies).

    Attributes:
        boxes: float32 ``(K, 4)`` x1, y1, x2, y2 in network-input pixels.
        scores: float32 ``(K,)``.
        class_ids: int32 ``(K,)`` contiguous class ids, 1..80.
        mask_probs: float32 ``(K, m, m)``: per detection, the probability map of its class,
            covering its box; values in [0, 1].
        candidate_boxes, candidate_scores, candidate_class_ids: ``(J, 4)``, ``(J,)``, ``(J,)``
            box-only detections with ``candidate_threshold <= score < threshold`` (no maps
            copied; empty unless a ``candidate_threshold`` was given), for trackers.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    mask_probs: np.ndarray
    candidate_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    candidate_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    candidate_class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def _output(outputs: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    try:
        return np.asarray(outputs[name])
    except KeyError:
        raise OutputError(f"expected an output named {name!r}, got {sorted(outputs)}") from None


def _owned_probabilities(maps: np.ndarray) -> np.ndarray:
    """A float32 copy of ``maps`` (it may be a view of a request's tensor) with NaN as 0 and
    every value in [0, 1]."""
    probs = maps.astype(np.float32, copy=True)
    if not np.isfinite(probs).all():
        np.nan_to_num(probs, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(probs, 0.0, 1.0, out=probs)
    return probs


def _by_score(rows: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``rows`` ordered by descending ``score`` (stable). The 0033 family already sorts its
    slots; the newer family's rows and other exports need not."""
    return rows[np.argsort(-score[rows], kind="stable")]


def _lowest(threshold: float, candidate_threshold: float | None) -> float:
    return threshold if candidate_threshold is None else min(threshold, candidate_threshold)


def _split_candidates(
    rows: np.ndarray, scores: np.ndarray, threshold: float, candidate_threshold: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` (valid slots with ``score >= min(threshold, candidate_threshold)``) split into
    those to decode (``score >= threshold``) and the box-only candidates below it."""
    if candidate_threshold is None:
        return rows, rows[:0]
    above = scores[rows] >= threshold
    return rows[above], rows[~above]


def gather_maskrcnn(
    outputs: Mapping[str, np.ndarray], threshold: float = 0.0, *, candidate_threshold: float | None = None
) -> Detections:
    """Select the detections of a 0033-family inference and copy out what decoding needs.

    Args:
        outputs: ``classes`` ``(S,)`` int (float tolerated), ``scores`` ``(S,)``,
            ``boxes`` ``(S, 4)`` in the network-input frame, ``raw_masks`` ``(S, C, m, m)``, or
            ``(S, 1, m, m)`` holding each slot's own class map (the slim export, ``ovseg export``).
            May be views of an infer request's tensors: nothing returned refers to them.
        threshold: keep slots with ``score >= threshold`` (0 keeps every non-empty slot).
        candidate_threshold: also keep, box-only, the slots with ``candidate_threshold <= score
            < threshold`` (``Detections.candidate_*``); ``None`` keeps none.

    Returns:
        :class:`Detections` by descending score (ties in slot order), the order of every
        :class:`~ovseg.result.Result`.
    """
    classes = _output(outputs, "classes")
    scores = _output(outputs, "scores")
    boxes = _output(outputs, "boxes")
    raw_masks = _output(outputs, "raw_masks")
    slots = scores.shape[0] if scores.ndim == 1 else -1
    if scores.ndim != 1:
        raise OutputError(f"expected scores of shape (S,), got {scores.shape}")
    for name, array, shape in (("classes", classes, (slots,)), ("boxes", boxes, (slots, 4))):
        if array.shape != shape:
            raise OutputError(f"expected {name} of shape {shape}, got {array.shape}")
    if raw_masks.ndim != 4 or raw_masks.shape[0] != slots or raw_masks.shape[2] != raw_masks.shape[3]:
        raise OutputError(f"expected raw_masks of shape ({slots}, C, m, m), got {raw_masks.shape}")
    num_channels = raw_masks.shape[1]
    # One channel: the slim export (``ovseg export``) already holds each slot's own class map.
    slim = num_channels == 1

    if np.issubdtype(classes.dtype, np.floating):
        # Some converters emit float class ids; NaN/inf become 0 (empty slot).
        classes = np.rint(np.nan_to_num(classes, nan=0.0, posinf=0.0, neginf=0.0))
    cls = classes.astype(np.int64)
    score = scores.astype(np.float32)
    top_class = NUM_CLASSES if slim else min(num_channels - 1, NUM_CLASSES)
    valid_class = (cls >= 0) & (cls <= top_class)
    bad = np.flatnonzero(~valid_class)
    if bad.size:
        logger.warning(
            "dropped %d detection(s) with class ids outside 0..%d: %s", bad.size, top_class, sorted(set(cls[bad].tolist()))[:10]
        )
    with np.errstate(invalid="ignore"):
        keep = valid_class & (cls > 0) & np.isfinite(score) & (score >= _lowest(threshold, candidate_threshold))
        keep &= np.isfinite(boxes).all(axis=1)
    rows, cand = _split_candidates(_by_score(np.flatnonzero(keep), score), score, threshold, candidate_threshold)
    probs = _owned_probabilities(raw_masks[rows, 0] if slim else raw_masks[rows, cls[rows]])
    return Detections(
        boxes=boxes[rows].astype(np.float32, copy=True),
        scores=score[rows].copy(),
        class_ids=cls[rows].astype(np.int32),
        mask_probs=probs,
        candidate_boxes=boxes[cand].astype(np.float32, copy=True),
        candidate_scores=score[cand].copy(),
        candidate_class_ids=cls[cand].astype(np.int32),
    )


def gather_labels_boxes_masks(
    outputs: Mapping[str, np.ndarray],
    threshold: float = 0.0,
    *,
    num_classes: int = NUM_CLASSES,
    candidate_threshold: float | None = None,
) -> Detections:
    """Select the detections of the newer OMZ family (0002, 0091, 0228, 1039, 1040,
    person-0007) and copy them out as the same :class:`Detections` as :func:`gather_maskrcnn`.

    Args:
        outputs: ``labels`` ``(N,)`` integer (float tolerated), **0-based** contiguous class
            ids without background; ``boxes`` ``(N, 5)`` x1, y1, x2, y2, score in the
            network-input frame; ``masks`` ``(N, m, m)`` probability maps covering each box
            (m = 28, or 224 for person-0007). N may be anything, 0 included.
        threshold: keep rows with ``score >= threshold``. Rows with a score of exactly 0 are
            padding (some exports pad N to a fixed count) and are always dropped.
        num_classes: labels must lie in ``0..num_classes-1``; others are dropped with a warning.
        candidate_threshold: as for :func:`gather_maskrcnn`.

    Returns:
        :class:`Detections` by descending score (ties in row order), class ids converted to 1..80 (``label + 1``, the
        0033 family's numbering, so that person is 1 for both families).
    """
    labels = _output(outputs, "labels")
    boxes5 = _output(outputs, "boxes")
    masks = _output(outputs, "masks")
    if boxes5.ndim != 2 or boxes5.shape[1] != 5:
        raise OutputError(f"expected boxes of shape (N, 5), got {boxes5.shape}")
    n = boxes5.shape[0]
    if labels.shape != (n,):
        raise OutputError(f"expected labels of shape ({n},), got {labels.shape}")
    if masks.ndim != 3 or masks.shape[0] != n or masks.shape[1] != masks.shape[2]:
        raise OutputError(f"expected masks of shape ({n}, m, m), got {masks.shape}")

    if np.issubdtype(labels.dtype, np.floating):
        labels = np.rint(np.nan_to_num(labels, nan=-1.0, posinf=-1.0, neginf=-1.0))
    label = labels.astype(np.int64)
    score = boxes5[:, 4].astype(np.float32)
    valid_class = (label >= 0) & (label < num_classes)
    bad = np.flatnonzero(~valid_class)
    if bad.size:
        logger.warning(
            "dropped %d detection(s) with labels outside 0..%d: %s",
            bad.size, num_classes - 1, sorted(set(label[bad].tolist()))[:10],
        )
    with np.errstate(invalid="ignore"):
        low = _lowest(threshold, candidate_threshold)
        keep = valid_class & np.isfinite(score) & (score >= low) & (score != 0.0)
        keep &= np.isfinite(boxes5[:, :4]).all(axis=1)
    rows, cand = _split_candidates(_by_score(np.flatnonzero(keep), score), score, threshold, candidate_threshold)
    probs = _owned_probabilities(masks[rows])
    return Detections(
        boxes=boxes5[rows, :4].astype(np.float32, copy=True),
        scores=score[rows].copy(),
        class_ids=(label[rows] + 1).astype(np.int32),
        mask_probs=probs,
        candidate_boxes=boxes5[cand, :4].astype(np.float32, copy=True),
        candidate_scores=score[cand].copy(),
        candidate_class_ids=(label[cand] + 1).astype(np.int32),
    )


# -- paste kernels ------------------------------------------------------------------------

_EMPTY_CROP = np.zeros((0, 0), dtype=np.bool_)
_EMPTY_CROP.flags.writeable = False


def legacy_boxes(boxes_xyxy: np.ndarray, map_size: int) -> np.ndarray:
    """OMZ ``expand_box`` by ``(m + 2) / m`` then ``astype(int)``, for all boxes at once.

    The arithmetic is float32 like OMZ's on float32 boxes, so the truncated ints agree.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float32)
    scale = (map_size + 2) / float(map_size)
    w_half = (boxes[:, 2] - boxes[:, 0]) * np.float32(0.5) * np.float32(scale)
    h_half = (boxes[:, 3] - boxes[:, 1]) * np.float32(0.5) * np.float32(scale)
    x_c = (boxes[:, 2] + boxes[:, 0]) * np.float32(0.5)
    y_c = (boxes[:, 3] + boxes[:, 1]) * np.float32(0.5)
    expanded = np.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], axis=1)
    return expanded.astype(np.float64).astype(np.int64)


def paste_legacy(
    prob: np.ndarray, expanded_box: tuple[int, int, int, int], image_hw: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int]]:
    """Paste one ``m x m`` probability map the Detectron1 / OMZ way, keeping the crop.

    Args:
        prob: float32 ``(m, m)`` probability map covering the box.
        expanded_box: the box already enlarged by ``(m + 2) / m`` and truncated to ints
            (``legacy_boxes``), x0, y0, x1, y1 inclusive, original-image pixels.
        image_hw: (H, W) of the image pasted into.

    Returns:
        bool crop of the pasted region (the enlarged box clipped to the image) and its
        ``(x, y)`` offset; a ``(0, 0)`` crop when nothing of the box is inside the image.
    """
    height, width = image_hw
    ex0, ey0, ex1, ey1 = expanded_box
    w = max(ex1 - ex0 + 1, 1)
    h = max(ey1 - ey0 + 1, 1)
    x0, y0 = min(max(ex0, 0), width), min(max(ey0, 0), height)
    # OMZ pastes up to ex1 + 1 (exclusive); never past the resized map's own extent.
    x1 = min(max(ex1 + 1, 0), width, ex0 + w)
    y1 = min(max(ey1 + 1, 0), height, ey0 + h)
    if x1 <= x0 or y1 <= y0:
        return _EMPTY_CROP, (min(x0, width), min(y0, height))
    # The zero border keeps the upsampled mask from smearing its edge values outwards.
    padded = cv2.copyMakeBorder(prob, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0.0)
    resized = cv2.resize(padded, (w, h), interpolation=cv2.INTER_LINEAR)
    crop = resized[y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0] > 0.5
    crop.flags.writeable = False
    return crop, (x0, y0)


def _aligned_regions(boxes_xyxy: np.ndarray, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Paste regions of the aligned paste, for ``K`` boxes at once.

    Returns int64 ``(K, 4)`` x0, y0, x1, y1 (the box widened by one pixel on each side and
    clipped to the image; x1, y1 exclusive) and bool ``(K,)``: whether the box has a positive
    width and height and its region is not empty. For a degenerate box, x0, y0 is its truncated
    top-left corner clipped to the image: the offset reported with its empty crop.
    """
    height, width = image_hw
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    proper = (b[:, 2] - b[:, 0] > 0.0) & (b[:, 3] - b[:, 1] > 0.0)
    lo = np.where(proper[:, None], np.floor(b[:, :2]) - 1.0, np.trunc(b[:, :2]))
    limits = np.array([width, height], dtype=np.float64)
    regions = np.empty((len(b), 4), dtype=np.int64)
    regions[:, :2] = np.clip(lo, 0.0, limits)
    regions[:, 2:] = np.clip(np.ceil(b[:, 2:]) + 1.0, 0.0, limits)
    proper &= (regions[:, 2] > regions[:, 0]) & (regions[:, 3] > regions[:, 1])
    return regions, proper


def paste_aligned_many(
    probs: np.ndarray, boxes_xyxy: np.ndarray, image_hw: tuple[int, int]
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Paste ``K`` probability maps the detectron2 way (float boxes, pixel centres), at once.

    Pixel ``(x, y)`` of the image is in the mask of box ``i`` when the bilinear interpolation of
    ``probs[i]`` (zero outside the map) at ``u = ((x + 0.5) - x1) / (x2 - x1) * m - 0.5`` (likewise
    ``v``) is ``>= 0.5``. The map to crop transform is axis-aligned, so it is evaluated
    separably, and only where the answer changes:

    1. for each crop row ``i`` whose two map rows ``floor(v_i)``, ``+ 1`` hold a value >= 0.5
       (no other row can reach 0.5), the map interpolated vertically at ``v_i``: ``m + 2``
       values, zero-padded (the small side; float32);
    2. along that row the value is piecewise linear in ``u``; its crossings of 0.5 (from the
       sign changes between neighbouring knots, the crossing point solved exactly in float64)
       mapped to the first crop column at or past them give the row's True runs;
    3. one ``np.repeat`` writes the runs of all rows of all crops into one buffer.

    The pixel work is a byte fill, so at 1080p this costs about what the legacy paste does
    (``benchmarks/decode.py``; small crops pay a fixed cost of some 45 numpy calls), and it is
    exact up to float32 rounding of the interpolated rows: it differs from a float64 per-pixel
    evaluation only where that value is within ~1e-6 of 0.5 (tests hold it to that), and it does
    not depend on OpenCV (``cv2.warpAffine``, the kernel before, samples at float32 precision in
    OpenCV 5.0 and at 1/32 of a cell in the fixed-point remap of earlier versions).

    Args:
        probs: float32 ``(K, m_h, m_w)`` probability maps, values in [0, 1].
        boxes_xyxy: float ``(K, 4)`` boxes, original-image pixels.
        image_hw: (H, W) of the image pasted into.

    Returns:
        ``K`` read-only bool crops, each over its box widened by one pixel on each side and
        clipped to the image (``(0, 0)`` when the box is degenerate or outside the image; they
        are views of one buffer), and int32 ``(K, 2)`` ``(x, y)`` offsets of the crops.
        Pixels further out than one pixel sample at most half of an edge value, which is below
        the threshold for probabilities.
    """
    regions, proper = _aligned_regions(boxes_xyxy, image_hw)
    offsets = regions[:, :2].astype(np.int32)
    crops: list[np.ndarray] = [_EMPTY_CROP] * len(regions)
    idx = np.flatnonzero(proper)
    if idx.size == 0:
        return tuple(crops), offsets
    k = idx.size
    m_h, m_w = probs.shape[1:]
    maps = np.asarray(probs, dtype=np.float32)[idx]
    box = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)[idx]
    region = regions[idx]
    w = region[:, 2] - region[:, 0]
    h = region[:, 3] - region[:, 1]
    with np.errstate(over="ignore", divide="ignore"):
        sx = m_w / (box[:, 2] - box[:, 0])
        sy = m_h / (box[:, 3] - box[:, 1])
    # Map coordinates of the crops' pixel centres: u = bu + j * sx, v = bv + i * sy.
    bu = (region[:, 0] + 0.5 - box[:, 0]) * sx - 0.5
    bv = (region[:, 1] + 0.5 - box[:, 1]) * sy - 0.5

    # Every crop row, instance after instance.
    n_rows = int(h.sum())
    row_first = np.cumsum(h) - h
    owner = np.repeat(np.arange(k), h)
    row_in_crop = np.arange(n_rows) - row_first[owner]
    with np.errstate(invalid="ignore"):
        v = row_in_crop * sy[owner] + bv[owner]
    np.fmax(v, -2.0, out=v)  # also NaN -> -2 (an infinite scale): outside the map
    np.fmin(v, float(m_h), out=v)
    floor_v = np.floor(v)
    # Padded knot rows: knot r + 1 is map row r, knots 0 and m_h + 1 are the zero border.
    knot = floor_v.astype(np.intp) + 1
    hot = np.zeros((k, m_h + 4), dtype=np.bool_)  # indexed by knot + 1, knots -1..m_h + 2
    hot[:, 2 : m_h + 2] = (maps >= 0.5).any(axis=2)
    live = hot[owner, knot + 1] | hot[owner, knot + 2]
    live &= np.isfinite(sx)[owner]
    rows = np.flatnonzero(live)

    # 1. The live rows' maps interpolated vertically, zero-padded to m_w + 2 columns.
    padded = np.zeros((k, m_h + 2, m_w + 2), dtype=np.float32)
    padded[:, 1 : m_h + 1, 1 : m_w + 1] = maps
    knot_rows = padded.reshape(k * (m_h + 2), m_w + 2)
    upper = knot_rows[owner[rows] * (m_h + 2) + knot[rows]]
    y = knot_rows[owner[rows] * (m_h + 2) + knot[rows] + 1]
    y -= upper
    y *= (v[rows] - floor_v[rows]).astype(np.float32)[:, None]
    y += upper

    # 2. Crossings of 0.5 between padded columns c and c + 1, in row-major order. The zero
    # border keeps them inside rows and makes each row's count even: up, down, up, ...
    above = (y >= 0.5).ravel()
    z = np.flatnonzero(above[1:] != above[:-1])
    y = y.ravel()
    left = y[z].astype(np.float64)
    u_cross = (0.5 - left) / (y[z + 1] - left) + (z % (m_w + 2) - 1)
    row = rows[z // (m_w + 2)]
    inst = owner[row]
    col = (u_cross - bu[inst]) / sx[inst]
    edge = np.empty_like(col)
    np.ceil(col[0::2], out=edge[0::2])  # up: the first column with u >= the crossing
    np.floor(col[1::2], out=edge[1::2])  # down: the last column with u <= the crossing ...
    edge[1::2] += 1.0  # ... exclusive
    np.clip(edge, 0.0, w[inst], out=edge)

    # 3. All crops in one buffer, row-major one after the other; True on [up, down) of each row.
    area = h * w
    crop_first = np.cumsum(area) - area
    total = int(area.sum())
    bounds = np.empty(edge.size + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, total
    np.add(crop_first[inst] + row_in_crop[row] * w[inst], edge, out=bounds[1:-1], casting="unsafe")
    runs = np.zeros(edge.size + 1, dtype=np.bool_)
    runs[1::2] = True
    flat = np.repeat(runs, np.diff(bounds))
    assert flat.size == total, "runs must tile the crops"
    flat.flags.writeable = False
    for j, (first, height_j, width_j) in enumerate(zip(crop_first.tolist(), h.tolist(), w.tolist(), strict=True)):
        crops[idx[j]] = flat[first : first + height_j * width_j].reshape(height_j, width_j)
    return tuple(crops), offsets


def paste_aligned(
    prob: np.ndarray, box_xyxy: tuple[float, float, float, float], image_hw: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int]]:
    """Paste one ``m x m`` probability map the detectron2 way (float box, pixel centres).

    :func:`paste_aligned_many` for a single map: see there for the sampling rule.

    Args:
        prob: float32 ``(m, m)`` probability map covering the box, values in [0, 1].
        box_xyxy: float box, original-image pixels.
        image_hw: (H, W) of the image pasted into.

    Returns:
        read-only bool crop (``value >= 0.5``) over the box widened by one pixel on each side
        and clipped to the image, and its ``(x, y)`` offset.
    """
    crops, offsets = paste_aligned_many(np.asarray(prob)[None], np.asarray(box_xyxy, dtype=np.float64)[None], image_hw)
    x, y = offsets[0].tolist()
    return crops[0], (x, y)


def decode(
    dets: Detections,
    transform: Transform,
    *,
    paste: PasteMode = DEFAULT_PASTE,
) -> Result:
    """Map detections back to the original image and paste their masks (box-local).

    Args:
        dets: what :func:`gather_maskrcnn` kept, in the network-input frame.
        transform: the preprocessing's :class:`~ovseg.preprocess.Transform`.
        paste: ``"legacy"`` or ``"aligned"`` (see the module docstring).

    Returns:
        A :class:`Result` whose boxes are original-image pixels clipped to ``[0, W] x [0, H]``;
        the box-only candidates mapped the same way into ``Result.candidates``.
    """
    if paste not in PASTE_MODES:
        raise ConfigError(f"expected paste 'legacy' or 'aligned', got {paste!r}")
    candidates = NO_CANDIDATES
    if len(dets.candidate_scores):
        candidates = Candidates(
            _image_boxes(dets.candidate_boxes, transform).astype(np.float32),
            dets.candidate_scores,
            dets.candidate_class_ids,
        )
    height, width = transform.image_hw
    if len(dets) == 0:
        return Result.empty(transform.image_hw, candidates=candidates)
    boxes = _image_boxes(dets.boxes, transform)
    boxes32 = boxes.astype(np.float32)

    crops: list[np.ndarray] = []
    offsets = np.zeros((len(dets), 2), dtype=np.int32)
    if paste == "legacy":
        # Paste with the float32 boxes, as OMZ does on its float32 outputs.
        for i, ebox in enumerate(legacy_boxes(boxes32, dets.mask_probs.shape[1]).tolist()):
            crop, offsets[i] = paste_legacy(dets.mask_probs[i], ebox, transform.image_hw)
            crops.append(crop)
    else:
        aligned, offsets = paste_aligned_many(dets.mask_probs, boxes, transform.image_hw)
        crops.extend(aligned)
    return Result(
        boxes=boxes32,
        scores=dets.scores,
        class_ids=dets.class_ids,
        image_hw=transform.image_hw,
        mask_crops=tuple(crops),
        mask_offsets=offsets,
        candidates=candidates,
    )


def _image_boxes(boxes_xyxy: np.ndarray, transform: Transform) -> np.ndarray:
    """float64 ``(K, 4)`` network-input boxes mapped to original-image pixels and clipped."""
    height, width = transform.image_hw
    boxes = transform.boxes_to_image(boxes_xyxy)
    np.clip(boxes[:, 0::2], 0.0, width, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0.0, height, out=boxes[:, 1::2])
    return boxes
