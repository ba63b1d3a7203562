"""The result of segmenting one image: parallel numpy arrays plus box-local masks.

A :class:`Result` holds N instances. Per instance it keeps the box, the score, the contiguous
class id (1..80) and the mask as a *crop*: a bool array covering only the region the mask was
pasted into, plus that region's top-left corner in the image. Full-resolution arrays are built
only when asked for (:attr:`Result.masks`, :meth:`Result.mask`, :meth:`Result.label_map`), so a
result costs memory in proportion to the area of its boxes, not N x H x W.

Coordinates are original-image pixels, x to the right and y down; boxes are x1, y1, x2, y2 with
the continuous convention (a box covering pixel columns 0..9 is x1=0, x2=10). Sizes are
always (height, width).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from .errors import ResultError, ResultIndexError
from .labels import class_name, coco_category_id
from .rle import rle_from_crop

__all__ = ["Candidates", "Instance", "Result"]


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _owned(array: np.ndarray, dtype: Any) -> np.ndarray:
    """A read-only array of ``dtype``: the caller's if it is already read-only, else a copy."""
    if isinstance(array, np.ndarray) and array.dtype == dtype and not array.flags.writeable:
        return array
    return _frozen(np.array(array, dtype=dtype, copy=True))


def _owned_mask(crop: Any) -> np.ndarray:
    """A read-only bool mask: the caller's if it already is one, else a copy whose bytes are 0 or 1
    (a bool view of other bytes, ``(m * 255).view(bool)``, would count wrong in OpenCV's kernels)."""
    if isinstance(crop, np.ndarray) and crop.dtype == np.bool_ and not crop.flags.writeable:
        return crop
    return _frozen(np.not_equal(np.asarray(crop), 0))


@dataclass(frozen=True)
class Instance:
    """One detected instance (what iterating over a :class:`Result` yields)."""

    box: tuple[float, float, float, float]
    score: float
    class_id: int
    label: str
    mask_crop: np.ndarray
    """bool ``(h, w)``: the mask inside the region that starts at ``mask_offset``."""
    mask_offset: tuple[int, int]
    """``(x, y)`` of the crop's top-left pixel in the image."""
    track_id: int = -1
    """The tracker's id for this instance, -1 where untracked (see :mod:`ovseg.track`)."""


