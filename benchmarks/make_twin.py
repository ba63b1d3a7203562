"""Build a random-weight compute twin of instance-segmentation-security-0033 as OpenVINO IR.

The real 0033 / 0083 weights cannot be downloaded here; for throughput work what matters is the
*compute*: the same layers, shapes and ops. The twin is Detectron's Mask R-CNN as OMZ shipped it:

- backbone ResNeXt-152 32x8d (bottleneck stages of 3, 8, 36, 3 blocks, 32 groups, 8 channels
  per group in the first stage), batch norm folded into convolution biases as in the IR;
- FPN with 256 channels (P2..P5, plus P6 by max pooling for the RPN);
- RPN head (3x3 conv, 3 anchors per position) on P2..P6, then per level
  ``ExperimentalDetectronPriorGridGenerator`` + ``ExperimentalDetectronGenerateProposalsSingleImage``
  (1000 proposals after NMS), ``ExperimentalDetectronTopKROIs`` (1000 of all levels);
- box head: ``ExperimentalDetectronROIFeatureExtractor`` 7x7 on P2..P5, two 1024 FC layers,
  81-class scores and class-specific deltas, ``ExperimentalDetectronDetectionOutput`` (100);
- mask head: ROI features 14x14 of the 100 detections, four 3x3 convs, a 2x deconvolution,
  81 sigmoid maps of 28x28.

The interface is exactly 0033's (SPEC.md): ``im_data`` f32 [1,3,480,640], ``im_info`` f32
[1,3] -> ``classes`` i32 [100], ``scores`` [100], ``boxes`` [100,4], ``raw_masks``
[100,81,28,28]. The opset6 ExperimentalDetectron ops have no Python factory functions; they are
built with ``NodeFactory("opset6")``. Weights are random (He-scaled, residual branches damped so
activations stay finite); the class logits are spread so that some detections pass the 0.05
score threshold and decoding has masks to paste.

About 141 M parameters; saved with FP16 weights (about 282 MB): write it outside the repository.

    python benchmarks/make_twin.py /tmp/twin/maskrcnn-twin-0033.xml

Options: ``--fp32`` keeps float32 weights (twice the size), ``--seed N``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.utils.node_factory import NodeFactory

INPUT_HW = (480, 640)
NUM_CLASSES = 81
DETECTIONS = 100
FPN_CHANNELS = 256
STAGE_BLOCKS = (3, 8, 36, 3)  # ResNeXt-152
GROUPS, GROUP_WIDTH = 32, 8  # 32x8d
ANCHOR_SIZES = (32, 64, 128, 256, 512)
ANCHOR_STRIDES = (4, 8, 16, 32, 64)
ASPECT_RATIOS = (0.5, 1.0, 2.0)
GAIN_CLS = 2.0  # spread of the class logits: some detections score above 0.05, as a trained model's do


def out(x) -> ov.Output:
    """The (first) output of a node, or the output itself."""
    return x if isinstance(x, ov.Output) else x.output(0)


class Builder:
    """Random weights and the layers built from them; counts parameters."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.params = 0
        self.ed = NodeFactory("opset6")

    def weights(self, shape: tuple[int, ...], fan_in: int, gain: float = math.sqrt(2.0)) -> ov.Node:
        data = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(gain / math.sqrt(fan_in))
        self.params += data.size
        return ops.constant(data)

    def bias(self, channels: int, rank: int = 4, scale: float = 0.01) -> ov.Node:
        data = self.rng.standard_normal(channels, dtype=np.float32) * np.float32(scale)
        self.params += data.size
        return ops.constant(data.reshape((1, channels) + (1,) * (rank - 2)))

    def conv(self, x, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True,
             gain: float = math.sqrt(2.0)):
        pad = k // 2
        if groups == 1:
            w = self.weights((c_out, c_in, k, k), c_in * k * k, gain)
            y = ops.convolution(x, w, [stride, stride], [pad, pad], [pad, pad], [1, 1])
        else:
            w = self.weights((groups, c_out // groups, c_in // groups, k, k), c_in // groups * k * k, gain)
            y = ops.group_convolution(x, w, [stride, stride], [pad, pad], [pad, pad], [1, 1])
        y = ops.add(y, self.bias(c_out))  # batch norm, folded
        return ops.relu(y) if relu else y

    def fc(self, x, c_in: int, c_out: int, relu: bool = True, gain: float = math.sqrt(2.0), bias_scale: float = 0.01):
        w = self.weights((c_out, c_in), c_in, gain)
        y = ops.add(ops.matmul(x, w, False, True), self.bias(c_out, rank=2, scale=bias_scale))
        return ops.relu(y) if relu else y


def bottleneck(b: Builder, x, c_in: int, width: int, c_out: int, stride: int):
    y = b.conv(x, c_in, width, 1)
    y = b.conv(y, width, width, 3, stride=stride, groups=GROUPS)
    y = b.conv(y, width, c_out, 1, relu=False, gain=0.2)  # damped: 50 residual additions stay finite
    shortcut = x if (c_in == c_out and stride == 1) else b.conv(x, c_in, c_out, 1, stride=stride, relu=False, gain=1.0)
    return ops.relu(ops.add(y, shortcut))


def backbone(b: Builder, im_data) -> list:
    # The IR takes raw 0..255 pixels: its first convolution carries the input scaling.
    x = b.conv(im_data, 3, 64, 7, stride=2, gain=math.sqrt(2.0) / 128.0)
    x = ops.max_pool(x, [2, 2], [1, 1], [1, 1], [1, 1], [3, 3], "floor", "explicit").output(0)
    c_in, feats = 64, []
    for stage, blocks in enumerate(STAGE_BLOCKS):
        width = GROUPS * GROUP_WIDTH * 2**stage
        c_out = 256 * 2**stage
        for i in range(blocks):
            x = bottleneck(b, x, c_in, width, c_out, stride=2 if (i == 0 and stage > 0) else 1)
            c_in = c_out
        feats.append(x)
    return feats  # C2..C5


def fpn(b: Builder, feats: list) -> list:
    laterals = [b.conv(c, 256 * 2**i, FPN_CHANNELS, 1, relu=False, gain=1.0) for i, c in enumerate(feats)]
    top = laterals[-1]
    merged = [top]
    for lateral in reversed(laterals[:-1]):
        hw = ops.gather(ops.shape_of(lateral), ops.constant(np.array([2, 3], np.int64)), ops.constant(np.int64(0)))
        up = ops.interpolate(
            top, hw, "nearest", "sizes", coordinate_transformation_mode="asymmetric", nearest_mode="floor",
            axes=ops.constant(np.array([2, 3], np.int64)),
        )
        top = ops.add(lateral, up)
        merged.insert(0, top)
    outs = [b.conv(m, FPN_CHANNELS, FPN_CHANNELS, 3, relu=False, gain=1.0) for m in merged]
    p6 = ops.max_pool(outs[-1], [2, 2], [1, 1], [0, 0], [0, 0], [1, 1], "ceil", "explicit").output(0)
    return [*outs, p6]  # P2..P6


def priors(size: int) -> np.ndarray:
    """Detectron's anchors of one level, centred on (0, 0)... shifted per cell by the grid op."""
    rows = []
    for ratio in ASPECT_RATIOS:
        w = size / math.sqrt(ratio)
        h = size * math.sqrt(ratio)
        rows.append([-0.5 * (w - 1), -0.5 * (h - 1), 0.5 * (w - 1), 0.5 * (h - 1)])
    return np.array(rows, dtype=np.float32)


def rpn(b: Builder, pyramid: list, im_data, im_info_1d):
    a = len(ASPECT_RATIOS)
    conv_w = b.weights((FPN_CHANNELS, FPN_CHANNELS, 3, 3), FPN_CHANNELS * 9)
    conv_b = b.bias(FPN_CHANNELS)
    cls_w = b.weights((a, FPN_CHANNELS, 1, 1), FPN_CHANNELS, 1.0)
    box_w = b.weights((4 * a, FPN_CHANNELS, 1, 1), FPN_CHANNELS, 0.1)
    rois, scores = [], []
    for level, (feature, size, stride) in enumerate(zip(pyramid, ANCHOR_SIZES, ANCHOR_STRIDES, strict=True)):
        t = ops.relu(ops.add(ops.convolution(feature, conv_w, [1, 1], [1, 1], [1, 1], [1, 1]), conv_b))
        logits = ops.convolution(t, cls_w, [1, 1], [0, 0], [0, 0], [1, 1])
        deltas = ops.convolution(t, box_w, [1, 1], [0, 0], [0, 0], [1, 1])
        anchors = b.ed.create(
            "ExperimentalDetectronPriorGridGenerator",
            [ops.constant(priors(size)).output(0), out(feature), out(im_data)],
            {"flatten": True, "h": 0, "w": 0, "stride_x": float(stride), "stride_y": float(stride)},
        )
        squeeze0 = ops.constant(np.array([0], np.int64))
        proposals = b.ed.create(
            "ExperimentalDetectronGenerateProposalsSingleImage",
            [
                out(im_info_1d),
                anchors.output(0),
                out(ops.squeeze(deltas, squeeze0)),
                out(ops.squeeze(ops.sigmoid(logits), squeeze0)),
            ],
            {"min_size": 0.0, "nms_threshold": 0.7, "pre_nms_count": 1000, "post_nms_count": 1000},
        )
        proposals.set_friendly_name(f"proposals_p{level + 2}")
        rois.append(proposals.output(0))
        scores.append(proposals.output(1))
    all_rois = ops.concat(rois, 0)
    all_scores = ops.concat(scores, 0)
    return b.ed.create(
        "ExperimentalDetectronTopKROIs", [out(all_rois), out(all_scores)], {"max_rois": 1000}
    )


def roi_features(b: Builder, rois, levels: list, size: int):
    return b.ed.create(
        "ExperimentalDetectronROIFeatureExtractor",
        [out(rois), *(out(lv) for lv in levels)],
        {"output_size": size, "sampling_ratio": 2, "pyramid_scales": [4, 8, 16, 32], "aligned": False},
    )


def build(seed: int = 0) -> tuple[ov.Model, int]:
    b = Builder(seed)
    im_data = ops.parameter([1, 3, *INPUT_HW], ov.Type.f32, name="im_data")
    im_info = ops.parameter([1, 3], ov.Type.f32, name="im_info")
    im_data.output(0).set_names({"im_data"})
    im_info.output(0).set_names({"im_info"})
    im_info_1d = ops.squeeze(im_info, ops.constant(np.array([0], np.int64)))

    pyramid = fpn(b, backbone(b, im_data))
    proposals = rpn(b, pyramid, im_data, im_info_1d)

    # Box head.
    box_feats = roi_features(b, proposals.output(0), pyramid[:4], 7)
    flat = ops.reshape(box_feats.output(0), ops.constant(np.array([-1, FPN_CHANNELS * 49], np.int64)), False)
    h = b.fc(b.fc(flat, FPN_CHANNELS * 49, 1024), 1024, 1024)
    cls_scores = ops.softmax(b.fc(h, 1024, NUM_CLASSES, relu=False, gain=GAIN_CLS, bias_scale=1.0), 1)
    box_deltas = b.fc(h, 1024, NUM_CLASSES * 4, relu=False, gain=0.05)
    det = b.ed.create(
        "ExperimentalDetectronDetectionOutput",
        [proposals.output(0), box_deltas.output(0), cls_scores.output(0), im_info.output(0)],
        {
            "score_threshold": 0.05,
            "nms_threshold": 0.5,
            "max_delta_log_wh": math.log(1000.0 / 16.0),
            "num_classes": NUM_CLASSES,
            "post_nms_count": 2000,
            "max_detections_per_image": DETECTIONS,
            "class_agnostic_box_regression": False,
            "deltas_weights": [10.0, 10.0, 5.0, 5.0],
        },
    )
    boxes, classes, scores = det.output(0), det.output(1), det.output(2)

    # Mask head on the detections.
    m = roi_features(b, boxes, pyramid[:4], 14).output(0)
    for _ in range(4):
        m = b.conv(m, FPN_CHANNELS, FPN_CHANNELS, 3)
    up_w = b.weights((FPN_CHANNELS, FPN_CHANNELS, 2, 2), FPN_CHANNELS * 4)
    m = ops.relu(ops.add(ops.convolution_backprop_data(m, up_w, [2, 2]), b.bias(FPN_CHANNELS)))
    raw_masks = ops.sigmoid(b.conv(m, FPN_CHANNELS, NUM_CLASSES, 1, relu=False, gain=1.0))

    results = []
    for name, port in (("boxes", boxes), ("classes", classes), ("scores", scores), ("raw_masks", raw_masks.output(0))):
        node = ops.result(port)
        node.get_input_tensor(0).set_names({name})
        results.append(node)
    return ov.Model(results, [im_data, im_info], "maskrcnn-resnext152-32x8d-fpn-twin-0033"), b.params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="the .xml to write (its .bin beside it); outside the repository")
    parser.add_argument("--fp32", action="store_true", help="keep float32 weights (default: FP16, like OMZ's FP16 IR)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.output.suffix != ".xml":
        parser.error(f"expected an output path ending in .xml, got {args.output}")
    start = time.perf_counter()
    model, params = build(args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, args.output, compress_to_fp16=not args.fp32)
    size = args.output.with_suffix(".bin").stat().st_size
    print(f"{args.output}: {params / 1e6:.1f} M parameters, {size / 1e6:.0f} MB weights, "
          f"built and saved in {time.perf_counter() - start:.1f} s")
    for port in model.inputs + model.outputs:
        print(f"  {port.get_any_name():10s} {port.get_element_type().get_type_name()} {port.get_partial_shape()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
