"""Overlays: masks, contours, boxes and labels drawn onto a copy of an image; status lines.

Colours are fixed per class (the same class has the same colour in every frame and every
run), spread around the hue circle by the golden ratio so neighbouring ids differ.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import ImageError
from .preprocess import as_bgr
from .result import Result

__all__ = ["class_color", "track_color", "Overlay", "Trails", "draw_status"]


def class_color(class_id: int) -> tuple[int, int, int]:
    """BGR colour of a class id: deterministic, saturated, distinct for neighbouring ids."""
    hue = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def track_color(track_id: int) -> tuple[int, int, int]:
    """BGR colour of a track id (the class palette walked from another start, so ids and
    classes do not look alike); grey for an untracked instance (-1)."""
    if track_id < 0:
        return (160, 160, 160)
    return class_color(track_id * 7 + 3)


@dataclass(frozen=True)
class Overlay:
    """Draws a :class:`~ovseg.result.Result` onto a copy of its image.

    Settings live here; the data comes with the call: ``Overlay(alpha=0.5)(image, result)``.

    Attributes:
        alpha: mask opacity, 0..1.
        masks, contours, boxes, labels: what to draw.
        thickness: line width in pixels; ``None`` scales with the image size.
    """

    alpha: float = 0.5
    masks: bool = True
    contours: bool = True
    boxes: bool = True
    labels: bool = True
    thickness: int | None = None
    by_track: bool = False
    """Colour by track id and put ``#id`` in the label (tracked video), not by class."""

    def color(self, class_id: int, track_id: int) -> tuple[int, int, int]:
        return track_color(track_id) if self.by_track else class_color(class_id)

    def __call__(self, image: np.ndarray, result: Result) -> np.ndarray:
        """Return a new BGR uint8 image with ``result`` drawn on ``image`` (not modified)."""
        canvas = as_bgr(image).copy()
        if canvas.shape[:2] != result.image_hw:
            raise ImageError(f"expected an image of size {result.image_hw}, got {canvas.shape[:2]}")
        thickness = self.thickness or max(1, round(max(result.image_hw) / 500))
        # Lowest score first, so the most confident instance ends on top.
        order = np.argsort(-result.scores, kind="stable")[::-1].tolist()
        instances = list(result)
        for i in order:
            inst = instances[i]
            crop = inst.mask_crop
            if not (self.masks or self.contours) or crop.size == 0:
                continue
            color = np.array(self.color(inst.class_id, inst.track_id), dtype=np.float32)
            x, y = inst.mask_offset
            region = canvas[y : y + crop.shape[0], x : x + crop.shape[1]]
            if self.masks:
                pixels = region[crop].astype(np.float32)
                region[crop] = (pixels * (1.0 - self.alpha) + color * self.alpha).astype(np.uint8)
            if self.contours:
                outlines, _ = cv2.findContours(
                    crop.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y)
                )
                cv2.drawContours(canvas, outlines, -1, tuple(int(c) for c in color), thickness, cv2.LINE_AA)
        if self.boxes:
            for i in order:
                x1, y1, x2, y2 = (int(round(v)) for v in instances[i].box)
                color = self.color(instances[i].class_id, instances[i].track_id)
                cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        if self.labels:
            # Most confident first, so they get the spot right above their box; later labels
            # move down out of the way instead of covering an earlier one.
            placed: list[tuple[int, int, int, int]] = []
            for i in order[::-1]:
                inst = instances[i]
                text = f"{inst.label} {inst.score:.2f}"
                if self.by_track and inst.track_id >= 0:
                    text = f"#{inst.track_id} {text}"
                self._label(canvas, text, inst.box, self.color(inst.class_id, inst.track_id), placed)
        return canvas

    def _label(
        self,
        canvas: np.ndarray,
        text: str,
        box: tuple[float, float, float, float],
        color: tuple[int, int, int],
        placed: list[tuple[int, int, int, int]],
    ) -> None:
        """Text on a filled tag of the class colour, above the box's top-left corner (inside the
        box where there is no room above), moved down past tags already ``placed`` (x0, y0, x1, y1,
        appended to)."""
        height, width = canvas.shape[:2]
        scale = max(0.4, min(height, width) / 900)
        weight = max(1, round(scale * 1.5))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
        tag_w, tag_h = tw + 4, th + base + 4
        x = min(max(int(box[0]), 0), max(width - tag_w, 0))
        y = int(box[1]) - tag_h if int(box[1]) - tag_h >= 0 else int(box[1])
        y = min(max(y, 0), max(height - tag_h, 0))
        start, wrapped = y, False
        for _ in range(2 * len(placed) + 2):
            hit = next((p for p in placed if x < p[2] and p[0] < x + tag_w and y < p[3] and p[1] < y + tag_h), None)
            if hit is None:
                break
            y = hit[3]
            if y + tag_h > height:  # no room further down: look from the top once
                if wrapped:
                    y = start  # nowhere free: overlap where it belongs
                    break
                y, wrapped = 0, True
        placed.append((x, y, x + tag_w, y + tag_h))
        # cv2.rectangle includes its far corner: the tag covers exactly [x, x + tag_w) x [y, y + tag_h).
        cv2.rectangle(canvas, (x, y), (x + tag_w - 1, y + tag_h - 1), color, cv2.FILLED)
        luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
        ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
        cv2.putText(canvas, text, (x + 2, y + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, weight, cv2.LINE_AA)


class Trails:
    """The last ``length`` box centres of every track, drawn as a fading polyline in its
    colour: where each object came from. One per stream; :meth:`update` with each tracked
    result, then :meth:`draw` onto the overlay. Tracks not seen for ``length`` frames are
    forgotten."""

    def __init__(self, length: int = 20) -> None:
        self.length = length
        self._points: dict[int, list[tuple[int, int]]] = {}
        self._seen: dict[int, int] = {}
        self._frame = 0

    def update(self, result: Result) -> None:
        self._frame += 1
        for track_id, (x1, y1, x2, y2) in zip(result.track_ids.tolist(), result.boxes.tolist(), strict=True):
            if track_id < 0:
                continue
            points = self._points.setdefault(track_id, [])
            points.append((int(round((x1 + x2) / 2)), int(round((y1 + y2) / 2))))
            del points[: -self.length]
            self._seen[track_id] = self._frame
        for track_id in [t for t, seen in self._seen.items() if self._frame - seen >= self.length]:
            del self._points[track_id], self._seen[track_id]

    def draw(self, image: np.ndarray) -> None:
        """Draw the trails onto ``image`` (in place)."""
        thickness = max(1, round(max(image.shape[:2]) / 400))
        for track_id, points in self._points.items():
            for a, b in zip(points, points[1:], strict=False):
                cv2.line(image, a, b, track_color(track_id), thickness, cv2.LINE_AA)


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
