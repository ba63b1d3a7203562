"""A generator run on its own thread, its items handed over one slot at a time.

The demo's segmenting thread: the caller's thread only draws, writes and shows, and answers
keys every few milliseconds however long a frame takes to segment (0.6-1.2 s for the real 0033
on two cores). The slot holds one item, so a caller that stops taking (pause) stops the
producer; an exception in the producer is re-raised by :meth:`Handoff.take`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator
from typing import Any

__all__ = ["Handoff", "END"]

logger = logging.getLogger(__name__)

#: What :meth:`Handoff.take` returns once the generator is exhausted.
END = object()


class Handoff:
    """Runs ``make_pairs()`` on a daemon thread and hands its items over one slot."""

    def __init__(self, make_pairs: Callable[[], Generator[Any, None, None]], *, name: str = "ovseg-segment") -> None:
        self._slot: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make_pairs,), name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self, make_pairs: Callable[[], Generator[Any, None, None]]) -> None:
        pairs = None
        try:
            pairs = make_pairs()
            for pair in pairs:
                if not self._put(pair):
                    return
            self._put(END)
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
        """The next item, :data:`END`, or ``None`` if none came within ``timeout_s``."""
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
