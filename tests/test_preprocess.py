"""Preprocessing: the protocol's sizes, padding, layout, im_info, and input conversions."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ovseg.errors import ImageError
from ovseg.preprocess import as_bgr, fit_size, preprocess


def reference_fit(h: int, w: int, win_h: int = 480, win_w: int = 640) -> tuple[int, int]:
    """The accuracy checker's fit_to_window, written out."""
    im_scale = min(float(win_h) / float(h), float(win_w) / float(w))
    return int(h * im_scale), int(w * im_scale)


@pytest.mark.parametrize(
    "hw, expected",
    [
        ((480, 640), (480, 640)),  # already the window
        ((426, 640), (426, 640)),  # COCO landscape: width-bound
        ((640, 480), (480, 360)),  # portrait: height-bound
        ((1080, 1920), (360, 640)),
        ((3000, 4000), (480, 640)),
        ((7, 5), (480, 342)),  # tiny: upscaled
        ((40, 3000), (8, 640)),
        ((333, 500), (426, 640)),
    ],
)
def test_fit_size_matches_protocol(hw: tuple[int, int], expected: tuple[int, int]) -> None:
    (new_h, new_w), s = fit_size(hw, (480, 640))
    assert (new_h, new_w) == expected == reference_fit(*hw)
    assert s == min(480 / hw[0], 640 / hw[1])


def test_fit_size_never_zero() -> None:
    (new_h, new_w), _ = fit_size((1, 10000), (480, 640))
    assert (new_h, new_w) == (1, 640)


def test_im_data_layout_padding_and_values() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 500, 3), dtype=np.uint8)
    im_data, im_info, tf = preprocess(image)
    new_h, new_w = reference_fit(300, 500)
    assert im_data.shape == (1, 3, 480, 640) and im_data.dtype == np.float32
    expected = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(im_data[0, :, :new_h, :new_w], expected.transpose(2, 0, 1).astype(np.float32))
    assert not im_data[0, :, new_h:, :].any() and not im_data[0, :, :, new_w:].any()
    np.testing.assert_array_equal(im_info, np.array([[new_h, new_w, 1.0]], np.float32))
    assert tf.image_hw == (300, 500) and tf.resized_hw == (new_h, new_w)
    assert tf.scale_x == new_w / 500 and tf.scale_y == new_h / 300


def test_channel_order_is_bgr_unchanged() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30  # B, G, R
    im_data, _, _ = preprocess(image)
    assert im_data[0, :, 5, 5].tolist() == [10.0, 20.0, 30.0]


def test_im_info_scale_option() -> None:
    _, im_info, tf = preprocess(np.zeros((960, 1280, 3), np.uint8), im_info_scale=True)
    np.testing.assert_allclose(im_info, [[480, 640, 0.5]])
    assert tf.scale == 0.5


def test_out_buffer_is_fully_overwritten() -> None:
    out = np.full((1, 3, 480, 640), 7.0, np.float32)
    im_data, _, _ = preprocess(np.full((100, 100, 3), 1, np.uint8), out=out)
    assert im_data is out
    assert set(np.unique(out).tolist()) == {0.0, 1.0}


def test_stretch_resize() -> None:
    im_data, im_info, tf = preprocess(np.full((100, 50, 3), 9, np.uint8), (64, 64), resize="stretch")
    assert (im_data == 9).all()
    assert im_info.tolist() == [[64, 64, 1]] and tf.scale_x == 64 / 50 and tf.scale_y == 64 / 100


def test_caller_image_not_modified() -> None:
    image = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    before = image.copy()
    preprocess(image)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize(
    "image, expected_first_pixel",
    [
        (np.full((4, 5), 77, np.uint8), [77, 77, 77]),
        (np.full((4, 5, 1), 77, np.uint8), [77, 77, 77]),
        (np.dstack([np.full((4, 5), v, np.uint8) for v in (1, 2, 3, 255)]), [1, 2, 3]),
        (np.full((4, 5, 3), 65535, np.uint16), [255, 255, 255]),
        (np.full((4, 5), 257 * 10, np.uint16), [10, 10, 10]),
        (np.asfortranarray(np.full((4, 5, 3), 5, np.uint8)), [5, 5, 5]),
        (np.full((8, 10, 3), 6, np.uint8)[::2, ::2], [6, 6, 6]),  # non-contiguous view
    ],
)
def test_as_bgr_conversions(image: np.ndarray, expected_first_pixel: list[int]) -> None:
    bgr = as_bgr(image)
    assert bgr.dtype == np.uint8 and bgr.ndim == 3 and bgr.shape[2] == 3
    assert bgr[0, 0].tolist() == expected_first_pixel


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((4, 5, 2), np.uint8), r"expected an image of shape .* got shape \(4, 5, 2\)"),
        (np.zeros((4, 5, 3, 1), np.uint8), r"got shape \(4, 5, 3, 1\)"),
        (np.zeros((0, 5, 3), np.uint8), r"at least 1x1 pixels, got shape \(0, 5, 3\)"),
        (np.zeros((4, 5, 3), np.float32), r"expected a uint8 or uint16 image, got dtype float32"),
        (np.zeros((4, 5, 3), bool), r"got dtype bool"),
        ([[1, 2], [3, 4]], r"expected a numpy array .* got list"),
    ],
)
def test_as_bgr_refuses(image: object, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        as_bgr(image)  # type: ignore[arg-type]
