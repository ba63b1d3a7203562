"""ovseg: instance segmentation with OpenVINO's Open Model Zoo Mask R-CNN models.

>>> import ovseg, cv2
>>> seg = ovseg.Segmenter("instance-segmentation-security-0083.xml", device="CPU", threshold=0.5)
>>> res = seg(cv2.imread("street.jpg"))
>>> res.boxes, res.scores, res.labels, res.masks
"""

from __future__ import annotations

from ._version import __version__
from .errors import OvsegError
from .result import Instance, Result
from .segmenter import Segmenter

__all__ = ["Segmenter", "Result", "Instance", "OvsegError", "__version__"]
