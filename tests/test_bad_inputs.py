"""The bad-input matrix: each case gives a result or a one-line error naming what was
expected and what arrived, through the Python API and the command line (exit 2, no traceback);
a batch goes on past a bad file and reports it at the end."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

import ovseg
from ovseg.cli import main
from ovseg.errors import ImageError, ModelError
from ovseg.images import read_image

from .conftest import F32


def _jpeg(tmp: Path) -> bytes:
    ok, data = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8))
    assert ok
    return data.tobytes()


def _write(name: str, make: Callable[[Path], bytes | np.ndarray]) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / name
        value = make(tmp)
        if isinstance(value, bytes):
            path.write_bytes(value)
        else:
            assert cv2.imwrite(str(path), value)
        return path

    return build


# name, file builder, expected: None = a result, else a regex of the one-line error
FILE_CASES = [
    ("empty file", _write("empty.jpg", lambda t: b""), r"empty.jpg: expected an image file, got an empty file"),
    ("truncated JPEG", _write("cut.jpg", lambda t: _jpeg(t)[: len(_jpeg(t)) // 2]), r"cut.jpg: expected an image OpenCV can decode"),
    ("text named .png", _write("notes.png", lambda t: b"just some text\n"), r"notes.png: expected an image OpenCV can decode"),
    ("16-bit PNG", _write("deep.png", lambda t: np.full((50, 60, 3), 40000, np.uint16)), None),
    ("grayscale PNG", _write("gray.png", lambda t: np.full((50, 60), 128, np.uint8)), None),
    ("BGRA PNG", _write("alpha.png", lambda t: np.full((50, 60, 4), 200, np.uint8)), None),
    ("1x1", _write("dot.png", lambda t: np.zeros((1, 1, 3), np.uint8)), None),
    ("40x3000", _write("strip.png", lambda t: np.zeros((40, 3000, 3), np.uint8)), None),
    ("10000x10000", _write("huge.png", lambda t: np.zeros((10000, 10000), np.uint8)), None),
    ("missing file", lambda t: t / "absent.jpg", r"absent.jpg: no such file"),
]


@pytest.mark.parametrize("name, build, error", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_files_through_the_api(tiny_model: Path, tmp_path: Path, name: str, build, error: str | None) -> None:  # noqa: ANN001
    path = build(tmp_path)
    seg = _segmenter(tiny_model)
    if error is None:
        image = read_image(path)
        res = seg(image)
        assert res.image_hw == image.shape[:2] and len(res) == 2
    else:
        with pytest.raises(ImageError, match=error) as info:
            seg(read_image(path))
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name, build, error", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_files_through_the_cli(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, build, error: str | None  # noqa: ANN001
) -> None:
    path = build(tmp_path)
    out = tmp_path / "out"
    code = main(["predict", str(path), "-m", str(tiny_model), "-o", str(out)])
    err = capsys.readouterr().err
    if error is None:
        assert code == 0 and (out / f"{path.stem}.png").is_file() and (out / f"{path.stem}.json").is_file()
    else:
        assert code == 2
        first, *rest = err.strip().splitlines()
        assert re.search(error, first)
        assert all(line.startswith("ovseg: ") for line in rest)
        assert not out.exists() or not any(out.iterdir())


def test_directory_with_good_and_bad_files(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for _, build, _ in FILE_CASES[:6]:
        build(images)
    code = main(["predict", str(images), "-m", str(tiny_model), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{s}.{e}" for s in ("alpha", "deep", "gray") for e in ("json", "png"))
    assert err.strip().splitlines()[-1].startswith("ovseg: 3 of 6 input(s) failed: ")
    assert not any(p.name.startswith(".") for p in (tmp_path / "out").iterdir())  # no temp leftovers


_SEGMENTERS: dict[Path, ovseg.Segmenter] = {}


def _segmenter(model: Path) -> ovseg.Segmenter:
    if model not in _SEGMENTERS:
        _SEGMENTERS[model] = ovseg.Segmenter(model, threshold=0.0, config=F32)
    return _SEGMENTERS[model]


ARRAY_CASES = [
    ("float32 array", np.zeros((10, 10, 3), np.float32), r"expected a uint8 or uint16 image, got dtype float32"),
    ("float64 gray", np.zeros((10, 10), np.float64), r"got dtype float64"),
    ("non-contiguous view", np.zeros((20, 30, 3), np.uint8)[::2, ::3], None),
    ("Fortran order", np.asfortranarray(np.zeros((20, 30, 3), np.uint8)), None),
    ("channels-first", np.zeros((3, 20, 30), np.uint8), r"got shape \(3, 20, 30\)"),
    ("2 channels", np.zeros((20, 30, 2), np.uint8), r"expected an image of shape .* got shape \(20, 30, 2\)"),
    ("5 channels", np.zeros((20, 30, 5), np.uint8), r"got shape \(20, 30, 5\)"),
    ("1-D", np.zeros(30, np.uint8), r"got shape \(30,\)"),
    ("empty", np.zeros((0, 0, 3), np.uint8), r"at least 1x1 pixels, got shape \(0, 0, 3\)"),
    ("not an array", "street.jpg", r"expected a numpy array \(BGR uint8 HxWx3\), got str"),
    ("int64 values", np.zeros((5, 5, 3), np.int64), r"got dtype int64"),
]


@pytest.mark.parametrize("name, image, error", ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES])
def test_arrays_through_the_api(tiny_model: Path, name: str, image: object, error: str | None) -> None:
    seg = _segmenter(tiny_model)
    if error is None:
        assert len(seg(image)) == 2  # type: ignore[arg-type]
    else:
        with pytest.raises(ImageError, match=error):
            seg(image)  # type: ignore[arg-type]


def _model_without_bin(tiny: Path, tmp: Path) -> Path:
    (tmp / "m.xml").write_bytes(tiny.read_bytes())
    return tmp / "m.xml"


def _truncated_bin(tiny: Path, tmp: Path) -> Path:
    (tmp / "m.xml").write_bytes(tiny.read_bytes())
    data = tiny.with_suffix(".bin").read_bytes()
    (tmp / "m.bin").write_bytes(data[: len(data) // 3])
    return tmp / "m.xml"


def _junk_onnx(tiny: Path, tmp: Path) -> Path:
    (tmp / "m.onnx").write_bytes(b"\x08\x07garbage that is not protobuf")
    return tmp / "m.onnx"


MODEL_CASES = [
    ("xml without bin", _model_without_bin, r"weights not found: expected .*m.bin beside m.xml"),
    ("truncated bin", _truncated_bin, r"cannot read model .*m.xml: "),
    ("ONNX that is not a model", _junk_onnx, r"cannot read model .*m.onnx: "),
]


@pytest.mark.parametrize("name, build, error", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_bad_models(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, build, error: str) -> None:  # noqa: ANN001
    path = build(tiny_model, tmp_path)
    with pytest.raises(ModelError, match=error):
        ovseg.Segmenter(path)
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    assert main(["predict", str(image), "-m", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ovseg: error: ")


def test_no_traceback_from_a_real_process(tmp_path: Path) -> None:
    """The whole process, as a user runs it: one line, exit 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "ovseg", "predict", str(tmp_path / "a.jpg"), "-m", str(tmp_path / "model.xml")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "model file not found" in proc.stderr


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda t, img, m: ["predict", img, "-m", m, "-o", str(t / "afile")], r"cannot write .*afile"),
        (lambda t, img, m: ["predict", img, "-m", m, "-o", "/proc/nope"], r"cannot write into /proc/nope: No such file"),
        (lambda t, img, m: ["eval", "-m", m, "--images", str(t), "--annotations", str(t / "x.json"), "--results", "/proc/nope/r.json"],
         r"cannot write /proc/nope/r.json"),
        (lambda t, img, m: ["eval", "-m", m, "--images", str(t), "--annotations", str(t / "x.json"), "--stats", str(t)],
         r"expected a file name, got a folder"),
    ],
    ids=["output is a file", "output under /proc", "eval results unwritable", "eval stats is a folder"],
)
def test_unwritable_outputs_are_one_line(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], make_args, message: str) -> None:  # noqa: ANN001
    (tmp_path / "afile").write_text("in the way")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    code = main(make_args(tmp_path, str(tmp_path / "a.png"), str(tiny_model)))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) >= 1
    assert re.search(message, err[0]) and err[0].startswith("ovseg: error: ")


def test_written_files_get_the_usual_permissions(tiny_model: Path, tmp_path: Path) -> None:
    import os
    import stat

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    umask = os.umask(0o022)
    try:
        assert main(["predict", str(tmp_path / "a.png"), "-m", str(tiny_model), "-o", str(tmp_path / "out")]) == 0
    finally:
        os.umask(umask)
    for name in ("a.png", "a.json"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o644


def test_numpy_scalars_are_numbers(tiny_model: Path) -> None:
    seg = ovseg.Segmenter(tiny_model, threshold=np.float32(0.5), config=F32)
    assert seg.threshold == 0.5
    with pytest.raises(ovseg.errors.ConfigError, match="expected a threshold in"):
        ovseg.Segmenter(tiny_model, threshold=True)
