"""COCO RLE from box-local crops, against pycocotools' own encoder on full masks."""

from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_util
import pytest

from ovseg.coco import result_to_coco, rle_from_crop, rle_from_mask
from ovseg.result import Result


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
    (det,) = result_to_coco(res, image_id=42)
    assert det["image_id"] == 42 and det["category_id"] == 13
    assert det["bbox"] == [1.5, 2.0, 2.5, 4.0] and det["score"] == pytest.approx(0.87654, abs=1e-5)
    decoded = mask_util.decode({"size": det["segmentation"]["size"], "counts": det["segmentation"]["counts"].encode()})
    assert decoded.sum() == 6 and decoded[3:6, 2:4].all()
    assert res.to_coco(42) == [det]
