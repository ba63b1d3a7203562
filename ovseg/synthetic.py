"""Tiny OpenVINO models with the 0033 interface and outputs you choose.

For tests, examples and soak runs: the real 0033 / 0083 weights are hundreds of megabytes,
and a model whose outputs are known makes every later stage checkable. Built with OpenVINO's
opset API in milliseconds.

>>> from ovseg.synthetic import maskrcnn_model, save_model
>>> model = maskrcnn_model(classes=[1, 3], scores=[0.9, 0.4], boxes=[[0, 0, 1, 1], [0.5, 0.5, 1, 1]],
...                        boxes_relative=True)
>>> save_model(model, "tiny.xml")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops

__all__ = ["maskrcnn_model", "labels_model", "constant_model", "save_model", "disc_map"]


def disc_map(size: int = 28, radius: float = 0.4) -> np.ndarray:
    """float32 ``(size, size)``: 1 inside a centred disc of ``radius`` (fraction of the side),
    0 outside; a simple, recognisable mask."""
    centres = (np.arange(size) + 0.5) / size - 0.5
    return (np.hypot(centres[None, :], centres[:, None]) <= radius).astype(np.float32)


def _pad(values: np.ndarray, slots: int, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    out = np.zeros((slots, *shape), dtype=dtype)
    out[: len(values)] = values
    return out


def maskrcnn_model(
    classes: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    boxes: Sequence[Sequence[float]] | np.ndarray,
    mask_maps: np.ndarray | None = None,
    *,
    input_hw: tuple[int, int] = (480, 640),
    slots: int = 100,
    num_channels: int = 81,
    mask_size: int = 28,
    boxes_relative: bool = False,
    classes_type: str = "i32",
    raw_masks: np.ndarray | None = None,
    work: int = 0,
) -> ov.Model:
    """A model with exactly the 0033 family's interface whose outputs are fixed.

    Args:
        classes, scores, boxes: the first K slots (the rest are zero, i.e. empty).
        mask_maps: ``(K, m, m)`` maps written into channel ``classes[i]`` of ``raw_masks``
            (default: a centred disc for every slot).
        input_hw: ``im_data`` is ``[1, 3, *input_hw]``.
        boxes_relative: boxes are fractions of the *resized* image: the model multiplies them
            by ``im_info`` (w, h, w, h), so a box ``[0, 0, 1, 1]`` covers the whole picture
            whatever the letterboxing; its exact image-frame value is then ``[0, 0, W, H]``.
        classes_type: ``"i32"`` (OpenVINO's DetectionOutput) or ``"f32"`` (some converters).
        raw_masks: the whole ``(slots, C, m, m)`` tensor, overriding ``mask_maps``.
        work: number of 3x3 convolutions over ``im_data`` to add (their result enters the
            scores multiplied by 0), so inference takes measurable time.
    """
    k = len(classes)
    im_data = ops.parameter([1, 3, *input_hw], ov.Type.f32, name="im_data")
    im_info = ops.parameter([1, 3], ov.Type.f32, name="im_info")
    im_data.output(0).set_names({"im_data"})
    im_info.output(0).set_names({"im_info"})

    cls = _pad(np.asarray(classes, dtype=np.float64), slots, (), np.float64)
    sc = _pad(np.asarray(scores, dtype=np.float32), slots, (), np.float32)
    bx = _pad(np.asarray(boxes, dtype=np.float32).reshape(k, 4), slots, (4,), np.float32)
    if raw_masks is None:
        raw_masks = np.zeros((slots, num_channels, mask_size, mask_size), dtype=np.float32)
        maps = np.asarray(mask_maps, dtype=np.float32) if mask_maps is not None else np.repeat(disc_map(mask_size)[None], k, 0)
        for i in range(k):
            c = int(cls[i]) if np.isfinite(cls[i]) else 0
            if 0 <= c < num_channels:
                raw_masks[i, c] = maps[i]
    raw_masks = np.asarray(raw_masks, dtype=np.float32)

    # Every input feeds the outputs (multiplied by 0), so that no plugin prunes or re-routes an
    # unused parameter (HETERO does).
    x = im_data
    for _ in range(work):
        weights = ops.constant(np.full((3, 3, 3, 3), 1.0 / 27.0, dtype=np.float32))
        x = ops.convolution(x, weights, [1, 1], [1, 1], [1, 1], [1, 1])
    used = ops.add(
        ops.reduce_mean(x, ops.constant(np.array([0, 1, 2, 3])), False),
        ops.reduce_mean(im_info, ops.constant(np.array([0, 1])), False),
    )
    zero = ops.multiply(used, ops.constant(np.float32(0.0)))
    score_node = ops.add(ops.constant(sc), zero)
    box_node = ops.constant(bx)
    if boxes_relative:
        # im_info = [h, w, s] -> [w, h, w, h]
        whwh = ops.gather(im_info, ops.constant(np.array([[1, 0, 1, 0]], dtype=np.int64)), ops.constant(np.int64(1)), 0)
        box_node = ops.multiply(box_node, ops.reshape(whwh, ops.constant(np.array([1, 4])), False))
    if classes_type == "i32":
        cls_node = ops.constant(cls.astype(np.int32))
    else:
        cls_node = ops.constant(cls.astype(np.float32))
    outputs = {
        "classes": cls_node,
        "scores": score_node,
        "boxes": box_node,
        "raw_masks": ops.constant(raw_masks),
    }
    results = []
    for name, node in outputs.items():
        node.output(0).set_names({name})
        results.append(ops.result(node))
    return ov.Model(results, [im_data, im_info], "ovseg-synthetic-maskrcnn")


def labels_model(
    labels: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    boxes: Sequence[Sequence[float]] | np.ndarray,
    mask_maps: np.ndarray | None = None,
    *,
    input_hw: tuple[int, int] = (608, 608),
    mask_size: int = 28,
    boxes_relative: bool = False,
    labels_type: str = "i64",
    dynamic: bool = True,
) -> ov.Model:
    """A model with the newer OMZ family's interface (0002 / 0228 / 1039 / person-0007 ...).

    ``image`` f32 ``[1, 3, *input_hw]`` -> ``labels`` ``[N]`` (0-based), ``boxes`` f32 ``[N, 5]``
    (x1, y1, x2, y2, score), ``masks`` f32 ``[N, m, m]``, where the rows are exactly the K given.

    Args:
        labels, scores, boxes: the K detections (0-based labels; boxes x1, y1, x2, y2).
        mask_maps: ``(K, m, m)`` probability maps (default: a centred disc for every row).
        input_hw: the ``image`` input size.
        mask_size: m (28; person-0007 has 224).
        boxes_relative: boxes are fractions of the network input (``[0, 0, 1, 1]`` is the whole
            input window); they are multiplied by (W, H, W, H).
        labels_type: ``"i64"``, ``"i32"`` or ``"f32"``.
        dynamic: N is a dynamic dimension, as in the OMZ IRs: the rows pass through NonZero and
            Gather, so OpenVINO cannot know N before inference. ``False``: a static ``[K]``.
    """
    k = len(labels)
    image = ops.parameter([1, 3, *input_hw], ov.Type.f32, name="image")
    image.output(0).set_names({"image"})
    box_rows = np.zeros((k, 5), dtype=np.float32)
    if k:
        box_rows[:, :4] = np.asarray(boxes, dtype=np.float32).reshape(k, 4)
        box_rows[:, 4] = np.asarray(scores, dtype=np.float32)
    if boxes_relative:
        in_h, in_w = input_hw
        box_rows[:, :4] *= np.array([in_w, in_h, in_w, in_h], dtype=np.float32)
    maps = (
        np.asarray(mask_maps, dtype=np.float32).reshape(k, mask_size, mask_size)
        if mask_maps is not None
        else np.repeat(disc_map(mask_size)[None], k, 0)
    )
    dtype = {"i64": np.int64, "i32": np.int32, "f32": np.float32}[labels_type]
    label_rows = np.asarray(labels, dtype=np.float64).astype(dtype).reshape(k)

    # One sentinel row (keep = 0) is appended and filtered out, so that K = 0 works too.
    keep = np.concatenate([np.ones(k, dtype=np.float32), np.zeros(1, dtype=np.float32)])
    # The image feeds the outputs (multiplied by 0): no plugin may prune the input.
    mean = ops.reduce_mean(image, ops.constant(np.array([0, 1, 2, 3])), False)
    keep_node = ops.add(ops.constant(keep), ops.multiply(mean, ops.constant(np.float32(0.0))))
    if dynamic:
        nonzero = ops.non_zero(ops.greater(keep_node, ops.constant(np.float32(0.5))), "i64")
        rows = ops.squeeze(nonzero, ops.constant(np.int64(0)))
    else:
        rows = ops.constant(np.arange(k, dtype=np.int64))
    axis = ops.constant(np.int64(0))

    def pick(values: np.ndarray) -> ov.Node:
        padded = np.concatenate([values, np.zeros((1, *values.shape[1:]), dtype=values.dtype)])
        return ops.gather(ops.constant(padded), rows, axis)

    outputs = {"labels": pick(label_rows), "boxes": pick(box_rows), "masks": pick(maps.astype(np.float32))}
    results = []
    for name, node in outputs.items():
        node.output(0).set_names({name})
        results.append(ops.result(node))
    return ov.Model(results, [image], "ovseg-synthetic-labels-boxes-masks")


def constant_model(
    inputs: dict[str, tuple[Sequence[int], ov.Type]], outputs: dict[str, np.ndarray], name: str = "constant"
) -> ov.Model:
    """A model with the named inputs ``{name: (shape, element type)}`` and constant outputs
    ``{name: array}``: any interface, right or wrong, for testing interface checks."""
    params = []
    for in_name, (shape, element_type) in inputs.items():
        param = ops.parameter(list(shape), element_type, name=in_name)
        param.output(0).set_names({in_name})
        params.append(param)
    results = []
    for out_name, value in outputs.items():
        node = ops.constant(value)
        node.output(0).set_names({out_name})
        results.append(ops.result(node))
    return ov.Model(results, params, name)


def save_model(model: ov.Model, xml_path: str | Path) -> Path:
    """Write ``model`` as IR (``.xml`` + ``.bin``), uncompressed float32, and return the .xml."""
    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, xml_path, compress_to_fp16=False)
    return xml_path
