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
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .background import END, Handoff
from .capture import FrameGrabber
from .controls import Controls
from .draw import Overlay, Trails, draw_status
from .errors import ConfigError
from .model import compiled_property
from .result import Result
from .segmenter import Segmenter
from .sources import Frame, FrameSource
from .video import DEFAULT_FPS, VideoWriter, check_output
from .window import open_window, window_closed

__all__ = ["run_demo", "DemoSummary"]

logger = logging.getLogger(__name__)

#: How often the window answers keys (milliseconds), whatever the time a frame takes.
POLL_MS = 15

#: A paused frame is segmented again this long after the last +/- key.
RESEGMENT_DELAY_S = 0.3


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


def _execution_device(segmenter: Segmenter) -> str:
    """The device that runs the model (``AUTO`` resolved where OpenVINO says), else as given."""
    compiled = next(iter(segmenter.compiled_models.values()), None)  # None: a served model
    return compiled_property(compiled, "EXECUTION_DEVICES") or segmenter.device


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


def _segment(
    segmenter: Segmenter, frames: Iterator[Frame], live: bool, tracker: Any = None
) -> Generator[tuple[np.ndarray, Result], None, None]:
    """(image, result) pairs in order, tracked when there is a tracker. Live frames go one at a
    time (the newest frame, the least latency); file frames go through the streaming pipeline,
    several in flight."""
    if live:
        for frame in frames:
            result = segmenter(frame.image)
            yield frame.image, (tracker.update(result) if tracker is not None else result)
        return
    pairs = segmenter.stream_frames(frames)
    try:
        for frame, result in pairs:
            yield frame.image, (tracker.update(result) if tracker is not None else result)
    finally:
        pairs.close()


class _Run:
    """The state of one run: settings, keys, counters, the writer and the window."""

    def __init__(self, segmenter: Segmenter, source: FrameSource, *, show: bool, output_path: Path | None,
                 fps_out: float, overlay: Overlay, window_name: str,
                 on_frame: Callable[[np.ndarray, Result], None] | None) -> None:
        self.segmenter = segmenter
        self.source = source
        self.show = show
        self.output_path = output_path
        self.fps_out = fps_out
        self.overlay = overlay
        self.window_name = window_name
        self.on_frame = on_frame
        self.trails = Trails() if overlay.by_track else None
        self.controls = Controls(threshold=segmenter.threshold, masks=overlay.masks or overlay.contours,
                                 boxes=overlay.boxes)
        self.controls.min_threshold = min(self.controls.min_threshold, segmenter.threshold)
        self.controls.max_threshold = max(self.controls.max_threshold, segmenter.threshold)
        self.device = _execution_device(segmenter)
        self.model_name = segmenter.model_path.stem
        self.rate = _Rate()
        self.writer = VideoWriter(output_path, fps_out) if output_path is not None else None
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
        if self.trails is not None:
            self.trails.draw(drawn)
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
        open_window(self.window_name)
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
        if self.trails is not None:
            self.trails.update(result)
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
        if "quit" in actions or window_closed(self.window_name):
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
        assert self.writer is not None
        self.writer.write(drawn)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
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
            output=self.output_path if self.writer is not None and self.writer.written else None,
            output_hw=self.writer.frame_hw if self.writer is not None else None,
            output_fps=self.fps_out if self.writer is not None and self.writer.written else None,
        )


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
    tracker: Any = None,
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
        tracker: an :mod:`ovseg.track` tracker: instances get ids, coloured by id with the id in
            the label and a trail of box centres.

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
        if output_path is not None:
            check_output(output_path)
    except BaseException:
        source.release()  # the source is ours to release, however the run ends
        raise
    run = _Run(
        segmenter, source, show=show, output_path=output_path,
        fps_out=output_fps or source.fps or DEFAULT_FPS, overlay=overlay or Overlay(by_track=tracker is not None),
        window_name=window_name, on_frame=on_frame,
    )
    grabber = FrameGrabber(source, stall_timeout_s=stall_timeout_s, first_frame_timeout_s=first_frame_timeout_s)
    worker = Handoff(lambda: _segment(segmenter, grabber.frames(), source.live, tracker))
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


def _loop(run: _Run, worker: Handoff, limit: int | None) -> str:
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
        if pair is END:
            if run.window and run.source.still and run.frames == 1:
                logger.info("showing %s until a quit key (q/Esc) or the window is closed", run.source.name)
                run.holding = True
                continue
            return "end"
        run.step(*pair)
        if limit is not None and run.frames >= limit:
            return "limit"
