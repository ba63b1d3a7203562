"""What the demo window's keys change: threshold, pause, masks, boxes.

``q``/Esc quit, space pause, ``+``/``-`` threshold by 0.05, ``m`` masks and contours on/off,
``b`` boxes on/off.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Controls", "KEY_HELP"]

KEY_HELP = "q quit, space pause, +/- threshold, m masks, b boxes"


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
