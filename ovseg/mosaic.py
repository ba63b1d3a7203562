"""The demo with several sources: one model, one window (and/or video) showing a mosaic with a
tile and a status line per source.

::

    capture threads   one per source (ovseg.multi): newest frame (live) | bounded queue (files)
    segment thread    Segmenter.stream_many -> (name, frame, result), one slot
    caller's thread   draw the source's tile -> compose the mosaic -> writer, window; keys

A source that ends or fails keeps its last tile, its status line saying so (the error, in
one line, is also in the summary); the run ends when every source has ended, at ``limit``
frames in all, or on a quit key. Keys: ``q``/Esc quit, ``m`` masks, ``b`` boxes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .background import END, Handoff
from .controls import Controls
from .draw import Overlay, Trails, draw_status
from .errors import ConfigError
from .multi import SourceEnd
from .result import Result
from .segmenter import Segmenter
from .sources import FrameSource
from .video import DEFAULT_FPS, VideoWriter, check_output, fit_into
from .window import open_window, window_closed

__all__ = ["MosaicSummary", "run_mosaic", "TILE_HW"]

logger = logging.getLogger(__name__)

#: Size of one source's tile (height, width); a frame is fitted into it, aspect kept.
TILE_HW = (360, 640)


@dataclasses.dataclass(frozen=True)
class MosaicSummary:
    """What a multi-source run did: frames per source, how each ended (``None``: it ran
    through, else its one-line error), the mosaic video written, how the run ended."""

    frames: Mapping[str, int]
    errors: Mapping[str, str | None]
    dropped: Mapping[str, int]
    duration_s: float
    ended: str
    output: Path | None = None
    output_hw: tuple[int, int] | None = None


def _grid(count: int) -> tuple[int, int]:
    """(rows, columns) of a near-square mosaic for ``count`` tiles, wider than high."""
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def run_mosaic(
    segmenter: Segmenter,
    sources: Mapping[str, FrameSource],
    *,
    show: bool = True,
    output: str | Path | None = None,
    output_fps: float | None = None,
    limit: int | None = None,
    overlay: Overlay | None = None,
    window_name: str = "ovseg demo",
    stall_timeout_s: float = 5.0,
    make_tracker: Callable[[FrameSource], Any] | None = None,
) -> MosaicSummary:
    """Segment all ``sources`` at once through ``segmenter`` and show / write the mosaic.

    ``make_tracker(source)``, when given, makes one tracker per source (ids coloured, trails).

    Raises:
        ConfigError: bad settings, or a window without a display. OvsegError: the video cannot
        be written. Each source's own failures end that source only (in the summary).
    """
    if not sources:
        raise ConfigError("expected at least one source, got none")
    if limit is not None and limit < 1:
        raise ConfigError(f"expected a frame limit >= 1, got {limit}")
    names = list(sources)
    rows, cols = _grid(len(names))
    tile_h, tile_w = TILE_HW
    canvas = np.zeros((rows * tile_h, cols * tile_w, 3), np.uint8)
    overlay = overlay or Overlay(by_track=make_tracker is not None)
    trackers = {name: make_tracker(source) for name, source in sources.items()} if make_tracker else {}
    trails = {name: Trails() for name in trackers}
    controls = Controls(threshold=segmenter.threshold)
    writer = None
    if output is not None:
        check_output(output)
        fps = output_fps or max((s.fps or 0.0 for s in sources.values()), default=0.0) or DEFAULT_FPS
        writer = VideoWriter(output, fps)
    frames = dict.fromkeys(names, 0)
    errors: dict[str, str | None] = {}
    dropped = dict.fromkeys(names, 0)
    last: dict[str, tuple[np.ndarray, Result]] = {}
    rates = {name: [0.0, 0] for name in names}  # first time, count

    def on_end(end: SourceEnd) -> None:
        errors[end.name] = None if end.error is None else str(end.error)
        dropped[end.name] = end.dropped

    def tile(name: str) -> None:
        i = names.index(name)
        y, x = (i // cols) * tile_h, (i % cols) * tile_w
        look = dataclasses.replace(overlay, masks=overlay.masks and controls.masks,
                                   contours=overlay.contours and controls.masks, boxes=overlay.boxes and controls.boxes)
        if name in last:
            image, result = last[name]
            drawn = look(image, result)
            if name in trails:
                trails[name].draw(drawn)
            drawn = fit_into(drawn, TILE_HW)
        else:
            drawn = np.zeros((tile_h, tile_w, 3), np.uint8)
        first, count = rates[name]
        fps = (count - 1) / (time.perf_counter() - first) if count > 1 else None
        state = ""
        if name in errors:
            state = " | ENDED" if errors[name] is None else f" | FAILED: {errors[name]}"
        infer = last[name][1].speed_ms.get("infer", 0.0) if name in last else 0.0
        draw_status(drawn, f"{name} | {'--' if fps is None else f'{fps:.1f}'} FPS | infer {infer:.0f} ms{state}")
        canvas[y : y + tile_h, x : x + tile_w] = drawn

    worker = Handoff(lambda: segmenter.stream_many(sources, on_end=on_end, stall_timeout_s=stall_timeout_s),
                     name="ovseg-segment-many")
    window = False
    ended = "end"
    finished = False  # the loop ended by itself (end, limit, quit): the mosaic video is whole
    started = time.perf_counter()
    try:
        if show:
            open_window(window_name)
            window = True
        worker.start()
        total = 0
        while True:
            if window:
                key = cv2.waitKey(15)
                action = controls.handle_key(key)
                if action == "quit" or window_closed(window_name):
                    ended = "quit"
                    break
                if action == "draw":
                    for name in last:
                        tile(name)
                    cv2.imshow(window_name, canvas)
            item = worker.take(0.0 if window else 0.1)
            if item is None:
                continue
            if item is END:
                break
            name, frame, result = item
            if name in trackers:
                result = trackers[name].update(result)
                trails[name].update(result)
            last[name] = (frame.image, result)
            frames[name] += 1
            if rates[name][1] == 0:
                rates[name][0] = time.perf_counter()
            rates[name][1] += 1
            for other in names:  # this source's tile, and the status lines of those that ended
                if other == name or other in errors:
                    tile(other)
            if writer is not None:
                writer.write(canvas)
            if window:
                cv2.imshow(window_name, canvas)
            total += 1
            if limit is not None and total >= limit:
                ended = "limit"
                break
        finished = True
    except KeyboardInterrupt:
        ended = "interrupted"
    finally:
        try:
            worker.stop()
        finally:
            for source in sources.values():
                source.release()
            if writer is not None:
                writer.close(finished)
            if window:
                cv2.destroyWindow(window_name)
                cv2.waitKey(1)
    for name in names:
        errors.setdefault(name, None)
    return MosaicSummary(
        frames=frames, errors=errors, dropped=dropped, duration_s=time.perf_counter() - started, ended=ended,
        output=writer.path if writer is not None and writer.written and finished else None,
        output_hw=writer.frame_hw if writer is not None else None,
    )
