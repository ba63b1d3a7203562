"""ovseg.uploads: the header read that keeps decompression bombs out, against OpenCV's own
reading of the same files."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from ovseg.errors import ImageError
from ovseg.uploads import decode_upload, image_header, png_size

LIMITS = {"max_bytes": 10 * 2**20, "max_pixels": 10_000_000}


def png_of(width: int, height: int, *, idat: bytes | None = None) -> bytes:
    """A PNG header for ``width`` x ``height`` 8-bit gray, with ``idat`` (default: all black)."""
    if idat is None:
        idat = zlib.compress(b"".join(b"\x00" + b"\x00" * width for _ in range(height)))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("ext", [".png", ".jpg"])
@pytest.mark.parametrize("hw", [(1, 1), (37, 101), (480, 640), (1080, 1920)])
def test_the_header_size_is_what_opencv_decodes(ext: str, hw: tuple[int, int]) -> None:
    image = np.random.default_rng(0).integers(0, 256, (*hw, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(ext, image)
    assert ok
    data = encoded.tobytes()
    assert image_header(data) == ("png" if ext == ".png" else "jpeg", hw)
    decoded = decode_upload(data, **LIMITS)
    assert decoded.shape == (*hw, 3)
    np.testing.assert_array_equal(decoded, cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED))


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    # The header of a 40000 x 40000 PNG with a truncated body: if anything tried to decode it,
    # it would allocate 1.6 GB before finding out. The refusal comes first.
    bomb = png_of(40_000, 40_000, idat=zlib.compress(b"\x00" * 1000))
    assert png_size(bomb) == (40_000, 40_000)
    with pytest.raises(ImageError) as caught:
        decode_upload(bomb, name="bomb.png", **LIMITS)
    assert str(caught.value) == ("bomb.png: expected an image of at most 10000000 pixels, got a PNG of 40000x40000 = "
                                 "1600000000 pixels (refused before decoding)")


def test_a_jpeg_frame_header_over_the_limit_is_refused() -> None:
    ok, encoded = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(encoded.tobytes())
    sof = next(i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
    data[sof + 5:sof + 9] = struct.pack(">HH", 60_000, 60_000)
    with pytest.raises(ImageError, match=r"got a JPEG of 60000x60000 = 3600000000 pixels \(refused before decoding\)"):
        decode_upload(bytes(data), **LIMITS)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "upload: expected a JPEG or PNG image, got an empty upload"),
        (b"GIF89a\x01\x00", "upload: expected a JPEG or PNG image, got 8 bytes starting '47 49 46 38 39 61 01 00'"),
        (b"<html><body>", "upload: expected a JPEG or PNG image, got 12 bytes starting '<html><b'"),
        (b"BM\x00\x00\x00\x00\x00\x00", "upload: expected a JPEG or PNG image, got 8 bytes starting '42 4d 00 00 00 00 00 00'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "upload: expected a PNG with an IHDR header giving its size, got 10 bytes"),
        (b"\xff\xd8\xff\xd9", "upload: expected a JPEG with a frame header giving its size, got 4 bytes"),
        (png_of(4, 4, idat=b"garbage"), "upload: expected an image OpenCV can decode"),
    ],
    ids=["empty", "gif", "html", "bmp", "png-no-ihdr", "jpeg-no-frame", "png-bad-data"],
)
def test_what_is_not_an_acceptable_image_is_one_line(data: bytes, message: str) -> None:
    with pytest.raises(ImageError) as caught:
        decode_upload(data, **LIMITS)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_an_upload_over_the_byte_limit_is_refused_before_its_header_is_read() -> None:
    with pytest.raises(ImageError, match=r"^upload: expected an upload of at most 100 bytes, got 101 bytes$"):
        decode_upload(b"\x00" * 101, max_bytes=100, max_pixels=10)
