"""COCO run-length encoding of box-local masks, in numpy and plain Python (no pycocotools).

Contract (pycocotools' conventions, hidden behind these functions):

- A COCO RLE of an ``(H, W)`` mask runs down the columns (column-major), alternating 0-runs and
  1-runs and starting with a (possibly empty) 0-run.
- :func:`rle_counts` computes those run lengths from a crop and its offset alone, without an
  ``H x W`` array; :func:`compress_counts` turns them into COCO's compressed string (LEB128-like,
  6 bits a character, each count after the second stored as the difference to the one two
  places before). Together (:func:`rle_from_crop`) they equal
  ``pycocotools.mask.encode(np.asfortranarray(full_mask))`` byte for byte (tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["rle_counts", "compress_counts", "compress_counts_reference", "rle_from_crop"]


def rle_counts(crop: np.ndarray, offset: tuple[int, int], image_hw: tuple[int, int]) -> list[int]:
    """Uncompressed COCO RLE counts of a ``(h, w)`` bool crop at ``offset`` = (x, y) in an
    ``image_hw`` image.

    Each crop column is padded with a zero above and below so that no run crosses columns;
    run boundaries found there are mapped to column-major image positions.
    """
    height, width = image_hw
    x0, y0 = offset
    h, w = crop.shape
    if h == 0 or w == 0 or not crop.any():
        return [height * width]
    padded = np.zeros((w, h + 2), dtype=np.int8)
    padded[:, 1:-1] = crop.T
    steps = np.diff(padded.ravel())
    starts = np.flatnonzero(steps == 1) + 1
    ends = np.flatnonzero(steps == -1) + 1

    def to_image(flat: np.ndarray) -> np.ndarray:
        col, row = np.divmod(flat, h + 2)
        return (x0 + col) * height + y0 + row - 1

    starts, ends = to_image(starts), to_image(ends)
    # A run that ends at the bottom of a full-height column and one that starts at the top of
    # the next column are one run in column-major order.
    joined = ends[:-1] == starts[1:]
    if joined.any():
        starts = np.concatenate([starts[:1], starts[1:][~joined]])
        ends = np.concatenate([ends[:-1][~joined], ends[-1:]])
    bounds = np.empty(2 * starts.size + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, height * width
    bounds[1:-1:2], bounds[2:-1:2] = starts, ends
    counts = np.diff(bounds).tolist()
    if counts[-1] == 0:  # the mask reaches the last pixel: no closing 0-run
        counts.pop()
    return counts


_MAX_CHUNKS = 13  # 5 bits each: enough for any int64 difference


def compress_counts(counts: list[int]) -> str:
    """COCO's compressed RLE string of uncompressed ``counts`` (pycocotools' ``rleToString``).

    Each value (from the third on, minus the value two places before) is written 5 bits at a
    time, least significant first, as characters ``48 + chunk``; bit 5 (``0x20``) marks that
    more chunks follow, and a chunk's bit 4 carries the sign for the last one. Vectorized over
    all values: chunk ``k`` of every value at once (:func:`compress_counts_reference` is the
    loop it is tested against).
    """
    x = np.asarray(counts, dtype=np.int64)
    if x.size == 0:
        return ""
    if x.size > 3:
        x[3:] -= np.asarray(counts[1:-2], dtype=np.int64)
    # Chunks needed by the largest magnitude (one more for the sign), not the int64 worst case.
    magnitude = int(np.abs(x).max())
    shifts = 5 * np.arange(min(_MAX_CHUNKS, magnitude.bit_length() // 5 + 2), dtype=np.int64)
    chunks = (x[:, None] >> shifts) & 0x1F  # (n, K): chunk k of each value
    rest = x[:, None] >> (shifts + 5)  # what is left after chunk k (arithmetic shift)
    more = np.where(chunks & 0x10, rest != -1, rest != 0)
    # A value ends at its first chunk with nothing more to say; later chunks are not written.
    ended = np.cumsum(~more, axis=1)
    written = (ended == 0) | ((ended == 1) & ~more)
    chars = (48 + (chunks | np.where(more, 0x20, 0))).astype(np.uint8)
    return chars[written].tobytes().decode("ascii")


def compress_counts_reference(counts: list[int]) -> str:
    """:func:`compress_counts`, one value and one chunk at a time, as pycocotools' C loop."""
    out: list[str] = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            chunk = x & 0x1F
            x >>= 5  # arithmetic shift, as C's on a signed long
            more = x != -1 if chunk & 0x10 else x != 0
            out.append(chr(48 + (chunk | 0x20 if more else chunk)))
    return "".join(out)


def rle_from_crop(crop: np.ndarray, offset: tuple[int, int], image_hw: tuple[int, int]) -> dict[str, Any]:
    """Compressed COCO RLE ``{"size": [H, W], "counts": str}`` of a box-local mask, without an
    ``H x W`` array."""
    height, width = image_hw
    return {"size": [int(height), int(width)], "counts": compress_counts(rle_counts(crop, offset, image_hw))}
