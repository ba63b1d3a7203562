"""INT8 by post-training quantization (NNCF) on real images, preprocessed exactly as ovseg does.

The optional extra ``ovseg[quantize]`` brings NNCF; it is imported only inside
:func:`quantize_model`, so ``import ovseg`` and every other command work without it.

- ``calibration_images(folder)``: the image files of a folder (sorted; one-line errors for a
  missing, empty or unreadable folder).
- ``head_ops(model)``: the names of the *last weighted layer of every head* (the Convolution /
  MatMul ops from which an output is reached without passing another weighted op) and of every
  op after them. Kept in float by ``ignored="heads"``: they are cheap, their errors go straight
  into scores, box deltas and mask logits, and 8 bits over a 640-pixel range would put box
  corners on a 2.5-pixel grid.
- ``quantize_model(model, images, output)``: calibrate, quantize, optionally with NNCF's
  accuracy control (``max_drop`` AP points, box and mask each, on annotated images), and write
  the INT8 IR atomically (``.xml`` and ``.bin`` under temporary names, then renamed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import openvino as ov

from .coco import evaluate
from .decode import decode, gather_labels_boxes_masks, gather_maskrcnn
from .errors import ConfigError, DatasetError
from .images import IMAGE_SUFFIXES, read_image
from .model import MASKRCNN_FAMILY, ModelInfo, check_ir_output, read_model, save_ir
from .options import IGNORED_SCOPES, QUANTIZE_INSTALL_HINT
from .preprocess import Transform, preprocess

__all__ = [
    "INSTALL_HINT",
    "IGNORED_SCOPES",
    "QuantizeReport",
    "calibration_images",
    "head_ops",
    "model_inputs",
    "quantize_model",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = QUANTIZE_INSTALL_HINT

#: ``heads``: keep :func:`head_ops` in float; ``none``: quantize every op NNCF would.
IgnoredScope = Literal["heads", "none"]

#: Ops with weights (or two activations) that NNCF quantizes and that end a head.
_WEIGHTED = frozenset({"Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul"})
#: Inputs that a node reads for their shape only: the walk does not continue through them.
_SHAPE_ONLY_INPUTS = {
    "ShapeOf": (0,),
    "ExperimentalDetectronPriorGridGenerator": (1, 2),  # feature map and image: sizes only
}


@dataclass(frozen=True)
class QuantizeReport:
    """What :func:`quantize_model` did.

    Attributes:
        output: the INT8 ``.xml`` written (its ``.bin`` beside it).
        calibration_images: how many images were used for calibration.
        ignored: names of the ops kept in float.
        fake_quantize: FakeQuantize ops in the result (0 means nothing was quantized).
        accuracy: with accuracy control: ``{"float": (box AP, mask AP), "int8": (...)}`` in AP
            points on the validation images; empty otherwise.
        duration_s: wall time of calibration and quantization.
    """

    output: Path
    calibration_images: int
    ignored: tuple[str, ...]
    fake_quantize: int
    duration_s: float
    accuracy: dict[str, tuple[float, float]] = field(default_factory=dict)


def calibration_images(folder: str | Path, limit: int | None = None) -> list[Path]:
    """The image files directly in ``folder`` (sorted by name), at most ``limit``.

    Raises:
        DatasetError: the folder is missing, not a folder, unreadable, or holds no image files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"calibration folder not found: expected a folder of images, got {folder}")
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as error:
        raise DatasetError(f"calibration folder {folder} is unreadable: {error.strerror or error}") from None
    if not files:
        raise DatasetError(
            f"calibration folder {folder}: expected image files ({', '.join(IMAGE_SUFFIXES[:4])}, ...), got none"
        )
    return files[:limit] if limit else files


def head_ops(model: ov.Model) -> list[str]:
    """Friendly names of the ops that finish the network: the last weighted op on every path
    into an output, and every op after it (the post-processing: activations, box decoding,
    NMS / TopK, ROIAlign, detection outputs, ...).

    Walks back from each ``Result`` and stops at the first Convolution / MatMul on each path.
    Inputs read only for their shape (``ShapeOf``, the feature-map and image inputs of
    ``ExperimentalDetectronPriorGridGenerator``) are not followed, so the FPN features reached
    that way are not counted. Returned in graph order; ``Result``, ``Constant`` and
    ``Parameter`` nodes are not listed.
    """
    found: set[str] = set()
    seen: set[str] = set()
    stack = [result for result in model.get_results()]
    while stack:
        node = stack.pop()
        name = node.get_friendly_name()
        if name in seen:
            continue
        seen.add(name)
        if node.get_type_name() not in ("Result",):
            found.add(name)
        if node.get_type_name() in _WEIGHTED:
            continue
        skipped = _SHAPE_ONLY_INPUTS.get(node.get_type_name(), ())
        for index, port in enumerate(node.inputs()):
            source = port.get_source_output().get_node()
            if index not in skipped and source.get_type_name() not in ("Constant", "Parameter"):
                stack.append(source)
    return [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_friendly_name() in found]


