"""Decoding: slot selection, box mapping, and both paste kernels against slow references."""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
import pytest

from ovseg.decode import (
    Detections,
    decode,
    gather_maskrcnn,
    legacy_boxes,
    paste_aligned,
    paste_aligned_many,
    paste_legacy,
)
from ovseg.errors import ConfigError, OutputError
from ovseg.preprocess import Transform

from .reference import aligned_paste_exact, aligned_paste_per_pixel, omz_segm_postprocess

RNG = np.random.default_rng(1234)


def smooth_map(rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """A realistic mask probability map: a blurred blob with values across [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.5)
    d = np.hypot(yy - cy, xx - cx) / r
    noise = rng.uniform(-0.15, 0.15, (size, size))
    return np.clip(1.0 / (1.0 + np.exp((d - 1.0) * 6)) + noise, 0, 1).astype(np.float32)


def random_box(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.integers(0, 5)
    if kind == 0:  # tiny / sub-pixel
        x, y = rng.uniform(-2, w + 2), rng.uniform(-2, h + 2)
        return np.array([x, y, x + rng.uniform(0, 1.5), y + rng.uniform(0, 1.5)], np.float32)
    if kind == 1:  # degenerate or inverted
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        return np.array([x, y, x - rng.uniform(0, 3), y + rng.uniform(-3, 3)], np.float32)
    if kind == 2:  # partly outside
        x, y = rng.uniform(-w / 2, w), rng.uniform(-h / 2, h)
        return np.array([x, y, x + rng.uniform(5, w), y + rng.uniform(5, h)], np.float32)
    x1, y1 = rng.uniform(0, w - 2), rng.uniform(0, h - 2)
    return np.array([x1, y1, rng.uniform(x1 + 1, w), rng.uniform(y1 + 1, h)], np.float32)


def full(crop: np.ndarray, offset: tuple[int, int], h: int, w: int) -> np.ndarray:
    out = np.zeros((h, w), bool)
    x, y = offset
    out[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
    return out


@pytest.mark.parametrize("image_hw", [(60, 80), (37, 23), (240, 320)])
def test_legacy_paste_equals_omz_bit_for_bit(image_hw: tuple[int, int]) -> None:
    h, w = image_hw
    rng = np.random.default_rng(h * w)
    for _ in range(150):
        prob, box = smooth_map(rng), random_box(rng, h, w)
        expected = omz_segm_postprocess(box, prob, h, w).astype(bool)
        crop, offset = paste_legacy(prob, tuple(legacy_boxes(box[None], 28)[0].tolist()), image_hw)
        np.testing.assert_array_equal(full(crop, offset, h, w), expected)


@pytest.mark.parametrize("image_hw", [(40, 50), (23, 31)])
def test_aligned_paste_matches_per_pixel_reference(image_hw: tuple[int, int]) -> None:
    h, w = image_hw
    rng = np.random.default_rng(h + w)
    agree = total = 0
    for _ in range(120):
        prob, box = smooth_map(rng), random_box(rng, h, w).astype(np.float64)
        expected = aligned_paste_per_pixel(prob, tuple(box), h, w)
        crop, offset = paste_aligned(prob, tuple(box), image_hw)
        got = full(crop, offset, h, w)
        agree += int((got == expected).sum())
        total += got.size
    assert agree / total >= 0.9999


def test_aligned_paste_whole_image_box_is_centred() -> None:
    prob = np.zeros((28, 28), np.float32)
    prob[7:21, 7:21] = 1.0  # the middle half
    crop, (x, y) = paste_aligned(prob, (0.0, 0.0, 56.0, 56.0), (56, 56))
    mask = full(crop, (x, y), 56, 56)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    # The middle half of a 56-pixel box, symmetric about the centre: pixels 14..41.
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (14, 41, 14, 41)


def _warp_affine_paste(prob: np.ndarray, box: tuple[float, float, float, float], image_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The aligned kernel before the separable one (commit c176012): one cv2.warpAffine."""
    height, width = image_hw
    bx0, by0, bx1, by1 = (float(v) for v in box)
    if not (bx1 - bx0 > 0.0 and by1 - by0 > 0.0):
        return np.zeros((0, 0), bool), (min(max(int(bx0), 0), width), min(max(int(by0), 0), height))
    x0 = min(max(math.floor(bx0) - 1, 0), width)
    y0 = min(max(math.floor(by0) - 1, 0), height)
    x1 = min(max(math.ceil(bx1) + 1, 0), width)
    y1 = min(max(math.ceil(by1) + 1, 0), height)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), bool), (x0, y0)
    size_y, size_x = prob.shape
    sx, sy = size_x / (bx1 - bx0), size_y / (by1 - by0)
    affine = np.array([[sx, 0.0, (x0 + 0.5 - bx0) * sx - 0.5], [0.0, sy, (y0 + 0.5 - by0) * sy - 0.5]])
    sampled = cv2.warpAffine(
        np.ascontiguousarray(prob, dtype=np.float32), affine, (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
    )
    return sampled >= 0.5, (x0, y0)


def _compare_with_old_and_exact(image_hw: tuple[int, int], n: int, seed: int) -> tuple[int, int, int, int]:
    """Paste n random maps/boxes with the new batch kernel; check regions against the old kernel
    exactly, and return (pixels, new vs old disagreements, new vs exact, old vs exact)."""
    h, w = image_hw
    rng = np.random.default_rng(seed)
    probs = np.stack([smooth_map(rng) for _ in range(n)])
    boxes = np.stack([random_box(rng, h, w) for _ in range(n)]).astype(np.float64)
    crops, offsets = paste_aligned_many(probs, boxes, image_hw)
    pixels = new_old = new_exact = old_exact = 0
    for prob, box, crop, offset in zip(probs, boxes, crops, offsets.tolist(), strict=True):
        old, old_offset = _warp_affine_paste(prob, tuple(box), image_hw)
        assert tuple(offset) == old_offset and crop.shape == old.shape and crop.dtype == np.bool_
        assert not crop.flags.writeable
        if crop.size == 0:
            continue
        x, y = offset
        value = aligned_paste_exact(prob, tuple(box), h, w)[y : y + crop.shape[0], x : x + crop.shape[1]]
        exact = value >= 0.5
        # Where the new kernel differs from the float64 evaluation, that value is a near-tie.
        assert np.all(np.abs(value[crop != exact] - 0.5) < 1e-5)
        pixels += crop.size
        new_old += int((crop != old).sum())
        new_exact += int((crop != exact).sum())
        old_exact += int((old != exact).sum())
    return pixels, new_old, new_exact, old_exact


@pytest.mark.parametrize("image_hw, n", [((40, 50), 300), ((23, 31), 300), ((480, 640), 200), ((1080, 1920), 100)])
def test_aligned_kernel_equals_the_warp_affine_one_and_the_exact_evaluation(image_hw: tuple[int, int], n: int) -> None:
    pixels, new_old, new_exact, old_exact = _compare_with_old_and_exact(image_hw, n, seed=image_hw[0] + n)
    assert pixels > 0
    # The same pixels as the old kernel but for float ties, and at least as close to exact.
    assert new_old <= max(2, pixels * 1e-6), (new_old, pixels)
    assert new_exact <= old_exact + max(1, pixels * 1e-7), (new_exact, old_exact, pixels)


def test_exact_reference_agrees_with_the_per_pixel_one() -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        prob, box = smooth_map(rng), random_box(rng, 30, 40).astype(np.float64)
        expected = aligned_paste_per_pixel(prob, tuple(box), 30, 40)
        np.testing.assert_array_equal(aligned_paste_exact(prob, tuple(box), 30, 40) >= 0.5, expected)


def test_aligned_many_equals_one_at_a_time_and_handles_edge_cases() -> None:
    rng = np.random.default_rng(3)
    probs = np.stack([smooth_map(rng) for _ in range(8)])
    probs[2] = 0.0  # nothing reaches 0.5: an all-False crop of the full region
    probs[3] = 1.0
    boxes = np.array(
        [[5.2, 6.1, 30.7, 22.0], [-50, -50, -10, -10], [3, 3, 20, 20], [0, 0, 50, 40],
         [10, 10, 10, 30], [49.9, 39.9, 80, 70], [12.0, 7.0, 12.0001, 7.0001], [20, 5, 18, 9]], np.float64)
    crops, offsets = paste_aligned_many(probs, boxes, (40, 50))
    for i in range(len(boxes)):
        crop, offset = paste_aligned(probs[i], tuple(boxes[i]), (40, 50))
        np.testing.assert_array_equal(crops[i], crop)
        assert tuple(offsets[i]) == offset
    assert crops[1].shape == (0, 0) and crops[4].shape == (0, 0) and crops[7].shape == (0, 0)
    assert crops[2].shape == (19, 19) and not crops[2].any()
    assert crops[3][1:-1, 1:-1].all() and crops[3].shape == (40, 50)
    empty_crops, empty_offsets = paste_aligned_many(np.zeros((0, 28, 28), np.float32), np.zeros((0, 4)), (40, 50))
    assert empty_crops == () and empty_offsets.shape == (0, 2)


def outputs(classes, scores, boxes, slots=5, channels=81, m=28, maps=None):  # noqa: ANN001, ANN201
    cls = np.zeros(slots, np.int32)
    sc = np.zeros(slots, np.float32)
    bx = np.zeros((slots, 4), np.float32)
    cls[: len(classes)], sc[: len(scores)] = classes, scores
    if len(boxes):
        bx[: len(boxes)] = boxes
    raw = np.zeros((slots, channels, m, m), np.float32)
    for i, c in enumerate(classes):
        if 0 <= c < channels:
            raw[i, c] = 1.0 if maps is None else maps[i]
    return {"classes": cls, "scores": sc, "boxes": bx, "raw_masks": raw}


def test_gather_keeps_nonempty_slots_above_threshold_and_their_own_channel() -> None:
    out = outputs([3, 0, 5, 7], [0.9, 0.8, 0.3, 0.5], [[0, 0, 10, 10]] * 4)
    out["raw_masks"][0, 4] = 0.77  # another class's channel must not be used
    dets = gather_maskrcnn(out, threshold=0.5)
    assert dets.class_ids.tolist() == [3, 7] and dets.scores.tolist() == pytest.approx([0.9, 0.5])
    assert (dets.mask_probs == 1.0).all()
    assert len(gather_maskrcnn(out, threshold=0.0)) == 3  # class 0 dropped even at threshold 0


def test_gather_copies_out_of_the_outputs() -> None:
    out = outputs([1], [0.9], [[0, 0, 10, 10]])
    dets = gather_maskrcnn(out)
    out["raw_masks"][:] = 0.0
    out["boxes"][:] = 0.0
    assert dets.mask_probs.max() == 1.0 and dets.boxes.max() == 10.0


def test_gather_float_classes_and_degenerate_values(caplog: pytest.LogCaptureFixture) -> None:
    out = outputs([1, 2, 3, 4, 90], [0.9, np.nan, 0.7, 0.6, 0.9], [[0, 0, 5, 5]] * 5, channels=81)
    out["classes"] = out["classes"].astype(np.float32)
    out["classes"][4] = 90.0  # out of range for 81 channels
    out["boxes"][2, 1] = np.inf
    out["raw_masks"][3, 4, 0, 0] = np.nan
    with caplog.at_level(logging.WARNING, logger="ovseg.decode"):
        dets = gather_maskrcnn(out, threshold=0.0)
    assert dets.class_ids.tolist() == [1, 4]
    assert np.isfinite(dets.mask_probs).all() and dets.mask_probs[1, 0, 0] == 0.0
    assert "class ids outside" in caplog.text and "90" in caplog.text


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda o: o.pop("raw_masks"), r"expected an output named 'raw_masks'"),
        (lambda o: o.__setitem__("boxes", np.zeros((5, 5), np.float32)), r"expected boxes of shape \(5, 4\), got \(5, 5\)"),
        (lambda o: o.__setitem__("classes", np.zeros(4, np.int32)), r"expected classes of shape \(5,\), got \(4,\)"),
        (lambda o: o.__setitem__("raw_masks", np.zeros((5, 81, 28), np.float32)), r"expected raw_masks of shape"),
        (lambda o: o.__setitem__("scores", np.zeros((5, 1), np.float32)), r"expected scores of shape \(S,\)"),
    ],
)
def test_gather_structural_errors(change, message) -> None:  # noqa: ANN001
    out = outputs([1], [0.9], [[0, 0, 5, 5]])
    change(out)
    with pytest.raises(OutputError, match=message):
        gather_maskrcnn(out)


