"""Images uploaded by anyone who can reach a server: checked before they cost memory.

The pipeline model of ``ovseg serve`` takes encoded images from the network. Two limits keep
one request from taking the machine's memory:

- **Bytes**: an upload over ``max_bytes`` is refused (the HTTP server refuses it from its
  ``Content-Length`` before reading the body; see :mod:`ovseg.serve`).
- **Pixels**: a small file can decode to a huge image (a 40000 x 40000 PNG of one colour is a
  few hundred kilobytes and 4.8 GB decoded). The width and height are read from the file's own
  header (PNG ``IHDR``, JPEG start-of-frame) before anything is decoded, and an image over
  ``max_pixels`` is refused. Only PNG and JPEG are accepted: for them the header read here is
  the one the decoder (libpng, libjpeg) uses to allocate the image, and OpenCV decodes nothing
  else. OpenCV's own ``OPENCV_IO_MAX_IMAGE_PIXELS`` is not relied on: it is read once per
  process, and a refusal comes back as an anonymous failed decode, not as "too large".

Every refusal is an :class:`~ovseg.errors.ImageError` with one line saying what was expected
and what arrived.
"""

from __future__ import annotations

import numpy as np

from .errors import ImageError
from .images import decode_bytes
from .jpeg import jpeg_size

__all__ = ["PNG_SIGNATURE", "png_size", "image_header", "decode_upload"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """``(height, width)`` from a PNG's ``IHDR`` chunk (which the format puts first), or
    ``None`` if ``data`` is not a PNG with one."""
    head = bytes(data[:24])
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return (height, width) if height and width else None


def _describe(data: bytes) -> str:
    """What an upload looks like, for an error message: its size and first bytes."""
    head = data[:8]
    text = head.decode("ascii", "replace") if all(32 <= b < 127 for b in head) else head.hex(" ")
    return f"{len(data)} bytes starting {text!r}"


def image_header(data: bytes) -> tuple[str, tuple[int, int]]:
    """The format (``"png"`` or ``"jpeg"``) and ``(height, width)`` of an encoded image, from
    its header alone.

    Raises:
        ImageError: not a PNG or JPEG, or one without a readable size in its header.
    """
    if data[:8] == PNG_SIGNATURE:
        size = png_size(data)
        if size is None:
            raise ImageError(f"expected a PNG with an IHDR header giving its size, got {_describe(data)}")
        return "png", size
    if data[:2] == b"\xff\xd8":
        size = jpeg_size(data)
        if size is None:
            raise ImageError(f"expected a JPEG with a frame header giving its size, got {_describe(data)}")
        return "jpeg", size
    raise ImageError(f"expected a JPEG or PNG image, got {_describe(data) if data else 'an empty upload'}")


def decode_upload(data: bytes, *, max_bytes: int, max_pixels: int, name: str = "upload") -> np.ndarray:
    """Decode an uploaded PNG or JPEG as it is stored (like :func:`ovseg.images.read_image`:
    16-bit, gray and alpha kept), after checking its size in bytes and, from its header, in
    pixels.

    Args:
        data: the encoded file.
        max_bytes: largest accepted upload.
        max_pixels: largest accepted ``height * width``.
        name: what the error messages call the image.

    Raises:
        ImageError: over a limit, not a PNG or JPEG, or not decodable; one line naming ``name``.
    """
    if len(data) > max_bytes:
        raise ImageError(f"{name}: expected an upload of at most {max_bytes} bytes, got {len(data)} bytes")
    try:
        kind, (height, width) = image_header(data)
    except ImageError as error:
        raise ImageError(f"{name}: {error}") from None
    if height * width > max_pixels:
        raise ImageError(
            f"{name}: expected an image of at most {max_pixels} pixels, got a {kind.upper()} of "
            f"{width}x{height} = {height * width} pixels (refused before decoding)"
        )
    image = decode_bytes(np.frombuffer(data, dtype=np.uint8), name)
    if image.shape[:2] != (height, width):  # the decoder read another size than the header said
        raise ImageError(f"{name}: expected a {width}x{height} image as its header says, got {image.shape[1]}x{image.shape[0]}")
    return image