def model_inputs(image: np.ndarray, info: ModelInfo, *, resize: str = "fit") -> tuple[dict[str, np.ndarray], Transform]:
    """The network inputs of one image, by ovseg's preprocessing (:func:`ovseg.preprocess.preprocess`):
    ``{"im_data", "im_info"}`` for the 0033 family, ``{"image"}`` for the newer one."""
    im_data, im_info, transform = preprocess(image, info.input_hw, resize="stretch" if resize == "stretch" else "fit")
    if info.family == MASKRCNN_FAMILY:
        return {"im_data": im_data, "im_info": im_info}, transform
    return {"image": im_data}, transform


def _outputs_by_name(values: Any) -> dict[str, np.ndarray]:
    return {name: np.asarray(array) for port, array in values.items() for name in port.get_names()}


def _ap_points(
    compiled: ov.CompiledModel, info: ModelInfo, items: Iterable[tuple[int, Path]], ground_truth: Any, resize: str
) -> tuple[float, float]:
    """(box AP, mask AP) in points of ``compiled`` on ``items`` = (image id, path), legacy paste,
    no threshold (the card's protocol)."""
    gather = gather_maskrcnn if info.family == MASKRCNN_FAMILY else gather_labels_boxes_masks
    detections: list[dict[str, Any]] = []
    ids = []
    for image_id, path in items:
        inputs, transform = model_inputs(read_image(path), info, resize=resize)
        outputs = _outputs_by_name(compiled(inputs))
        detections += decode(gather(outputs, 0.0), transform, paste="legacy").to_coco(image_id)
        ids.append(image_id)
    stats, _ = evaluate(ground_truth, detections, image_ids=ids)
    return stats["bbox"][0] * 100.0, stats["segm"][0] * 100.0


def quantize_model(
    model: str | Path,
    images: Sequence[Path],
    output: str | Path,
    *,
    ignored: IgnoredScope = "heads",
    subset_size: int = 300,
    resize: str = "fit",
    preset: str = "mixed",
    fast_bias_correction: bool = True,
    annotations: Any | None = None,
    validation: Sequence[tuple[int, Path]] = (),
    max_drop: float = 1.0,
    core: ov.Core | None = None,
    on_image: Callable[[], None] | None = None,
    nncf_log_level: int | None = logging.WARNING,
) -> QuantizeReport:
    """Quantize ``model`` to INT8 with NNCF, calibrated on ``images``, and write it to ``output``.

    Args:
        model: a float IR / ONNX of a known family (0033 or the newer OMZ one), or a catalogue name.
        images: calibration image files; each is read and preprocessed as ovseg does.
        output: the INT8 ``.xml`` to write; its folder must exist. Nothing is left half-written.
        ignored: ``"heads"`` keeps :func:`head_ops` in float; ``"none"`` quantizes everything.
        subset_size: calibration samples NNCF uses (at most ``len(images)``).
        resize: ``"fit"`` or ``"stretch"``, as the model is run.
        preset: NNCF's ``mixed`` (asymmetric activations: on the stand-in, whose SiLU outputs go
            below 0, box AP -0.3 instead of -2.0 with ``performance``) or ``performance`` (symmetric).
        fast_bias_correction: NNCF's fast (True) or full bias correction.
        annotations: a pycocotools ``COCO`` of ``validation``; with it, NNCF's
            ``quantize_with_accuracy_control`` keeps ops in float until neither box nor mask AP
            falls by more than ``max_drop`` points on ``validation``.
        validation: (image id, path) pairs scored for the accuracy control.
        on_image: called once per calibration image read.
        nncf_log_level: the level of NNCF's logger while this runs (NNCF sets INFO when imported and
            logs each op it leaves alone); restored afterwards. ``None``: left as it is.

    Raises:
        ModelError / InterfaceError: the model is missing or not of a known family; the output
            cannot be written. DatasetError: no images. ConfigError: bad options, or NNCF absent.
    """
    output = Path(output)
    check_ir_output(output)
    if ignored not in IGNORED_SCOPES:
        raise ConfigError(f"expected ignored scope 'heads' or 'none', got {ignored!r}")
    if preset not in ("performance", "mixed"):
        raise ConfigError(f"expected preset 'performance' or 'mixed', got {preset!r}")
    if resize not in ("fit", "stretch"):
        raise ConfigError(f"expected resize 'fit' or 'stretch' for calibration, got {resize!r}")
    if not images:
        raise DatasetError("expected at least one calibration image, got none")
    if annotations is not None and not validation:
        raise DatasetError("expected annotated validation images for the accuracy control, got none")
    core = core or ov.Core()
    float_model, info = read_model(model, core)
    try:
        import nncf
    except ImportError:
        raise ConfigError(f"quantization needs NNCF: {INSTALL_HINT}") from None
    nncf_logger = logging.getLogger("nncf")
    saved_level = nncf_logger.level
    if nncf_log_level is not None:
        nncf_logger.setLevel(nncf_log_level)
    try:
        return _quantize(nncf, float_model, info, images, output, core=core, ignored=ignored, subset_size=subset_size,
                         resize=resize, preset=preset, fast_bias_correction=fast_bias_correction, annotations=annotations,
                         validation=validation, max_drop=max_drop, on_image=on_image)
    finally:
        nncf_logger.setLevel(saved_level)


