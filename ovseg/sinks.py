"""Results files: what ``ovseg predict`` writes, each file complete under its final name or
not there at all.

- **Per image**: ``NAME.json`` (:func:`image_document`) and the overlay ``NAME.png``.
- **Per video or stream**: ``NAME.jsonl``, one line per processed frame (:func:`frame_record`),
  written by :class:`JsonlWriter`, and the overlay video ``NAME.mp4``
  (:class:`~ovseg.video.VideoWriter`). Both are written under temporary names and renamed
  when the source ends; a run stopped early (``^C``, a source that fails) leaves them as
  ``NAME.partial.jsonl`` / ``NAME.partial.mp4`` (whole lines, a playable video), never under the
  final names.
- **COCO results** of the image inputs: :class:`CocoResults`, loadable by pycocotools'
  ``COCO.loadRes``, streamed to disk as images come (one image's :func:`coco_fragment` at a time).

Every instance is written in one schema, :meth:`ovseg.result.Result.to_records`, whichever
path its image took.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from .errors import OvsegError
from .files import publish, temporary_path
from .result import Result
from .sources import Frame

__all__ = ["image_document", "frame_record", "JsonlWriter", "CocoResults", "coco_image_id", "coco_fragment", "partial_path"]


def image_document(result: Result, *, image: str, model: str, device: str) -> dict[str, Any]:
    """The per-image JSON document: the image's name and size, the model and device, the
    per-stage ``speed_ms`` and the instances (boxes in original pixels, COCO ids, RLE masks)."""
    height, width = result.image_hw
    return {
        "image": image,
        "height": height,
        "width": width,
        "model": model,
        "device": device,
        "speed_ms": {k: round(v, 2) for k, v in result.speed_ms.items()},
        "instances": result.to_records(),
    }


def frame_record(frame: Frame, result: Result) -> dict[str, Any]:
    """One JSONL line of a video or stream: ``source``, ``frame`` (index), ``timestamp_ms``
    (the container's, ``null`` for cameras and streams), ``height``, ``width``, ``instances``."""
    height, width = result.image_hw
    return {
        "source": frame.source,
        "frame": frame.index,
        "timestamp_ms": frame.timestamp_ms,
        "height": height,
        "width": width,
        "instances": result.to_records(),
    }


def partial_path(path: Path) -> Path:
    """Where a file stopped half-way is kept: ``NAME.partial.SUFFIX`` beside ``path``."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


class JsonlWriter:
    """One JSON document per line, flushed line by line, renamed to ``path`` by
    :meth:`close` when complete (else kept whole-lined under :func:`partial_path`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lines = 0
        self._tmp = temporary_path(self.path)
        self._file: io.TextIOWrapper | None = self._tmp.open("w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        assert self._file is not None, "write after close"
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()
        self.lines += 1

    def close(self, complete: bool = True) -> Path | None:
        """Finish the file; returns where it is (``path``, the partial name, or ``None`` when
        no line was written and it was not complete)."""
        if self._file is None:
            return None
        self._file.close()
        self._file = None
        if complete:
            publish(self._tmp, self.path)
            return self.path
        if self.lines:
            partial = partial_path(self.path)
            publish(self._tmp, partial)
            return partial
        self._tmp.unlink(missing_ok=True)
        return None


def coco_image_id(path: Path, position: int) -> int:
    """COCO's ``image_id`` for an image file: the number its name is (``000000000139.jpg`` ->
    139, COCO's own naming), else its 1-based ``position`` among the inputs."""
    return int(path.stem) if re.fullmatch(r"\d{1,18}", path.stem) else position


def coco_fragment(result: Result, image_id: int) -> str:
    """One image's detections as the items of a JSON list (``json.dumps`` of each, joined by
    ``", "``; empty for none): what :meth:`CocoResults.add_fragment` appends."""
    return ", ".join(json.dumps(detection) for detection in result.to_coco(image_id))


class CocoResults:
    """COCO results dicts of the image inputs, one JSON list: streamed to a temporary file
    beside ``path`` as images are added (the masks are not held), renamed to ``path`` by
    :meth:`write` (:meth:`discard` drops it). The file is what ``json.dumps`` of the whole list
    would write."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self.images = 0
        self._tmp: Path | None = temporary_path(self.path)
        self._file: io.TextIOWrapper | None = self._tmp.open("w", encoding="utf-8")
        self._file.write("[")

    def add(self, result: Result, image_id: int) -> None:
        self.add_fragment(coco_fragment(result, image_id), len(result))

    def add_fragment(self, fragment: str, detections: int) -> None:
        """Append one image's :func:`coco_fragment` (``detections`` of them)."""
        assert self._file is not None, "add after write"
        if fragment:
            self._file.write((", " if self.count else "") + fragment)
        self.count += detections
        self.images += 1

    def write(self) -> None:
        assert self._file is not None and self._tmp is not None, "write twice"
        try:
            self._file.write("]")
            self._file.close()
        except OSError as error:
            self.discard()
            raise OvsegError(f"cannot write {self.path}: {error.strerror or error}") from None
        self._file = None
        publish(self._tmp, self.path)
        self._tmp = None

    def discard(self) -> None:
        """Drop what was added (the final file is left as it was)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None
