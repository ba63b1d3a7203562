"""Image -> network input: the preprocessing of the card's accuracy protocol.

The protocol (OMZ accuracy checker, 0083 config; SPEC.md):

1. ``fit_to_window``: ``s = min(in_h / H, in_w / W)``, new size ``(int(W * s), int(H * s))``
   (truncation), ``cv2.resize`` with ``INTER_LINEAR``;
2. zero padding on the right and at the bottom up to exactly ``in_h x in_w``;
3. BGR, raw 0..255 values (no mean, no scale), NCHW float32;
4. ``im_info = [resized_h, resized_w, 1]`` (the accuracy checker's and today's OMZ demo's
   value; the 2019 demo passed the scale ``s`` in the third slot, ``im_info_scale=True``).

Results are mapped back with *separate* x and y factors ``resized_w / W`` and
``resized_h / H`` (the integer truncation makes them differ slightly), which
:class:`Transform` carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from .errors import ConfigError, ImageError

__all__ = ["Transform", "ResizeMode", "as_bgr", "fit_size", "preprocess"]

#: ``fit``: aspect-preserving resize into the window plus zero padding (the 0033 family);
#: ``stretch``: plain resize to the window, aspect ratio not kept (some newer OMZ models).
ResizeMode = Literal["fit", "stretch"]


@dataclass(frozen=True)
class Transform:
    """How an original image was mapped into the network input, and back.

    All sizes are (height, width) in pixels. A point ``(x, y)`` of the original image lands at
    ``(x * scale_x, y * scale_y)`` of the network input.
    """

    image_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    input_hw: tuple[int, int]
    scale: float
    """The single fit factor ``s`` of the protocol (what the 2019 demo put in ``im_info``)."""

    @property
    def scale_x(self) -> float:
        return self.resized_hw[1] / self.image_hw[1]

    @property
    def scale_y(self) -> float:
        return self.resized_hw[0] / self.image_hw[0]

    def boxes_to_image(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Map ``(N, 4)`` x1,y1,x2,y2 boxes from the input frame to original-image pixels.

        Returns a new float64 array; the result is not clipped.
        """
        factors = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y])
        return np.asarray(boxes_xyxy, dtype=np.float64) / factors


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a BGR uint8 ``(H, W, 3)`` array, converting what OpenCV would read.

    Accepted: uint8 or uint16 arrays of shape ``(H, W)`` (grayscale), ``(H, W, 1)``,
    ``(H, W, 3)`` (BGR) or ``(H, W, 4)`` (BGRA; alpha dropped). 16-bit values are scaled to
    8 bits by ``/ 257`` (65535 -> 255). Anything else raises :class:`ImageError`. The
    caller's array is never modified; a BGR uint8 input is returned as it is.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy array (BGR uint8 HxWx3), got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageError(
            "expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
            f"got shape {image.shape}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageError(f"expected an image of at least 1x1 pixels, got shape {image.shape}")
    if image.dtype == np.uint16:
        # Round to nearest: 65535 -> 255, 257 -> 1; what cv2.convertScaleAbs(alpha=1/257) gives.
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(
            f"expected a uint8 or uint16 image, got dtype {image.dtype} "
            "(convert floats with (img * 255).clip(0, 255).astype(np.uint8))"
        )
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(np.ascontiguousarray(image.reshape(image.shape[:2])), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGRA2BGR)
    return image


def fit_size(image_hw: tuple[int, int], window_hw: tuple[int, int]) -> tuple[tuple[int, int], float]:
    """Size of an ``image_hw`` image fitted into ``window_hw`` by the protocol's rule.

    Returns ``((new_h, new_w), s)`` with ``s = min(win_h / H, win_w / W)`` and sides
    ``int(H * s)``, ``int(W * s)`` (truncated, exactly as the accuracy checker computes them),
    never below 1 pixel.
    """
    h, w = image_hw
    win_h, win_w = window_hw
    s = min(float(win_h) / float(h), float(win_w) / float(w))
    return (max(1, min(win_h, int(h * s))), max(1, min(win_w, int(w * s)))), s


def preprocess(
    image: np.ndarray,
    input_hw: tuple[int, int] = (480, 640),
    *,
    resize: ResizeMode = "fit",
    im_info_scale: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, Transform]:
    """Turn an image into the network's ``im_data`` and ``im_info``.

    Args:
        image: the picture; see :func:`as_bgr` for what is accepted. Not modified.
        input_hw: the network input size (height, width), e.g. (480, 640) for 0033/0083.
        resize: ``"fit"`` (the protocol) or ``"stretch"`` (plain resize to ``input_hw``).
        im_info_scale: put the fit factor ``s`` into ``im_info[0, 2]`` instead of 1.
        out: optional float32 ``(1, 3, in_h, in_w)`` array to write ``im_data`` into (an infer
            request's input tensor, say); it is fully overwritten.

    Returns:
        ``im_data``: float32 ``(1, 3, in_h, in_w)``, BGR, values 0..255, the resized image in
        the top-left corner and zeros elsewhere;
        ``im_info``: float32 ``(1, 3)`` = resized height, resized width, 1 (or ``s``);
        the :class:`Transform` that maps results back to the original image.
    """
    bgr = as_bgr(image)
    image_hw = (int(bgr.shape[0]), int(bgr.shape[1]))
    in_h, in_w = input_hw
    if resize == "fit":
        (new_h, new_w), s = fit_size(image_hw, input_hw)
    elif resize == "stretch":
        new_h, new_w, s = in_h, in_w, 1.0
    else:
        raise ConfigError(f"expected resize 'fit' or 'stretch', got {resize!r}")
    if (new_h, new_w) != image_hw:
        bgr = cv2.resize(bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)

    shape = (1, 3, in_h, in_w)
    if out is None:
        im_data = np.zeros(shape, dtype=np.float32)
    else:
        if out.shape != shape or out.dtype != np.float32:
            raise ConfigError(f"expected out of shape {shape} float32, got {out.shape} {out.dtype}")
        im_data = out
        im_data[0, :, new_h:, :] = 0.0
        im_data[0, :, :new_h, new_w:] = 0.0
    # HWC uint8 -> CHW float32 in one strided copy.
    im_data[0, :, :new_h, :new_w] = bgr.transpose(2, 0, 1)
    im_info = np.array([[new_h, new_w, s if im_info_scale else 1.0]], dtype=np.float32)
    return im_data, im_info, Transform(image_hw=image_hw, resized_hw=(new_h, new_w), input_hw=(in_h, in_w), scale=s)
