"""Videos made for the tests: constant rate with OpenCV, variable rate with PyAV."""

from __future__ import annotations

import fractions
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np


def frames_of(count: int, hw: tuple[int, int] = (120, 160)) -> list[np.ndarray]:
    """Distinct smooth frames (each its own grey level and a moving bright square)."""
    out = []
    for i in range(count):
        frame = np.full((*hw, 3), 40 + (7 * i) % 180, np.uint8)
        y, x = (5 * i) % (hw[0] - 30), (9 * i) % (hw[1] - 30)
        frame[y : y + 30, x : x + 30] = 230
        out.append(frame)
    return out


def write_cfr(path: Path, frames: Sequence[np.ndarray], fps: float = 10.0) -> Path:
    """An MJPG .avi at a constant rate (OpenCV's writer)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def write_vfr(path: Path, frames: Sequence[np.ndarray], pts_ms: Sequence[int]) -> Path:
    """An MJPEG .mkv whose frames carry the given presentation times (milliseconds)."""
    import av

    container = av.open(str(path), "w")
    stream = container.add_stream("mjpeg", rate=1000)
    stream.height, stream.width = frames[0].shape[:2]
    stream.pix_fmt = "yuvj420p"
    stream.codec_context.time_base = fractions.Fraction(1, 1000)
    for frame, pts in zip(frames, pts_ms, strict=True):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        vf.pts, vf.time_base = int(pts), fractions.Fraction(1, 1000)
        for packet in stream.encode(vf):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path
