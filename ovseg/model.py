"""Read a model, check its interface, compile it for a device.

The only module (with the streaming pipeline) that talks to OpenVINO. It knows the interface
of the 0033 family (SPEC.md):

=========  ======================  ============================================
port       shape                   meaning
=========  ======================  ============================================
im_data    f32 [1, 3, H, W]        BGR 0..255, H x W = 480 x 640 for 0033/0083
im_info    f32 [1, 3]              resized height, resized width, scale
classes    i32 [S]                 contiguous 1..80, 0 = empty slot (S = 100)
scores     f32 [S]
boxes      f32 [S, 4]              x1, y1, x2, y2 in the network-input frame
raw_masks  f32 [S, C, m, m]        C = 81 classes, m = 28
=========  ======================  ============================================

Errors are one line each: a missing file, a pre-v10 IR (unreadable since OpenVINO 2022.1), a
port that is missing or of the wrong shape or type (expected vs got), a device that is not
there (with the list of those that are), and ops a device cannot run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from .cache import ModelRef, resolve_model
from .catalog import ModelEntry
from .errors import ConfigError, DeviceError, ModelError
from .ports import LABELS_FAMILY, MASKRCNN_FAMILY, Port, check_ports

__all__ = [
    "ModelInfo",
    "MASKRCNN_FAMILY",
    "LABELS_FAMILY",
    "read_model",
    "check_interface",
    "ports_of",
    "ir_version",
    "check_device",
    "unsupported_ops",
    "compile_model",
    "reshape_input",
    "ov_message",
    "compiled_property",
    "request_outputs",
    "check_ir_output",
    "save_ir",
]

logger = logging.getLogger(__name__)


_REMOVED_DEVICES = {
    "MYRIAD": "MYRIAD (NCS2) was removed in OpenVINO 2023.0 and never ran this model's "
    "ExperimentalDetectron ops; Intel's current VPU is the NPU plugin: use --device NPU",
    "HDDL": "HDDL was removed in OpenVINO 2023.0; Intel's current VPU is the NPU plugin: use --device NPU",
    "VPU": "the VPU plugins (MYRIAD, HDDL) were removed in OpenVINO 2023.0; "
    "Intel's current VPU is the NPU plugin: use --device NPU",
    "VPUX": "VPUX was renamed NPU: use --device NPU",
    "GNA": "GNA was removed in OpenVINO 2024.0 and could not run this model",
}
_VIRTUAL_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")


@dataclass(frozen=True)
class ModelInfo:
    """What ovseg knows about a model after checking its interface.

    Attributes:
        path: the model file.
        family: interface family (``"maskrcnn"`` for 0033 / 0083, ``"labels-boxes-masks"`` for
            the newer OMZ models), recognised from the ports.
        input_hw: (height, width) of the image input.
        entry: the catalogue entry when the model is a catalogue model (see
            :class:`~ovseg.cache.ModelRef`), else ``None``.
        precision: that entry's precision (``FP16``, ...), else ``None``.
    """

    path: Path
    family: str
    input_hw: tuple[int, int]
    entry: ModelEntry | None = None
    precision: str | None = None


def ov_message(error: BaseException) -> str:
    """The informative line of an OpenVINO exception (they come as multi-line stacks)."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not re.match(r"^(Exception from|Check '.*' failed at) ", ln)]
    text = (useful or lines or [type(error).__name__])[-1]
    return text if len(text) <= 300 else text[:297] + "..."


def ir_version(xml_path: Path) -> int | None:
    """The ``version`` attribute of an IR's root ``<net>`` element (reads only the first tag)."""
    try:
        for _, element in ET.iterparse(xml_path, events=("start",)):
            if element.tag != "net":
                raise ModelError(f"{xml_path}: expected an OpenVINO IR with a root <net> element, got <{element.tag}>")
            version = element.attrib.get("version")
            return int(version) if version and version.isdigit() else None
    except ET.ParseError as error:
        raise ModelError(f"{xml_path}: expected an OpenVINO IR .xml file, got unparsable XML ({error})") from None
    return None


