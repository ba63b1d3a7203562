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
        (["predict", "x.jpg", "-m", "x.xml", "--trak"], "unrecognized arguments: --trak (did you mean --track?)"),
        (["serve", "x.xml", "--http-port", "70000"], "got '70000'\n"),  # a wrong value: no suggestion
        (["predict", "x.jpg", "-m", "x.xml", "--tracker", "omz2"], "'sort') (did you mean omz?)\n"),  # of the choices
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


def test_reduced_read_needs_no_overlay(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((50, 60, 3), np.uint8))
    code = main(["predict", str(tmp_path / "a.jpg"), "-m", str(tiny_model), "-o", str(tmp_path / "out"), "--reduced-read"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "expected --reduced-read with --no-overlay" in err and not (tmp_path / "out").exists()


def test_reduced_read_results_are_full_size_and_close_to_a_full_read(
    standin_model: Path, coco_images: Path, tmp_path: Path
) -> None:
    """Fixture images upscaled 3x (1920x1440-ish JPEGs): read at 1/2 in libjpeg, the same
    objects come back at the full size (boxes within a few pixels of the full read's)."""
    big = tmp_path / "big"
    big.mkdir()
    for path in sorted(coco_images.glob("*.jpg"))[:3]:
        image = cv2.imread(str(path))
        cv2.imwrite(str(big / path.name), cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_LINEAR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    docs = {}
    for mode, extra in (("full", []), ("reduced", ["--reduced-read"])):
        out = tmp_path / mode
        assert main(["predict", str(big), "-m", str(standin_model), "-o", str(out), "--no-overlay",
                     "--infer-precision", "f32", *extra]) == 0
        docs[mode] = {p.name: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    assert docs["full"].keys() == docs["reduced"].keys() and len(docs["full"]) == 3
    matched = 0
    for name, full in docs["full"].items():
        reduced = docs["reduced"][name]
        assert (reduced["height"], reduced["width"]) == (full["height"], full["width"])
        for inst in reduced["instances"]:
            assert inst["segmentation"]["size"] == [full["height"], full["width"]]
        for a in full["instances"]:
            if a["score"] < 0.7:  # a weaker one may fall under the threshold in the other read
                continue
            best = max((b for b in reduced["instances"] if b["category_id"] == a["category_id"]),
                       key=lambda b: -np.abs(np.subtract(a["box"], b["box"])).max(), default=None)
            assert best is not None, f"{name}: {a['label']} {a['score']:.2f} lost by the reduced read"
            assert np.abs(np.subtract(a["box"], best["box"])).max() < 0.05 * max(full["height"], full["width"])
            matched += 1
    assert matched >= 3
