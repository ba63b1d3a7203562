"""Reading a JPEG at a reduced scale when the network needs fewer pixels than the file holds.

libjpeg can decode at 1/2, 1/4 or 1/8 of the stored size inside the inverse DCT (OpenCV's
``IMREAD_REDUCED_COLOR_{2,4,8}``), several times faster than a full decode followed by a
resize. :func:`read_image_reduced` picks the largest such reduction that keeps both sides of
the decoded image at least as large as the network input (so the preprocessing still only
shrinks), reads the file's size from its frame header (SOF marker) without decoding it, and
returns the full-resolution size alongside the image, so that results can be mapped back:
``x_full = x_reduced * full_w / image.shape[1]`` (likewise y).

It changes the pixels the network sees (a DCT-domain downscale instead of a bilinear resize of
the full image), so it is not for the accuracy protocol; ``benchmarks/reduced_read.py``
measures what it does to AP (``--reduced-read`` of ``predict`` and ``bench`` opts in). Non-JPEG
files and JPEGs too small to reduce are read exactly as :func:`~ovseg.images.read_image` reads
them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from .images import decode_bytes, read_bytes

__all__ = ["REDUCTIONS", "jpeg_size", "reduction_for", "read_image_reduced"]

#: Scale denominators libjpeg decodes at, largest first, with OpenCV's flag for each.
REDUCTIONS: tuple[tuple[int, int], ...] = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)

# Start-of-frame markers (baseline, extended, progressive, lossless; Huffman and arithmetic).
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def jpeg_size(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """``(height, width)`` from a JPEG's frame header, or ``None`` if ``data`` is not a JPEG
    (or has no readable frame header). Reads only the markers before the first frame."""
    buf = memoryview(np.asarray(data, dtype=np.uint8).reshape(-1)) if isinstance(data, np.ndarray) else memoryview(data)
    n = len(buf)
    if n < 4 or buf[0] != 0xFF or buf[1] != 0xD8:
        return None
    pos = 2
    while pos + 4 <= n:
        if buf[pos] != 0xFF:
            return None
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        length = (buf[pos + 2] << 8) | buf[pos + 3]
        if marker in _SOF_MARKERS:
            if pos + 9 > n:
                return None
            height = (buf[pos + 5] << 8) | buf[pos + 6]
            width = (buf[pos + 7] << 8) | buf[pos + 8]
            return (height, width) if height and width else None
        if marker in (0xD9, 0xDA) or length < 2:  # end of image or scan before any frame
            return None
        pos += 2 + length
    return None


def reduction_for(image_hw: tuple[int, int], input_hw: tuple[int, int]) -> int:
    """The largest of 8, 4, 2 that keeps both sides of an ``image_hw`` image decoded at that
    reduction (libjpeg rounds up: ``ceil(side / r)``) at least as large as ``input_hw``; 1 if
    none does."""
    (h, w), (in_h, in_w) = image_hw, input_hw
    for r, _ in REDUCTIONS:
        if -(-h // r) >= in_h and -(-w // r) >= in_w:
            return r
    return 1


def read_image_reduced(
    path: str | Path, input_hw: tuple[int, int] | Callable[[tuple[int, int]], tuple[int, int]]
) -> tuple[np.ndarray, tuple[int, int]]:
    """Read an image for a network with input ``input_hw``, at the largest reduced scale that
    keeps it at least that large (see :func:`reduction_for`).

    Args:
        path: the image file.
        input_hw: the network input ``(h, w)``, or a function from the stored ``(H, W)`` to it
            (a model whose input turns with the image's orientation:
            :meth:`~ovseg.segmenter.Segmenter.input_hw_for`).

    Returns:
        the image and the file's full-resolution ``(H, W)``. A large enough JPEG comes back
        reduced, as BGR uint8 ``(h, w, 3)``; anything else exactly as
        :func:`~ovseg.images.read_image` decodes it (16-bit, gray and alpha kept).

    Raises:
        ImageError: naming the file: absent, empty, unreadable or not decodable.
    """
    data = read_bytes(path)
    stored_hw = jpeg_size(data)
    r = 1
    if stored_hw is not None:
        r = reduction_for(stored_hw, input_hw(stored_hw) if callable(input_hw) else input_hw)
    if r == 1:
        image = decode_bytes(data, path)
        return image, (int(image.shape[0]), int(image.shape[1]))
    # EXIF orientation is ignored, as ovseg's read_image (IMREAD_UNCHANGED) does: the frame
    # header's size is then the decoded image's.
    image = decode_bytes(data, path, dict(REDUCTIONS)[r] | cv2.IMREAD_IGNORE_ORIENTATION)
    assert stored_hw is not None
    return image, (int(stored_hw[0]), int(stored_hw[1]))
