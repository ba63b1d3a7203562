"""Frame sources for the demo: cameras, streams, videos, images; and the capture thread.

A source is anything with ``read() -> frame | None``, ``release()`` and the attributes
``name``, ``live``, ``finite``, ``fps`` and ``still`` (:class:`FrameSource`). :func:`open_source` makes one
from what the user typed; :class:`CaptureSource` wraps a ``cv2.VideoCapture`` or a look-alike
(tests pass captures that stop on cue); :class:`ImageSource` reads image files.

:class:`FrameGrabber` reads a source on its own thread:

- **live** sources (cameras, URLs) are read as fast as they deliver and only the newest frame
  is kept: a slow consumer gets the newest frame each time, the skipped ones are counted as
  ``dropped``, and nothing queues up;
- **files** lose nothing: up to ``READ_AHEAD`` frames are read ahead and the thread waits
  while the consumer catches up (back-pressure). A file read as live (``--live``) is paced
  at its frame rate, so it plays like a camera.

Failures are :class:`~ovseg.errors.CaptureError` with one-line messages: nothing at that
index or path, a file OpenCV cannot open, a live source silent for too long, a read that
raised.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from .errors import CaptureError, ImageError
from .images import IMAGE_SUFFIXES, is_image_file, list_images, read_image
from .preprocess import as_bgr

__all__ = ["FrameSource", "CaptureSource", "ImageSource", "FrameGrabber", "open_source"]

logger = logging.getLogger(__name__)

#: Frames the capture thread of a file source reads ahead of the consumer.
READ_AHEAD = 4

#: VideoCapture parameters for URLs: give up opening after 10 s, a read after 5 s.
STREAM_TIMEOUTS_MS = (cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10_000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5_000)


# -- frame sources ---------------------------------------------------------------------------


class FrameSource(Protocol):
    """What the demo reads frames from.

    ``read()`` returns the next BGR uint8 ``(H, W, 3)`` frame or ``None`` when there is none.
    For a ``finite`` source (files) ``None`` is the end; otherwise (cameras, streams) it is a
    missed grab, retried until the source has been silent too long. ``live`` sources are read
    as fast as they deliver and their stale frames dropped. ``fps`` is the source's frame rate
    (``None`` if unknown) and ``still`` is true for a single picture.
    """

    name: str
    live: bool
    finite: bool
    fps: float | None
    still: bool

    def read(self) -> np.ndarray | None: ...

    def release(self) -> None: ...


class _Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the demo uses (tests pass look-alikes)."""

    def read(self) -> tuple[bool, Any]: ...

    def release(self) -> None: ...


class CaptureSource:
    """A ``cv2.VideoCapture`` (or any object with ``read() -> (ok, frame)`` and ``release()``).

    Args:
        capture: the opened capture; it is released by :meth:`release`.
        name: how messages call it (``"camera 0"``, a file name, a URL).
        live: drop stale frames (cameras, streams) or lose none (files).
        finite: a failed read is the end (files), not a missed grab (default: not ``live``).
        fps: frame rate; by default the capture's ``CAP_PROP_FPS`` when it has a plausible one.
    """

    still = False

    def __init__(
        self, capture: _Capture, *, name: str, live: bool, finite: bool | None = None, fps: float | None = None
    ) -> None:
        self.capture = capture
        self.name = name
        self.live = live
        self.finite = not live if finite is None else finite
        self.fps = fps if fps is not None else _capture_fps(capture)

    def read(self) -> np.ndarray | None:
        ok, frame = self.capture.read()
        if not ok or frame is None:
            return None
        return as_bgr(np.asarray(frame))

    def release(self) -> None:
        self.capture.release()

    def __repr__(self) -> str:
        return f"CaptureSource({self.name!r}, live={self.live}, finite={self.finite}, fps={self.fps})"