def test_all_empty_slots_give_an_empty_result() -> None:
    dets = gather_maskrcnn(outputs([], [], []), threshold=0.0)
    res = decode(dets, Transform((100, 200), (240, 480), (480, 640), 2.4))
    assert len(res) == 0 and res.masks.shape == (0, 100, 200) and res.image_hw == (100, 200)


@pytest.mark.parametrize("paste", ["legacy", "aligned"])
def test_decode_maps_boxes_back_with_separate_scales_and_clips(paste: str) -> None:
    # 333x500 image -> resized 426x640 (x scale 1.28, y scale 426/333)
    tf = Transform((333, 500), (426, 640), (480, 640), 1.28)
    boxes = np.array([[64, 42.6, 320, 213], [-20, -5, 700, 470], [10, 10, 10, 10]], np.float32)
    dets = Detections(boxes, np.array([0.9, 0.8, 0.7], np.float32), np.array([1, 2, 3], np.int32), np.ones((3, 28, 28), np.float32))
    res = decode(dets, tf, paste=paste)
    np.testing.assert_allclose(res.boxes[0], [50, 42.6 * 333 / 426, 250, 213 * 333 / 426], rtol=1e-6)
    np.testing.assert_allclose(res.boxes[1], [0, 0, 500, 333])
    assert res.masks.shape == (3, 333, 500)
    # A full-image box with a map of ones covers the image (but for the corners, where the
    # interpolation towards the zero border falls under 0.5).
    assert res.masks[1][20:-20, 20:-20].all() and res.masks[1].mean() > 0.99
    assert res.labels == ("person", "bicycle", "car")


