"""The Accuracy Checker's box convention (``coco_orig_precision``, ``include_boundaries: True``),
checked against a slow, literal re-telling of AC's own code."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovseg.cli import main
from ovseg.coco import evaluate, omz_boxes
from ovseg.errors import ConfigError


def ac_results(detections: list[dict[str, Any]], include_boundaries: bool = True) -> list[dict[str, Any]]:
    """What AC 2024.6 ``MSCOCOorigBaseMetric._iou_type_data_to_coco`` hands to ``loadRes``, one
    record at a time: it holds corners (x_min, y_min, x_max, y_max) and computes
    ``width = x_max - x_min + box_side_delta`` with ``box_side_delta = int(include_boundaries)``."""
    box_side_delta = int(include_boundaries)
    out = []
    for det in detections:
        x_min, y_min, w, h = det["bbox"]
        x_max, y_max = x_min + w, y_min + h
        width = x_max - x_min + box_side_delta
        height = y_max - y_min + box_side_delta
        out.append({
            "image_id": det["image_id"], "score": det["score"], "category_id": det["category_id"],
            "bbox": [x_min, y_min, width, height], "area": width * height,
        })
    return out


def plain_cocoeval(gt: COCO, results: list[dict[str, Any]], iou_type: str) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats]


def coco_from(data: dict[str, Any]) -> COCO:
    gt = COCO()
    gt.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def random_set(seed: int) -> tuple[COCO, list[dict[str, Any]]]:
    """Ground truth boxes (with masks) on a few images and detections near them: small boxes
    too, where one pixel moves the IoU most."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for image_id in range(1, 6):
        h, w = 120, 160
        images.append({"id": image_id, "height": h, "width": w, "file_name": f"{image_id}.jpg"})
        for _ in range(int(rng.integers(1, 6))):
            bw, bh = rng.uniform(3, 60, 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            mask = np.zeros((h, w), np.uint8)
            mask[int(y): int(y + bh), int(x): int(x + bw)] = 1
            rle = mask_util.encode(np.asfortranarray(mask))
            anns.append({
                "id": len(anns) + 1, "image_id": image_id, "category_id": int(rng.integers(1, 3)), "iscrowd": 0,
                "bbox": [x, y, bw, bh], "area": float(bw * bh),
                "segmentation": {"size": [h, w], "counts": rle["counts"].decode()},
            })
            for _ in range(int(rng.integers(0, 4))):
                jitter = rng.normal(0, 1.5, 4)
                dx, dy = x + jitter[0], y + jitter[1]
                dw, dh = max(bw + jitter[2], 0.5), max(bh + jitter[3], 0.5)
                pred = np.zeros((h, w), np.uint8)
                pred[max(int(dy), 0): int(dy + dh), max(int(dx), 0): int(dx + dw)] = 1
                prle = mask_util.encode(np.asfortranarray(pred))
                dets.append({
                    "image_id": image_id, "category_id": anns[-1]["category_id"], "score": float(rng.uniform(0.01, 1)),
                    "bbox": [float(dx), float(dy), float(dw), float(dh)],
                    "segmentation": {"size": [h, w], "counts": prle["counts"].decode()},
                })
    return coco_from({"images": images, "annotations": anns, "categories": [{"id": 1}, {"id": 2}]}), dets


def test_omz_boxes_adds_one_to_width_and_height_only() -> None:
    xywh = np.array([[1.5, 2.0, 3.0, 4.25], [0, 0, 0, 0]])
    before = xywh.copy()
    assert omz_boxes(xywh).tolist() == [[1.5, 2.0, 4.0, 5.25], [0, 0, 1, 1]]
    assert np.array_equal(xywh, before)  # the caller's array is not changed
    assert omz_boxes(np.zeros((0, 4))).shape == (0, 4)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_omz_convention_equals_the_accuracy_checker_rule(seed: int) -> None:
    gt, dets = random_set(seed)
    gt_before = copy.deepcopy(gt.dataset)
    stats_coco, _ = evaluate(gt, copy.deepcopy(dets), box_convention="coco")
    stats_omz, _ = evaluate(gt, copy.deepcopy(dets), box_convention="omz")
    assert stats_omz["bbox"] == pytest.approx(plain_cocoeval(gt, ac_results(dets), "bbox"), abs=1e-12)
    assert stats_coco["bbox"] == pytest.approx(plain_cocoeval(gt, ac_results(dets, include_boundaries=False), "bbox"), abs=1e-12)
    assert stats_omz["bbox"] != stats_coco["bbox"]  # the set is small-boxed enough for +1 to matter
    assert stats_omz["segm"] == stats_coco["segm"]  # masks are not touched
    # nor is the ground truth (COCOeval itself adds its "ignore" / "_ignore" flags to it)
    boxes = [(a["bbox"], a["area"]) for a in gt.dataset["annotations"]]
    assert boxes == [(a["bbox"], a["area"]) for a in gt_before["annotations"]]


def test_one_pixel_short_box_is_perfect_only_in_the_omz_convention() -> None:
    """A detector in the +1 convention reports [0, 0, 9, 9] for a 10 x 10 object: COCO reads a
    9 x 9 box (IoU 0.81), AC a 10 x 10 one (IoU 1)."""
    mask = np.zeros((20, 20), np.uint8)
    mask[:10, :10] = 1
    rle = {"size": [20, 20], "counts": mask_util.encode(np.asfortranarray(mask))["counts"].decode()}
    gt = coco_from({
        "images": [{"id": 1, "height": 20, "width": 20}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 10, 10], "area": 100.0,
                         "segmentation": rle}],
        "categories": [{"id": 1}],
    })
    det = {"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [0, 0, 9, 9], "segmentation": rle}
    coco, _ = evaluate(gt, [dict(det)], box_convention="coco")
    omz, _ = evaluate(gt, [dict(det)], box_convention="omz")
    assert omz["bbox"][0] == pytest.approx(1.0)
    assert coco["bbox"][0] == pytest.approx(0.7)  # IoU 0.81: matched at 0.50, 0.55, ..., 0.80: 7 of 10 thresholds
    assert coco["segm"][0] == omz["segm"][0] == pytest.approx(1.0)


def test_unknown_box_convention_is_a_one_line_error() -> None:
    gt, dets = random_set(0)
    with pytest.raises(ConfigError, match="expected box convention 'coco' or 'omz', got 'voc'"):
        evaluate(gt, dets, box_convention="voc")  # type: ignore[arg-type]


def test_eval_command_records_the_convention(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ovseg eval --box-convention omz`` scores its own results file by AC's rule and says so."""
    images = tmp_path / "images"
    images.mkdir()
    import cv2

    entries, anns = [], []
    for i, (h, w) in enumerate([(30, 40), (24, 12)], start=1):
        cv2.imwrite(str(images / f"{i}.png"), np.zeros((h, w, 3), np.uint8))
        entries.append({"id": i, "file_name": f"{i}.png", "height": h, "width": w})
        mask = np.ones((h, w), np.uint8)
        anns.append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, w - 3, h - 3],
                     "area": float((w - 3) * (h - 3)),
                     "segmentation": {"size": [h, w], "counts": mask_util.encode(np.asfortranarray(mask))["counts"].decode()}})
    ann = tmp_path / "instances.json"
    ann.write_text(json.dumps({"images": entries, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    runs = {}
    for convention in ("coco", "omz"):
        stats, results = tmp_path / f"{convention}.json", tmp_path / f"{convention}-dets.json"
        code = main(["eval", "-m", str(tiny_model), "--images", str(images), "--annotations", str(ann), "--infer-precision", "f32",
                     "--stats", str(stats), "--results", str(results), "--box-convention", convention])
        assert code == 0
        runs[convention] = json.loads(stats.read_text())
        assert runs[convention]["settings"]["box_convention"] == convention
    assert "box AP" in capsys.readouterr().out
    gt = COCO(str(ann))
    # loadRes added area / id / iscrowd to the written dicts; AC's record is rebuilt from bbox alone.
    dets = json.loads((tmp_path / "omz-dets.json").read_text())
    assert runs["omz"]["bbox"] == pytest.approx(plain_cocoeval(gt, ac_results(dets), "bbox"), abs=1e-12)
    assert runs["coco"]["bbox"] == pytest.approx(plain_cocoeval(gt, ac_results(dets, False), "bbox"), abs=1e-12)
    assert runs["omz"]["bbox"] != runs["coco"]["bbox"] and runs["omz"]["segm"] == runs["coco"]["segm"]
