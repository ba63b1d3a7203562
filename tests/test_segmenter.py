"""The whole call, on generated models whose outputs are known."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

import ovseg
from ovseg.errors import ConfigError, DeviceError
from ovseg.synthetic import disc_map

from .conftest import F32
from .reference import omz_segm_postprocess


@pytest.fixture(scope="module")
def segmenter(tiny_model: Path) -> ovseg.Segmenter:
    return ovseg.Segmenter(tiny_model, device="CPU", threshold=0.0, config=F32)


@pytest.mark.parametrize(
    "image_hw",
    [(480, 640), (426, 640), (1080, 1920), (640, 480), (1000, 300), (1, 1), (7, 5), (40, 3000), (3000, 4000)],
    ids=["exact", "coco", "1080p", "portrait", "tall", "1x1", "tiny", "strip", "huge"],
)
def test_boxes_map_back_exactly(segmenter: ovseg.Segmenter, image_hw: tuple[int, int]) -> None:
    """The model returns boxes as fractions of im_info's (h, w); mapped back they must be the
    same fractions of the original image: exact for im_info, resize and scale handling."""
    h, w = image_hw
    res = segmenter(np.zeros((h, w, 3), np.uint8))
    assert res.image_hw == (h, w)
    np.testing.assert_allclose(res.boxes, [[0, 0, w, h], [w / 2, h / 2, w, h]], rtol=1e-5, atol=1e-4)
    assert res.labels == ("person", "car") and res.class_ids.tolist() == [1, 3]
    assert res.masks.shape == (2, h, w)


def test_masks_match_the_omz_reference(tiny_model: Path) -> None:
    seg = ovseg.Segmenter(tiny_model, threshold=0.0, config=F32, paste="legacy")
    res = seg(np.zeros((333, 500, 3), np.uint8))
    for i in range(len(res)):
        expected = omz_segm_postprocess(res.boxes[i], disc_map(28), 333, 500).astype(bool)
        np.testing.assert_array_equal(res.mask(i), expected)


def test_threshold_and_class_zero(make_model) -> None:  # noqa: ANN001
    path = make_model(classes=[2, 0, 5, 1], scores=[0.95, 0.9, 0.5, 0.2], boxes=[[10, 10, 100, 100]] * 4)
    seg = ovseg.Segmenter(path, threshold=0.5, config=F32)
    res = seg(np.zeros((480, 640, 3), np.uint8))
    assert res.class_ids.tolist() == [2, 5] and res.scores.tolist() == pytest.approx([0.95, 0.5])
    assert set(res.speed_ms) == {"preprocess", "infer", "decode"}


def test_empty_outputs_are_a_normal_result(make_model) -> None:  # noqa: ANN001
    seg = ovseg.Segmenter(make_model(classes=[], scores=[], boxes=np.zeros((0, 4))), threshold=0.0, config=F32)
    res = seg(np.zeros((100, 200, 3), np.uint8))
    assert len(res) == 0 and res.masks.shape == (0, 100, 200)


def test_degenerate_outputs_do_not_crash(make_model) -> None:  # noqa: ANN001
    maps = np.stack([np.full((28, 28), np.nan, np.float32), disc_map(), disc_map(), disc_map()])
    path = make_model(
        classes=[1, 2, 3, 4],
        scores=[0.9, np.nan, 0.8, 0.7],
        boxes=[[10, 10, 50, 50], [0, 0, 10, 10], [np.inf, 0, 5, 5], [600, 400, 100, 50]],
        mask_maps=maps,
    )
    res = ovseg.Segmenter(path, threshold=0.0, config=F32)(np.zeros((480, 640, 3), np.uint8))
    assert res.class_ids.tolist() == [1, 4]  # NaN score and inf box dropped
    assert not res.masks[0].any()  # NaN map counts as zero
    assert np.isfinite(res.boxes).all()


def test_short_long_uses_the_transposed_input_for_portraits(tiny_model: Path) -> None:
    seg = ovseg.Segmenter(tiny_model, threshold=0.0, config=F32, resize="short-long")
    assert set(seg.compiled_models) == {(480, 640), (640, 480)}
    assert seg.input_hw_for((1000, 600)) == (640, 480) and seg.input_hw_for((600, 1000)) == (480, 640)
    res = seg(np.zeros((1000, 600, 3), np.uint8))
    np.testing.assert_allclose(res.boxes[0], [0, 0, 600, 1000], rtol=1e-5)


def test_aligned_paste_is_the_default(tiny_model: Path) -> None:
    seg = ovseg.Segmenter(tiny_model, threshold=0.0, config=F32)
    assert seg.paste == "aligned"
    res = seg(np.zeros((480, 640, 3), np.uint8))
    # The disc of radius 0.4 of the box covers ~pi*0.16 of it.
    assert res.masks[0].mean() == pytest.approx(np.pi * 0.16, abs=0.01)


def test_caller_image_untouched(segmenter: ovseg.Segmenter) -> None:
    image = np.random.default_rng(3).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    before = image.copy()
    segmenter(image)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"threshold": 1.5}, ConfigError, r"expected a threshold in \[0, 1\], got 1.5"),
        ({"paste": "cubic"}, ConfigError, r"expected paste 'legacy' or 'aligned', got 'cubic'"),
        ({"resize": "crop"}, ConfigError, r"expected resize 'fit', 'short-long', 'stretch' or None, got 'crop'"),
        ({"device": "TPU"}, DeviceError,
         rf"device 'TPU' is not available: expected one of {re.escape(', '.join(ov.Core().available_devices))}$"),
    ],
)
def test_constructor_errors(tiny_model: Path, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ovseg.Segmenter(tiny_model, **kwargs)
