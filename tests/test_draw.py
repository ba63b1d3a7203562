"""Overlays: a new image, the caller's untouched, fixed colours per class, legible labels."""

from __future__ import annotations

import numpy as np
import pytest

from ovseg.draw import Overlay, class_color
from ovseg.errors import ImageError
from ovseg.result import Result


def crowd(n: int = 12, *, distinct: bool = False) -> Result:
    """n overlapping instances whose boxes start at nearly the same corner (classes 1..3 in
    turn, or all different with ``distinct``)."""
    boxes = np.array([[20 + 3 * i, 30 + 2 * i, 120 + 3 * i, 150] for i in range(n)], np.float32)
    return Result(
        boxes=boxes,
        scores=np.linspace(0.9, 0.3, n).astype(np.float32),
        class_ids=np.array([1 + i if distinct else 1 + i % 3 for i in range(n)], np.int32),
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


def test_class_colours_are_fixed_distinct_and_saturated() -> None:
    # The golden-ratio hue walk, written out: hue k * 0.618... mod 1, saturation 0.75, value 1.
    import colorsys

    for c in (1, 2, 17, 80):
        r, g, b = colorsys.hsv_to_rgb((c * 0.618033988749895) % 1.0, 0.75, 1.0)
        assert class_color(c) == (int(b * 255), int(g * 255), int(r * 255))
    colors = [class_color(c) for c in range(1, 81)]
    assert len(set(colors)) == 80
    assert all(max(c) == 255 and min(c) <= 64 for c in colors)  # bright and saturated, legible tags
    # Neighbouring ids differ in hue by ~0.38 of the circle, far apart in colour.
    assert all(sum(abs(a - b) for a, b in zip(colors[i], colors[i + 1], strict=True)) > 100 for i in range(79))


def test_labels_do_not_cover_each_other() -> None:
    # Only the labels, each class of its own colour on black: every tag must be visible whole,
    # its pixels of its colour a box that overlaps no other tag's.
    res = crowd(9, distinct=True)  # 9 tags fit in 200 rows
    drawn = Overlay(masks=False, contours=False, boxes=False)(np.zeros((200, 300, 3), np.uint8), res)
    tags = []
    for class_id in res.class_ids.tolist():
        ys, xs = np.nonzero((drawn == np.array(class_color(class_id), np.uint8)).all(axis=2))
        assert ys.size, f"the tag of class {class_id} is covered"
        tags.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    for i, a in enumerate(tags):
        for b in tags[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_empty_result_draws_nothing() -> None:
    image = np.full((20, 30, 3), 7, np.uint8)
    np.testing.assert_array_equal(Overlay()(image, Result.empty((20, 30))), image)


def test_wrong_image_size_is_refused() -> None:
    with pytest.raises(ImageError, match=r"expected an image of size \(200, 300\), got \(20, 30\)"):
        Overlay()(np.zeros((20, 30, 3), np.uint8), crowd())
