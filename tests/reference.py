"""Slow, obvious reference implementations that the fast kernels are tested against."""

from __future__ import annotations

import cv2
import numpy as np


def omz_expand_box(box: np.ndarray, scale: float) -> np.ndarray:
    """OMZ's expand_box, as the demo and the accuracy checker have it."""
    w_half = (box[2] - box[0]) * 0.5
    h_half = (box[3] - box[1]) * 0.5
    x_c = (box[2] + box[0]) * 0.5
    y_c = (box[3] + box[1]) * 0.5
    w_half *= scale
    h_half *= scale
    box_exp = np.zeros(box.shape)
    box_exp[0] = x_c - w_half
    box_exp[2] = x_c + w_half
    box_exp[1] = y_c - h_half
    box_exp[3] = y_c + h_half
    return box_exp


def omz_segm_postprocess(box: np.ndarray, raw_cls_mask: np.ndarray, im_h: int, im_w: int) -> np.ndarray:
    """OMZ's segm_postprocess: the legacy paste, into a full (im_h, im_w) uint8 mask.

    ``box`` is a float32 array of 4 values in original-image pixels. Written as OMZ has it,
    except that the paste region is limited to the resized mask's extent (OMZ raises there).
    """
    raw_cls_mask = np.pad(raw_cls_mask, ((1, 1), (1, 1)), "constant", constant_values=0)
    extended_box = omz_expand_box(box, raw_cls_mask.shape[0] / (raw_cls_mask.shape[0] - 2.0)).astype(int)
    w, h = np.maximum(extended_box[2:] - extended_box[:2] + 1, 1)
    x0, y0 = np.clip(extended_box[:2], a_min=0, a_max=[im_w, im_h])
    x1, y1 = np.clip(extended_box[2:] + 1, a_min=0, a_max=[im_w, im_h])
    x1, y1 = min(x1, extended_box[0] + w), min(y1, extended_box[1] + h)
    raw_cls_mask = cv2.resize(raw_cls_mask, (int(w), int(h))) > 0.5
    mask = raw_cls_mask.astype(np.uint8)
    im_mask = np.zeros((im_h, im_w), dtype=np.uint8)
    if x1 > x0 and y1 > y0:
        im_mask[y0:y1, x0:x1] = mask[(y0 - extended_box[1]) : (y1 - extended_box[1]), (x0 - extended_box[0]) : (x1 - extended_box[0])]
    return im_mask


def aligned_paste_per_pixel(prob: np.ndarray, box: tuple[float, float, float, float], im_h: int, im_w: int) -> np.ndarray:
    """detectron2's paste, one pixel at a time: sample the map at the pixel centre's position,
    bilinear, zero outside the map, threshold >= 0.5."""
    m_h, m_w = prob.shape
    x1, y1, x2, y2 = box
    out = np.zeros((im_h, im_w), dtype=bool)
    if not (x2 - x1 > 0 and y2 - y1 > 0):
        return out

    def at(r: int, c: int) -> float:
        return float(prob[r, c]) if 0 <= r < m_h and 0 <= c < m_w else 0.0

    for y in range(im_h):
        v = ((y + 0.5) - y1) / (y2 - y1) * m_h - 0.5
        r0 = int(np.floor(v))
        fy = v - r0
        for x in range(im_w):
            u = ((x + 0.5) - x1) / (x2 - x1) * m_w - 0.5
            c0 = int(np.floor(u))
            fx = u - c0
            value = (
                at(r0, c0) * (1 - fy) * (1 - fx)
                + at(r0, c0 + 1) * (1 - fy) * fx
                + at(r0 + 1, c0) * fy * (1 - fx)
                + at(r0 + 1, c0 + 1) * fy * fx
            )
            out[y, x] = value >= 0.5
    return out


def aligned_paste_exact(prob: np.ndarray, box: tuple[float, float, float, float], im_h: int, im_w: int) -> np.ndarray:
    """The same rule as :func:`aligned_paste_per_pixel`, in float64, vectorized as
    ``Wy @ prob @ Wx.T`` with dense 2-tap interpolation matrices. Returns the float64
    ``(im_h, im_w)`` values (threshold them with ``>= 0.5``)."""
    m_h, m_w = prob.shape
    x1, y1, x2, y2 = (float(c) for c in box)
    if not (x2 - x1 > 0 and y2 - y1 > 0):
        return np.zeros((im_h, im_w))

    def taps(n: int, b0: float, b1: float, m: int) -> np.ndarray:
        pos = ((np.arange(n) + 0.5) - b0) / (b1 - b0) * m - 0.5
        lo = np.floor(pos)
        frac = pos - lo
        weights = np.zeros((n, m))
        for offset, wt in ((0, 1.0 - frac), (1, frac)):
            c = lo.astype(np.int64) + offset
            inside = (c >= 0) & (c < m)
            weights[np.flatnonzero(inside), c[inside]] += wt[inside]
        return weights

    return taps(im_h, y1, y2, m_h) @ prob.astype(np.float64) @ taps(im_w, x1, x2, m_w).T
