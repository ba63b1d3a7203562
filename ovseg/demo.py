"""The live demo: frames from a camera, video, images or stream, segmented, drawn, shown, written.

::

    capture thread   source.read() -> newest-frame slot (live) | bounded queue (files)
    segment thread   take a frame -> Segmenter (one at a time, or Segmenter.stream) -> one slot
    caller's thread  take (frame, result) -> Overlay + status line -> writer, window; keys
                     every 15 ms, however long a frame takes to segment

- **Live sources** (cameras, URLs) are read on their own thread as fast as they deliver; the
  loop always takes the newest frame and the ones it had no time for are dropped (counted),
  so latency stays one frame however slow the model is, and memory never grows.
- **Files** (videos, images, folders of images) lose nothing: the capture thread reads ahead
  into a queue of a few frames and waits while it is full (back-pressure), and every frame is
  processed and written. Where the segmenter has the streaming API (``Segmenter.stream``),
  several file frames are in flight at once.
- **Failures**: a source that cannot be opened, a camera or stream that delivers no frame
  for ``stall_timeout_s``, or a read that raises, ends the run with a one-line
  :class:`~ovseg.errors.CaptureError`; the capture, the writer and the window are released in
  every case (``finally``).

Keys in the window: ``q``/Esc quit, space pause, ``+``/``-`` threshold by 0.05, ``m`` masks
and contours on/off, ``b`` boxes on/off. Closing the window quits too.

Frame sources and the capture thread live in :mod:`ovseg.capture`. The library logs and never
prints; ``ovseg demo`` prints the :class:`DemoSummary`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .capture import CaptureSource, FrameGrabber, FrameSource, ImageSource, open_source
from .draw import Overlay
from .errors import ConfigError, OvsegError
from .result import Result
from .segmenter import Segmenter

__all__ = [
    "run_demo",
    "DemoSummary",
    "Controls",
    "draw_status",
    "open_source",
    "FrameSource",
    "CaptureSource",
    "ImageSource",
    "check_output",
    "VIDEO_FOURCC",
    "KEY_HELP",
]

logger = logging.getLogger(__name__)

#: Output container (file suffix) -> the FourCC its writer uses.
VIDEO_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}

#: Frame rate of a written video when the source reports none (streams, some webcams).
DEFAULT_FPS = 25.0

KEY_HELP = "q quit, space pause, +/- threshold, m masks, b boxes"

#: How often the window answers keys (milliseconds), whatever the time a frame takes.
POLL_MS = 15

#: A paused frame is segmented again this long after the last +/- key.
RESEGMENT_DELAY_S = 0.3


# -- keys, status, summary --------------------------------------------------------------------


@dataclasses.dataclass
class Controls:
    """What the keys change: threshold, pause, masks, boxes (mutable, one per run)."""

    threshold: float
    masks: bool = True
    boxes: bool = True
    paused: bool = False
    step: float = 0.05
    min_threshold: float = 0.05
    max_threshold: float = 0.95

    def handle_key(self, key: int) -> str | None:
        """Apply one ``cv2.waitKey`` code; returns ``"quit"``, ``"threshold"``, ``"draw"``,
        ``"pause"`` or ``None`` (no key, or a key with no meaning)."""
        if key < 0:
            return None
        char = chr(key & 0xFF)
        if char in ("q", "Q", "\x1b"):
            return "quit"
        if char == " ":
            self.paused = not self.paused
            return "pause"
        if char in ("+", "="):
            return self._move(+self.step)
        if char in ("-", "_"):
            return self._move(-self.step)
        if char in ("m", "M"):
            self.masks = not self.masks
            return "draw"
        if char in ("b", "B"):
            self.boxes = not self.boxes
            return "draw"
        return None

    def _move(self, delta: float) -> str | None:
        value = min(self.max_threshold, max(self.min_threshold, round(self.threshold + delta, 2)))
        if value == self.threshold:
            return None
        self.threshold = value
        return "threshold"


@dataclasses.dataclass(frozen=True)
class DemoSummary:
    """What a run did.

    Attributes:
        frames: frames segmented (and written, when there is an output).
        dropped: frames a live source delivered that were skipped for newer ones.
        duration_s: wall time from the first frame's result to the last's, pauses excluded.
        mean_fps: ``(frames - 1) / duration_s`` (0 for fewer than two frames).
        mean_latency_ms: mean per-frame segmenter time (preprocess + infer + decode).
        mean_infer_ms: mean inference time alone.
        ended: ``"end"`` (the source ran out), ``"limit"``, ``"quit"`` (key or window closed) or
            ``"interrupted"`` (^C, KeyboardInterrupt).
        source: the source's name (``"camera 0"``, the file or URL).
        output: the written video, if any, with its ``output_hw`` (height, width) and
            ``output_fps``.
    """

    frames: int
    dropped: int
    duration_s: float
    mean_fps: float
    mean_latency_ms: float
    mean_infer_ms: float
    ended: str
    source: str
    output: Path | None = None
    output_hw: tuple[int, int] | None = None
    output_fps: float | None = None


def draw_status(image: np.ndarray, text: str) -> None:
    """Write ``text`` in white on a dark band across the bottom of ``image`` (in place).

    The bottom, because labels of boxes that touch the top edge are drawn there. The font
    shrinks to fit the width (down to a legible minimum; beyond that the text is clipped).
    """
    height, width = image.shape[:2]
    scale = max(0.4, min(height, width) / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if tw > width - 12:
        scale = max(0.3, scale * (width - 12) / tw)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    band = min(height, th + base + 10)
    region = image[height - band :]
    region[...] = (region.astype(np.uint16) * 2 // 7).astype(np.uint8)  # darken to ~30 %
    cv2.putText(image, text, (6, height - base - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _execution_device(segmenter: Segmenter) -> str:
    """The device that runs the model (``AUTO`` resolved where OpenVINO says), else as given."""
    try:
        compiled = next(iter(segmenter.compiled_models.values()))
        devices = compiled.get_property("EXECUTION_DEVICES")
        text = ",".join(str(d) for d in devices) if isinstance(devices, (list, tuple)) else str(devices)
        return text or segmenter.device
    except (RuntimeError, TypeError, StopIteration):  # a plugin without the property: show what was asked for
        return segmenter.device


class _Rate:
    """Frames per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: collections.deque[float] = collections.deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        while len(self._times) > 2 and now - self._times[0] > self.window_s:
            self._times.popleft()

    def reset(self) -> None:
        self._times.clear()

    @property
    def fps(self) -> float | None:
        if len(self._times) < 2:
            return None
        return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-9)


