"""The slim export for serving: ``raw_masks`` ``[S, C, m, m]`` -> ``[S, 1, m, m]``.

Decoding needs one ``m x m`` map per slot, that of the slot's own class
(``raw_masks[i, classes[i]]``), yet the 0033 family returns all C = 81 of them: 25 MB of
float32 a frame, which a served model sends over the network every time. :func:`slim_model`
adds a ``Gather`` with ``batch_dims=1`` on the ``classes`` output inside the graph, so the
``raw_masks`` output carries only that map (313 KB at S = 100, m = 28). Port names and the
other outputs are unchanged, so the family is still told from the ports; ovseg decodes both
exports to the same masks (:func:`ovseg.decode.gather_maskrcnn` takes one channel as "the
slot's own"), and any KServe v2 server (OpenVINO Model Server, Triton, ``ovseg serve``) serves
it as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from .errors import ConfigError, ModelError
from .model import MASKRCNN_FAMILY, check_interface, check_ir_output, ports_of, read_model, save_ir

__all__ = ["ExportReport", "slim_model", "export_slim"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_slim` wrote.

    Attributes:
        output: the ``.xml`` written (its ``.bin`` beside it).
        raw_masks_before, raw_masks_after: the ``raw_masks`` output's shape in the source
            model and in the export.
    """

    output: Path
    raw_masks_before: tuple[int, ...]
    raw_masks_after: tuple[int, ...]

    @property
    def bytes_before(self) -> int:
        """float32 bytes of ``raw_masks`` a frame in the source model."""
        return 4 * int(np.prod(self.raw_masks_before))

    @property
    def bytes_after(self) -> int:
        return 4 * int(np.prod(self.raw_masks_after))


def _producer(model: ov.Model, name: str) -> ov.Output:
    """The output (of the node before the Result) that the model's output ``name`` comes from."""
    for result in model.get_results():
        value = result.input_value(0)
        if name in value.get_names():
            return value
    raise ModelError(f"expected an output named {name!r}, got {sorted(n for p in model.outputs for n in p.get_names())}")


def slim_model(model: ov.Model, *, where: str = "<model>") -> ov.Model:
    """A new model whose ``raw_masks`` output holds each slot's own class map, ``[S, 1, m, m]``.

    ``model`` must be of the 0033 family (checked); it is not modified.

    Raises:
        InterfaceError: ``model`` is not of a supported family.
        ConfigError: ``model`` is of the newer OMZ family (its ``masks`` are already one map per
            detection) or is already slim.
    """
    info = check_interface(model, path=where)
    if info.family != MASKRCNN_FAMILY:
        raise ConfigError(
            f"{where}: the slim export applies to the 0033 family (raw_masks [S,C,m,m]), got a {info.family} "
            "model, whose masks output already holds one map per detection: serve it as it is"
        )
    model = model.clone()
    raw_port = _producer(model, "raw_masks")
    dims = [d.get_length() for d in raw_port.get_partial_shape()]
    if dims[1] == 1:
        raise ConfigError(f"{where}: expected raw_masks [S,C,m,m] with C > 1, got {dims}: the model is already a slim export")
    classes_port = _producer(model, "classes")
    names = set(raw_port.get_names())
    # Class ids as i32 [S, 1]: float ids (some converters) are rounded as decoding rounds them;
    # out-of-range ids gather zeros (Gather-8), and decoding drops their slots anyway.
    class_ids = classes_port
    if classes_port.get_element_type().is_real():
        class_ids = ops.round(classes_port, "half_to_even").output(0)
    class_ids = ops.convert(class_ids, ov.Type.i32)
    indices = ops.unsqueeze(class_ids, ops.constant(np.array([1], dtype=np.int64)))
    gathered = ops.gather(raw_port, indices, ops.constant(np.int64(1)), batch_dims=1)
    raw_port.get_tensor().set_names(set())
    gathered.output(0).get_tensor().set_names(names)
    results = []
    for result in model.get_results():
        if result.input_value(0) == raw_port:
            new = ops.result(gathered)
            new.set_friendly_name(result.get_friendly_name())
            results.append(new)
        else:
            results.append(result)
    slim = ov.Model(results, model.get_parameters(), model.get_friendly_name())
    for key in ("framework", "conversion_parameters", "model_info"):
        if model.has_rt_info(key):
            slim.set_rt_info(model.get_rt_info(key), key)
    check_interface(slim, path=where)
    return slim


def export_slim(model: str | Path, output: str | Path, *, cache: str | Path | None = None) -> ExportReport:
    """Write the slim export of ``model`` (an IR, ONNX file or catalogue name) to ``output``
    (``.xml`` and ``.bin``, each under a temporary name, then renamed: nothing half-written).

    Raises:
        ModelError, InterfaceError: ``model`` cannot be read or is not of a supported family.
        ConfigError: the family has no slim export, ``output`` is not an ``.xml`` name, or
            ``output`` is the model itself.
    """
    output = Path(output)
    check_ir_output(output)
    source, info = read_model(model, cache=cache)
    if output.resolve() == info.path.resolve():
        raise ConfigError(f"expected an output other than the model itself, got {output}")
    slim = slim_model(source, where=info.path.name)
    before = _producer(source, "raw_masks").get_partial_shape()
    save_ir(slim, output)
    after = next(p for p in ports_of(slim.outputs) if "raw_masks" in p.names)
    report = ExportReport(
        output=output,
        raw_masks_before=tuple(d.get_length() for d in before),
        raw_masks_after=tuple(int(d) for d in after.dims or ()),
    )
    logger.info("wrote %s: raw_masks %s -> %s", output, report.raw_masks_before, report.raw_masks_after)
    return report