class ImageSource:
    """Image files as a finite frame source, in the given order.

    A file that cannot be decoded is skipped with a warning (a folder of photos may hold one
    broken file; the demo should not stop for it). ``fps`` is the rate a written video shows
    them at.
    """

    live = False
    finite = True

    def __init__(self, paths: Sequence[str | Path], *, name: str | None = None, fps: float = 1.0) -> None:
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise CaptureError(f"expected at least one image, got none{f' in {name}' if name else ''}")
        self.name = name or str(self.paths[0])
        self.fps: float | None = fps
        self.still = len(self.paths) == 1
        self._next = 0

    def read(self) -> np.ndarray | None:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            try:
                return as_bgr(read_image(path))
            except ImageError as error:
                logger.warning("%s, skipped", error)
        return None

    def release(self) -> None:
        self._next = len(self.paths)

    def __repr__(self) -> str:
        return f"ImageSource({self.name!r}, {len(self.paths)} image(s))"


def _capture_fps(capture: _Capture) -> float | None:
    get = getattr(capture, "get", None)
    if get is None:
        return None
    try:
        fps = float(get(cv2.CAP_PROP_FPS))
    except (TypeError, ValueError, cv2.error):
        return None
    return fps if math.isfinite(fps) and 0.5 <= fps <= 1000.0 else None


def open_source(
    spec: str | int | Path,
    *,
    resolution: tuple[int, int] | None = None,
    live: bool | None = None,
    image_fps: float = 1.0,
    open_capture: Callable[..., Any] | None = None,
) -> FrameSource:
    """Open what ``spec`` names as a frame source.

    Args:
        spec: a camera index (``0`` or ``"0"``), a URL OpenCV's VideoCapture opens
            (``rtsp://``, ``http://``, ...), a video file, an image file or a directory of
            images (sorted by name, not recursive).
        resolution: ``(width, height)`` to request from a camera; the camera picks its
            nearest mode (logged when it differs). Ignored, with a warning, for other sources.
        live: drop stale frames; default true for cameras and streams, false for files
            (a URL whose capture reports a frame count is a file served over the network).
        image_fps: the frame rate of an image or folder of images (for a written video).
        open_capture: what opens a camera, stream or video (default ``cv2.VideoCapture``;
            tests pass look-alikes that fail on cue).

    Raises:
        CaptureError: nothing there, or OpenCV cannot open it.
    """
    default_open = open_capture is None
    if open_capture is None:
        open_capture = cv2.VideoCapture
    text = str(spec).strip()
    if isinstance(spec, int) or text.isdigit():
        index = int(text)
        capture = open_capture(index)
        name = f"camera {index}"
        if not capture.isOpened():
            capture.release()
            raise CaptureError(f"{name}: expected a camera at index {index}, got none that opens (absent or busy)")
        if resolution is not None:
            _request_resolution(capture, resolution, name)
        return CaptureSource(capture, name=name, live=True if live is None else live, finite=False)
    if resolution is not None:
        logger.warning("a resolution is requested from cameras only; ignored for %s", text)
    if "://" in text:
        if default_open:
            # Bounded waits: an unreachable host or a stalled stream must not block for
            # FFmpeg's 30 s defaults (nor leave the capture thread stuck in read()).
            capture = open_capture(text, cv2.CAP_ANY, list(STREAM_TIMEOUTS_MS))
        else:
            capture = open_capture(text)
        if not capture.isOpened():
            capture.release()
            raise CaptureError(f"{text}: expected a stream OpenCV can open, got none")
        # A URL with a frame count is a file served over the network: it ends, and loses nothing.
        finite = _frame_count(capture) > 0
        return CaptureSource(capture, name=text, live=(not finite) if live is None else live, finite=finite)
    path = Path(text)
    if path.is_dir():
        images = list_images(path)
        if not images:
            kinds = ", ".join(IMAGE_SUFFIXES[:4])
            raise CaptureError(f"{path}: expected a directory with images ({kinds}, ...), got none")
        source: FrameSource = ImageSource(images, name=str(path), fps=image_fps)
    elif not path.exists():
        raise CaptureError(f"{text}: expected a camera index, video, image, directory or URL, got no such file")
    elif is_image_file(path):
        source = ImageSource([path], fps=image_fps)
    else:
        capture = open_capture(str(path))
        if not capture.isOpened():
            capture.release()
            raise CaptureError(f"{path}: expected a video OpenCV can decode, got a file it cannot open")
        source = CaptureSource(capture, name=str(path), live=False, finite=True)
    if live:
        source.live = True
    return source


