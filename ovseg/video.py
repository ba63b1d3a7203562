"""Annotated videos: the container rules, and a writer that letterboxes every frame into the
first one's size and appears under its final name only when complete.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from .errors import ConfigError, OvsegError
from .files import publish, temporary_path

__all__ = ["VIDEO_FOURCC", "DEFAULT_FPS", "check_output", "fit_into", "VideoWriter"]

logger = logging.getLogger(__name__)

#: Output container (file suffix) -> the FourCC its writer uses.
VIDEO_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}

#: Frame rate of a written video when the source reports none (streams, some webcams).
DEFAULT_FPS = 25.0


def fit_into(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``hw`` and centred on black (a video has one frame size)."""
    if image.shape[:2] == hw:
        return image
    height, width = hw
    s = min(height / image.shape[0], width / image.shape[1])
    new_w, new_h = max(1, int(image.shape[1] * s)), max(1, int(image.shape[0] * s))
    canvas = np.zeros((height, width, 3), np.uint8)
    y, x = (height - new_h) // 2, (width - new_w) // 2
    canvas[y : y + new_h, x : x + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return canvas


def check_output(path: str | Path) -> str:
    """Check an output video path before any work: a known container, a folder that exists or
    can be made. Returns the FourCC for its writer.

    Raises:
        ConfigError: an unknown container. OvsegError: a folder that cannot be made.
    """
    path = Path(path)
    fourcc = VIDEO_FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise ConfigError(f"expected an output video ending in {', '.join(VIDEO_FOURCC)}, got {path.name!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OvsegError(f"{path}: expected a folder that can hold the video, got {error.strerror or error}") from None
    return fourcc


class VideoWriter:
    """Writes BGR frames to ``path`` at ``fps``; the first frame sets the size, later frames of
    another size are letterboxed into it (:func:`fit_into`).

    The video is written under a temporary name beside ``path`` and renamed into place by
    :meth:`close` (``complete=True``), so a run that stops half-way leaves no half-written
    video under the final name: :meth:`close` with ``complete=False`` keeps what was written
    under ``partial`` (``None``: deletes it).
    """

    def __init__(self, path: str | Path, fps: float, *, partial: str | Path | None = None) -> None:
        self.path = Path(path)
        self.fourcc = check_output(self.path)
        self.fps = float(fps)
        self.partial = Path(partial) if partial is not None else None
        self.frame_hw: tuple[int, int] | None = None
        self.frames = 0
        self._tmp: Path | None = None
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            self.frame_hw = (int(frame.shape[0]), int(frame.shape[1]))
            size_wh = (self.frame_hw[1], self.frame_hw[0])
            tmp = temporary_path(self.path)
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size_wh)
            if not writer.isOpened():
                writer.release()
                tmp.unlink(missing_ok=True)
                raise OvsegError(f"{self.path}: cannot write a {self.fourcc} video there")
            self._tmp, self._writer = tmp, writer
            logger.info("writing %s: %dx%d at %.2f fps", self.path, *size_wh, self.fps)
        assert self.frame_hw is not None
        self._writer.write(fit_into(frame, self.frame_hw))
        self.frames += 1

    @property
    def written(self) -> bool:
        """Whether any frame was written (the file exists, or will at :meth:`close`)."""
        return self.frames > 0

    def close(self, complete: bool = True) -> Path | None:
        """Finish the file; returns where it is (``path``, ``partial`` or ``None``)."""
        if self._writer is None or self._tmp is None:
            return None
        self._writer.release()
        self._writer = None
        tmp, self._tmp = self._tmp, None
        if complete:
            publish(tmp, self.path)
            return self.path
        if self.partial is not None:
            publish(tmp, self.partial)
            return self.partial
        tmp.unlink(missing_ok=True)
        return None