def _quantize(
    nncf: Any, float_model: ov.Model, info: ModelInfo, images: Sequence[Path], output: Path, *, core: ov.Core, ignored: str,
    subset_size: int, resize: str, preset: str, fast_bias_correction: bool, annotations: Any | None,
    validation: Sequence[tuple[int, Path]], max_drop: float, on_image: Callable[[], None] | None,
) -> QuantizeReport:
    """The work of :func:`quantize_model` once its arguments are checked. The preprocessed
    calibration inputs are held in memory (3.7 MB an image at 480x640)."""
    start = time.perf_counter()
    samples = []
    for path in images[: max(subset_size, 1)]:
        samples.append(model_inputs(read_image(path), info, resize=resize)[0])
        if on_image is not None:
            on_image()
    calibration = nncf.Dataset(samples)
    names = head_ops(float_model) if ignored == "heads" else []
    scope = nncf.IgnoredScope(names=names, validate=False) if names else None
    kwargs: dict[str, Any] = {
        "preset": nncf.QuantizationPreset.PERFORMANCE if preset == "performance" else nncf.QuantizationPreset.MIXED,
        "subset_size": min(subset_size, len(samples)),
        "fast_bias_correction": fast_bias_correction,
        "ignored_scope": scope,
    }
    accuracy: dict[str, tuple[float, float]] = {}
    try:
        if annotations is None:
            quantized = nncf.quantize(float_model, calibration, **kwargs)
        else:
            # NNCF compares one number; make it 100 less the worse of the two drops, measured
            # against the float model's own (box, mask) AP on the same images: 100 for the float
            # model, so an absolute drop of this number is the worse AP drop in points (NNCF
            # also divides by it for its relative drop: it must not be 0).
            reference = _ap_points(core.compile_model(float_model, "CPU"), info, validation, annotations, resize)

            def validate(compiled: ov.CompiledModel, items: Iterable[tuple[int, Path]]) -> float:
                box, mask = _ap_points(compiled, info, items, annotations, resize)
                return 100.0 + min(box - reference[0], mask - reference[1])

            quantized = nncf.quantize_with_accuracy_control(
                float_model, calibration, nncf.Dataset(list(validation)), validate, max_drop=max_drop,
                drop_type=nncf.DropType.ABSOLUTE, **kwargs,
            )
            accuracy = {
                "float": reference,
                "int8": _ap_points(core.compile_model(quantized, "CPU"), info, validation, annotations, resize),
            }
    except nncf.ValidationError as error:
        raise ConfigError(f"NNCF refused the model: {str(error).splitlines()[0]}") from None
    fake_quantize = sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ordered_ops())
    save_ir(quantized, output)
    return QuantizeReport(
        output=output,
        calibration_images=len(samples),
        ignored=tuple(names),
        fake_quantize=fake_quantize,
        duration_s=time.perf_counter() - start,
        accuracy=accuracy,
    )
