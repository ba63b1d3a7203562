"""Several sources at once through one model: the frames of all sources share the infer
requests, each source's results come back in its own order.

Each source is read on its own capture thread (:class:`~ovseg.capture.FrameGrabber`): a live
source (camera, stream) keeps only its newest frame, so one that the model cannot keep up with
drops its *own* stale frames; a file loses nothing and waits (back-pressure). :func:`merge`
takes, round robin, a frame from whichever sources have one ready, never waiting on one that
has none, so a slow or stalled source does not slow the others. A source that fails (a camera
unplugged, a truncated file, a stream that falls silent) ends alone, with its one-line
:class:`~ovseg.errors.CaptureError` handed to ``on_end``; the others go on.

With ``max_files``, at most that many files (sources that are not live) are read at once, in
the order given, each next one started when one ends, and each closed as it ends: a thousand
videos do not hold a thousand reader threads (nor, given as paths to
:meth:`~ovseg.segmenter.Segmenter.stream_many` or as :class:`~ovseg.sources.DeferredVideo`, a
thousand decoders) at once. Live sources all start at once (a camera cannot wait its turn).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from .capture import FrameGrabber
from .errors import CaptureError
from .sources import Frame, FrameSource

__all__ = ["SourceEnd", "merge"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceEnd:
    """How one source of a merged stream ended: ``error`` ``None`` (it ran out, or the
    caller stopped), else why it failed. ``frames``: frames taken from it, ``dropped``: stale
    frames a live source skipped, ``stopped``: cut short by the stream's end, not its own."""

    name: str
    frames: int
    dropped: int
    error: CaptureError | None
    stopped: bool = False
    """The merged stream was stopped (the caller's ``break``, ``^C``, an error elsewhere) before
    this source ended: it is *not* complete."""


def merge(
    sources: Mapping[str, FrameSource],
    *,
    stall_timeout_s: float = 5.0,
    first_frame_timeout_s: float = 15.0,
    on_end: Callable[[SourceEnd], None] | None = None,
    limit: int | None = None,
    max_files: int | None = None,
    on_start: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, Frame]]:
    """``(name, frame)`` from all ``sources`` as their frames become ready, each source's in
    its own order, until every source has ended (or ``limit`` frames of each). Starts one
    capture thread per source (``on_start`` is called with its name just before), at most
    ``max_files`` of the files at a time; stops them and releases every source when the
    iteration ends, however it ends (a file never started ends ``stopped`` with 0 frames)."""
    wake = threading.Event()
    grabbers: dict[str, FrameGrabber] = {}
    active: dict[str, FrameGrabber] = {}
    files = [name for name, source in sources.items() if not source.live]
    waiting = deque(files[max_files:] if max_files is not None else [])
    queued = set(waiting)

    def start(name: str) -> None:
        if on_start is not None:
            on_start(name)  # first: a source whose start fails is one never started
        grabber = FrameGrabber(sources[name], stall_timeout_s=stall_timeout_s,
                               first_frame_timeout_s=first_frame_timeout_s, wake=wake)
        grabbers[name] = active[name] = grabber
        grabber.start()

    released: set[str] = set()

    def end(name: str) -> None:
        grabber = active[name]
        _end(active, name, on_end)
        if not grabber.source.live:  # a file is over: its decoder closed now, the next file's turn
            if grabber.stop(join_timeout_s=0.5):  # its thread has ended, or wakes within 0.1 s
                grabber.source.release()
                released.add(name)
            if waiting:
                start(waiting.popleft())

    try:
        if max_files is not None and max_files < 1:
            raise ValueError(f"expected max_files >= 1 or None, got {max_files}")
        for name in sources:
            if name not in queued:
                start(name)
        while active:
            wake.clear()
            progressed = False
            for name, grabber in list(active.items()):
                frame = grabber.poll()
                if frame is not None:
                    progressed = True
                    yield name, frame
                    if limit is not None and grabber.delivered >= limit:
                        end(name)
                elif grabber.ended:
                    end(name)
            if not progressed and active:
                wake.wait(0.05)  # a frame arrives or a source ends; the timeout re-checks stalls
    finally:
        never = [name for name in sources if name not in grabbers]
        try:
            for name in list(active):
                try:
                    _end(active, name, on_end, stopped=True)
                except Exception:  # noqa: BLE001 - one caller's failure must not keep the others' threads
                    logger.exception("on_end for %s failed", name)
            for name in never:  # never started (their turn did not come, or a start failed): nothing read
                try:
                    if on_end is not None:
                        on_end(SourceEnd(name, 0, 0, None, stopped=True))
                except Exception:  # noqa: BLE001
                    logger.exception("on_end for %s failed", name)
        finally:
            for name, grabber in grabbers.items():
                # A stream's read can block for its read timeout (5 s): wait that long; a thread
                # still inside read() then keeps its capture (released under it, it could crash).
                if name not in released and grabber.stop(join_timeout_s=6.0):
                    grabber.source.release()
            for name in never:
                sources[name].release()


def _end(
    active: dict[str, FrameGrabber], name: str, on_end: Callable[[SourceEnd], None] | None, *, stopped: bool = False
) -> None:
    grabber = active.pop(name)
    grabber.stop(join_timeout_s=0.0)  # this source is over: its thread need not read ahead any more
    if on_end is not None:
        on_end(SourceEnd(name, grabber.delivered, grabber.dropped, grabber.failure, stopped))
