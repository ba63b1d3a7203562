"""Image files: which names are images, listing them in a folder, decoding one.

The one image reader of ovseg's commands, sources, evaluation and benchmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import ImageError

__all__ = ["IMAGE_SUFFIXES", "is_image_file", "list_images", "read_bytes", "decode_bytes", "read_image", "image_hw"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2")


def is_image_file(path: Path) -> bool:
    """Whether ``path`` names an image by its suffix (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (by suffix), sorted by path; with ``recursive`` also those
    in its subfolders (hidden folders and files, names starting with ``.``, are skipped)."""
    folder = Path(folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in found
        if p.is_file() and is_image_file(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def read_bytes(path: str | Path) -> np.ndarray:
    """An image file's bytes as uint8.

    Raises:
        ImageError: naming the file: absent, empty or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageError(f"{path}: expected a readable image file, got {error.strerror or error}") from None
    if data.size == 0:
        raise ImageError(f"{path}: expected an image file, got an empty file")
    return data


def decode_bytes(data: np.ndarray, path: str | Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """``cv2.imdecode`` of a file's bytes; :class:`ImageError` naming ``path`` when they are not
    an image OpenCV decodes."""
    image = cv2.imdecode(data, flags)
    if image is None:
        raise ImageError(f"{path}: expected an image OpenCV can decode (JPEG, PNG, BMP, TIFF, WebP), got undecodable data")
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file as it is stored (16-bit, gray and alpha kept; the preprocessor
    converts them).

    Raises:
        ImageError: naming the file: absent, empty, unreadable or not decodable.
    """
    return decode_bytes(read_bytes(path), path)


def image_hw(image: Any) -> tuple[int, int]:
    """``(height, width)`` of anything with an array's ``shape`` of rank 2 or more; ``(0, 0)``
    for anything else (the preprocessor then says what is wrong with it)."""
    shape = getattr(image, "shape", ())
    return (int(shape[0]), int(shape[1])) if len(shape) >= 2 else (0, 0)