def read_model(
    path: str | Path | ModelRef, core: ov.Core | None = None, *, cache: str | Path | None = None
) -> tuple[ov.Model, ModelInfo]:
    """Read an IR (``.xml`` beside its ``.bin``) or an ONNX file and check its interface.

    ``path`` may also be a model catalogue name (``instance-segmentation-security-0083``,
    optionally ``NAME:FP16-INT8``): it reads the IR cached in ``cache`` (default: the user's
    model cache; :func:`ovseg.cache.resolve_model`).

    Raises:
        ModelError: the file is missing, is not a model, or is an IR older than v10; a catalogue
            name that is not cached (the message gives the ``ovseg fetch`` command).
        InterfaceError: the model is not of a supported family (see :func:`check_interface`).
    """
    ref = resolve_model(path, cache=cache)
    path = ref.path
    if not path.is_file():
        raise ModelError(f"model file not found: expected an IR .xml or an .onnx file at {path}")
    version = None
    if path.suffix.lower() == ".xml":
        version = ir_version(path)
        if version is not None and version < 10:
            raise ModelError(
                f"{path} is an IR v{version} file; OpenVINO 2022.1 and later read only IR v10 "
                "and newer. instance-segmentation-security-0033 exists only as a 2019 IR v7 model: "
                "use its IR v10 re-release instance-segmentation-security-0083 (same network)"
            )
        bin_path = path.with_suffix(".bin")
        if not bin_path.is_file():
            raise ModelError(f"weights not found: expected {bin_path} beside {path.name}")
    elif path.suffix.lower() != ".onnx":
        raise ModelError(f"expected an IR .xml or an .onnx file, got {path.name}")
    core = core or ov.Core()
    try:
        model = core.read_model(path)
    except RuntimeError as error:
        raise ModelError(f"cannot read model {path}: {ov_message(error)}") from None
    info = check_interface(model, path=path)
    return model, dataclasses.replace(info, entry=ref.entry, precision=ref.precision)


def ports_of(items: Any) -> list[Port]:
    """OpenVINO ports (a model's ``inputs`` or ``outputs``) in the common form of :mod:`ovseg.ports`."""
    ports = []
    for port in items:
        shape = port.get_partial_shape()
        dims = None if shape.rank.is_dynamic else tuple(d.get_length() if d.is_static else None for d in shape)
        ports.append(Port(frozenset(port.get_names()), port.get_element_type().get_type_name(), dims, str(shape)))
    return ports


def check_interface(model: ov.Model, *, path: str | Path = "<model>") -> ModelInfo:
    """Check that ``model`` has the inputs and outputs of a supported family (see
    :func:`ovseg.ports.check_ports`: ``im_data`` + ``im_info`` for the 0033 family, ``image``
    with an output ``labels`` or ``masks`` for the newer one).

    Raises:
        InterfaceError: naming the first port that is missing or wrong, expected vs got.
    """
    family, input_hw = check_ports(ports_of(model.inputs), ports_of(model.outputs), where=Path(path).name)
    return ModelInfo(path=Path(path), family=family, input_hw=input_hw)


def _named_devices(device: str) -> list[str]:
    """The concrete device names in a device string: ``HETERO:GPU,CPU`` -> [GPU, CPU]."""
    head, colon, rest = device.partition(":")
    if head.upper() in _VIRTUAL_DEVICES:
        # "-GPU" excludes a device from AUTO (it need not exist); "CPU(4)" gives BATCH its
        # batch size.
        parts = [d.strip() for d in rest.split(",") if d.strip()]
        names = [re.sub(r"\(\d+\)$", "", d) for d in parts if not d.startswith("-")]
        if colon and not parts:
            raise DeviceError(f"expected devices after {head.upper()}: such as {head.upper()}:GPU,CPU, got {device!r}")
        return [n for name in names for n in _named_devices(name)]
    return [device.strip()]


def check_device(core: ov.Core, device: str) -> None:
    """Raise :class:`DeviceError` unless every device named in ``device`` is available.

    ``device`` is any OpenVINO device string: ``CPU``, ``GPU.1``, ``NPU``, ``AUTO``,
    ``AUTO:GPU,CPU``, ``HETERO:GPU,CPU``, ``MULTI:GPU,CPU``.
    """
    if not device or not device.strip():
        raise DeviceError(f"expected a device such as CPU, GPU, NPU or AUTO, got {device!r}")
    available = list(core.available_devices)
    for name in _named_devices(device):
        base = name.split(".")[0].upper()
        if base in _REMOVED_DEVICES:
            raise DeviceError(f"device {name}: {_REMOVED_DEVICES[base]}")
        if name in available or (name == base and any(d.split(".")[0] == base for d in available)):
            continue
        if base in _VIRTUAL_DEVICES:
            continue
        raise DeviceError(f"device {name!r} is not available: expected one of {', '.join(available) or 'none'}")


def unsupported_ops(core: ov.Core, model: ov.Model, device: str) -> Counter[str]:
    """Op types (with counts) of ``model`` that ``device`` reports it cannot run.

    Empty for AUTO / MULTI / BATCH, which pick devices themselves.
    """
    if device.split(":")[0].upper() in ("AUTO", "MULTI", "BATCH"):
        return Counter()
    try:
        supported = core.query_model(model, device)
    except RuntimeError as error:
        raise DeviceError(f"device {device} cannot be queried for this model: {ov_message(error)}") from None
    return Counter(
        op.get_type_name()
        for op in model.get_ops()
        if op.get_friendly_name() not in supported and op.get_type_name() not in ("Parameter", "Result", "Constant")
    )


