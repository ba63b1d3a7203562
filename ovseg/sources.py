"""One way to open what the commands and the API accept as input, as frames with metadata.

``open_source(spec)`` turns one input into a :class:`FrameSource`; ``open_sources(specs)``
turns a command line's inputs into sources: every image input (files, folders, glob patterns,
``.txt`` lists of paths) joins one :class:`ImageSource`, in the order given, and each video,
camera or URL is a source of its own. A source yields :class:`Frame` objects: the pixels
(BGR uint8), the source's name, the frame's index in it and, for videos, its timestamp in
milliseconds as the container gives it (``CAP_PROP_POS_MSEC``: the presentation time of the
frame just decoded, so variable-frame-rate files are right, not ``index / fps``).

=====================  ======================================================  =============
input                  what it is                                              source
=====================  ======================================================  =============
``0``, ``1``           a camera index                                          live, endless
``rtsp://...``         a URL OpenCV's FFmpeg opens (bounded waits)             live unless it
                                                                               has a length
``a.jpg``              an image file (by suffix)                               images
``dir/``               its image files, sorted (``recursive``: subfolders)     images
``"*.jpg"``            a glob pattern (``**`` recursive), sorted               images
``list.txt``           one path per line (``#`` comments, relative to it)      images
``clip.mp4``           any other file: a video                                 finite
=====================  ======================================================  =============

Failures are :class:`~ovseg.errors.CaptureError` with one-line messages naming the input.
"""

from __future__ import annotations

import glob
import logging
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from .errors import CaptureError, ImageError
from .images import IMAGE_SUFFIXES, is_image_file, list_images, read_image
from .jpeg import read_image_reduced
from .preprocess import as_bgr

__all__ = [
    "Frame",
    "FrameSource",
    "CaptureSource",
    "DeferredVideo",
    "deferred",
    "ImageSource",
    "reduced_frame",
    "open_source",
    "open_sources",
    "image_paths",
    "safe_name",
    "STREAM_TIMEOUTS_MS",
]

logger = logging.getLogger(__name__)

#: VideoCapture parameters for URLs: give up opening after 10 s, a read after 5 s.
STREAM_TIMEOUTS_MS = (cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10_000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5_000)

_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True, eq=False)
class Frame:
    """One frame and where it came from.

    Attributes:
        image: BGR uint8 ``(H, W, 3)``.
        source: the source's name (``"camera 0"``, a file or URL, ``"images"``).
        index: 0-based position in its source (a live source's dropped frames leave gaps
            further down the line, never here).
        timestamp_ms: the container's presentation time of a video frame, else ``None``.
        path: the image file it was read from (image sources), else ``None``.
        full_hw: the file's stored ``(H, W)`` when ``image`` was decoded at a reduced scale
            (``ImageSource(reduce_to=...)``), else ``None``. The pipeline then maps results
            to this size, not to ``image``'s.
    """

    image: np.ndarray
    source: str
    index: int
    timestamp_ms: float | None = None
    path: Path | None = None
    full_hw: tuple[int, int] | None = None

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


class FrameSource(Protocol):
    """What frames are read from.

    ``read_frame()`` returns the next :class:`Frame` or ``None`` when there is none (``read()``
    the same, pixels only). For a ``finite`` source (files) ``None`` is the end; otherwise
    (cameras, streams) it is a missed grab, retried until the source has been silent too long.
    ``live`` sources are read as fast as they deliver and their stale frames dropped. ``fps`` is
    the source's frame rate (``None`` if unknown), ``length`` its frame count where known, and
    ``still`` is true for a single picture. Iterating reads frames until ``None`` (finite
    sources).
    """

    name: str
    kind: str
    live: bool
    finite: bool
    fps: float | None
    still: bool

    @property
    def length(self) -> int | None: ...

    def read(self) -> np.ndarray | None: ...

    def read_frame(self) -> Frame | None: ...

    def release(self) -> None: ...