# -- the loop --------------------------------------------------------------------------------


def _fit_into(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
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
    can be made. Returns the FourCC for its writer."""
    path = Path(path)
    fourcc = VIDEO_FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise ConfigError(f"expected an output video ending in {', '.join(VIDEO_FOURCC)}, got {path.name!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OvsegError(f"{path}: expected a folder that can hold the video, got {error.strerror or error}") from None
    return fourcc


def _open_window(name: str) -> None:
    """Create the window, or say plainly why there can be none (Qt aborts the process when it
    cannot reach a display, so that is checked first)."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    ):
        raise ConfigError("expected a display for the window, got none ($DISPLAY is not set): run headless (--no-show)")
    try:
        cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # no Qt toolbar
        cv2.setWindowTitle(name, f"{name}  ({KEY_HELP})")
    except cv2.error as error:
        raise ConfigError(
            f"expected an OpenCV with a GUI (opencv-python), got one without ({str(error).strip().splitlines()[-1]}): "
            "run headless (--no-show)"
        ) from None


def _window_closed(name: str) -> bool:
    try:
        return cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1
    except cv2.error:
        return True


def _segment(
    segmenter: Segmenter, frames: Iterator[np.ndarray], live: bool
) -> Generator[tuple[np.ndarray, Result], None, None]:
    """(frame, result) pairs in order. Live frames go one at a time (the newest frame, the
    least latency); file frames go through the streaming pipeline, several in flight."""
    if live:
        for frame in frames:
            yield frame, segmenter(frame)
        return
    pending: collections.deque[np.ndarray] = collections.deque()

    def tee() -> Iterator[np.ndarray]:
        for frame in frames:
            pending.append(frame)
            yield frame

    results = segmenter.stream(tee())
    try:
        for result in results:
            yield pending.popleft(), result
    finally:
        results.close()


class _Run:
    """The state of one run: settings, keys, counters, the writer and the window."""

    def __init__(self, segmenter: Segmenter, source: FrameSource, *, show: bool, output_path: Path | None,
                 fourcc: str, fps_out: float, overlay: Overlay, window_name: str,
                 on_frame: Callable[[np.ndarray, Result], None] | None) -> None:
        self.segmenter = segmenter
        self.source = source
        self.show = show
        self.output_path = output_path
        self.fourcc = fourcc
        self.fps_out = fps_out
        self.overlay = overlay
        self.window_name = window_name
        self.on_frame = on_frame
        self.controls = Controls(threshold=segmenter.threshold, masks=overlay.masks or overlay.contours,
                                 boxes=overlay.boxes)
        self.controls.min_threshold = min(self.controls.min_threshold, segmenter.threshold)
        self.controls.max_threshold = max(self.controls.max_threshold, segmenter.threshold)
        self.device = _execution_device(segmenter)
        self.model_name = segmenter.model_path.stem
        self.rate = _Rate()
        self.writer: cv2.VideoWriter | None = None
        self.out_hw: tuple[int, int] | None = None
        self.window = False
        self.frames = 0
        self.latency_ms = 0.0
        self.infer_ms = 0.0
        self.paused_s = 0.0
        self.started: float | None = None  # when the first / latest frame came out of the segmenter
        self.latest = 0.0
        self.last: tuple[np.ndarray, Result] | None = None
        self.paused_at = 0.0
        self.holding = False  # a single picture, kept on screen after the source ended
        self.resegment_at: float | None = None

    def render(self, frame: np.ndarray, result: Result) -> np.ndarray:
        """The overlay as the keys have set it, with the status line."""
        controls, overlay = self.controls, self.overlay
        look = dataclasses.replace(
            overlay, masks=overlay.masks and controls.masks, contours=overlay.contours and controls.masks,
            boxes=overlay.boxes and controls.boxes,
        )
        # Results of frames already in flight when the threshold went up still hold the others.
        drawn = look(frame, result[result.scores >= controls.threshold])
        fps = self.rate.fps
        speed = result.speed_ms
        draw_status(
            drawn,
            f"{'--' if fps is None else f'{fps:.1f}'} FPS | infer {speed.get('infer', 0.0):.0f} ms"
            f" (total {sum(speed.values()):.0f}) | {self.device} | {self.model_name} | thr {controls.threshold:.2f}"
            f"{' | PAUSED' if controls.paused else ''}",
        )
        return drawn

    def open_window(self) -> None:
        _open_window(self.window_name)
        self.window = True

    def step(self, frame: np.ndarray, result: Result) -> None:
        """Count, draw, write and show one frame."""
        now = time.perf_counter()
        self.started = now if self.started is None else self.started
        self.latest = now
        self.rate.tick(now)
        self.frames += 1
        self.latency_ms += sum(result.speed_ms.values())
        self.infer_ms += result.speed_ms.get("infer", 0.0)
        self.last = (frame, result)
        drawn = self.render(frame, result)
        if self.on_frame is not None:
            self.on_frame(drawn, result)
        if self.output_path is not None:
            self.write(drawn)
        if self.window:
            cv2.imshow(self.window_name, drawn)

    def poll_keys(self, wait_ms: int) -> bool:
        """Let the window run for ``wait_ms`` and apply the keys pressed; False means quit."""
        controls = self.controls
        was_paused = controls.paused
        actions = set()
        key = cv2.waitKey(wait_ms)
        while key != -1 and "quit" not in actions:  # every key so far: five "-" segment once
            actions.add(controls.handle_key(key))
            key = cv2.waitKey(1)
        if "quit" in actions or _window_closed(self.window_name):
            return False
        self.segmenter.threshold = controls.threshold
        if controls.paused != was_paused:
            now = time.perf_counter()
            if controls.paused:
                self.paused_at = now
            else:
                self.paused_s += now - self.paused_at
                self.rate.reset()
        if self.last is None:
            return True
        if "threshold" in actions and (controls.paused or self.holding):
            # A frame that stays on screen is segmented again at the new threshold, once the
            # keys have settled: while it runs the window takes no keys, and HighGUI keeps only
            # the last of those pressed meanwhile.
            self.resegment_at = time.perf_counter() + RESEGMENT_DELAY_S
        if self.resegment_at is not None and time.perf_counter() >= self.resegment_at:
            self.resegment_at = None
            self.last = (self.last[0], self.segmenter(self.last[0]))
            actions.add("draw")
        if actions - {None}:
            cv2.imshow(self.window_name, self.render(*self.last))
        return True

    def write(self, drawn: np.ndarray) -> None:
        assert self.output_path is not None
        if self.writer is None:
            self.out_hw = (int(drawn.shape[0]), int(drawn.shape[1]))
            size_wh = (self.out_hw[1], self.out_hw[0])
            self.writer = cv2.VideoWriter(
                str(self.output_path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps_out, size_wh
            )
            if not self.writer.isOpened():
                raise OvsegError(f"{self.output_path}: cannot write a {self.fourcc} video there")
            logger.info("writing %s: %dx%d at %.2f fps", self.output_path, *size_wh, self.fps_out)
        assert self.out_hw is not None
        self.writer.write(_fit_into(drawn, self.out_hw))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        if self.window:
            cv2.destroyWindow(self.window_name)
            cv2.waitKey(1)  # let the GUI loop actually take the window down

    def summary(self, ended: str, dropped: int) -> DemoSummary:
        # The rate over the intervals between frames: neither the camera's start-up nor the
        # model's first (slow) inference before frame 1 counts, nor the time spent paused.
        frames = self.frames
        duration = max(self.latest - self.started - self.paused_s, 0.0) if self.started is not None else 0.0
        return DemoSummary(
            frames=frames,
            dropped=dropped,
            duration_s=duration,
            mean_fps=(frames - 1) / duration if frames > 1 and duration > 0 else 0.0,
            mean_latency_ms=self.latency_ms / frames if frames else 0.0,
            mean_infer_ms=self.infer_ms / frames if frames else 0.0,
            ended=ended,
            source=self.source.name,
            output=self.output_path if self.writer is not None else None,
            output_hw=self.out_hw,
            output_fps=self.fps_out if self.writer is not None else None,
        )


_END = object()


class _Worker:
    """Runs the segmenter on its own thread and hands ``(frame, result)`` pairs over one slot.

    The caller's thread thus only draws, writes and shows, and answers keys every few
    milliseconds however long a frame takes to segment (0.6-1.2 s for the real 0033 on two
    cores). The slot holds one pair: a caller that stops taking (pause) stops the worker.
    """

    def __init__(self, make_pairs: Callable[[], Generator[tuple[np.ndarray, Result], None, None]]) -> None:
        self._slot: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make_pairs,), name="ovseg-segment", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self, make_pairs: Callable[[], Generator[tuple[np.ndarray, Result], None, None]]) -> None:
        pairs = None
        try:
            pairs = make_pairs()
            for pair in pairs:
                if not self._put(pair):
                    return
            self._put(_END)
        except BaseException as error:  # re-raised in the caller's thread by take()
            self._put(error)
        finally:
            if pairs is not None:
                pairs.close()  # here: a generator is closed by the thread that runs it

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._slot.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def take(self, timeout_s: float) -> Any:
        """The next pair, ``_END``, or ``None`` if none came within ``timeout_s``."""
        try:
            item = self._slot.get(timeout=timeout_s) if timeout_s > 0 else self._slot.get_nowait()
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self, join_timeout_s: float = 30.0) -> None:
        self._stop.set()
        try:
            self._slot.get_nowait()  # unblock a put in progress
        except queue.Empty:
            pass
        if self._thread.is_alive():
            self._thread.join(join_timeout_s)
            if self._thread.is_alive():
                logger.warning("the segmenting thread did not stop within %.0f s", join_timeout_s)


