"""``ovseg eval`` end to end, checked against a pycocotools run of the test's own."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ovseg.cli import main


def own_cocoeval(annotations: Path, results: Path, image_ids: list[int]) -> dict[str, list[float]]:
    """COCOeval as detectron2 runs it: for segm the detections lose their bbox, so that
    pycocotools takes each area from the mask (it decides small / medium / large)."""
    stats = {}
    dets = json.loads(results.read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
        for iou_type in ("bbox", "segm"):
            mine = dets if iou_type == "bbox" else [{k: v for k, v in d.items() if k != "bbox"} for d in dets]
            ev = COCOeval(gt, gt.loadRes(mine), iou_type)
            ev.params.imgIds = image_ids
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            stats[iou_type] = list(ev.stats)
    return stats


def test_eval_on_fixture_images_matches_pycocotools(
    standin_model: Path, coco_images: Path, coco_annotations: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [139, 285, 632, 724, 776, 785]
    stats_path, results_path = tmp_path / "stats.json", tmp_path / "dets.json"
    code = main([
        "eval", "-m", str(standin_model), "--images", str(coco_images), "--annotations", str(coco_annotations),
        "--infer-precision", "f32", "--image-ids", ",".join(map(str, ids)),
        "--results", str(results_path), "--stats", str(stats_path), "--resize", "short-long",
    ])
    assert code == 0
    out = capsys.readouterr().out
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in out
    doc = json.loads(stats_path.read_text())
    expected = own_cocoeval(coco_annotations, results_path, ids)
    assert doc["bbox"] == pytest.approx(expected["bbox"]) and doc["segm"] == pytest.approx(expected["segm"])
    assert f"box AP {doc['bbox'][0] * 100:.1f} | mask AP {doc['segm'][0] * 100:.1f} | 6 images |" in out
    settings = doc["settings"]
    assert settings["resize"] == "short-long" and settings["paste"] == "legacy" and settings["images"] == 6
    assert len(settings["model_sha256"]) == 64 and settings["openvino_version"] and settings["image_ids"] == ids
    dets = json.loads(results_path.read_text())
    assert {d["image_id"] for d in dets} <= set(ids) and all(isinstance(d["segmentation"]["counts"], str) for d in dets)


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """Three synthetic images and instances.json whose one person per image matches what the
    tiny model predicts (a disc in a box covering the whole image)."""
    images = tmp_path / "images"
    images.mkdir()
    entries, anns = [], []
    for i, (h, w) in enumerate([(120, 160), (200, 100), (90, 90)], start=1):
        cv2.imwrite(str(images / f"{i:04d}.jpg"), np.zeros((h, w, 3), np.uint8))
        entries.append({"id": i, "file_name": f"{i:04d}.jpg", "height": h, "width": w})
        yy, xx = np.mgrid[0:h, 0:w]
        disc = (np.hypot((xx + 0.5) / w - 0.5, (yy + 0.5) / h - 0.5) <= 0.4).astype(np.uint8)
        rle = mask_util.encode(np.asfortranarray(disc))
        anns.append({
            "id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "area": float(disc.sum()),
            "bbox": [0, 0, w, h], "segmentation": {"size": [h, w], "counts": rle["counts"].decode()},
        })
    ann_path = tmp_path / "instances.json"
    ann_path.write_text(json.dumps({"images": entries, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    return images, ann_path


def test_eval_synthetic_end_to_end(tiny_model: Path, tiny_dataset: tuple[Path, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    images, ann = tiny_dataset
    stats_path = tmp_path / "s.json"
    code = main(["eval", "-m", str(tiny_model), "--images", str(images), "--annotations", str(ann),
                 "--infer-precision", "f32", "--stats", str(stats_path), "--paste", "aligned"])
    assert code == 0
    doc = json.loads(stats_path.read_text())
    assert doc["bbox"][0] == pytest.approx(1.0)  # the person box is exactly the image
    assert doc["segm"][0] > 0.9
    assert "| 3 images |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda images, ann: (images / "0002.jpg").unlink(), r"1 of 3 image\(s\) listed in the annotations are missing in .*: 0002.jpg"),
        (lambda images, ann: ann.write_text('{"info": {}}'), r"expected COCO instances with images, annotations, categories; missing"),
        (lambda images, ann: ann.write_text("[1, 2"), r"expected COCO instances JSON, got unparsable text"),
    ],
)
def test_eval_dataset_errors(tiny_model: Path, tiny_dataset: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                             change, message: str) -> None:  # noqa: ANN001
    images, ann = tiny_dataset
    change(images, ann)
    code = main(["eval", "-m", str(tiny_model), "--images", str(images), "--annotations", str(ann)])
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--image-ids", "7,8"], "image ids not in the annotations: [7, 8]"),
        (["--image-ids", "x"], "expected comma-separated integers such as 139,285, got 'x'"),
        (["--limit", "0"], "expected a positive integer, got '0'"),
    ],
)
def test_eval_selection_errors(tiny_model: Path, tiny_dataset: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                               extra: list[str], message: str) -> None:
    images, ann = tiny_dataset
    with contextlib.suppress(SystemExit):
        assert main(["eval", "-m", str(tiny_model), "--images", str(images), "--annotations", str(ann), *extra]) == 2
    assert message in capsys.readouterr().err


def test_eval_passes_nireq_to_the_stream(tiny_model: Path, tiny_dataset: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import ovseg

    seen: list[object] = []
    original = ovseg.Segmenter.stream

    def spy(self, frames, **kwargs):  # noqa: ANN001, ANN003, ANN202
        seen.append(kwargs.get("nireq"))
        return original(self, frames, **kwargs)

    monkeypatch.setattr(ovseg.Segmenter, "stream", spy)
    images, ann = tiny_dataset
    assert main(["eval", "-m", str(tiny_model), "--images", str(images), "--annotations", str(ann), "--nireq", "3"]) == 0
    assert seen == [3]