class _Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a source uses (tests pass look-alikes)."""

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
        kind: ``"video"``, ``"camera"`` or ``"stream"``.
    """

    still = False

    def __init__(
        self, capture: _Capture, *, name: str, live: bool, finite: bool | None = None, fps: float | None = None,
        kind: str = "video",
    ) -> None:
        self.capture = capture
        self.name = name
        self.kind = kind
        self.live = live
        self.finite = not live if finite is None else finite
        self.fps = fps if fps is not None else _capture_fps(capture)
        self._next = 0

    @property
    def length(self) -> int | None:
        """The container's frame count (files), else ``None``."""
        count = _frame_count(self.capture)
        return count if count > 0 and self.finite else None

    def read_frame(self) -> Frame | None:
        ok, image = self.capture.read()
        if not ok or image is None:
            return None
        timestamp = None
        if self.kind == "video":
            timestamp = _position_ms(self.capture)
        frame = Frame(as_bgr(np.asarray(image)), self.name, self._next, timestamp)
        self._next += 1
        return frame

    def read(self) -> np.ndarray | None:
        frame = self.read_frame()
        return None if frame is None else frame.image

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read_frame()) is not None or not self.finite:
            if frame is not None:
                yield frame

    def release(self) -> None:
        self.capture.release()

    def __repr__(self) -> str:
        return f"CaptureSource({self.name!r}, live={self.live}, finite={self.finite}, fps={self.fps})"


class _ReadsFiles:
    """``read`` and iteration from ``read_frame``, for the sources that end (files)."""

    def read_frame(self) -> Frame | None:
        raise NotImplementedError

    def read(self) -> np.ndarray | None:
        frame = self.read_frame()
        return None if frame is None else frame.image

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read_frame()) is not None:
            yield frame


class DeferredVideo(_ReadsFiles):
    """A video file opened again only when it is first read: the source a command keeps for each
    of many video inputs, so that checking them all at the start (and reporting a typo before the
    model compiles) does not keep a decoder open per file for the whole run.

    Made from the :class:`CaptureSource` that checked the file (released here, its name, frame
    rate and frame count kept); :meth:`read_frame` opens the file again with
    :func:`open_source` on first use (a file gone or changed since raises its
    :class:`~ovseg.errors.CaptureError` there), :meth:`release` closes it for good.
    """

    still = False
    live = False
    finite = True

    def __init__(self, checked: CaptureSource, path: str | Path) -> None:
        self.name, self.kind, self.fps = checked.name, checked.kind, checked.fps
        self._length = checked.length
        self._path = str(path)
        self._source: FrameSource | None = None
        self._released = False
        checked.release()

    @property
    def length(self) -> int | None:
        return self._length

    def read_frame(self) -> Frame | None:
        if self._released:
            return None
        if self._source is None:
            self._source = open_source(self._path)
        return self._source.read_frame()


    def release(self) -> None:
        self._released = True
        if self._source is not None:
            self._source.release()
            self._source = None

    def __repr__(self) -> str:
        return f"DeferredVideo({self.name!r}, open={self._source is not None})"


def deferred(source: FrameSource) -> FrameSource:
    """``source`` as a :class:`DeferredVideo` when it is a video file that :func:`open_source`
    opened (released now, opened again on first read), else ``source`` itself."""
    if isinstance(source, CaptureSource) and source.kind == "video" and not source.live and Path(source.name).is_file():
        return DeferredVideo(source, source.name)
    return source


def reduced_frame(
    path: str | Path, reduce_to: Callable[[tuple[int, int]], tuple[int, int]], source: str = "images", index: int = 0
) -> Frame:
    """An image file read at a reduced scale (:func:`ovseg.jpeg.read_image_reduced`) as a
    :class:`Frame` whose ``full_hw`` is the stored size when it was reduced (else ``None``).

    Raises:
        ImageError: naming the file.
    """
    image, full_hw = read_image_reduced(path, reduce_to)
    reduced = full_hw != (image.shape[0], image.shape[1])
    return Frame(as_bgr(image), source, index, None, Path(path), full_hw if reduced else None)


