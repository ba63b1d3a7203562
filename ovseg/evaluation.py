"""COCO evaluation of a model over an image folder, the way the card's AP was measured.

Protocol (SPEC.md): every image through the model with *no* score threshold (all non-empty
slots are scored), contiguous classes mapped to official COCO ids, masks as RLE, COCOeval for
``bbox`` and ``segm``. Inference is asynchronous (the streaming pipeline): reading,
preprocessing and decoding overlap with it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openvino as ov
from pycocotools.coco import COCO

from ._version import __version__
from .coco import evaluate
from .errors import DatasetError
from .files import file_digest
from .images import read_image
from .model import compiled_property
from .options import BoxConvention
from .segmenter import Segmenter

__all__ = ["EvalReport", "load_annotations", "select_images", "evaluate_model", "eval_settings"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalReport:
    """What one evaluation run produced.

    Attributes:
        stats: ``{"bbox": [12 floats], "segm": [12 floats]}``, COCOeval's summary (AP first, 0..1).
        summary_text: pycocotools' printed summaries.
        detections: the COCO results dicts.
        image_ids: the evaluated images.
        duration_s: wall time of the inference loop (reading to decoded results).
        box_convention: how boxes were scored (``coco`` or ``omz``).
    """

    stats: dict[str, list[float]]
    summary_text: str
    detections: list[dict[str, Any]]
    image_ids: list[int]
    duration_s: float
    box_convention: str = "coco"

    @property
    def ms_per_image(self) -> float:
        return self.duration_s * 1e3 / max(len(self.image_ids), 1)


def load_annotations(path: str | Path) -> COCO:
    """Read a COCO *instances* annotation file, with one-line errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"annotation file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: expected COCO instances JSON, got unparsable text ({error})") from None
    missing = [key for key in ("images", "annotations", "categories") if not isinstance(data, dict) or key not in data]
    if missing:
        got = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
        raise DatasetError(f"{path}: expected COCO instances with images, annotations, categories; missing {missing}, got {got}")
    anns = data["annotations"]
    if anns and not all("bbox" in a and "segmentation" in a and "category_id" in a for a in anns[:50]):
        raise DatasetError(f"{path}: expected instance annotations with bbox and segmentation (captions or keypoints file?)")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def select_images(
    coco: COCO, images_dir: str | Path, *, image_ids: Sequence[int] | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The image entries to evaluate (sorted by id), checked to exist in ``images_dir``."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise DatasetError(f"image folder not found: {images_dir}")
    entries = sorted(coco.dataset["images"], key=lambda im: im["id"])
    if image_ids is not None:
        known = {im["id"] for im in entries}
        unknown = [i for i in image_ids if i not in known]
        if unknown:
            raise DatasetError(f"image ids not in the annotations: {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
        wanted = set(image_ids)
        entries = [im for im in entries if im["id"] in wanted]
    if limit is not None:
        entries = entries[:limit]
    if not entries:
        raise DatasetError("expected at least one image to evaluate, got an empty selection")
    absent = [im["file_name"] for im in entries if not (images_dir / im["file_name"]).is_file()]
    if absent:
        raise DatasetError(
            f"{len(absent)} of {len(entries)} image(s) listed in the annotations are missing in {images_dir}: "
            f"{', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}"
        )
    return entries


def evaluate_model(
    segmenter: Segmenter,
    coco: COCO,
    images_dir: str | Path,
    entries: Sequence[dict[str, Any]],
    *,
    nireq: int | None = None,
    on_image: Callable[[], None] | None = None,
    box_convention: BoxConvention = "coco",
) -> EvalReport:
    """Run ``segmenter`` (its threshold should be 0) over ``entries`` and score the results.

    Args:
        nireq: infer requests in flight (default: the device's optimum).
        on_image: called once per finished image (a progress bar's ``update``).
        box_convention: ``"coco"`` or ``"omz"`` (the Accuracy Checker's +1 on predicted boxes,
            :func:`ovseg.coco.omz_boxes`); box AP only.
    """
    images_dir = Path(images_dir)
    if segmenter.threshold > 0:
        logger.warning("evaluating with threshold %.2f: COCO AP is defined over all detections", segmenter.threshold)

    def frames():  # noqa: ANN202
        for entry in entries:
            yield read_image(images_dir / entry["file_name"])

    detections: list[dict[str, Any]] = []
    start = time.perf_counter()
    for entry, result in zip(entries, segmenter.stream(frames(), nireq=nireq), strict=True):
        detections += result.to_coco(entry["id"])
        if on_image is not None:
            on_image()
    duration = time.perf_counter() - start
    ids = [int(e["id"]) for e in entries]
    stats, text = evaluate(coco, detections, image_ids=ids, box_convention=box_convention)
    return EvalReport(stats=stats, summary_text=text, detections=detections, image_ids=ids, duration_s=duration,
                      box_convention=box_convention)


def eval_settings(
    segmenter: Segmenter, report: EvalReport, *, annotations: str | Path, config: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything that decided the numbers of ``report``, for the ``--stats`` file: protocol,
    resize, paste, precision, device, properties, the model and its sha256, the data, versions."""
    compiled = next(iter(segmenter.compiled_models.values()), None)  # None: a served model
    local = segmenter.remote_url is None
    return {
        "protocol": "no score threshold, all slots; contiguous 1..80 -> COCO ids; RLE; COCOeval",
        "resize": segmenter.resize,
        "paste": segmenter.paste,
        "box_convention": report.box_convention,
        "precision": compiled_property(compiled, "INFERENCE_PRECISION_HINT") or "unknown",
        "device": segmenter.device,
        "config": dict(config),
        "model": str(segmenter.model_path),
        "model_sha256": file_digest(segmenter.model_path) if local else None,
        "annotations": str(annotations),
        "images": len(report.image_ids),
        "image_ids": report.image_ids if len(report.image_ids) <= 50 else None,
        "ms_per_image": round(report.ms_per_image, 2),
        "ovseg_version": __version__,
        "openvino_version": ov.get_version(),
        "python": platform.python_version(),
    }
