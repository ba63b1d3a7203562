"""A model's inputs and outputs in one common form, and the check of a supported interface.

The same check serves a local IR (ports read by OpenVINO, :mod:`ovseg.model`) and a served
model (its KServe v2 metadata, :mod:`ovseg.remote`), so that both give the same one-line
errors and tell the family from the same port names. Standard library only.

Element types are OpenVINO's names (``f32``, ``i32``, ``u8``, ...); KServe's datatypes
(``FP32``, ``INT32``, ``UINT8``, ...) map onto them with :data:`KSERVE_TYPES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import InterfaceError

__all__ = [
    "MASKRCNN_FAMILY",
    "LABELS_FAMILY",
    "KSERVE_TYPES",
    "Port",
    "check_ports",
]

#: The family of 0033 / 0083 / 0010 / 0050: inputs im_data + im_info.
MASKRCNN_FAMILY = "maskrcnn"
#: The newer OMZ family (0002, 0091, 0228, 1039, 1040, person-0007): input ``image``, outputs
#: ``labels`` [N] (0-based), ``boxes`` [N, 5] (x1, y1, x2, y2, score), ``masks`` [N, m, m].
LABELS_FAMILY = "labels-boxes-masks"

#: KServe v2 datatype -> OpenVINO element type name.
KSERVE_TYPES = {
    "BOOL": "boolean", "UINT8": "u8", "UINT16": "u16", "UINT32": "u32", "UINT64": "u64",
    "INT8": "i8", "INT16": "i16", "INT32": "i32", "INT64": "i64",
    "FP16": "f16", "BF16": "bf16", "FP32": "f32", "FP64": "f64", "BYTES": "string",
}
_INTEGRAL = {"u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "boolean", "u1", "u4", "i4"}


@dataclass(frozen=True)
class Port:
    """One input or output.

    Attributes:
        names: every name of the port (an IR tensor may have several; a served one has one).
        element_type: OpenVINO's element type name: ``f32``, ``i32``, ...
        dims: the shape, ``None`` for a dynamic dimension; ``None`` for a dynamic rank.
        shape_text: the shape as errors print it (OpenVINO's form: ``[1,3,480,640]``, ``[?,5]``).
    """

    names: frozenset[str]
    element_type: str
    dims: tuple[int | None, ...] | None
    shape_text: str = ""

    @classmethod
    def from_kserve(cls, name: str, datatype: str, shape: Sequence[int]) -> Port:
        """A port from KServe v2 model metadata (``-1`` for a dynamic dimension)."""
        dims = tuple(None if int(d) < 0 else int(d) for d in shape)
        text = "[" + ",".join("?" if d is None else str(d) for d in dims) + "]"
        return cls(frozenset([name]), KSERVE_TYPES.get(datatype.upper(), datatype.lower()), dims, text)

    @property
    def name(self) -> str:
        return min(self.names) if self.names else ""

    def describe(self) -> str:
        return f"{self.element_type} {self.shape_text or self.dims}"

    @property
    def integral(self) -> bool:
        return self.element_type in _INTEGRAL

    def static_dims(self, rank: int) -> list[int | None] | None:
        """The dims if the rank is ``rank``, else ``None``."""
        if self.dims is None or len(self.dims) != rank:
            return None
        return list(self.dims)


def _names(ports: Iterable[Port]) -> list[str]:
    return sorted(name for port in ports for name in port.names)


def _find(ports: Sequence[Port], name: str) -> Port | None:
    for port in ports:
        if name in port.names:
            return port
    return None


def check_ports(inputs: Sequence[Port], outputs: Sequence[Port], *, where: str) -> tuple[str, tuple[int, int]]:
    """Check that the ports are those of a supported family; which one is decided from the port
    names alone: ``im_data`` + ``im_info`` (0033 family), or ``image`` with an output ``labels``
    or ``masks`` (newer family). ``raw_masks`` may have one channel per class (``[S,81,m,m]``) or
    one per slot (``[S,1,m,m]``, the slim export of ``ovseg export``).

    Returns:
        ``(family, input_hw)``.

    Raises:
        InterfaceError: naming ``where`` and the first port that is missing or wrong, expected vs got.
    """
    newer_outputs = _find(outputs, "labels") is not None or _find(outputs, "masks") is not None
    if _find(inputs, "im_data") is None and _find(inputs, "image") is not None and newer_outputs:
        return _check_labels_family(inputs, outputs, where=where)
    im_data, im_info = _find(inputs, "im_data"), _find(inputs, "im_info")
    if im_data is None or im_info is None:
        raise InterfaceError(
            f"{where}: expected the inputs of the instance-segmentation-security-0033 family "
            f"(im_data, im_info), got {_names(inputs)} (the newer OMZ family has an input "
            "image and outputs labels, boxes, masks)"
        )
    dims = im_data.static_dims(4)
    if im_data.element_type != "f32" or dims is None or dims[:2] != [1, 3] or None in dims[2:]:
        raise InterfaceError(f"{where}: input im_data: expected f32 [1,3,H,W], got {im_data.describe()}")
    if im_info.element_type != "f32" or im_info.static_dims(2) != [1, 3]:
        raise InterfaceError(f"{where}: input im_info: expected f32 [1,3], got {im_info.describe()}")
    if len(inputs) != 2:
        raise InterfaceError(f"{where}: expected 2 inputs (im_data, im_info), got {_names(inputs)}")

    expected = {"classes": 1, "scores": 1, "boxes": 2, "raw_masks": 4}
    missing = [name for name in expected if _find(outputs, name) is None]
    if missing:
        raise InterfaceError(
            f"{where}: missing output(s) {', '.join(missing)}: expected outputs "
            f"classes, scores, boxes, raw_masks, got {_names(outputs)}"
        )
    found = {name: _find(outputs, name) for name in expected}
    shapes = {name: found[name].static_dims(rank) for name, rank in expected.items()}  # type: ignore[union-attr]
    slots = shapes["scores"][0] if shapes["scores"] else None
    wanted = {
        "classes": "[S] integer (or f32)",
        "scores": "f32 [S]",
        "boxes": "f32 [S,4]",
        "raw_masks": "f32 [S,C,m,m]",
    }
    for name, dims_ in shapes.items():
        port = found[name]
        assert port is not None
        ok = dims_ is not None and slots is not None and None not in dims_ and dims_[0] == slots
        if name == "boxes":
            ok = ok and dims_[1] == 4
        if name == "raw_masks":
            ok = ok and dims_[2] == dims_[3]
        if name != "classes":
            ok = ok and port.element_type == "f32"
        elif not (port.integral or port.element_type == "f32"):
            ok = False
        if not ok:
            raise InterfaceError(f"{where}: output {name}: expected {wanted[name]} with S static, got {port.describe()}")
    return MASKRCNN_FAMILY, (int(dims[2]), int(dims[3]))  # type: ignore[arg-type]


def _check_labels_family(inputs: Sequence[Port], outputs: Sequence[Port], *, where: str) -> tuple[str, tuple[int, int]]:
    """The newer OMZ family: ``image`` f32 [1,3,H,W] -> ``labels`` [N] integer (or f32),
    ``boxes`` f32 [N,5], ``masks`` f32 [N,m,m]; N may be dynamic. Extra outputs are ignored."""
    image = _find(inputs, "image")
    assert image is not None
    dims = image.static_dims(4)
    if image.element_type != "f32" or dims is None or dims[:2] != [1, 3] or None in dims[2:]:
        raise InterfaceError(f"{where}: input image: expected f32 [1,3,H,W], got {image.describe()}")
    if len(inputs) != 1:
        raise InterfaceError(f"{where}: expected 1 input (image), got {_names(inputs)}")
    expected = {"labels": 1, "boxes": 2, "masks": 3}
    missing = [name for name in expected if _find(outputs, name) is None]
    if missing:
        raise InterfaceError(
            f"{where}: missing output(s) {', '.join(missing)}: expected outputs labels, boxes, masks "
            f"for an input named image, got {_names(outputs)}"
        )
    wanted = {"labels": "[N] integer (or f32)", "boxes": "f32 [N,5]", "masks": "f32 [N,m,m]"}
    shapes = {}
    for name, rank in expected.items():
        port = _find(outputs, name)
        assert port is not None
        shapes[name] = port.static_dims(rank)
        ok = shapes[name] is not None
        if name == "labels":
            ok = ok and (port.integral or port.element_type == "f32")
        else:
            ok = ok and port.element_type == "f32"
        if ok and name == "boxes":
            ok = shapes[name][1] == 5
        if ok and name == "masks":
            ok = shapes[name][1] is not None and shapes[name][1] == shapes[name][2]
        if not ok:
            raise InterfaceError(f"{where}: output {name}: expected {wanted[name]}, got {port.describe()}")
    counts = {shapes[name][0] for name in expected} - {None}
    if len(counts) > 1:
        described = ", ".join(_find(outputs, n).describe() for n in expected)  # type: ignore[union-attr]
        raise InterfaceError(f"{where}: expected labels, boxes and masks with one first dimension N, got {described}")
    return LABELS_FAMILY, (int(dims[2]), int(dims[3]))  # type: ignore[arg-type]
