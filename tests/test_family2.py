"""The newer OMZ family (image -> labels, boxes [N,5], masks [N,m,m]) behind the same API.

Generated IRs of that interface go through ``check_interface``, the gather step, the Segmenter
and ``ovseg predict``; a 0033-family model with the same detections is the reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

import ovseg
from ovseg.cli import main
from ovseg.decode import gather_labels_boxes_masks, gather_maskrcnn
from ovseg.errors import ConfigError, InterfaceError, OutputError
from ovseg.model import LABELS_FAMILY, MASKRCNN_FAMILY, check_interface, read_model, request_outputs
from ovseg.synthetic import constant_model, disc_map, labels_model, maskrcnn_model, save_model

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
BOXES = [[40.0, 30.0, 200.0, 150.0], [300.0, 200.0, 420.0, 460.0]]  # network-input pixels


@pytest.fixture(scope="module")
def newer_ir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """person (label 0) and car (label 2) in a 480x640 window, dynamic N."""
    return save_model(
        labels_model(labels=[0, 2], scores=[0.9, 0.4], boxes=BOXES, input_hw=(480, 640)),
        tmp_path_factory.mktemp("newer") / "newer.xml",
    )


# -- recognition from the ports ------------------------------------------------------------


@pytest.mark.parametrize("dynamic", [True, False])
def test_family_is_read_from_the_ports(tmp_path: Path, dynamic: bool) -> None:
    # Named like an old-family file on purpose: the name must not matter.
    path = save_model(labels_model([0, 2], [0.9, 0.4], BOXES, dynamic=dynamic, mask_size=224),
                      tmp_path / "instance-segmentation-security-0083.xml")
    _, info = read_model(path)
    assert (info.family, info.input_hw) == (LABELS_FAMILY, (608, 608))
    old = save_model(maskrcnn_model([1], [0.5], [[0, 0, 1, 1]]), tmp_path / "instance-segmentation-security-0228.xml")
    assert read_model(old)[1].family == MASKRCNN_FAMILY


IMAGE = {"image": ([1, 3, 64, 64], ov.Type.f32)}
GOOD = {"labels": np.zeros(3, np.int64), "boxes": np.zeros((3, 5), np.float32), "masks": np.zeros((3, 28, 28), np.float32)}


@pytest.mark.parametrize(
    "inputs, outputs, message",
    [
        (IMAGE, {k: v for k, v in GOOD.items() if k != "masks"},
         r"missing output\(s\) masks: expected outputs labels, boxes, masks for an input named image, "
         r"got \['boxes', 'labels'\]"),
        (IMAGE, {**GOOD, "boxes": np.zeros((3, 4), np.float32)}, r"output boxes: expected f32 \[N,5\], got f32 \[3,4\]"),
        (IMAGE, {**GOOD, "masks": np.zeros((3, 28, 14), np.float32)},
         r"output masks: expected f32 \[N,m,m\], got f32 \[3,28,14\]"),
        (IMAGE, {**GOOD, "labels": np.zeros(4, np.int64)}, r"expected labels, boxes and masks with one first dimension N"),
        ({"image": ([1, 3, 64, 64], ov.Type.u8)}, GOOD, r"input image: expected f32 \[1,3,H,W\], got u8 \[1,3,64,64\]"),
        ({**IMAGE, "extra": ([1], ov.Type.f32)}, GOOD, r"expected 1 input \(image\), got \['extra', 'image'\]"),
        (IMAGE, {"scores": np.zeros(3, np.float32)},
         r"expected the inputs of the instance-segmentation-security-0033 family \(im_data, im_info\), got \['image'\] "
         r"\(the newer OMZ family has an input image and outputs labels, boxes, masks\)"),
    ],
)
def test_interface_errors(inputs: dict, outputs: dict, message: str) -> None:
    with pytest.raises(InterfaceError, match=message):
        check_interface(constant_model(inputs, outputs), path="m.xml")


def test_extra_outputs_are_ignored() -> None:
    info = check_interface(constant_model(IMAGE, {**GOOD, "feature_vector": np.zeros((1, 8), np.float32)}))
    assert info.family == LABELS_FAMILY


# -- gather --------------------------------------------------------------------------------


def test_gather_converts_labels_and_drops_padding_and_bad_rows(caplog: pytest.LogCaptureFixture) -> None:
    maps = np.stack([disc_map(28) * v for v in (1.0, 0.5, 0.2, 1.0, 1.0)])
    outputs = {
        "labels": np.array([0, 79, 2, 80, 0], np.int64),
        "boxes": np.array([[0, 0, 10, 10, 0.9], [1, 1, 5, 5, 0.6], [2, 2, 4, 4, 0.3],
                           [0, 0, 1, 1, 0.9], [0, 0, 0, 0, 0.0]], np.float32),
        "masks": maps,
    }
    dets = gather_labels_boxes_masks(outputs, threshold=0.0)
    np.testing.assert_array_equal(dets.class_ids, [1, 80, 3])  # label 80 dropped, zero-score padding row too
    np.testing.assert_array_equal(dets.scores, np.float32([0.9, 0.6, 0.3]))
    np.testing.assert_array_equal(dets.boxes, outputs["boxes"][:3, :4])
    np.testing.assert_array_equal(dets.mask_probs, maps[:3])
    assert "labels outside 0..79: [80]" in caplog.text
    assert np.shares_memory(dets.mask_probs, maps) is False
    assert len(gather_labels_boxes_masks(outputs, threshold=0.5)) == 2


def test_gather_same_detections_as_the_old_family() -> None:
    maps = np.stack([disc_map(28), disc_map(28, 0.3)])
    raw = np.zeros((100, 81, 28, 28), np.float32)
    raw[0, 1], raw[1, 3] = maps
    old = {"classes": np.pad(np.int32([1, 3]), (0, 98)), "scores": np.pad(np.float32([0.9, 0.4]), (0, 98)),
           "boxes": np.pad(np.float32(BOXES), ((0, 98), (0, 0))), "raw_masks": raw}
    new = {"labels": np.int64([0, 2]), "boxes": np.float32([[*BOXES[0], 0.9], [*BOXES[1], 0.4]]), "masks": maps}
    a, b = gather_maskrcnn(old), gather_labels_boxes_masks(new)
    for name in ("boxes", "scores", "class_ids", "mask_probs"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize(
    "outputs, message",
    [
        ({"labels": np.zeros(0), "boxes": np.zeros((0, 4)), "masks": np.zeros((0, 28, 28))},
         r"expected boxes of shape \(N, 5\), got \(0, 4\)"),
        ({"labels": np.zeros(2), "boxes": np.zeros((1, 5)), "masks": np.zeros((1, 28, 28))},
         r"expected labels of shape \(1,\), got \(2,\)"),
        ({"labels": np.zeros(1), "boxes": np.zeros((1, 5))}, r"expected an output named 'masks'"),
    ],
)
def test_gather_structural_errors(outputs: dict, message: str) -> None:
    with pytest.raises(OutputError, match=message):
        gather_labels_boxes_masks(outputs)


def test_gather_empty() -> None:
    dets = gather_labels_boxes_masks(
        {"labels": np.zeros(0, np.int64), "boxes": np.zeros((0, 5), np.float32), "masks": np.zeros((0, 28, 28), np.float32)}
    )
    assert len(dets) == 0 and dets.mask_probs.shape == (0, 28, 28)


# -- through the Segmenter -----------------------------------------------------------------


@pytest.mark.parametrize("paste", ["legacy", "aligned"])
def test_segmenter_matches_the_old_family_on_the_same_detections(tmp_path: Path, newer_ir: Path, paste: str) -> None:
    old_ir = save_model(maskrcnn_model([1, 3], [0.9, 0.4], BOXES), tmp_path / "old.xml")
    image = np.random.default_rng(1).integers(0, 255, (300, 500, 3), dtype=np.uint8)
    new = ovseg.Segmenter(newer_ir, threshold=0.0, config=F32, paste=paste)(image)
    old = ovseg.Segmenter(old_ir, threshold=0.0, config=F32, paste=paste)(image)
    assert new.labels == ("person", "car")
    np.testing.assert_array_equal(new.boxes, old.boxes)
    np.testing.assert_array_equal(new.scores, old.scores)
    np.testing.assert_array_equal(new.class_ids, old.class_ids)
    np.testing.assert_array_equal(new.masks, old.masks)


def test_resize_rule_fit_vs_stretch(tmp_path: Path) -> None:
    ir = save_model(labels_model([0], [0.8], [[0.5, 0.5, 1, 1]], boxes_relative=True, input_hw=(320, 544)),
                    tmp_path / "m.xml")
    image = np.zeros((200, 200, 3), np.uint8)
    fit = ovseg.Segmenter(ir, threshold=0.0, config=F32)  # not a catalogue model: fit by default
    assert fit.resize == "fit"
    # fit: 200x200 -> 320x320 in a 320x544 window; the box's x 272..544 is 170..340 in the image (clipped to 200)
    np.testing.assert_allclose(fit(image).boxes, [[170, 100, 200, 200]], atol=1e-4)
    stretch = ovseg.Segmenter(ir, threshold=0.0, config=F32, resize="stretch")
    np.testing.assert_allclose(stretch(image).boxes, [[100, 100, 200, 200]], atol=1e-4)
    with pytest.raises(ConfigError, match=r"expected resize 'fit' or 'stretch' for a labels-boxes-masks model, "
                       r"got 'short-long'"):
        ovseg.Segmenter(ir, resize="short-long")


def test_person_model_with_224_masks_and_no_detections(tmp_path: Path) -> None:
    ir = save_model(labels_model([0], [0.7], [[10, 10, 110, 210]], mask_size=224, input_hw=(320, 544)),
                    tmp_path / "p.xml")
    result = ovseg.Segmenter(ir, threshold=0.5, config=F32, resize="stretch")(np.zeros((320, 544, 3), np.uint8))
    assert result.labels == ("person",) and result.mask(0).sum() > 0.5 * np.pi * 0.4**2 * 100 * 200
    empty = save_model(labels_model([], [], np.zeros((0, 4))), tmp_path / "e.xml")
    assert len(ovseg.Segmenter(empty, threshold=0.0, config=F32)(np.zeros((50, 60, 3), np.uint8))) == 0


def test_fill_inputs_serves_streaming_code(newer_ir: Path) -> None:
    seg = ovseg.Segmenter(newer_ir, threshold=0.0, config=F32)
    request = next(iter(seg.compiled_models.values())).create_infer_request()
    transform = seg.fill_inputs(request, np.full((240, 320, 3), 7, np.uint8))
    assert transform.resized_hw == (480, 640)
    request.infer()
    assert len(seg.gather(request_outputs(request))) == 2


def test_predict_command(tmp_path: Path, newer_ir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    image = tmp_path / "street.png"
    cv2.imwrite(str(image), np.full((480, 640, 3), 90, np.uint8))
    out = tmp_path / "out"
    code = main(["predict", str(image), "--model", str(newer_ir), "-o", str(out), "-t", "0.3",
                 "--infer-precision", "f32"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "street.json").read_text())
    assert [(i["label"], i["category_id"]) for i in doc["instances"]] == [("person", 1), ("car", 3)]
    assert doc["instances"][0]["box"] == [40.0, 30.0, 200.0, 150.0]
    assert (out / "street.png").is_file()


def test_eval_command(tmp_path: Path, newer_ir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two images whose ground truth is exactly the model's boxes: box AP 1 through the
    asynchronous pipeline, with the 0-based labels mapped to COCO ids 1 and 3."""
    import cv2

    images = tmp_path / "images"
    images.mkdir()
    annotations = []
    for image_id in (1, 2):
        cv2.imwrite(str(images / f"{image_id:012d}.jpg"), np.full((480, 640, 3), 50 * image_id, np.uint8))
        for k, (category, (x1, y1, x2, y2)) in enumerate(zip((1, 3), BOXES, strict=True)):
            annotations.append({
                "id": image_id * 10 + k, "image_id": image_id, "category_id": category, "iscrowd": 0,
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]],
            })
    coco = {
        "images": [{"id": i, "file_name": f"{i:012d}.jpg", "height": 480, "width": 640} for i in (1, 2)],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    stats, results = tmp_path / "stats.json", tmp_path / "results.json"
    code = main(["eval", "-m", str(newer_ir), "--images", str(images), "--annotations", str(tmp_path / "instances.json"),
                 "--infer-precision", "f32", "--stats", str(stats), "--results", str(results)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads(stats.read_text())
    assert doc["bbox"][0] == pytest.approx(1.0)
    # The masks (discs inside their boxes) scored against the rectangles, independently of ovseg.
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(tmp_path / "instances.json"))
        ev = COCOeval(gt, gt.loadRes([{k: v for k, v in d.items() if k != "bbox"} for d in json.loads(results.read_text())]),
                      "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert 0.0 < ev.stats[0] < 1.0 and doc["segm"] == pytest.approx(list(ev.stats))
    assert doc["settings"]["resize"] == "fit"