def test_decode_rejects_unknown_paste() -> None:
    dets = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros((0, 28, 28), np.float32))
    with pytest.raises(ConfigError, match="expected paste 'legacy' or 'aligned', got 'nearest'"):
        decode(dets, Transform((10, 10), (10, 10), (10, 10), 1.0), paste="nearest")  # type: ignore[arg-type]


def test_results_come_by_descending_score_whatever_the_slot_order() -> None:
    from ovseg.decode import gather_labels_boxes_masks

    scores = np.array([0.3, 0.9, 0.5, 0.9, 0.0, 0.7], np.float32)
    out = {
        "classes": np.array([1, 2, 3, 4, 0, 5], np.int32),
        "scores": scores,
        "boxes": np.tile(np.array([[10, 10, 50, 50]], np.float32), (6, 1)),
        "raw_masks": np.full((6, 81, 28, 28), 0.9, np.float32),
    }
    tf = Transform(image_hw=(480, 640), resized_hw=(480, 640), input_hw=(480, 640), scale=1.0)
    res = decode(gather_maskrcnn(out, threshold=0.0), tf)
    assert res.scores.tolist() == pytest.approx([0.9, 0.9, 0.7, 0.5, 0.3])
    assert res.class_ids.tolist() == [2, 4, 5, 3, 1]  # ties keep the slot order
    newer = {
        "labels": np.array([0, 1, 2], np.int64),
        "boxes": np.array([[1, 1, 9, 9, 0.2], [1, 1, 9, 9, 0.8], [1, 1, 9, 9, 0.5]], np.float32),
        "masks": np.full((3, 28, 28), 0.9, np.float32),
    }
    assert gather_labels_boxes_masks(newer).class_ids.tolist() == [2, 3, 1]


@pytest.mark.parametrize("map_hw", [(20, 36), (224, 224), (1, 1)])
def test_aligned_kernel_other_map_sizes_equal_the_exact_evaluation(map_hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(map_hw[0])
    h, w = 90, 120
    probs = np.stack([cv2.resize(smooth_map(rng), map_hw[::-1], interpolation=cv2.INTER_LINEAR) for _ in range(40)])
    boxes = np.stack([random_box(rng, h, w) for _ in range(40)]).astype(np.float64)
    crops, offsets = paste_aligned_many(probs, boxes, (h, w))
    for prob, box, crop, (x, y) in zip(probs, boxes, crops, offsets.tolist(), strict=True):
        if crop.size:
            value = aligned_paste_exact(prob, tuple(box), h, w)[y : y + crop.shape[0], x : x + crop.shape[1]]
            assert np.all(np.abs(value[crop != (value >= 0.5)] - 0.5) < 1e-5)
            assert (crop != (value >= 0.5)).sum() <= 1
