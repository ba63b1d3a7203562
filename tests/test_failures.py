"""Inference that fails at run time, and pipelines that are dropped: no hang, no leak."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

import ovseg
from ovseg.cli import main
from ovseg.errors import InferenceError
from ovseg.pipeline import Pipeline
from ovseg.synthetic import save_model

from .conftest import F32


def failing_model(path: Path) -> Path:
    """The 0033 interface, but inference fails at run time when im_info[2] is 1 (the default):
    a tensor of im_info[2] * 1e12 values that cannot be allocated stands in for a device or
    runtime failure that no compile-time check can see."""
    im_data = ops.parameter([1, 3, 64, 64], ov.Type.f32, name="im_data")
    im_info = ops.parameter([1, 3], ov.Type.f32, name="im_info")
    im_data.output(0).set_names({"im_data"})
    im_info.output(0).set_names({"im_info"})
    scale = ops.gather(im_info, ops.constant(np.array([2], np.int64)), ops.constant(np.int64(1)), 0)
    # [im_info[2] * 1e12] elements: 4 TB for the default im_info[2] = 1, which no allocator gives
    size = ops.convert(ops.multiply(ops.reshape(scale, ops.constant(np.array([1], np.int64)), False), ops.constant(np.float32(1e12))), ov.Type.i64)
    broken = ops.broadcast(ops.constant(np.float32(1.0)), size)
    # min(sum, 0) with sum >= 0 is 0, but no pass folds it away (as it does a multiply by 0)
    total = ops.add(ops.reduce_sum(broken, ops.constant(np.array([0])), False), ops.reduce_mean(im_data, ops.constant(np.array([0, 1, 2, 3])), False))
    zero = ops.minimum(total, ops.constant(np.float32(0.0)))
    outputs = {
        "classes": ops.constant(np.zeros(10, np.int32)),
        "scores": ops.add(ops.constant(np.zeros(10, np.float32)), zero),
        "boxes": ops.constant(np.zeros((10, 4), np.float32)),
        "raw_masks": ops.constant(np.zeros((10, 81, 28, 28), np.float32)),
    }
    results = []
    for name, node in outputs.items():
        node.output(0).set_names({name})
        results.append(ops.result(node))
    return save_model(ov.Model(results, [im_data, im_info], "failing"), path)


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return failing_model(tmp_path_factory.mktemp("failing") / "failing.xml")


def test_sync_call_raises_inference_error(failing: Path) -> None:
    seg = ovseg.Segmenter(failing, config=F32)
    with pytest.raises(InferenceError, match=r"inference failed on CPU: "):
        seg(np.zeros((64, 64, 3), np.uint8))


@pytest.mark.parametrize("nireq", [1, 2])
def test_stream_raises_instead_of_hanging(failing: Path, nireq: int) -> None:
    seg = ovseg.Segmenter(failing, config=F32)
    outcome: list[object] = []

    def consume() -> None:
        try:
            outcome.append(list(seg.stream((np.zeros((64, 64, 3), np.uint8) for _ in range(5)), nireq=nireq)))
        except Exception as error:  # noqa: BLE001 - the outcome is what the test checks
            outcome.append(error)

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the stream hung on a failed inference"
    assert isinstance(outcome[0], InferenceError) and "inference failed on CPU" in str(outcome[0])


def test_cli_reports_a_failed_inference_in_one_line(failing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((64, 64, 3), np.uint8))
    assert main(["predict", str(tmp_path / "a.png"), "-m", str(failing), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ovseg: error: inference failed on CPU: ")


def test_dropped_pipelines_are_collected(tiny_model: Path) -> None:
    seg = ovseg.Segmenter(tiny_model, config=F32)
    pipe = Pipeline(seg, nireq=2)
    assert len(list(pipe.stream([np.zeros((32, 32, 3), np.uint8)] * 3))) == 3
    ref = weakref.ref(pipe)
    del pipe
    gc.collect()
    assert ref() is None, "a Pipeline outlived its last reference (its infer requests with it)"
    pipes = [Pipeline(seg, nireq=2) for _ in range(5)]
    refs = [weakref.ref(p) for p in pipes]
    for p in pipes:
        assert len(list(p.stream([np.zeros((32, 32, 3), np.uint8)]))) == 1
    del pipes, p
    gc.collect()
    assert all(r() is None for r in refs)
