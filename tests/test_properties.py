"""Property-based tests: any image size and any box values give sane results."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ovseg.decode import decode, gather_maskrcnn
from ovseg.preprocess import Transform, fit_size, preprocess

sides = st.integers(min_value=1, max_value=8000)
any_float = st.floats(allow_nan=True, allow_infinity=True, width=32)
wild_float = st.one_of(any_float, st.floats(-1e4, 1e4, width=32))


@settings(max_examples=300, deadline=None)
@given(h=sides, w=sides)
def test_fit_size_stays_in_the_window(h: int, w: int) -> None:
    (new_h, new_w), s = fit_size((h, w), (480, 640))
    assert 1 <= new_h <= 480 and 1 <= new_w <= 640
    # one side touches the window (up to the protocol's truncation)
    assert new_h >= 479 or new_w >= 639 or min(new_h, new_w) == 1
    # the aspect ratio is kept: each side is the scaled side truncated (at least 1 pixel)
    for side, new in ((h, new_h), (w, new_w)):
        assert side * s - 1 < new <= max(1.0, side * s) + 1e-6


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 1200), w=st.integers(1, 1200), portrait=st.booleans())
def test_preprocess_any_size(h: int, w: int, portrait: bool) -> None:
    input_hw = (640, 480) if portrait else (480, 640)
    image = np.full((h, w, 3), 200, np.uint8)
    im_data, im_info, tf = preprocess(image, input_hw)
    new_h, new_w = tf.resized_hw
    assert im_data.shape == (1, 3, *input_hw) and im_data.dtype == np.float32
    assert np.isfinite(im_data).all() and (im_data[0, :, :new_h, :new_w] == 200).all()
    assert im_data[0, :, new_h:, :].sum() == 0 and im_data[0, :, :, new_w:].sum() == 0
    assert im_info.tolist() == [[new_h, new_w, 1.0]]


def _outputs(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, maps: np.ndarray) -> dict[str, np.ndarray]:
    raw = np.zeros((len(boxes), 81, 28, 28), np.float32)
    for i, c in enumerate(classes):
        if 0 <= c < 81:
            raw[i, c] = maps[i]
    return {"classes": classes, "scores": scores, "boxes": boxes, "raw_masks": raw}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    image_hw=st.tuples(sides, sides),
    boxes=arrays(np.float32, (6, 4), elements=wild_float),
    scores=arrays(np.float32, (6,), elements=st.one_of(any_float, st.floats(0, 1, width=32))),
    classes=arrays(np.int32, (6,), elements=st.integers(-3, 100)),
    map_value=st.one_of(any_float, st.floats(0, 1, width=32)),
    paste=st.sampled_from(["legacy", "aligned"]),
)
def test_decode_any_outputs(image_hw, boxes, scores, classes, map_value, paste) -> None:  # noqa: ANN001
    h, w = image_hw
    (new_h, new_w), s = fit_size(image_hw, (480, 640))
    tf = Transform(image_hw, (new_h, new_w), (480, 640), s)
    # Keep the boxes' area bounded so a test run stays small: full masks are H x W each.
    boxes = np.where(np.isfinite(boxes), np.clip(boxes, -700, 700), boxes).astype(np.float32)
    maps = np.full((6, 28, 28), map_value, np.float32)
    res = decode(gather_maskrcnn(_outputs(boxes, scores, classes, maps), threshold=0.0), tf, paste=paste)
    assert res.image_hw == (h, w)
    assert res.boxes.dtype == np.float32 and np.isfinite(res.boxes).all()
    assert (res.boxes[:, 0::2] >= 0).all() and (res.boxes[:, 0::2] <= w).all()
    assert (res.boxes[:, 1::2] >= 0).all() and (res.boxes[:, 1::2] <= h).all()
    assert ((res.class_ids >= 1) & (res.class_ids <= 80)).all() and np.isfinite(res.scores).all()
    for crop, (x, y) in zip(res.mask_crops, res.mask_offsets.tolist(), strict=True):
        assert crop.dtype == np.bool_ and x + crop.shape[1] <= w and y + crop.shape[0] <= h
    if h * w <= 4_000_000:
        assert res.masks.shape == (len(res), h, w)
