"""``ovseg devices``: available devices, full names, and which can run a model."""

from __future__ import annotations

import json
from pathlib import Path

import openvino as ov
import pytest

from ovseg.cli import main
from ovseg.commands.devices import device_rows
from ovseg.synthetic import labels_model


class FakeCore:
    """Three devices: CPU runs everything, GPU all but NonZero, NPU cannot be queried."""

    available_devices = ["CPU", "GPU.0", "NPU"]

    def get_property(self, device: str, name: str) -> str:
        assert name == "FULL_DEVICE_NAME"
        return {"CPU": "Some CPU", "GPU.0": "Some GPU (iGPU)", "NPU": "Some NPU"}[device]

    def query_model(self, model: ov.Model, device: str) -> dict[str, str]:
        if device == "NPU":
            raise RuntimeError("Exception from src/npu.cpp:1:\nnot supported on this NPU\n")
        return {
            op.get_friendly_name(): device
            for op in model.get_ops()
            if not (device == "GPU.0" and op.get_type_name() == "NonZero")
        }


def test_rows_name_the_blocking_ops() -> None:
    model = labels_model([0], [0.5], [[0, 0, 1, 1]])
    rows = {r.device: r for r in device_rows(FakeCore(), model)}
    assert rows["CPU"].blocked == {} and rows["CPU"].full_name == "Some CPU"
    assert rows["GPU.0"].blocked == {"NonZero": 1}
    assert rows["NPU"].blocked is None and "not supported on this NPU" in (rows["NPU"].error or "")
    assert all(r.blocked is None for r in device_rows(FakeCore()))  # no model: no query


def test_devices_command(tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    core = ov.Core()
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for device in core.available_devices:
        assert device in out and str(core.get_property(device, "FULL_DEVICE_NAME")) in out
    assert main(["devices", "--model", str(tiny_model)]) == 0
    cpu_line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("CPU "))
    assert cpu_line.endswith("can run it")
    assert main(["devices", "--model", str(tiny_model), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    cpu = next(d for d in doc["devices"] if d["device"] == "CPU")
    assert cpu["can_run"] is True and cpu["blocked_ops"] == {}


def test_devices_with_an_uncached_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OVSEG_CATALOG", raising=False)
    monkeypatch.setenv("OVSEG_HOME", str(tmp_path))
    assert main(["devices", "--model", "instance-segmentation-security-1039"]) == 2
    assert "run `ovseg fetch instance-segmentation-security-1039 --precision FP16`" in capsys.readouterr().err



class _CountingCore:
    """The real Core, counting the ``query_model`` calls made through it."""

    def __init__(self) -> None:
        self.core, self.queries = ov.Core(), 0

    def query_model(self, *args: object, **kwargs: object) -> object:
        self.queries += 1
        return self.core.query_model(*args, **kwargs)

    def __getattr__(self, name: str) -> object:
        return getattr(self.core, name)


def test_a_model_that_compiles_is_not_queried_first(tiny_model: Path) -> None:
    """query_model costs about a compile on the CPU: it runs only to explain a failed compile."""
    from ovseg.errors import DeviceError
    from ovseg.model import compile_model

    core = _CountingCore()
    model = core.read_model(tiny_model)
    compiled = compile_model(core, model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})  # type: ignore[arg-type]
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32 and core.queries == 0
    with pytest.raises(DeviceError, match=r"cannot compile the model for CPU with \{'NO_SUCH_KEY': 1\}") as info:
        compile_model(core, model, "CPU", {"NO_SUCH_KEY": 1})  # type: ignore[arg-type]
    assert core.queries == 1 and "\n" not in str(info.value)
