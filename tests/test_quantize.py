"""``ovseg quantize``: INT8 by NNCF on generated models (seconds) and on the fixtures' stand-in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pycocotools.mask as mask_util
import pytest
from openvino.utils.node_factory import NodeFactory

import ovseg
from ovseg.cli import main
from ovseg.errors import ConfigError
from ovseg.quantize import calibration_images, head_ops, quantize_model
from ovseg.synthetic import constant_model, maskrcnn_model, save_model

from .conftest import F32, REPO

nncf = pytest.importorskip("nncf", reason='quantize needs the extra: pip install "ovseg[quantize]"')


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 0033-interface model with three 3x3 convolutions over im_data (so NNCF has
    something to quantize) and fixed detections: a person box over the whole resized image."""
    path = tmp_path_factory.mktemp("qmodel") / "conv.xml"
    return save_model(maskrcnn_model(classes=[1], scores=[0.9], boxes=[[0, 0, 1, 1]], boxes_relative=True, work=3,
                                     input_hw=(96, 128)), path)


@pytest.fixture
def calib(tmp_path: Path) -> Path:
    """Four generated images with texture, and COCO instances of them (one person each,
    exactly what the model predicts)."""
    folder = tmp_path / "calib"
    folder.mkdir()
    rng = np.random.default_rng(0)
    entries, anns = [], []
    for i, (h, w) in enumerate([(60, 80), (100, 70), (48, 48), (90, 120)], start=1):
        image = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
        entries.append({"id": i, "file_name": f"{i:03d}.png", "height": h, "width": w})
        yy, xx = np.mgrid[0:h, 0:w]
        disc = (np.hypot((xx + 0.5) / w - 0.5, (yy + 0.5) / h - 0.5) <= 0.4).astype(np.uint8)
        anns.append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "area": float(disc.sum()), "bbox": [0, 0, w, h],
                     "segmentation": {"size": [h, w], "counts": mask_util.encode(np.asfortranarray(disc))["counts"].decode()}})
    (tmp_path / "instances.json").write_text(
        json.dumps({"images": entries, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    return folder


def fake_quantized_inputs(model: ov.Model) -> dict[str, bool]:
    """{conv name: whether its data input comes through a FakeQuantize}."""
    return {op.get_friendly_name(): op.input_value(0).get_node().get_type_name() == "FakeQuantize"
            for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"}


def test_head_ops_are_the_last_weighted_layer_and_what_follows(conv_model: Path) -> None:
    model = ov.Core().read_model(conv_model)
    convs = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    heads = head_ops(model)
    assert convs[-1] in heads and not set(convs[:-1]) & set(heads)
    kinds = {op.get_friendly_name(): op.get_type_name() for op in model.get_ordered_ops()}
    assert {kinds[name] for name in heads} >= {"Convolution", "ReduceMean", "Multiply", "Add"}
    assert not {"Parameter", "Constant", "Result"} & {kinds[name] for name in heads}


def test_head_ops_do_not_follow_shape_only_inputs() -> None:
    """0083's anchors come from ExperimentalDetectronPriorGridGenerator(priors, feature map,
    image), which reads the feature map's size only: the FPN conv behind it is no head."""
    im_data = ops.parameter([1, 3, 64, 64], ov.Type.f32, name="im_data")
    fpn = ops.convolution(im_data, ops.constant(np.ones((8, 3, 3, 3), np.float32)), [4, 4], [1, 1], [1, 1], [1, 1])
    rpn = ops.convolution(fpn, ops.constant(np.ones((4, 8, 1, 1), np.float32)), [1, 1], [0, 0], [0, 0], [1, 1])
    grid = NodeFactory("opset6").create(
        "ExperimentalDetectronPriorGridGenerator",
        [ops.constant(np.zeros((3, 4), np.float32)).output(0), fpn.output(0), im_data.output(0)],
        {"flatten": True, "h": 0, "w": 0, "stride_x": 4.0, "stride_y": 4.0},
    )
    model = ov.Model([ops.result(rpn), ops.result(grid)], [im_data])
    assert head_ops(model) == [grid.get_friendly_name(), rpn.get_friendly_name()] or set(head_ops(model)) == {
        grid.get_friendly_name(), rpn.get_friendly_name()}
    assert fpn.get_friendly_name() not in head_ops(model)


def test_head_ops_of_the_0033_twin_are_its_last_layers() -> None:
    """On the random-weight twin of 0033 / 0083 (benchmarks/make_twin.py: Detectron Mask R-CNN
    with the ExperimentalDetectron ops), the scope is what carries over to the real model: the
    RPN's 1x1 objectness and delta convs on P2..P6, the box head's class-score and delta FCs and
    the mask head's 81-class logits conv, and nothing of the backbone, the FPN or the fc6 / fc7
    / mask-head body."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_twin", REPO / "benchmarks" / "make_twin.py")
    twin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(twin)
    model, _ = twin.build(0)
    ops_by_name = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
    weighted = sorted(
        (ops_by_name[name].get_type_name(), tuple(ops_by_name[name].input_value(1).get_partial_shape().to_shape()))
        for name in head_ops(model) if ops_by_name[name].get_type_name() in ("Convolution", "MatMul")
    )
    assert weighted == sorted(
        [("Convolution", (3, 256, 1, 1))] * 5 + [("Convolution", (12, 256, 1, 1))] * 5
        + [("Convolution", (81, 256, 1, 1)), ("MatMul", (81, 1024)), ("MatMul", (324, 1024))]
    )
    kinds = {ops_by_name[name].get_type_name() for name in head_ops(model)}
    assert {"ExperimentalDetectronDetectionOutput", "ExperimentalDetectronGenerateProposalsSingleImage", "Softmax",
            "Sigmoid"} <= kinds
    assert "ExperimentalDetectronROIFeatureExtractor" not in kinds


@pytest.mark.parametrize("ignored", ["heads", "none"])
def test_quantize_a_generated_model(conv_model: Path, calib: Path, tmp_path: Path, ignored: str) -> None:
    out = tmp_path / "out" / "int8.xml"
    out.parent.mkdir()
    report = quantize_model(conv_model, calibration_images(calib), out, ignored=ignored)  # type: ignore[arg-type]
    assert sorted(p.name for p in out.parent.iterdir()) == ["int8.bin", "int8.xml"]  # no temporary files left
    int8 = ov.Core().read_model(out)
    assert report.fake_quantize == sum(op.get_type_name() == "FakeQuantize" for op in int8.get_ordered_ops()) > 0
    quantized = fake_quantized_inputs(int8)
    last = list(quantized)[-1]
    assert quantized[last] is (ignored == "none")  # the head's conv stays float with "heads"
    assert all(list(quantized.values())[:-1])  # the others are quantized
    assert report.calibration_images == 4 and (last in report.ignored) is (ignored == "heads")
    # Still a model of the family. With "heads" its detections are the float model's; with
    # "none" NNCF also quantizes the post-processing (here the box scaling by im_info), and
    # box corners land on an 8-bit grid: 80 px can come out as 70.
    image = cv2.imread(str(sorted(calib.iterdir())[0]))
    a, b = ovseg.Segmenter(conv_model, config=F32)(image), ovseg.Segmenter(out, config=F32)(image)
    assert np.array_equal(a.class_ids, b.class_ids)
    if ignored == "heads":
        assert np.array_equal(a.boxes, b.boxes) and a.boxes.tolist() == [[0, 0, 80, 60]]


def test_quantize_command_with_accuracy_control(conv_model: Path, calib: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "int8.xml"
    code = main(["quantize", str(conv_model), "--calib", str(calib), "--annotations", str(tmp_path / "instances.json"),
                 "--max-drop", "0.5", "-o", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert f"wrote {out} (" in text and "on 4 annotated image(s): box AP 100.0 -> 100.0, mask AP" in text
    assert out.is_file() and out.with_suffix(".bin").is_file()


def _no_images(tmp: Path) -> list[str]:
    (tmp / "empty").mkdir()
    (tmp / "empty" / "notes.txt").write_text("no images here")
    return ["--calib", str(tmp / "empty")]


def _bad_image(tmp: Path) -> list[str]:
    (tmp / "bad").mkdir()
    (tmp / "bad" / "broken.jpg").write_bytes(b"not a jpeg")
    return ["--calib", str(tmp / "bad")]


def _unknown_family(tmp: Path) -> list[str]:
    model = constant_model({"input": ([1, 3, 32, 32], ov.Type.f32)}, {"logits": np.zeros((1, 10), np.float32)})
    save_model(model, tmp / "classifier.xml")
    return ["--model", str(tmp / "classifier.xml")]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda tmp: ["--calib", str(tmp / "absent")], r"calibration folder not found: expected a folder of images, got .*absent"),
        (_no_images, r"calibration folder .*empty: expected image files \(.jpg, .jpeg, .png, .bmp, ...\), got none"),
        (_bad_image, r"broken.jpg: expected an image OpenCV can decode"),
        (_unknown_family, r"classifier.xml: expected the inputs of the instance-segmentation-security-0033 family"),
        (lambda tmp: ["-o", str(tmp / "no" / "such" / "int8.xml")], r"output folder not found: expected an existing folder for int8.xml, got .*no/such"),
        (lambda tmp: ["-o", str(tmp / "int8.bin")], r"expected an output IR name ending in .xml, got int8.bin"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(conv_model: Path, calib: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  change, message: str) -> None:  # noqa: ANN001
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = {"--model": str(conv_model), "--calib": str(calib), "-o": str(out_dir / "int8.xml")}
    extra = change(tmp_path)
    args.update(dict(zip(extra[::2], extra[1::2], strict=True)))
    model = args.pop("--model")
    code = main(["quantize", model, *[v for kv in args.items() for v in kv]])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    import re

    assert re.search(message, err), err
    assert list(out_dir.iterdir()) == []


def test_without_nncf_the_error_says_how_to_install(conv_model: Path, calib: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nncf", None)  # what an environment without the extra gives: ImportError
    with pytest.raises(ConfigError, match=r'quantization needs NNCF: pip install "ovseg\[quantize\]"'):
        quantize_model(conv_model, calibration_images(calib), tmp_path / "int8.xml")
    assert not (tmp_path / "int8.xml").exists()


def test_ovseg_and_its_commands_do_not_import_nncf() -> None:
    code = "import sys, ovseg, ovseg.cli; ovseg.cli.build_parser(); print('nncf' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_quantize_the_standin(standin_model: Path, coco_images: Path, tmp_path: Path) -> None:
    """Eight fixture images calibrate; two others check that the INT8 model finds the float
    model's confident detections (AP itself: benchmarks, on 50 images not used here)."""
    names = sorted(p.name for p in coco_images.iterdir())
    folder = tmp_path / "calib"
    folder.mkdir()
    for name in names[:16:2]:
        (folder / name).symlink_to(coco_images / name)
    out = tmp_path / "int8.xml"
    report = quantize_model(standin_model, calibration_images(folder), out)
    assert report.fake_quantize > 50 and any("MatMul" in name for name in report.ignored)
    float_seg, int8_seg = ovseg.Segmenter(standin_model, config=F32), ovseg.Segmenter(out, config=F32)
    for name in names[1:4:2]:
        image = cv2.imread(str(coco_images / name))
        a, b = float_seg(image), int8_seg(image)
        assert len(a) > 0
        for box, cls in zip(a.boxes, a.class_ids, strict=True):  # each confident float box has an INT8 twin
            same = b.boxes[b.class_ids == cls]
            inter = np.clip(np.minimum(same[:, 2:], box[2:]) - np.maximum(same[:, :2], box[:2]), 0, None).prod(1)
            union = np.prod(box[2:] - box[:2]) + np.prod(same[:, 2:] - same[:, :2], 1) - inter
            assert same.size and (inter / union).max() > 0.8, (name, cls, box)


def test_annotations_of_other_images_are_one_line(conv_model: Path, calib: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads((tmp_path / "instances.json").read_text())
    for entry in doc["images"]:
        entry["file_name"] = "other-" + entry["file_name"]
    (tmp_path / "other.json").write_text(json.dumps(doc))
    code = main(["quantize", str(conv_model), "--calib", str(calib), "--annotations", str(tmp_path / "other.json"),
                 "-o", str(tmp_path / "int8.xml")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "expected annotations of images in" in err and "got none of its 4 file(s)" in err
    assert not (tmp_path / "int8.xml").exists()
