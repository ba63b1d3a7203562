"""``ovseg predict`` end to end: files written, JSON content, errors as one line + exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest

from ovseg.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ovseg", *args], capture_output=True, text=True, timeout=120)


def test_predict_writes_png_and_json(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = np.full((300, 400, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "street.jpg"), image)
    out = tmp_path / "out"
    code = main(["predict", str(tmp_path / "street.jpg"), "--model", str(tiny_model), "-o", str(out), "--infer-precision", "f32"])
    assert code == 0
    drawn = cv2.imread(str(out / "street.png"))
    assert drawn.shape == (300, 400, 3) and (drawn != 90).any()
    doc = json.loads((out / "street.json").read_text())
    assert (doc["height"], doc["width"], doc["device"]) == (300, 400, "CPU")
    assert doc["model"] == str(tiny_model)
    assert [i["label"] for i in doc["instances"]] == ["person"]  # the car scores 0.4 < 0.5
    inst = doc["instances"][0]
    assert inst["category_id"] == 1 and inst["box"] == [0, 0, 400, 300] and inst["score"] == pytest.approx(0.9)
    assert isinstance(inst["segmentation"]["counts"], str) and inst["segmentation"]["size"] == [300, 400]
    mask = mask_util.decode({"size": [300, 400], "counts": inst["segmentation"]["counts"].encode()})
    assert 0.4 < mask.mean() < 0.6  # the disc
    assert "street.jpg: 1 instance(s) (person 0.90)" in capsys.readouterr().out


def test_predict_directory_with_a_bad_file(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((50, 60, 3), np.uint8))
    (images / "b.png").write_text("this is not a png")
    cv2.imwrite(str(images / "c.png"), np.zeros((70, 20), np.uint8))
    out = tmp_path / "out"
    code = main(["predict", str(images), "-m", str(tiny_model), "-o", str(out), "-t", "0"])
    assert code == 2
    assert sorted(os.listdir(out)) == ["a.json", "a.png", "c.json", "c.png"]
    err = capsys.readouterr().err
    assert "b.png: expected an image OpenCV can decode" in err and "1 of 3 input(s) failed" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "x.jpg", "--model", "missing.xml"], "ovseg: error: model file not found"),
        (["predict", "x.jpg", "--model", "{tiny}", "--device", "GPU"], "ovseg: error: device 'GPU' is not available"),
        (["predict", "x.jpg", "--model", "{tiny}", "--threshold", "2"], "expected a number in [0, 1], got 2"),
        (["predict", "x.jpg", "--model", "{tiny}", "--config", "NOEQUALS"], "expected --config KEY=VALUE, got 'NOEQUALS'"),
        (["predcit", "x.jpg"], "did you mean predict?"),
    ],
)
def test_cli_errors_are_one_line_exit_2(tiny_model: Path, args: list[str], message: str) -> None:
    proc = run_cli(*[a.replace("{tiny}", str(tiny_model)) for a in args])
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_predict_on_a_fixture_image(standin_model: Path, coco_images: Path, tmp_path: Path) -> None:
    proc = run_cli("predict", str(coco_images / "000000000139.jpg"), "-m", str(standin_model), "-o", str(tmp_path), "--infer-precision", "f32")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "000000000139.json").read_text())
    labels = [i["label"] for i in doc["instances"]]
    assert "person" in labels and "tv" in labels and "chair" in labels
