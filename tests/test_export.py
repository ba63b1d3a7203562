"""ovseg.export: the slim export decodes exactly like the original; the write is atomic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from ovseg import Segmenter
from ovseg.errors import ConfigError, ModelError
from ovseg.export import export_slim, slim_model
from ovseg.images import read_image
from ovseg.synthetic import labels_model, maskrcnn_model, save_model

from .conftest import F32


def all_channels_model(path: Path, *, classes_type: str = "i32", seed: int = 0) -> Path:
    """A 0033-interface model whose 81 channels all differ in every slot (random maps), so that
    gathering a wrong channel changes the masks; 40 detections of random classes and boxes."""
    rng = np.random.default_rng(seed)
    k = 40
    raw = rng.random((100, 81, 28, 28), dtype=np.float32)
    classes = rng.integers(1, 81, k)
    scores = np.sort(rng.uniform(0.05, 1.0, k))[::-1]
    x1, y1 = rng.uniform(0, 500, k), rng.uniform(0, 350, k)
    boxes = np.stack([x1, y1, x1 + rng.uniform(4, 140, k), y1 + rng.uniform(4, 130, k)], axis=1)
    return save_model(maskrcnn_model(classes, scores, boxes, raw_masks=raw, classes_type=classes_type), path)


def same_results(a, b) -> None:
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.class_ids, b.class_ids)
    assert (a.masks == b.masks).all()


@pytest.mark.parametrize("classes_type", ["i32", "f32"])
@pytest.mark.parametrize("paste", ["aligned", "legacy"])
def test_slim_export_gives_the_same_masks_on_a_model_whose_channels_all_differ(tmp_path: Path, classes_type: str, paste: str):
    full = all_channels_model(tmp_path / "full.xml", classes_type=classes_type)
    report = export_slim(full, tmp_path / "slim.xml")
    assert report.raw_masks_before == (100, 81, 28, 28) and report.raw_masks_after == (100, 1, 28, 28)
    assert report.bytes_after * 81 == report.bytes_before
    image = np.random.default_rng(1).integers(0, 256, (600, 900, 3), dtype=np.uint8)
    a = Segmenter(full, threshold=0.0, config=F32, paste=paste)(image)
    b = Segmenter(report.output, threshold=0.0, config=F32, paste=paste)(image)
    same_results(a, b)
    # The check has teeth: the map of the next channel, decoded the same way, gives other masks.
    seg = Segmenter(full, threshold=0.0, config=F32, paste=paste)
    _, _, transform = seg.preprocess(image)
    request = seg.compiled_models[seg.info.input_hw].create_infer_request()
    seg.fill_inputs(request, image)
    request.infer()
    outputs = {name: request.get_tensor(name).data.copy() for name in ("classes", "scores", "boxes", "raw_masks")}
    shifted = (outputs["classes"].astype(int) % 80) + 1
    outputs["raw_masks"] = outputs["raw_masks"][np.arange(100), shifted][:, None]
    wrong = seg.decode(seg.gather(outputs), transform)
    assert not (wrong.masks == a.masks).all()


def test_slim_export_keeps_port_names_and_other_outputs(tmp_path: Path):
    full = all_channels_model(tmp_path / "full.xml")
    slim = export_slim(full, tmp_path / "slim.xml").output
    core = ov.Core()
    before, after = core.read_model(full), core.read_model(slim)
    assert [p.get_names() for p in before.outputs] == [p.get_names() for p in after.outputs]
    assert [p.get_names() for p in before.inputs] == [p.get_names() for p in after.inputs]
    feed = {"im_data": np.zeros((1, 3, 480, 640), np.float32), "im_info": np.array([[480, 640, 1]], np.float32)}
    out_a = core.compile_model(before, "CPU", F32)(feed)
    out_b = core.compile_model(after, "CPU", F32)(feed)
    for name in ("classes", "scores", "boxes"):
        np.testing.assert_array_equal(out_a[name], out_b[name])
    classes = out_a["classes"].astype(int)
    np.testing.assert_array_equal(out_b["raw_masks"][:, 0], out_a["raw_masks"][np.arange(100), classes])


def test_the_source_model_is_not_modified(tmp_path: Path):
    model = ov.Core().read_model(all_channels_model(tmp_path / "full.xml"))
    slim_model(model)
    assert model.output("raw_masks").get_partial_shape().to_shape() == [100, 81, 28, 28]


def test_the_newer_family_and_a_slim_model_are_refused_in_one_line(tmp_path: Path):
    newer = save_model(labels_model([0], [0.9], [[0, 0, 10, 10]]), tmp_path / "newer.xml")
    with pytest.raises(ConfigError, match=r"newer.xml: the slim export applies to the 0033 family .*labels-boxes-masks"):
        export_slim(newer, tmp_path / "out.xml")
    slim = export_slim(all_channels_model(tmp_path / "full.xml"), tmp_path / "slim.xml").output
    with pytest.raises(ConfigError, match=r"already a slim export"):
        export_slim(slim, tmp_path / "again.xml")
    with pytest.raises(ConfigError, match=r"expected an output other than the model itself"):
        export_slim(slim, slim)
    assert not (tmp_path / "out.xml").exists() and not (tmp_path / "again.xml").exists()


def test_a_failed_write_leaves_nothing_half_written(tmp_path: Path):
    full = all_channels_model(tmp_path / "full.xml")
    (tmp_path / "out.bin").mkdir()  # the .bin cannot be renamed into place
    with pytest.raises(ModelError, match=r"cannot write .*out.xml"):
        export_slim(full, tmp_path / "out.xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.bin", "full.xml", "out.bin"]
    assert not any((tmp_path / "out.bin").iterdir())


def test_export_command(tmp_path: Path):
    full = all_channels_model(tmp_path / "full.xml")
    out = subprocess.run(
        [sys.executable, "-m", "ovseg", "export", str(full), str(tmp_path / "slim.xml")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "[100, 81, 28, 28] -> [100, 1, 28, 28]" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "ovseg", "export", str(full), str(tmp_path / "slim.bin")], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "ending in .xml" in bad.stderr


def test_slim_export_of_the_fixture_model_gives_the_same_results(tmp_path: Path, standin_model: Path, coco_images: Path):
    slim = export_slim(standin_model, tmp_path / "standin-slim.xml").output
    a = Segmenter(standin_model, threshold=0.0, config=F32)
    b = Segmenter(slim, threshold=0.0, config=F32)
    for path in sorted(coco_images.glob("*.jpg"))[:4]:
        image = read_image(path)
        same_results(a(image), b(image))