def _frame_count(capture: Any) -> int:
    try:
        count = float(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    except (AttributeError, TypeError, ValueError, cv2.error):
        return 0
    return int(count) if math.isfinite(count) and 0 < count < 2**31 else 0


def _request_resolution(capture: Any, resolution: tuple[int, int], name: str) -> None:
    width, height = resolution
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    got = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    if got != (width, height):
        logger.warning("%s: requested %dx%d, the camera gives %dx%d", name, width, height, *got)


# -- the capture thread ----------------------------------------------------------------------


class FrameGrabber:
    """Reads a source on a daemon thread; the consumer takes frames with :meth:`frames`.

    Live sources keep only the newest frame (older ones are counted in ``dropped``); file
    sources fill a queue of ``READ_AHEAD`` frames and wait while it is full. Call
    :meth:`start`, iterate :meth:`frames`, then :meth:`stop` (the source is the caller's to
    release, after :meth:`stop`).
    """

    def __init__(self, source: FrameSource, *, stall_timeout_s: float, first_frame_timeout_s: float) -> None:
        self.source = source
        self.stall_timeout_s = stall_timeout_s
        self.first_frame_timeout_s = first_frame_timeout_s
        self.dropped = 0
        self.delivered = 0
        self._frames: collections.deque[np.ndarray] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._error: BaseException | None = None
        self.failure: CaptureError | None = None
        self._thread = threading.Thread(target=self._run, name=f"ovseg-capture[{source.name}]", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        live, finite = self.source.live, self.source.finite
        # A file read as live plays at its own rate, as a camera would deliver it.
        period_s = 1.0 / self.source.fps if live and finite and self.source.fps else 0.0
        start = time.perf_counter()
        count = 0
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    if finite:
                        break
                    # A camera can miss a grab; the consumer decides when the silence is too long.
                    self._stop.wait(0.01)
                    continue
                if period_s:
                    self._stop.wait(max(0.0, start + count * period_s - time.perf_counter()))
                    count += 1
                with self._cond:
                    if live:
                        self.dropped += len(self._frames)
                        self._frames.clear()
                    else:
                        while len(self._frames) >= READ_AHEAD and not self._stop.is_set():
                            self._cond.wait(0.1)
                    self._frames.append(frame)
                    self._cond.notify_all()
        except BaseException as error:  # handed to the consumer as a CaptureError
            self._error = error
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def frames(self) -> Iterator[np.ndarray]:
        """Frames in order (files) or the newest each time (live) until the source ends.

        When the read failed, a camera or stream was silent for longer than its timeout, or a file
        gave no frame at all, the iteration ends and :attr:`failure` holds the
        :class:`CaptureError` to raise: the frames already taken are finished first.
        """
        while True:
            if not self.source.finite:
                timeout = self.first_frame_timeout_s if self.delivered == 0 else self.stall_timeout_s
            else:
                timeout = None
            with self._cond:
                if not self._cond.wait_for(lambda: bool(self._frames) or self._done, timeout):
                    if self.delivered == 0:
                        self.failure = CaptureError(f"{self.source.name}: expected frames, got none within {timeout:.1f} s")
                    else:
                        self.failure = CaptureError(
                            f"{self.source.name} stopped delivering frames: none for {timeout:.1f} s "
                            f"after frame {self.delivered}"
                        )
                    return
                frame = self._frames.popleft() if self._frames else None
                self._cond.notify_all()
            if frame is None:
                if self._error is not None:
                    text = str(self._error).strip()
                    message = f": {text.splitlines()[0]}" if text else ""
                    self.failure = CaptureError(
                        f"{self.source.name}: reading frame {self.delivered + 1} failed: "
                        f"{type(self._error).__name__}{message}"
                    )
                    self.failure.__cause__ = self._error
                elif self.delivered == 0:
                    self.failure = CaptureError(f"{self.source.name}: expected frames, got none that could be decoded")
                return
            self.delivered += 1
            yield frame

    def stop(self, join_timeout_s: float = 2.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(join_timeout_s)
            if self._thread.is_alive():
                logger.warning("%s: the capture thread is still blocked in read(); releasing anyway", self.source.name)
