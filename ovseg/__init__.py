"""ovseg: instance segmentation with OpenVINO's Open Model Zoo Mask R-CNN models.

>>> import ovseg, cv2
>>> seg = ovseg.Segmenter("instance-segmentation-security-0083.xml", device="CPU", threshold=0.5)
>>> res = seg(cv2.imread("street.jpg"))
>>> res.boxes, res.scores, res.labels, res.masks

The names below, and the submodules (``ovseg.draw``, ``ovseg.pipeline``, ...), are loaded on
first use, so that ``import ovseg`` (and ``ovseg --help``) costs no OpenVINO start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import OvsegError

if TYPE_CHECKING:
    from .result import Instance, Result
    from .segmenter import Segmenter
    from .sources import Frame, open_source

__all__ = ["Segmenter", "Result", "Instance", "Frame", "open_source", "OvsegError", "__version__"]

_LAZY = {"Segmenter": "segmenter", "Result": "result", "Instance": "result", "open_source": "sources", "Frame": "sources"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif not name.startswith("_"):
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'ovseg' has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module 'ovseg' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