def compile_model(
    core: ov.Core, model: ov.Model, device: str = "CPU", config: Mapping[str, Any] | None = None
) -> ov.CompiledModel:
    """Compile ``model`` for ``device`` with ``config`` passed through to OpenVINO.

    Raises:
        DeviceError: the device is not available, cannot run some ops (named), or rejects the
            configuration.
    """
    check_device(core, device)
    try:
        return core.compile_model(model, device, dict(config or {}))
    except RuntimeError as error:
        message = ov_message(error)
    # Only now ask the device which ops it cannot run (a query costs about a compile on the
    # CPU, so a model that compiles never pays it): that names the cause better than the
    # plugin's message does.
    try:
        blocked = unsupported_ops(core, model, device)
    except DeviceError:
        blocked = Counter()
    if blocked:
        ops = ", ".join(f"{name} (x{count})" for name, count in sorted(blocked.items()))
        raise DeviceError(
            f"device {device} cannot run {sum(blocked.values())} op(s) of this model: {ops}; "
            f"try HETERO:{device},CPU or AUTO"
        )
    raise DeviceError(f"cannot compile the model for {device} with {dict(config or {})}: {message}")


def reshape_input(model: ov.Model, input_hw: tuple[int, int]) -> ov.Model:
    """A copy of a 0033-family model with ``im_data`` reshaped to ``[1, 3, *input_hw]``.

    Raises:
        ModelError: the model cannot be reshaped to that size.
    """
    clone = model.clone()
    try:
        clone.reshape({"im_data": ov.PartialShape([1, 3, *input_hw])})
    except RuntimeError as error:
        raise ModelError(
            f"the model cannot be reshaped to im_data [1,3,{input_hw[0]},{input_hw[1]}] "
            f"(needed for portrait images with resize short-long): {ov_message(error)}"
        ) from None
    return clone


def compiled_property(compiled: ov.CompiledModel | None, name: str) -> str:
    """A compiled model's property as text (``""`` when the plugin does not have it, or there is
    no compiled model: a served one): types by name (``f32``, not ``<Type: 'float32'>``), enums
    by name (``THROUGHPUT``), lists joined by commas (``EXECUTION_DEVICES``)."""
    if compiled is None:
        return ""
    try:
        value = compiled.get_property(name)
    except (RuntimeError, TypeError):
        return ""
    if isinstance(value, ov.Type):
        return value.get_type_name()
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(getattr(value, "name", value))


def request_outputs(request: ov.InferRequest) -> dict[str, np.ndarray]:
    """Views of a finished request's outputs by every name of each port (valid until the
    request runs again: copy what must outlive it)."""
    return {name: request.get_tensor(port).data for port in request.model_outputs for name in port.get_names()}


def check_ir_output(output: Path) -> None:
    """Fail early unless ``output`` is an ``.xml`` name in an existing, writable folder."""
    if output.suffix.lower() != ".xml":
        raise ConfigError(f"expected an output IR name ending in .xml, got {output.name}")
    if not output.parent.is_dir():
        raise ModelError(f"output folder not found: expected an existing folder for {output.name}, got {output.parent}")
    if not os.access(output.parent, os.W_OK):
        raise ModelError(f"cannot write {output}: its folder is not writable")
    if output.is_dir():
        raise ModelError(f"cannot write {output}: expected a file name, got a folder")


def save_ir(model: ov.Model, output: Path) -> None:
    """``.xml`` and ``.bin`` written under temporary names beside ``output``, then renamed (the
    ``.bin`` first, so that a complete ``.xml`` never names missing weights)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=".xml", dir=output.parent)
    os.close(fd)
    tmp_xml = Path(tmp_name)
    tmp_bin = tmp_xml.with_suffix(".bin")
    try:
        ov.save_model(model, tmp_xml, compress_to_fp16=False)
        umask = os.umask(0)
        os.umask(umask)
        for path in (tmp_xml, tmp_bin):
            os.chmod(path, 0o666 & ~umask)
        os.replace(tmp_bin, output.with_suffix(".bin"))
        os.replace(tmp_xml, output)
    except (OSError, RuntimeError) as error:
        message = error.strerror if isinstance(error, OSError) else ov_message(error)
        raise ModelError(f"cannot write {output}: {message or error}") from None
    finally:
        tmp_xml.unlink(missing_ok=True)
        tmp_bin.unlink(missing_ok=True)