@dataclass(frozen=True, eq=False)
class Candidates:
    """Box-only detections below a segmenter's output threshold, for trackers that associate
    low-score detections (ByteTrack's second stage). No masks are pasted for them, and they
    never reach output files: they are not instances of the :class:`Result` (not in ``len()``,
    iteration or ``to_coco``).

    Attributes:
        boxes: float32 ``(K, 4)`` x1, y1, x2, y2 in original-image pixels, clipped to the image.
        scores: float32 ``(K,)``, each below the segmenter's threshold, descending.
        class_ids: int32 ``(K,)`` contiguous COCO class ids 1..80.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ResultError(f"expected candidate boxes of shape (K, 4), got {boxes.shape}")
        k = boxes.shape[0]
        for name in ("scores", "class_ids"):
            if np.shape(getattr(self, name)) != (k,):
                raise ResultError(f"expected candidate {name} of shape ({k},), got {np.shape(getattr(self, name))}")
        object.__setattr__(self, "boxes", _owned(boxes, np.float32))
        object.__setattr__(self, "scores", _owned(self.scores, np.float32))
        object.__setattr__(self, "class_ids", _owned(self.class_ids, np.int32))

    @classmethod
    def empty(cls) -> Candidates:
        return NO_CANDIDATES

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __repr__(self) -> str:
        return f"Candidates({len(self)} box-only detections)"


NO_CANDIDATES = Candidates(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))


@dataclass(frozen=True, eq=False)
class Result:
    """Instances found in one image.

    Attributes:
        boxes: float32 ``(N, 4)`` x1, y1, x2, y2 in original-image pixels, clipped to the image.
        scores: float32 ``(N,)`` in [0, 1]; descending in every result a Segmenter makes.
        class_ids: int32 ``(N,)`` contiguous COCO class ids 1..80.
        image_hw: (height, width) of the original image.
        mask_crops: N bool arrays ``(h_i, w_i)``, each instance's mask inside its paste region.
        mask_offsets: int32 ``(N, 2)`` ``(x, y)`` of each crop's top-left pixel in the image.
        speed_ms: time spent per stage in milliseconds (``preprocess``, ``infer``, ``decode``).
        track_ids: int32 ``(N,)`` stable ids across a stream's frames, -1 where untracked (all
            -1 unless a tracker of :mod:`ovseg.track` set them).
        candidates: box-only detections of the same frame below the output threshold (empty
            unless the segmenter was given a ``candidate_threshold``); frame-level, for trackers
            only, carried unchanged through indexing.

    Indexing with an int, a slice, an int array or a bool ``(N,)`` array returns a new
    :class:`Result` with the selected instances (``res[res.scores > 0.8]``). All arrays are
    read-only.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    image_hw: tuple[int, int]
    mask_crops: tuple[np.ndarray, ...]
    mask_offsets: np.ndarray
    speed_ms: Mapping[str, float] = field(default_factory=dict)
    track_ids: np.ndarray | None = None
    candidates: Candidates = NO_CANDIDATES

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        boxes = np.asarray(self.boxes)
        n = boxes.shape[0] if boxes.ndim == 2 else -1
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ResultError(f"expected boxes of shape (N, 4), got {boxes.shape}")
        if self.track_ids is None:
            set_("track_ids", np.full(max(n, 0), -1, np.int32))
        for name, shape in (("scores", (n,)), ("class_ids", (n,)), ("mask_offsets", (n, 2)), ("track_ids", (n,))):
            got = np.shape(getattr(self, name))
            if got != shape:
                raise ResultError(f"expected {name} of shape {shape}, got {got}")
        if len(self.image_hw) != 2 or min(self.image_hw) < 1:
            raise ResultError(f"expected image_hw (height, width) >= 1, got {self.image_hw}")
        if len(self.mask_crops) != n:
            raise ResultError(f"expected {n} mask crops, got {len(self.mask_crops)}")
        set_("boxes", _owned(boxes, np.float32))
        set_("scores", _owned(self.scores, np.float32))
        set_("class_ids", _owned(self.class_ids, np.int32))
        set_("mask_offsets", _owned(self.mask_offsets, np.int32))
        track_ids = np.asarray(self.track_ids)
        if track_ids.size and not np.issubdtype(track_ids.dtype, np.integer):
            raise ResultError(f"expected integer track_ids, got {track_ids.dtype}")
        if track_ids.size and track_ids.min() < -1:
            raise ResultError(f"expected track_ids >= -1 (-1: untracked), got {int(track_ids.min())}")
        set_("track_ids", _owned(track_ids, np.int32))
        if not isinstance(self.candidates, Candidates):
            raise ResultError(f"expected candidates of type Candidates, got {type(self.candidates).__name__}")
        set_("image_hw", (int(self.image_hw[0]), int(self.image_hw[1])))
        crops = tuple(_owned_mask(c) for c in self.mask_crops)
        height, width = self.image_hw
        for i, (crop, (x, y)) in enumerate(zip(crops, self.mask_offsets.tolist(), strict=True)):
            if crop.ndim != 2 or x < 0 or y < 0 or x + crop.shape[1] > width or y + crop.shape[0] > height:
                raise ResultError(
                    f"expected mask crop {i} inside the {height}x{width} image, "
                    f"got shape {crop.shape} at (x={x}, y={y})"
                )
        set_("mask_crops", crops)
        set_("speed_ms", MappingProxyType(dict(self.speed_ms)))

    @classmethod
    def empty(
        cls, image_hw: tuple[int, int], speed_ms: Mapping[str, float] | None = None, *, candidates: Candidates | None = None
    ) -> Result:
        """A result with no instances for an image of size ``image_hw``."""
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.int32),
            image_hw=image_hw,
            mask_crops=(),
            mask_offsets=np.zeros((0, 2), np.int32),
            speed_ms=speed_ms or {},
            candidates=candidates or NO_CANDIDATES,
        )

    # -- sequence protocol ---------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self, index: int | slice | np.ndarray | list[int]) -> Result:
        n = len(self)
        if isinstance(index, (int, np.integer)):
            if not -n <= index < n:
                raise ResultIndexError(f"expected an index in [-{n}, {n}), got {index}")
            rows = np.array([index % n])
        elif isinstance(index, slice):
            rows = np.arange(n)[index]
        else:
            index = np.asarray(index)
            if index.dtype == np.bool_:
                if index.shape != (n,):
                    raise ResultIndexError(f"expected a bool mask of shape ({n},), got {index.shape}")
                rows = np.flatnonzero(index)
            elif np.issubdtype(index.dtype, np.integer) and index.ndim == 1:
                if index.size and (index.min() < -n or index.max() >= n):
                    raise ResultIndexError(f"expected indices in [-{n}, {n}), got {index.tolist()}")
                rows = index % n if n else index
            else:
                raise ResultIndexError(f"expected an int, slice, int array or bool mask, got {index!r}")
        return Result(
            boxes=self.boxes[rows],
            scores=self.scores[rows],
            class_ids=self.class_ids[rows],
            image_hw=self.image_hw,
            mask_crops=tuple(self.mask_crops[i] for i in rows.tolist()),
            mask_offsets=self.mask_offsets[rows],
            speed_ms=self.speed_ms,
            track_ids=self.track_ids[rows],
            candidates=self.candidates,
        )

    def __iter__(self) -> Iterator[Instance]:
        for i in range(len(self)):
            x1, y1, x2, y2 = self.boxes[i].tolist()
            ox, oy = self.mask_offsets[i].tolist()
            yield Instance(
                box=(x1, y1, x2, y2),
                score=float(self.scores[i]),
                class_id=int(self.class_ids[i]),
                label=class_name(int(self.class_ids[i])),
                mask_crop=self.mask_crops[i],
                mask_offset=(ox, oy),
                track_id=int(self.track_ids[i]),
            )

    def __repr__(self) -> str:
        h, w = self.image_hw
        return f"Result({len(self)} instances in a {h}x{w} image)"

    # -- named views ---------------------------------------------------------------------

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names, one per instance."""
        return tuple(class_name(int(c)) for c in self.class_ids)

    @functools.cached_property
    def masks(self) -> np.ndarray:
        """bool ``(N, H, W)`` full-resolution masks (built on first access, then kept)."""
        height, width = self.image_hw
        stack = np.zeros((len(self), height, width), dtype=np.bool_)
        for i, (crop, (x, y)) in enumerate(zip(self.mask_crops, self.mask_offsets.tolist(), strict=True)):
            stack[i, y : y + crop.shape[0], x : x + crop.shape[1]] = crop
        return _frozen(stack)

    def mask(self, i: int) -> np.ndarray:
        """bool ``(H, W)`` full-resolution mask of instance ``i`` (a new array)."""
        out = np.zeros(self.image_hw, dtype=np.bool_)
        crop = self.mask_crops[i]
        x, y = self.mask_offsets[i].tolist()
        out[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
        return out

    def label_map(self) -> np.ndarray:
        """int32 ``(H, W)``: the index of the instance that covers each pixel, -1 for none.

        Where masks overlap, the instance with the higher score wins.
        """
        out = np.full(self.image_hw, -1, dtype=np.int32)
        # Paint from the lowest score up, so the highest-scoring instance ends on top (and of
        # equal scores, the earlier one).
        for i in np.argsort(-self.scores, kind="stable")[::-1].tolist():
            crop = self.mask_crops[i]
            x, y = self.mask_offsets[i].tolist()
            region = out[y : y + crop.shape[0], x : x + crop.shape[1]]
            region[crop] = i
        return out

    def areas(self) -> np.ndarray:
        """int64 ``(N,)`` number of mask pixels per instance."""
        return np.array([int(np.count_nonzero(c)) for c in self.mask_crops], dtype=np.int64)

    def to_coco(self, image_id: int) -> list[dict[str, Any]]:
        """COCO results dicts, one per instance, loadable by pycocotools' ``COCO.loadRes``:
        ``image_id``, official ``category_id`` (1..90), ``bbox`` ``[x, y, w, h]``, ``score``,
        ``segmentation`` (compressed RLE, ``counts`` a str, computed from the crops) and
        ``track_id`` (-1 where untracked)."""
        return [
            {
                "image_id": int(image_id),
                "category_id": record["category_id"],
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "score": record["score"],
                "segmentation": record["segmentation"],
                "track_id": record["track_id"],
            }
            for record, (x1, y1, x2, y2) in zip(self.to_records(), self.boxes.tolist(), strict=True)
        ]

    def to_supervision(self) -> Any:
        """A ``supervision.Detections`` (``pip install "ovseg[supervision]"``): ``xyxy``, full
        ``mask`` (N, H, W), ``confidence``, ``class_id`` (contiguous 1..80), ``data["class_name"]``
        and ``tracker_id`` when tracked. Builds the full masks: for video loops prefer the
        box-local crops."""
        from .adapters import to_detections

        return to_detections(self.boxes, self.masks, self.scores, self.class_ids, list(self.labels), self.track_ids)

    @classmethod
    def from_supervision(cls, detections: Any, image_hw: tuple[int, int] | None = None) -> Result:
        """A :class:`Result` from a ``supervision.Detections`` with masks (the crops cut to each
        mask's box region); ``image_hw`` defaults to the masks' size."""
        masks = detections.mask
        if masks is None:
            raise ResultError("expected supervision Detections with masks, got mask None")
        masks = np.asarray(masks, dtype=bool)
        hw = image_hw or (int(masks.shape[1]), int(masks.shape[2]))
        n = len(detections)
        boxes = np.asarray(detections.xyxy, dtype=np.float32).reshape(n, 4)
        crops, offsets = [], np.zeros((n, 2), np.int32)
        for i in range(n):
            x0, y0 = (min(max(int(np.floor(v)), 0), lim) for v, lim in zip(boxes[i, :2], (hw[1], hw[0]), strict=True))
            x1, y1 = (min(max(int(np.ceil(v)), 0), lim) for v, lim in zip(boxes[i, 2:], (hw[1], hw[0]), strict=True))
            if np.count_nonzero(masks[i, y0:y1, x0:x1]) != np.count_nonzero(masks[i]):  # outside its box: keep all
                x0, y0, x1, y1 = 0, 0, hw[1], hw[0]
            crops.append(masks[i, y0:y1, x0:x1])
            offsets[i] = (x0, y0)
        scores = detections.confidence if detections.confidence is not None else np.ones(n, np.float32)
        class_ids = detections.class_id if detections.class_id is not None else np.zeros(n, np.int32)
        track_ids = detections.tracker_id if detections.tracker_id is not None else np.full(n, -1, np.int32)
        return cls(boxes=boxes, scores=scores, class_ids=class_ids, image_hw=hw, mask_crops=tuple(crops),
                   mask_offsets=offsets, track_ids=np.asarray(track_ids, np.int32))

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per instance, the ``instances`` of ``ovseg predict``'s files:
        ``label``, official COCO ``category_id``, ``score``, ``box`` (x1, y1, x2, y2 in original
        pixels), ``segmentation`` (compressed COCO RLE) and ``track_id`` (-1 where untracked)."""
        return [
            {
                "label": inst.label,
                "category_id": coco_category_id(inst.class_id),
                "score": round(inst.score, 5),
                "box": [round(v, 2) for v in inst.box],
                "segmentation": rle_from_crop(inst.mask_crop, inst.mask_offset, self.image_hw),
                "track_id": inst.track_id,
            }
            for inst in self
        ]