class ImageSource(_ReadsFiles):
    """Image files as a finite frame source, in the given order.

    A file that cannot be decoded is skipped: reported to ``on_error`` when given (the
    commands count it as failed), else logged as a warning (a folder of photos may hold one
    broken file; the demo should not stop for it). ``fps`` is the rate a written video shows
    them at. Frame ``index`` is the file's position in ``paths``, skipped files included.

    ``reduce_to`` (a function from an image's stored ``(H, W)`` to the network input it goes
    through, e.g. :meth:`~ovseg.segmenter.Segmenter.input_hw_for`) reads large JPEGs at a
    reduced scale in libjpeg (:func:`ovseg.jpeg.read_image_reduced`): faster, but the network
    sees other pixels (README, *Reduced-scale reading*), and the frame is smaller than its
    results (``Frame.full_hw``), so it is not for drawing on.
    """

    kind = "images"
    live = False
    finite = True

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        name: str | None = None,
        fps: float = 1.0,
        on_error: Callable[[Path, ImageError], None] | None = None,
        reduce_to: Callable[[tuple[int, int]], tuple[int, int]] | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.reduce_to = reduce_to
        if not self.paths:
            raise CaptureError(f"expected at least one image, got none{f' in {name}' if name else ''}")
        self.name = name or str(self.paths[0])
        self.fps: float | None = fps
        self.still = len(self.paths) == 1
        self.on_error = on_error
        self._next = 0

    @property
    def length(self) -> int:
        return len(self.paths)

    def read_frame(self) -> Frame | None:
        while self._next < len(self.paths):
            index, path = self._next, self.paths[self._next]
            self._next += 1
            try:
                if self.reduce_to is None:
                    return Frame(as_bgr(read_image(path)), self.name, index, None, path)
                return reduced_frame(path, self.reduce_to, self.name, index)
            except ImageError as error:
                if self.on_error is not None:
                    self.on_error(path, error)
                else:
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


def _position_ms(capture: Any) -> float | None:
    try:
        value = float(capture.get(cv2.CAP_PROP_POS_MSEC))
    except (AttributeError, TypeError, ValueError, cv2.error):
        return None
    return round(value, 3) if math.isfinite(value) and value >= 0 else None


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


# -- what names images ------------------------------------------------------------------------


def _is_camera(text: str) -> bool:
    return text.isdigit()


def _is_url(text: str) -> bool:
    return "://" in text


def _is_list_file(path: Path) -> bool:
    return path.suffix.lower() == ".txt" and path.is_file()


def image_paths(spec: str | Path, *, recursive: bool = False) -> list[Path] | None:
    """The image files an input names, or ``None`` when it names no images (a video, a
    camera, a URL): a folder's images (sorted; with ``recursive`` its subfolders' too), a glob
    pattern's matches that are images (sorted), a ``.txt`` file's listed paths (one a line,
    blank lines and ``#`` comments skipped, relative paths from the list's folder), an image
    file.

    Raises:
        CaptureError: a folder or pattern without images, a list that names a missing file.
    """
    text = str(spec).strip()
    if _is_camera(text) or _is_url(text):
        return None
    path = Path(text)
    if path.is_dir():
        images = list_images(path, recursive=recursive)
        if not images:
            kinds = ", ".join(IMAGE_SUFFIXES[:4])
            where = " or its subfolders" if recursive else " (not recursive: --recursive looks in subfolders)"
            raise CaptureError(f"{path}: expected a folder with images ({kinds}, ...){where}, got none")
        return images
    if not path.exists() and _GLOB_CHARS.search(text):
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
        images = [p for p in matches if p.is_file() and is_image_file(p)]
        if not images:
            raise CaptureError(f"{text}: expected a pattern that matches image files, got {len(matches)} match(es), no image")
        return images
    if _is_list_file(path):
        listed = []
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            item = Path(entry) if Path(entry).is_absolute() else path.parent / entry
            if not item.is_file():
                raise CaptureError(f"{path}:{number}: expected an image file, got no such file {entry!r}")
            listed.append(item)
        if not listed:
            raise CaptureError(f"{path}: expected a list of image paths, one a line, got none")
        return listed
    if is_image_file(path):
        return [path]
    return None


def safe_name(text: str) -> str:
    """A readable, file-safe stem for a source: a file's stem, ``camera-0`` for a camera,
    the host and path of a URL with every other character as ``-``."""
    text = str(text).strip()
    if _is_camera(text):
        return f"camera-{text}"
    if _is_url(text):
        text = text.split("://", 1)[1].split("?", 1)[0]
        text = re.sub(r"^[^@/]*@", "", text)  # no credentials in file names
    else:
        text = Path(text).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "source"


