"""Overlays: a new image, the caller's untouched, fixed colours per class, legible labels."""

from __future__ import annotations

import numpy as np
import pytest

from ovseg.draw import Overlay, class_color
from ovseg.result import Result


def crowd(n: int = 12) -> Result:
    """n overlapping instances whose boxes start at nearly the same corner."""
    boxes = np.array([[20 + 3 * i, 30 + 2 * i, 120 + 3 * i, 150] for i in range(n)], np.float32)
    return Result(
        boxes=boxes,
        scores=np.linspace(0.9, 0.3, n).astype(np.float32),
        class_ids=np.array([1 + i % 3 for i in range(n)], np.int32),
        image_hw=(200, 300),
        mask_crops=tuple(np.ones((100, 80), bool) for _ in range(n)),
        mask_offsets=np.array([[int(b[0]), int(b[1])] for b in boxes], np.int32),
    )


def test_overlay_returns_a_new_image_and_keeps_the_callers() -> None:
    image = np.full((200, 300, 3), 100, np.uint8)
    drawn = Overlay()(image, crowd())
    assert drawn is not image and drawn.shape == image.shape and drawn.dtype == np.uint8
    assert (image == 100).all() and (drawn != 100).any()


def test_mask_colour_is_the_class_colour_blend() -> None:
    res = crowd(1)
    drawn = Overlay(alpha=0.5, contours=False, boxes=False, labels=False)(np.zeros((200, 300, 3), np.uint8), res)
    expected = (np.array(class_color(1), np.float32) * 0.5).astype(np.uint8)
    assert drawn[100, 60].tolist() == expected.tolist() and drawn[5, 5].tolist() == [0, 0, 0]


def test_class_colours_are_fixed_and_distinct() -> None:
    colors = [class_color(c) for c in range(1, 81)]
    assert colors == [class_color(c) for c in range(1, 81)]
    assert len(set(colors)) == 80 and class_color(1) != class_color(2)


def test_labels_do_not_cover_each_other(monkeypatch: pytest.MonkeyPatch) -> None:
    tags: list[tuple[int, int, int, int]] = []
    original = Overlay._label

    def spy(self, canvas, text, box, color, placed):  # noqa: ANN001, ANN202
        original(self, canvas, text, box, color, placed)
        tags.append(placed[-1])

    monkeypatch.setattr(Overlay, "_label", spy)
    Overlay()(np.zeros((200, 300, 3), np.uint8), crowd(9))  # 9 tags fit in 200 rows
    assert len(tags) == 9
    for i, a in enumerate(tags):
        for b in tags[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_empty_result_draws_nothing() -> None:
    image = np.full((20, 30, 3), 7, np.uint8)
    np.testing.assert_array_equal(Overlay()(image, Result.empty((20, 30))), image)


def test_wrong_image_size_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected an image of size \(200, 300\), got \(20, 30\)"):
        Overlay()(np.zeros((20, 30, 3), np.uint8), crowd())
