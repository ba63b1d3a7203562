"""Decoder speed and memory: ovseg against the Open Model Zoo demo's way, side by side.

The baseline (written here, from the OMZ demo / model_api MaskRCNNModel) pastes *all* 100
slots into fresh full-image uint8 arrays with ``segm_postprocess`` and filters by score
afterwards. ovseg gathers the kept slots first and pastes each into a crop of its box (legacy paste, the
same algorithm as the baseline; the aligned paste is timed as well).

Same inputs for every contender: 100 slots (realistic box sizes, log-uniform from 16 px to
60 % of the image side; scores spread over [0, 1]) or 10 slots, originals of 640x480 and
1920x1080, threshold 0.5 (a demo) and 0 (COCO evaluation: everything is pasted). Each
contender runs interleaved with the others, the median of the repeats is reported, and peak
memory is tracemalloc's peak of one call (numpy and OpenCV's numpy-backed arrays).

    python benchmarks/decode.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util

from ovseg.decode import decode, gather_maskrcnn
from ovseg.preprocess import Transform, fit_size
from ovseg.result import Result

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark

# -- the baseline: what the OMZ demo does -------------------------------------------------

def omz_expand_box(box: np.ndarray, scale: float) -> np.ndarray:
    w_half = (box[2] - box[0]) * 0.5 * scale
    h_half = (box[3] - box[1]) * 0.5 * scale
    x_c = (box[2] + box[0]) * 0.5
    y_c = (box[3] + box[1]) * 0.5
    return np.array([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half])


def omz_segm_postprocess(box: np.ndarray, raw_cls_mask: np.ndarray, im_h: int, im_w: int) -> np.ndarray:
    raw_cls_mask = np.pad(raw_cls_mask, ((1, 1), (1, 1)), "constant", constant_values=0)
    extended_box = omz_expand_box(box, raw_cls_mask.shape[0] / (raw_cls_mask.shape[0] - 2.0)).astype(int)
    w, h = np.maximum(extended_box[2:] - extended_box[:2] + 1, 1)
    x0, y0 = np.clip(extended_box[:2], a_min=0, a_max=[im_w, im_h])
    x1, y1 = np.clip(extended_box[2:] + 1, a_min=0, a_max=[im_w, im_h])
    raw_cls_mask = cv2.resize(raw_cls_mask, (int(w), int(h))) > 0.5
    mask = raw_cls_mask.astype(np.uint8)
    im_mask = np.zeros((im_h, im_w), dtype=np.uint8)
    im_mask[y0:y1, x0:x1] = mask[(y0 - extended_box[1]) : (y1 - extended_box[1]), (x0 - extended_box[0]) : (x1 - extended_box[0])]
    return im_mask


def omz_decode(outputs: dict[str, np.ndarray], tf: Transform, threshold: float) -> tuple[np.ndarray, ...]:
    """The OMZ demo's postprocess: paste all slots, then filter."""
    boxes = outputs["boxes"].copy()
    boxes[:, 0::2] /= tf.scale_x
    boxes[:, 1::2] /= tf.scale_y
    classes, scores = outputs["classes"], outputs["scores"]
    masks = []
    for box, cls, raw_mask in zip(boxes, classes, outputs["raw_masks"], strict=True):
        masks.append(omz_segm_postprocess(box, raw_mask[cls], *tf.image_hw))
    keep = (scores > threshold) & (classes > 0)
    return boxes[keep], scores[keep], classes[keep], np.array(masks)[keep] if masks else np.zeros((0, *tf.image_hw))


def omz_rle(outputs: dict[str, np.ndarray], tf: Transform, threshold: float) -> list[dict]:
    *_, masks = omz_decode(outputs, tf, threshold)
    return [mask_util.encode(np.asfortranarray(m)) for m in masks]


# -- the aligned kernel before (commit c176012): one cv2.warpAffine per box -----------------

