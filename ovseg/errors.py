"""The package's exception types.

Every error ovseg raises on purpose derives from :class:`OvsegError`, carries a one-line
message of the form "expected X, got Y", and is what the command line turns into exit code
2 without a traceback.
"""

from __future__ import annotations

__all__ = [
    "OvsegError",
    "ImageError",
    "ModelError",
    "InterfaceError",
    "DeviceError",
    "OutputError",
    "DatasetError",
    "DownloadError",
    "ConfigError",
    "CaptureError",
    "InferenceError",
    "ResultError",
    "ResultIndexError",
    "TrackingError",
]


class OvsegError(Exception):
    """Base class of every error ovseg raises on purpose."""


class ImageError(OvsegError, ValueError):
    """An image that cannot be read or is not an image ovseg accepts."""


class ModelError(OvsegError):
    """A model file that is missing, unreadable or of an unsupported IR version."""


class InterfaceError(ModelError):
    """A model whose inputs or outputs are not those of a supported family."""


class DeviceError(OvsegError):
    """A device string that names no available device, or a device that cannot run the model."""


class ResultError(OvsegError, ValueError):
    """Arrays that do not make a valid :class:`~ovseg.result.Result` (shapes, sizes, ids)."""


class ResultIndexError(OvsegError, IndexError):
    """An index into a :class:`~ovseg.result.Result` outside its instances, or of a kind it
    does not take."""


class OutputError(OvsegError):
    """Inference outputs that are structurally wrong (shapes, missing tensors)."""


class DatasetError(OvsegError):
    """A COCO annotation file or image folder that does not fit the evaluation."""


class DownloadError(OvsegError):
    """A model download that failed or did not verify."""


class ConfigError(OvsegError, ValueError):
    """An option with a value outside what it accepts (threshold, paste, resize, ...)."""


class CaptureError(OvsegError):
    """A camera, video, image folder or stream that cannot be opened or stops delivering frames."""


class InferenceError(OvsegError):
    """An inference that OpenVINO started but could not finish (device lost, out of memory, ...)."""


class TrackingError(OvsegError, ValueError):
    """A tracker fed a frame that does not belong to its stream, or missing its optional extra."""
