"""COCO RLE from box-local crops, against pycocotools' own encoder on full masks."""

from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_util
import pytest

from ovseg.coco import rle_from_mask
from ovseg.result import Result
from ovseg.rle import compress_counts, rle_counts, rle_from_crop


def full(crop: np.ndarray, offset: tuple[int, int], hw: tuple[int, int]) -> np.ndarray:
    out = np.zeros(hw, bool)
    x, y = offset
    out[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
    return out


def test_rle_from_crop_equals_pycocotools_random() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        hw = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
        ch, cw = int(rng.integers(0, hw[0] + 1)), int(rng.integers(0, hw[1] + 1))
        y, x = int(rng.integers(0, hw[0] - ch + 1)), int(rng.integers(0, hw[1] - cw + 1))
        crop = rng.random((ch, cw)) < rng.choice([0.0, 0.3, 0.9, 1.0])
        expected = mask_util.encode(np.asfortranarray(full(crop, (x, y), hw).astype(np.uint8)))
        got = rle_from_crop(crop, (x, y), hw)
        assert got["counts"] == expected["counts"].decode() and got["size"] == list(hw)


@pytest.mark.parametrize(
    "hw, crop_hw, offset, fill",
    [((5, 4), (5, 4), (0, 0), True), ((5, 4), (5, 2), (1, 0), True), ((6, 6), (0, 0), (6, 6), True), ((3, 3), (3, 3), (0, 0), False)],
)
def test_rle_edge_cases(hw, crop_hw, offset, fill) -> None:  # noqa: ANN001
    crop = np.full(crop_hw, fill)
    assert rle_from_crop(crop, offset, hw) == rle_from_mask(full(crop, offset, hw))


def test_result_to_coco() -> None:
    res = Result(
        boxes=np.array([[1.5, 2, 4, 6]], np.float32),
        scores=np.array([0.876543], np.float32),
        class_ids=np.array([12], np.int32),  # contiguous 12 = stop sign, COCO id 13
        image_hw=(8, 8),
        mask_crops=(np.ones((3, 2), bool),),
        mask_offsets=np.array([[2, 3]], np.int32),
    )
    (det,) = res.to_coco(image_id=42)
    assert det["image_id"] == 42 and det["category_id"] == 13
    assert det["bbox"] == [1.5, 2.0, 2.5, 4.0] and det["score"] == pytest.approx(0.87654, abs=1e-5)
    decoded = mask_util.decode({"size": det["segmentation"]["size"], "counts": det["segmentation"]["counts"].encode()})
    assert decoded.sum() == 6 and decoded[3:6, 2:4].all()
    (record,) = res.to_records()
    assert record["segmentation"] == det["segmentation"] and record["category_id"] == 13
    assert record["box"] == [1.5, 2.0, 4.0, 6.0] and record["label"] == "stop sign"


def test_compressed_counts_equal_pycocotools_on_long_and_odd_runs() -> None:
    # Runs around the 5-bit chunk edges, large ones, and differences that go negative.
    rng = np.random.default_rng(3)
    for _ in range(300):
        runs = rng.choice([0, 1, 15, 16, 31, 32, 33, 1023, 1024, 70000], size=rng.integers(1, 12))
        counts = [int(runs[0])] + [max(1, int(r)) for r in runs[1:]]
        total = sum(counts)
        ref = mask_util.frPyObjects({"size": [total, 1], "counts": counts}, total, 1)["counts"].decode()
        assert compress_counts(counts) == ref, counts


def test_rle_counts_of_an_empty_crop_is_one_zero_run() -> None:
    assert rle_counts(np.zeros((3, 4), bool), (1, 1), (10, 10)) == [100]


def test_vectorized_compression_equals_the_one_value_at_a_time_loop() -> None:
    from ovseg.rle import compress_counts_reference

    rng = np.random.default_rng(5)
    for _ in range(2000):
        scale = int(rng.choice([2, 16, 17, 33, 1025, 10**6, 2**40]))
        counts = [int(v) for v in rng.integers(0, scale, size=rng.integers(1, 40))]
        counts = [counts[0]] + [max(1, v) for v in counts[1:]]
        assert compress_counts(counts) == compress_counts_reference(counts), counts
    assert compress_counts([]) == ""
