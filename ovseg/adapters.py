"""Thin adapters to other libraries' result types (their packages imported only here).

- ``supervision`` (``pip install "ovseg[supervision]"``): :func:`to_detections` builds an
  ``sv.Detections`` from a result's arrays; ``Result.to_supervision()`` and
  ``Result.from_supervision()`` are the public ends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import OvsegError

__all__ = ["import_supervision", "to_detections"]


def import_supervision() -> Any:
    """The ``supervision`` module, or a one-line error that says how to install it."""
    try:
        import supervision
    except ImportError:
        raise OvsegError('supervision is not installed: pip install "ovseg[supervision]"') from None
    return supervision


def to_detections(
    xyxy: np.ndarray, masks: np.ndarray, confidence: np.ndarray, class_id: np.ndarray, class_name: list[str],
    tracker_id: np.ndarray,
) -> Any:
    """An ``sv.Detections``: boxes ``(N, 4)`` float32, full bool masks ``(N, H, W)``, scores,
    contiguous class ids (1..80, ovseg's numbering), ``data["class_name"]`` and, where any
    instance is tracked, ``tracker_id`` (-1 where untracked)."""
    sv = import_supervision()
    return sv.Detections(
        xyxy=np.array(xyxy, dtype=np.float32),
        mask=np.array(masks, dtype=bool),
        confidence=np.array(confidence, dtype=np.float32),
        class_id=np.array(class_id, dtype=int),
        tracker_id=np.array(tracker_id, dtype=int) if (np.asarray(tracker_id) >= 0).any() else None,
        data={"class_name": np.array(class_name, dtype=str)},
    )