def run_demo(
    segmenter: Segmenter,
    source: FrameSource,
    *,
    show: bool = True,
    output: str | Path | None = None,
    output_fps: float | None = None,
    limit: int | None = None,
    overlay: Overlay | None = None,
    window_name: str = "ovseg demo",
    stall_timeout_s: float = 5.0,
    first_frame_timeout_s: float = 15.0,
    on_frame: Callable[[np.ndarray, Result], None] | None = None,
) -> DemoSummary:
    """Segment ``source`` frame by frame; show the overlays and/or write them to a video.

    Args:
        segmenter: the model. Its ``threshold`` follows the ``+``/``-`` keys during the run and
            is restored afterwards.
        source: see :func:`open_source`. It is released when the run ends, however it ends.
        show: open a window (needs a display) and read keys; ``False`` runs headless.
        output: write the annotated frames (status line included) to this video
            (``.mp4``, ``.avi``, ``.mkv``, ...) at the size of the first frame (later frames
            of another size are letterboxed into it).
        output_fps: the written video's frame rate; default the source's, else 25.
        limit: stop after this many frames.
        overlay: what to draw and how (``masks``/``contours`` and ``boxes`` follow the keys).
        stall_timeout_s: a camera or stream silent this long after a frame has stopped delivering.
        first_frame_timeout_s: the same, before the first frame (cameras take time to start).
        on_frame: called with each annotated frame (BGR uint8, status line drawn; the caller
            may keep it) and its result, before it is written and shown.

    Returns:
        a :class:`DemoSummary`. A single image shown in a window stays up until a quit key.
        ^C (KeyboardInterrupt) ends the run like a quit key, with ``ended="interrupted"``.

    Raises:
        CaptureError: the source failed or fell silent. ConfigError: bad settings, or a
        window without a display. OvsegError: the video cannot be written.
    """
    try:
        if limit is not None and limit < 1:
            raise ConfigError(f"expected a frame limit >= 1, got {limit}")
        if output_fps is not None and not (math.isfinite(output_fps) and output_fps > 0):
            raise ConfigError(f"expected an output frame rate > 0, got {output_fps}")
        output_path = Path(output) if output is not None else None
        fourcc = check_output(output_path) if output_path is not None else ""
    except BaseException:
        source.release()  # the source is ours to release, however the run ends
        raise
    run = _Run(
        segmenter, source, show=show, output_path=output_path, fourcc=fourcc,
        fps_out=output_fps or source.fps or DEFAULT_FPS, overlay=overlay or Overlay(),
        window_name=window_name, on_frame=on_frame,
    )
    grabber = FrameGrabber(source, stall_timeout_s=stall_timeout_s, first_frame_timeout_s=first_frame_timeout_s)
    worker = _Worker(lambda: _segment(segmenter, grabber.frames(), source.live))
    original_threshold = segmenter.threshold
    ended = "end"
    try:
        if show:
            run.open_window()
        grabber.start()
        worker.start()
        try:
            ended = _loop(run, worker, limit)
            if ended == "end" and grabber.failure is not None:
                raise grabber.failure
        except KeyboardInterrupt:  # ^C: a stop like any other, with the summary so far
            ended = "interrupted"
    finally:
        # Each step in its own finally: a second ^C during one still releases the others (an
        # unreleased writer leaves an MP4 without its index).
        try:
            worker.stop()  # waits for the frame being segmented (and those in flight)
        finally:
            try:
                grabber.stop()
            finally:
                try:
                    source.release()
                finally:
                    run.close()
                    segmenter.threshold = original_threshold
    summary = run.summary(ended, grabber.dropped)
    logger.info("%s", summary)
    return summary


def _loop(run: _Run, worker: _Worker, limit: int | None) -> str:
    """Take pairs from the worker until the source ends, the limit, or a quit key; returns
    how it ended. With a window, keys are polled every ``POLL_MS`` in between."""
    while True:
        if run.window and not run.poll_keys(POLL_MS):
            return "quit"
        if run.controls.paused or run.holding:
            continue
        pair = worker.take(0.0 if run.window else 0.1)
        if pair is None:
            continue
        if pair is _END:
            if run.window and run.source.still and run.frames == 1:
                logger.info("showing %s until a quit key (q/Esc) or the window is closed", run.source.name)
                run.holding = True
                continue
            return "end"
        run.step(*pair)
        if limit is not None and run.frames >= limit:
            return "limit"