def open_source(
    spec: str | int | Path,
    *,
    resolution: tuple[int, int] | None = None,
    live: bool | None = None,
    image_fps: float = 1.0,
    recursive: bool = False,
    open_capture: Callable[..., Any] | None = None,
    on_error: Callable[[Path, ImageError], None] | None = None,
) -> FrameSource:
    """Open what ``spec`` names as a frame source (see the module docstring for the kinds).

    Args:
        spec: a camera index (``0`` or ``"0"``), a URL, a video file, an image file, a folder,
            a glob pattern or a ``.txt`` list of images.
        resolution: ``(width, height)`` to request from a camera; the camera picks its
            nearest mode (logged when it differs). Ignored, with a warning, for other sources.
        live: drop stale frames; default true for cameras and streams, false for files
            (a URL whose capture reports a frame count is a file served over the network).
        image_fps: the frame rate of images (for a written video).
        recursive: a folder's subfolders too.
        open_capture: what opens a camera, stream or video (default ``cv2.VideoCapture``;
            tests pass look-alikes that fail on cue).
        on_error: called with an image that cannot be decoded (else it is logged).

    Raises:
        CaptureError: nothing there, or OpenCV cannot open it.
    """
    default_open = open_capture is None
    if open_capture is None:
        open_capture = cv2.VideoCapture
    text = str(spec).strip()
    if isinstance(spec, int) or _is_camera(text):
        index = int(text)
        capture = open_capture(index)
        name = f"camera {index}"
        if not capture.isOpened():
            capture.release()
            raise CaptureError(f"{name}: expected a camera at index {index}, got none that opens (absent or busy)")
        if resolution is not None:
            _request_resolution(capture, resolution, name)
        return CaptureSource(capture, name=name, live=True if live is None else live, finite=False, kind="camera")
    if resolution is not None:
        logger.warning("a resolution is requested from cameras only; ignored for %s", text)
    if _is_url(text):
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
        return CaptureSource(capture, name=text, live=(not finite) if live is None else live, finite=finite,
                             kind="video" if finite else "stream")
    images = image_paths(text, recursive=recursive)
    if images is not None:
        source: FrameSource = ImageSource(images, name=text, fps=image_fps, on_error=on_error)
    else:
        path = Path(text)
        if not path.exists():
            raise CaptureError(
                f"{text}: expected a camera index, video, image, folder, glob pattern, .txt list or URL, got no such file"
            )
        capture = open_capture(str(path))
        if not capture.isOpened():
            capture.release()
            raise CaptureError(f"{path}: expected a video OpenCV can decode, got a file it cannot open")
        source = CaptureSource(capture, name=str(path), live=False, finite=True, kind="video")
    if live:
        source.live = True
    return source


def open_sources(
    specs: Sequence[str | int | Path],
    *,
    recursive: bool = False,
    on_error: Callable[[Path, ImageError], None] | None = None,
    on_open_error: Callable[[str, CaptureError], None] | None = None,
    **options: Any,
) -> list[FrameSource]:
    """The sources of a command line's inputs: all image inputs together as one
    :class:`ImageSource` named ``"images"`` (in the order given, where the first image input
    stood), every other input a source of its own (:func:`open_source`, ``options`` passed on).
    ``on_error`` gets the images that cannot be decoded later; ``on_open_error``, when given,
    gets each input that cannot be opened, which is then left out (else the first one raises).

    Raises:
        CaptureError: an input that names nothing (without ``on_open_error``); already opened
            sources are released first.
    """
    sources: list[FrameSource] = []
    images: list[Path] = []
    image_slot: int | None = None
    try:
        for spec in specs:
            try:
                found = image_paths(spec, recursive=recursive)
                if found is None:
                    sources.append(open_source(spec, recursive=recursive, on_error=on_error, **options))
                    continue
            except (CaptureError, OSError) as error:
                if on_open_error is None:
                    raise
                failure = error if isinstance(error, CaptureError) else CaptureError(f"{spec}: {error}")
                on_open_error(str(spec), failure)
                continue
            if image_slot is None:
                image_slot = len(sources)
            images += found
    except BaseException:
        for source in sources:
            source.release()
        raise
    if image_slot is not None:
        sources.insert(image_slot, ImageSource(images, name="images", on_error=on_error))
    return sources
