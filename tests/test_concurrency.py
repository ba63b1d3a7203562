"""A Segmenter shared between threads: calls are serialized, results stay with their callers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import ovseg

from .conftest import F32


def test_shared_segmenter_between_threads(tiny_model: Path) -> None:
    seg = ovseg.Segmenter(tiny_model, threshold=0.0, config=F32)
    sizes = [(h, w) for h in (50, 480, 700, 1080) for w in (40, 640, 1920)]
    expected = {hw: seg(np.zeros((*hw, 3), np.uint8)).boxes.copy() for hw in sizes}

    def work(hw: tuple[int, int]) -> tuple[tuple[int, int], np.ndarray, tuple[int, int]]:
        res = seg(np.zeros((*hw, 3), np.uint8))
        return hw, res.boxes, res.image_hw

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, sizes * 4))
    assert len(results) == len(sizes) * 4
    for hw, boxes, image_hw in results:
        assert image_hw == hw
        np.testing.assert_array_equal(boxes, expected[hw])
