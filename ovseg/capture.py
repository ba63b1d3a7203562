"""The capture thread: a frame source read on its own thread, newest-frame or lossless.

:class:`FrameGrabber` reads a :class:`~ovseg.sources.FrameSource`:

- **live** sources (cameras, URLs) are read as fast as they deliver and only the newest frame
  is kept: a slow consumer gets the newest frame each time, the skipped ones are counted as
  ``dropped``, and nothing queues up;
- **files** lose nothing: up to ``READ_AHEAD`` frames are read ahead and the thread waits
  while the consumer catches up (back-pressure). A file read as live (``--live``) is paced
  at its frame rate, so it plays like a camera.

Failures end the iteration and leave a :class:`~ovseg.errors.CaptureError` with a one-line
message in :attr:`FrameGrabber.failure`: a live source silent for too long, a read that raised,
a file that gave no frame at all.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterator

from .errors import CaptureError
from .sources import Frame, FrameSource

__all__ = ["FrameGrabber", "READ_AHEAD"]

logger = logging.getLogger(__name__)

#: Frames the capture thread of a file source reads ahead of the consumer.
READ_AHEAD = 4


class FrameGrabber:
    """Reads a source on a daemon thread; the consumer takes frames with :meth:`frames`.

    Live sources keep only the newest frame (older ones are counted in ``dropped``); file
    sources fill a queue of ``READ_AHEAD`` frames and wait while it is full. Call
    :meth:`start`, iterate :meth:`frames`, then :meth:`stop` (the source is the caller's to
    release, after :meth:`stop`).
    """

    def __init__(
        self, source: FrameSource, *, stall_timeout_s: float, first_frame_timeout_s: float,
        wake: threading.Event | None = None,
    ) -> None:
        self.source = source
        self.wake = wake  # set whenever a frame arrives or the source ends (for poll())
        self.stall_timeout_s = stall_timeout_s
        self.first_frame_timeout_s = first_frame_timeout_s
        self.dropped = 0
        self.delivered = 0
        self._frames: collections.deque[Frame] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._error: BaseException | None = None
        self.failure: CaptureError | None = None
        self._waiting_since = time.monotonic()
        self._ended = False
        self._thread = threading.Thread(target=self._run, name=f"ovseg-capture[{source.name}]", daemon=True)

    def start(self) -> None:
        self._waiting_since = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        live, finite = self.source.live, self.source.finite
        # A file read as live plays at its own rate, as a camera would deliver it.
        period_s = 1.0 / self.source.fps if live and finite and self.source.fps else 0.0
        start = time.perf_counter()
        count = 0
        try:
            while not self._stop.is_set():
                frame = self.source.read_frame()
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
                if self.wake is not None:
                    self.wake.set()
        except BaseException as error:  # handed to the consumer as a CaptureError
            self._error = error
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()
            if self.wake is not None:
                self.wake.set()

    def _timeout_s(self) -> float | None:
        if self.source.finite:
            return None
        return self.first_frame_timeout_s if self.delivered == 0 else self.stall_timeout_s

    def poll(self) -> Frame | None:
        """The next frame if one is ready, else ``None`` without waiting; :attr:`ended` tells
        whether the source is over (then :attr:`failure` says why, if it failed)."""
        with self._cond:
            if self._frames:
                frame = self._frames.popleft()
                self._cond.notify_all()
            elif self._done:
                self._finish()
                return None
            else:
                timeout = self._timeout_s()
                if timeout is not None and time.monotonic() - self._waiting_since > timeout:
                    self._silent(timeout)
                return None
        self.delivered += 1
        self._waiting_since = time.monotonic()
        return frame

    @property
    def ended(self) -> bool:
        """The source is over: it ended, failed or fell silent, and every frame was taken."""
        return self._ended

    def _silent(self, timeout: float) -> None:
        if self.delivered == 0:
            self.failure = CaptureError(f"{self.source.name}: expected frames, got none within {timeout:.1f} s")
        else:
            self.failure = CaptureError(
                f"{self.source.name} stopped delivering frames: none for {timeout:.1f} s after frame {self.delivered}"
            )
        self._ended = True

    def _finish(self) -> None:
        if isinstance(self._error, CaptureError):  # ovseg's own: one line naming the source (a file gone before its turn)
            self.failure = self._error
        elif self._error is not None:
            text = str(self._error).strip()
            message = f": {text.splitlines()[0]}" if text else ""
            self.failure = CaptureError(
                f"{self.source.name}: reading frame {self.delivered + 1} failed: {type(self._error).__name__}{message}"
            )
            self.failure.__cause__ = self._error
        elif self.delivered == 0:
            self.failure = CaptureError(f"{self.source.name}: expected frames, got none that could be decoded")
        self._ended = True

    def frames(self) -> Iterator[Frame]:
        """Frames in order (files) or the newest each time (live) until the source ends.

        When the read failed, a camera or stream was silent for longer than its timeout, or a file
        gave no frame at all, the iteration ends and :attr:`failure` holds the
        :class:`CaptureError` to raise: the frames already taken are finished first.
        """
        while not self._ended:
            frame = self.poll()
            if frame is not None:
                yield frame
                continue
            if self._ended:
                return
            timeout = self._timeout_s()
            with self._cond:
                left = None if timeout is None else max(0.0, timeout - (time.monotonic() - self._waiting_since))
                self._cond.wait_for(lambda: bool(self._frames) or self._done, left)

    def stop(self, join_timeout_s: float = 2.0) -> bool:
        """Stop the thread; returns whether it ended within ``join_timeout_s`` (if not, it is
        still inside ``read()``, and the source must not be released under it)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(join_timeout_s)
            if self._thread.is_alive():
                if join_timeout_s > 0:  # asked to wait: say that it did not end (0: a stop signal only)
                    logger.warning("%s: the capture thread is still blocked in read()", self.source.name)
                return False
        return True
