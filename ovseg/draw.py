"""Overlays: masks, contours, boxes and labels drawn onto a copy of an image.

Colours are fixed per class (the same class has the same colour in every frame and every
run), spread around the hue circle by the golden ratio so neighbouring ids differ.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from .preprocess import as_bgr
from .result import Result

__all__ = ["class_color", "Overlay"]


def class_color(class_id: int) -> tuple[int, int, int]:
    """BGR colour of a class id: deterministic, saturated, distinct for neighbouring ids."""
    hue = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


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

    def __call__(self, image: np.ndarray, result: Result) -> np.ndarray:
        """Return a new BGR uint8 image with ``result`` drawn on ``image`` (not modified)."""
        canvas = as_bgr(image).copy()
        if canvas.shape[:2] != result.image_hw:
            raise ValueError(f"expected an image of size {result.image_hw}, got {canvas.shape[:2]}")
        thickness = self.thickness or max(1, round(max(result.image_hw) / 500))
        # Lowest score first, so the most confident instance ends on top.
        order = np.argsort(-result.scores, kind="stable")[::-1].tolist()
        instances = list(result)
        for i in order:
            inst = instances[i]
            crop = inst.mask_crop
            if not (self.masks or self.contours) or crop.size == 0:
                continue
            color = np.array(class_color(inst.class_id), dtype=np.float32)
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
        for i in order:
            inst = instances[i]
            color = class_color(inst.class_id)
            x1, y1, x2, y2 = (int(round(v)) for v in inst.box)
            if self.boxes:
                cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
            if self.labels:
                self._label(canvas, f"{inst.label} {inst.score:.2f}", (x1, y1), color)
        return canvas

    def _label(self, canvas: np.ndarray, text: str, corner: tuple[int, int], color: tuple[int, int, int]) -> None:
        """Text on a filled box of the class colour, above the box corner (inside if no room)."""
        height, width = canvas.shape[:2]
        scale = max(0.4, min(height, width) / 900)
        weight = max(1, round(scale * 1.5))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
        x = min(max(corner[0], 0), max(width - tw - 4, 0))
        y = corner[1] - th - base - 4 if corner[1] - th - base - 4 >= 0 else min(corner[1], height - th - base - 4)
        y = max(y, 0)
        cv2.rectangle(canvas, (x, y), (x + tw + 4, y + th + base + 4), color, cv2.FILLED)
        luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
        ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
        cv2.putText(canvas, text, (x + 2, y + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, weight, cv2.LINE_AA)
