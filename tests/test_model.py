"""Loading, interface checks and device selection, with the messages users see."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from ovseg.errors import DeviceError, InterfaceError, ModelError
from ovseg.model import check_device, compile_model, read_model
from ovseg.synthetic import constant_model, save_model


def custom_model(tmp_path: Path, inputs: dict, outputs: dict, name: str = "custom") -> Path:
    """An IR with the given inputs {name: (shape, type)} and constant outputs {name: array}."""
    return save_model(constant_model(inputs, outputs, name), tmp_path / f"{name}.xml")


GOOD_INPUTS = {"im_data": ([1, 3, 480, 640], ov.Type.f32), "im_info": ([1, 3], ov.Type.f32)}
GOOD_OUTPUTS = {
    "classes": np.zeros(100, np.int32),
    "scores": np.zeros(100, np.float32),
    "boxes": np.zeros((100, 4), np.float32),
    "raw_masks": np.zeros((100, 81, 28, 28), np.float32),
}


def test_reads_a_good_model(tiny_model: Path) -> None:
    _, info = read_model(tiny_model)
    assert (info.family, info.input_hw, info.path) == ("maskrcnn", (480, 640), tiny_model)
    assert info.entry is None and info.precision is None  # not a catalogue model


def test_float_classes_are_accepted(tmp_path: Path) -> None:
    _, info = read_model(custom_model(tmp_path, GOOD_INPUTS, {**GOOD_OUTPUTS, "classes": np.zeros(100, np.float32)}))
    assert info.family == "maskrcnn"


@pytest.mark.parametrize(
    "inputs, outputs, message",
    [
        (
            {"image": ([1, 3, 480, 640], ov.Type.f32)},
            GOOD_OUTPUTS,
            r"expected the inputs of the instance-segmentation-security-0033 family \(im_data, im_info\), got \['image'\]",
        ),
        (
            GOOD_INPUTS,
            {k: v for k, v in GOOD_OUTPUTS.items() if k != "raw_masks"},
            r"missing output\(s\) raw_masks: expected outputs classes, scores, boxes, raw_masks, got \['boxes', 'classes', 'scores'\]",
        ),
        (
            {**GOOD_INPUTS, "im_data": ([1, 3, 480], ov.Type.f32)},
            GOOD_OUTPUTS,
            r"input im_data: expected f32 \[1,3,H,W\], got f32 \[1,3,480\]",
        ),
        (
            {**GOOD_INPUTS, "im_info": ([1, 3], ov.Type.i32)},
            GOOD_OUTPUTS,
            r"input im_info: expected f32 \[1,3\], got i32 \[1,3\]",
        ),
        (
            GOOD_INPUTS,
            {**GOOD_OUTPUTS, "boxes": np.zeros((100, 5), np.float32)},
            r"output boxes: expected f32 \[S,4\] with S static, got f32 \[100,5\]",
        ),
        (
            GOOD_INPUTS,
            {**GOOD_OUTPUTS, "raw_masks": np.zeros((50, 81, 28, 28), np.float32)},
            r"output raw_masks: expected f32 \[S,C,m,m\] with S static, got f32 \[50,81,28,28\]",
        ),
    ],
)
def test_wrong_interface(tmp_path: Path, inputs: dict, outputs: dict, message: str) -> None:
    with pytest.raises(InterfaceError, match=message):
        read_model(custom_model(tmp_path, inputs, outputs))


def test_pre_v10_ir_is_explained(tmp_path: Path) -> None:
    xml = tmp_path / "instance-segmentation-security-0033.xml"
    xml.write_text('<?xml version="1.0" ?>\n<net batch="1" name="0033" version="7">\n<layers/>\n</net>\n')
    xml.with_suffix(".bin").write_bytes(b"\0" * 16)
    with pytest.raises(ModelError, match=r"IR v7 file; OpenVINO 2022.1 and later read only IR v10 .* instance-segmentation-security-0083"):
        read_model(xml)


def test_missing_bin(tiny_model: Path, tmp_path: Path) -> None:
    xml = tmp_path / "lonely.xml"
    xml.write_bytes(tiny_model.read_bytes())
    with pytest.raises(ModelError, match=r"weights not found: expected .*lonely.bin beside lonely.xml"):
        read_model(xml)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("absent.xml", None, r"model file not found: expected an IR .xml or an .onnx file at"),
        ("model.txt", "x", r"expected an IR .xml or an .onnx file, got model.txt"),
        ("broken.xml", "not xml at all <", r"expected an OpenVINO IR .xml file, got unparsable XML"),
        ("html.xml", "<html></html>", r"expected an OpenVINO IR with a root <net> element, got <html>"),
        ("junk.onnx", "hello", r"cannot read model .*junk.onnx: "),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
        if path.suffix == ".xml":
            path.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(ModelError, match=message):
        read_model(path)


AVAILABLE = ", ".join(ov.Core().available_devices)
HAS_GPU = any(d.startswith("GPU") for d in ov.Core().available_devices)
needs_no_gpu = pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU: it cannot show the absent-GPU error")


@pytest.mark.parametrize(
    "device, message",
    [
        pytest.param("GPU", rf"device 'GPU' is not available: expected one of {re.escape(AVAILABLE)}$", marks=needs_no_gpu),
        pytest.param("HETERO:GPU,CPU", r"device 'GPU' is not available", marks=needs_no_gpu),
        ("MYRIAD", r"removed in OpenVINO 2023.0 .* use --device NPU"),
        ("AUTO:MYRIAD", r"removed in OpenVINO 2023.0"),
        ("VPU", r"use --device NPU"),
        ("", r"expected a device such as CPU, GPU, NPU or AUTO, got ''"),
        ("TPU", rf"device 'TPU' is not available: expected one of {re.escape(AVAILABLE)}$"),
        ("HETERO:", r"expected devices after HETERO: such as HETERO:GPU,CPU, got 'HETERO:'"),
    ],
)
def test_device_errors(device: str, message: str) -> None:
    with pytest.raises(DeviceError, match=message):
        check_device(ov.Core(), device)


@pytest.mark.parametrize("device", ["CPU", "AUTO", "AUTO:CPU", "AUTO:-GPU", "HETERO:CPU", "MULTI:CPU", "BATCH:CPU(4)"])
def test_device_strings_that_compile(tiny_model: Path, device: str) -> None:
    core = ov.Core()
    model, _ = read_model(tiny_model, core)
    compiled = compile_model(core, model, device, {"PERFORMANCE_HINT": "LATENCY"})
    assert len(compiled.outputs) == 4


def test_bad_config_is_one_line(tiny_model: Path) -> None:
    core = ov.Core()
    model, _ = read_model(tiny_model, core)
    with pytest.raises(DeviceError, match=r"cannot compile the model for CPU .*") as info:
        compile_model(core, model, "CPU", {"NOT_A_PROPERTY": "1"})
    assert "\n" not in str(info.value)