def warp_affine_paste(prob: np.ndarray, box: list[float], image_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    height, width = image_hw
    bx0, by0, bx1, by1 = box
    if not (bx1 - bx0 > 0.0 and by1 - by0 > 0.0):
        return np.zeros((0, 0), bool), (min(max(int(bx0), 0), width), min(max(int(by0), 0), height))
    x0, y0 = min(max(math.floor(bx0) - 1, 0), width), min(max(math.floor(by0) - 1, 0), height)
    x1, y1 = min(max(math.ceil(bx1) + 1, 0), width), min(max(math.ceil(by1) + 1, 0), height)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), bool), (x0, y0)
    sx, sy = prob.shape[1] / (bx1 - bx0), prob.shape[0] / (by1 - by0)
    affine = np.array([[sx, 0.0, (x0 + 0.5 - bx0) * sx - 0.5], [0.0, sy, (y0 + 0.5 - by0) * sy - 0.5]])
    sampled = cv2.warpAffine(np.ascontiguousarray(prob, dtype=np.float32), affine, (x1 - x0, y1 - y0),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return sampled >= 0.5, (x0, y0)


def decode_warp_affine(outputs: dict[str, np.ndarray], tf: Transform, threshold: float) -> Result:
    """ovseg's decode as it was with the aligned paste (the same gather, box mapping and Result)."""
    dets = gather_maskrcnn(outputs, threshold)
    if len(dets) == 0:
        return Result.empty(tf.image_hw)
    height, width = tf.image_hw
    boxes = tf.boxes_to_image(dets.boxes)
    np.clip(boxes[:, 0::2], 0.0, width, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0.0, height, out=boxes[:, 1::2])
    crops, offsets = [], np.zeros((len(dets), 2), np.int32)
    for i, box in enumerate(boxes.tolist()):
        crop, offsets[i] = warp_affine_paste(dets.mask_probs[i], box, tf.image_hw)
        crops.append(crop)
    return Result(boxes=boxes.astype(np.float32), scores=dets.scores, class_ids=dets.class_ids,
                  image_hw=tf.image_hw, mask_crops=tuple(crops), mask_offsets=offsets)


# -- inputs --------------------------------------------------------------------------------

def make_outputs(n: int, input_hw: tuple[int, int], resized_hw: tuple[int, int], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    slots = 100
    rh, rw = resized_hw
    sides = np.exp(rng.uniform(np.log(16 * rw / 1920 * 2), np.log(0.6 * min(rh, rw)), (n, 2)))
    x1 = rng.uniform(0, rw - sides[:, 0])
    y1 = rng.uniform(0, rh - sides[:, 1])
    boxes = np.zeros((slots, 4), np.float32)
    boxes[:n] = np.stack([x1, y1, x1 + sides[:, 0], y1 + sides[:, 1]], 1)
    scores = np.zeros(slots, np.float32)
    scores[:n] = np.sort(rng.beta(0.6, 1.6, n))[::-1]
    classes = np.zeros(slots, np.int32)
    classes[:n] = rng.integers(1, 81, n)
    yy, xx = np.mgrid[0:28, 0:28] / 27.0
    raw = np.zeros((slots, 81, 28, 28), np.float32)
    for i in range(n):
        d = np.hypot(yy - rng.uniform(0.4, 0.6), xx - rng.uniform(0.4, 0.6)) / rng.uniform(0.3, 0.5)
        raw[i, classes[i]] = 1 / (1 + np.exp((d - 1) * 8))
    return {"classes": classes, "scores": scores, "boxes": boxes, "raw_masks": raw}


def measure(fn: Callable[[], object]) -> tuple[float, float]:
    """(seconds, peak bytes) of one call."""
    tracemalloc.start()
    t = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak


def run_case(image_hw: tuple[int, int], n: int, threshold: float, repeats: int) -> str:
    """One row of the table: every contender on the same outputs, interleaved."""
    resized_hw, s = fit_size(image_hw, (480, 640))
    tf = Transform(image_hw, resized_hw, (480, 640), s)
    outputs = make_outputs(n, (480, 640), resized_hw)
    kept = len(gather_maskrcnn(outputs, threshold))
    contenders: dict[str, Callable[[], object]] = {
        "omz": lambda: omz_decode(outputs, tf, threshold),
        "local": lambda: decode(gather_maskrcnn(outputs, threshold), tf, paste="legacy"),
        "aligned": lambda: decode(gather_maskrcnn(outputs, threshold), tf, paste="aligned"),
        "warp": lambda: decode_warp_affine(outputs, tf, threshold),
        "full": lambda: decode(gather_maskrcnn(outputs, threshold), tf, paste="legacy").masks,
        "rle": lambda: decode(gather_maskrcnn(outputs, threshold), tf, paste="legacy").to_coco(0),
        "omz_rle": lambda: omz_rle(outputs, tf, threshold),
    }
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for fn in contenders.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in contenders.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    peaks = {name: measure(fn)[1] / 1e6 for name, fn in contenders.items()}
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    case = f"{image_hw[1]}x{image_hw[0]} {n} dets, thr {threshold} ({kept} kept)"
    return (
        f"{case:36s} {med['omz']:8.2f} {med['local']:9.2f} {med['omz'] / med['local']:6.1f} "
        f"{med['aligned']:8.2f} {med['omz'] / med['aligned']:6.1f} {med['warp']:8.2f} {med['omz'] / med['warp']:6.1f} "
        f"{med['full']:8.2f} {med['omz'] / med['full']:6.1f} {med['rle']:7.2f} {med['omz_rle']:8.2f} "
        f"{med['omz_rle'] / med['rle']:6.1f} {peaks['omz']:7.1f} {peaks['local']:8.2f} {peaks['omz'] / max(peaks['local'], 1e-9):6.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"machine: {machine()}, {cv2.getNumberOfCPUs()} CPUs, "
          f"numpy {np.__version__}, opencv {cv2.__version__}; median of {args.repeats} runs, ms; peak MB by tracemalloc")
    header = f"{'case':36s} {'OMZ ms':>8s} {'local ms':>9s} {'x':>6s} {'aligned':>8s} {'x':>6s} {'warp ms':>8s} {'x':>6s} {'full ms':>8s} {'x':>6s} {'RLE ms':>7s} {'OMZ RLE':>8s} {'x':>6s} {'OMZ MB':>7s} {'local MB':>8s} {'mem x':>6s}"
    print(header)
    for image_hw in ((480, 640), (1080, 1920)):
        for n, threshold in ((100, 0.5), (100, 0.0), (10, 0.5)):
            print(run_case(image_hw, n, threshold, args.repeats))
    print("local, full, RLE: ovseg with the legacy paste (the OMZ algorithm); aligned: box-local with the aligned paste;")
    print("warp: the aligned paste's previous kernel (one cv2.warpAffine per box), same pixels, for comparison")
    print("x = OMZ time / ovseg time (higher is better); mem x = OMZ peak / ovseg box-local peak")


if __name__ == "__main__":
    main()
