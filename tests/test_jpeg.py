"""Reduced-scale JPEG reading: the header parser, the choice of reduction, the read itself."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ovseg.errors import ImageError
from ovseg.images import read_image
from ovseg.jpeg import jpeg_size, read_image_reduced, reduction_for
from ovseg.sources import ImageSource


def _photo(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) % 256)], axis=2).astype(np.uint8)


def _write(tmp_path: Path, name: str, image: np.ndarray, *params: int) -> Path:
    path = tmp_path / name
    ok, data = cv2.imencode(path.suffix, image, list(params))
    assert ok
    path.write_bytes(data.tobytes())
    return path


@pytest.mark.parametrize(
    "image_hw, expected",
    [
        ((1080, 1920), 2),  # 540x960 >= 480x640; 270x480 is not
        ((960, 1280), 2),
        ((959, 1280), 2),  # ceil(959 / 2) = 480
        ((958, 1280), 1),  # 479 rows at 1/2
        ((3840, 5120), 8),
        ((3000, 4000), 4),  # 1/8 would be 375x500
        ((480, 640), 1),
        ((2160, 1000), 1),  # too narrow for 1/2 on the width
        ((100, 100), 1),
    ],
)
def test_reduction_is_the_largest_that_keeps_both_sides_at_least_the_input(image_hw: tuple[int, int], expected: int) -> None:
    assert reduction_for(image_hw, (480, 640)) == expected


def test_reduction_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    for h, w in rng.integers(1, 6000, (300, 2)).tolist():
        ok = [r for r in (1, 2, 4, 8) if -(-h // r) >= 480 and -(-w // r) >= 640]
        assert reduction_for((h, w), (480, 640)) == max(ok, default=1)


@pytest.mark.parametrize("progressive", [0, 1])
def test_jpeg_size_reads_the_frame_header(tmp_path: Path, progressive: int) -> None:
    path = _write(tmp_path, "a.jpg", _photo(37, 53), cv2.IMWRITE_JPEG_PROGRESSIVE, progressive)
    assert jpeg_size(path.read_bytes()) == (37, 53)
    assert jpeg_size(np.fromfile(path, np.uint8)) == (37, 53)


def test_jpeg_size_of_other_data_is_none(tmp_path: Path) -> None:
    png = _write(tmp_path, "a.png", _photo(10, 12))
    assert jpeg_size(png.read_bytes()) is None
    assert jpeg_size(b"") is None and jpeg_size(b"\xff\xd8\xff") is None
    assert jpeg_size(b"\xff\xd8" + b"\x00" * 20) is None


def test_fixture_jpegs_sizes_match_a_full_decode(coco_images: Path) -> None:
    for path in sorted(coco_images.glob("*.jpg"))[:20]:
        assert jpeg_size(path.read_bytes()) == cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION).shape[:2]


def test_read_reduced_large_jpeg(tmp_path: Path) -> None:
    full = _photo(1080, 1920)
    path = _write(tmp_path, "big.jpg", full, cv2.IMWRITE_JPEG_QUALITY, 95)
    image, full_hw = read_image_reduced(path, (480, 640))
    assert full_hw == (1080, 1920) and image.shape == (540, 960, 3) and image.dtype == np.uint8
    # The DCT-domain downscale is close to an area resize of the full decode.
    area = cv2.resize(cv2.imread(str(path)), (960, 540), interpolation=cv2.INTER_AREA)
    assert np.abs(image.astype(int) - area.astype(int)).mean() < 2.0


def test_read_reduced_small_jpeg_and_png_are_read_whole(tmp_path: Path) -> None:
    small = _write(tmp_path, "small.jpg", _photo(480, 640))
    image, full_hw = read_image_reduced(small, (480, 640))
    assert image.shape == (480, 640, 3) and full_hw == (480, 640)
    png = _write(tmp_path, "big.png", _photo(1080, 1920))
    image, full_hw = read_image_reduced(png, (480, 640))
    assert image.shape == (1080, 1920, 3) and full_hw == (1080, 1920)


def test_read_reduced_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        read_image_reduced(tmp_path / "absent.jpg", (480, 640))
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="got an empty file"):
        read_image_reduced(tmp_path / "empty.jpg", (480, 640))
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff\xc0\x00\x11\x08\x04\x38\x07\x80" + b"\x00" * 50)
    with pytest.raises(ImageError, match="expected an image OpenCV can decode"):
        read_image_reduced(tmp_path / "junk.jpg", (480, 640))


def test_read_reduced_with_a_size_function_and_a_16_bit_png(tmp_path: Path) -> None:
    path = _write(tmp_path, "tall.jpg", _photo(1920, 1080), cv2.IMWRITE_JPEG_QUALITY, 95)
    seen: list[tuple[int, int]] = []

    def input_hw_for(hw: tuple[int, int]) -> tuple[int, int]:  # a network that turns with the image
        seen.append(hw)
        return (640, 480) if hw[0] > hw[1] else (480, 640)

    image, full_hw = read_image_reduced(path, input_hw_for)
    assert seen == [(1920, 1080)] and full_hw == (1920, 1080) and image.shape == (960, 540, 3)
    # Anything not reduced comes back exactly as read_image decodes it.
    deep = (np.arange(30 * 40 * 3, dtype=np.uint16).reshape(30, 40, 3) * 50)
    png = _write(tmp_path, "deep.png", deep)
    image, full_hw = read_image_reduced(png, (480, 640))
    assert image.dtype == np.uint16 and np.array_equal(image, read_image(png)) and full_hw == (30, 40)


def test_image_source_reduce_to_marks_reduced_frames(tmp_path: Path) -> None:
    big = _write(tmp_path, "big.jpg", _photo(1080, 1920))
    small = _write(tmp_path, "small.jpg", _photo(480, 640))
    frames = list(ImageSource([big, small], reduce_to=lambda hw: (480, 640)))
    assert [f.image.shape for f in frames] == [(540, 960, 3), (480, 640, 3)]
    assert [f.full_hw for f in frames] == [(1080, 1920), None] and [f.path for f in frames] == [big, small]
    assert [f.full_hw for f in ImageSource([big, small])] == [None, None]
