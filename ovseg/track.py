"""Stable instance ids across the frames of one stream: trackers that take and return Results.

One tracker object per stream (camera, video file), fed one :class:`~ovseg.result.Result` per
frame in order::

    tracker = ovseg.track.make_tracker()                # "mask-bytetrack"
    for res in tracker.track(seg.stream(frames)):       # or ovseg.track.track(results, "omz")
        res.track_ids                                   # int32 (N,), -1 where unconfirmed

``tracker.update(result)`` returns a copy of ``result`` with ``track_ids`` set: the same
instances in the same (score) order, none added or removed, only the ids set. Trackers:

- :class:`OmzTracker` (``"omz"``): the Open Model Zoo instance_segmentation_demo's
  ``StaticIOUTracker``, reproduced exactly: mask IoU between instances of the same class and
  each track's last mask (no motion model), greedy matching in score order, a match needs IoU
  > 0.5, a track is forgotten after 10 frames without a match, every instance gets an id at
  once (0, 1, 2, ...). numpy only.
- :class:`ByteTrack` (``"bytetrack"``), :class:`Sort` (``"sort"``), :class:`OcSort`
  (``"ocsort"``): the `trackers` package's implementations (Kalman box motion; ByteTrack adds a
  second, low-score association that uses ``Result.candidates``), class-agnostic, fed boxes
  only. They need the optional extra: ``pip install "ovseg[track]"``.
- :class:`MaskByteTrack` (``"mask-bytetrack"``, the default: the benchmark's winner):
  ByteTrack's two-stage association (instances, then the box-only ``Result.candidates``) with
  a Kalman box motion model, where an instance's similarity to a track mixes the *mask* IoU with
  the track's last mask moved by its predicted motion and the box IoU; lost tracks are matched
  by the motion of the free edge of their box (the one no occluder holds), kept 5 s, dropped
  once that motion takes them out of the image (occlusions of 20-50 frames bridged in the
  benchmark). Solved with scipy's ``linear_sum_assignment``; needs scipy (same extra).

Mask IoU is computed on the box-local crops and only for pairs whose crops overlap
(:func:`mask_iou`), never on full ``(N, H, W)`` masks.

Bad input: an empty frame ages the tracks (nothing else); instances with a NaN or infinite box
or score are not associated and keep id -1; a frame whose size differs from the stream's first
frame (another stream fed by mistake) raises :class:`~ovseg.errors.TrackingError`, or with
``on_resize="reset"`` starts a new stream (all tracks dropped, ids continue upwards).
:meth:`Tracker.reset` starts a new stream explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal, NamedTuple

import cv2
import numpy as np

from .errors import TrackingError
from .result import Result

__all__ = [
    "Tracker",
    "OmzTracker",
    "ByteTrack",
    "Sort",
    "OcSort",
    "MaskByteTrack",
    "TRACKERS",
    "DEFAULT_TRACKER",
    "make_tracker",
    "track",
    "mask_iou",
    "mask_areas",
    "box_iou",
]

logger = logging.getLogger(__name__)

OnResize = Literal["error", "reset"]

_INSTALL = 'pip install "ovseg[track]"'


# -- similarity kernels ---------------------------------------------------------------------


def _crop_rects(crops: Sequence[np.ndarray], offsets: np.ndarray) -> np.ndarray:
    """int64 ``(N, 4)`` x0, y0, x1, y1 (exclusive) of each crop's rectangle in the image."""
    xy = np.asarray(offsets, dtype=np.int64).reshape(-1, 2).tolist()
    return np.array([(x, y, x + c.shape[1], y + c.shape[0]) for (x, y), c in zip(xy, crops, strict=True)],
                    dtype=np.int64).reshape(-1, 4)


def mask_areas(crops: Sequence[np.ndarray]) -> np.ndarray:
    """int64 ``(N,)`` pixel count of each bool mask crop (``Result.areas()``, OpenCV's count)."""
    count = cv2.countNonZero
    return np.array([count(_u8(c)) if c.size else 0 for c in crops], dtype=np.int64)


def _u8(crop: np.ndarray) -> np.ndarray:
    """A mask crop as the uint8 0/1 view OpenCV reads (copied only where it is not bool or its rows
    are not contiguous)."""
    if crop.dtype != np.bool_ or crop.strides[-1] != 1:
        crop = np.ascontiguousarray(crop, dtype=np.bool_)
    return crop.view(np.uint8)


def _pair_ious(
    crops_a: Sequence[np.ndarray], rects_a: np.ndarray, areas_a: np.ndarray,
    crops_b: Sequence[np.ndarray], rects_b: np.ndarray, areas_b: np.ndarray,
    rows: np.ndarray, cols: np.ndarray, skip_below: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask IoU of the pairs ``(rows[k], cols[k])`` whose rectangles overlap and whose bound
    reaches ``skip_below`` (one value, or one per pair): ``(k, iou)``, the pairs computed
    (indices into ``rows``) and their IoU.

    ``crops_*`` are uint8 0/1 views, ``rects_*`` int64 ``x0, y0, x1, y1`` (exclusive) of each
    in the image, ``areas_*`` int64 mask pixel counts, -1 where not counted yet: those of the
    crops that reach the bound test are counted here and written into the array. Per pair one
    OpenCV call on strided views of the two crops over their overlap (no copy): the L1 norm of
    one crop's 0/1 pixels where the other's are set. A loop on Python ints: the pairs are few,
    and numpy's per-call cost on arrays of a few dozen would be most of the time."""
    ra, rb = rects_a.tolist(), rects_b.tolist()
    aa, ab = areas_a.tolist(), areas_b.tolist()
    need = [float(skip_below)] * len(rows) if np.ndim(skip_below) == 0 else np.asarray(skip_below, dtype=np.float64).tolist()
    norm, l1, count = cv2.norm, cv2.NORM_L1, cv2.countNonZero
    keep: list[int] = []
    ious: list[float] = []
    for k, i, j, low in zip(range(len(need)), rows.tolist(), cols.tolist(), need, strict=True):
        ax0, ay0, ax1, ay1 = ra[i]
        bx0, by0, bx1, by1 = rb[j]
        x0 = ax0 if ax0 > bx0 else bx0
        y0 = ay0 if ay0 > by0 else by0
        x1 = ax1 if ax1 < bx1 else bx1
        y1 = ay1 if ay1 < by1 else by1
        if x1 <= x0 or y1 <= y0:
            continue
        ua, ub = aa[i], ab[j]
        if ua < 0:
            ua = aa[i] = areas_a[i] = count(crops_a[i]) if crops_a[i].size else 0
        if ub < 0:
            ub = ab[j] = areas_b[j] = count(crops_b[j]) if crops_b[j].size else 0
        # inter <= min(overlap rectangle, either area); IoU grows with inter.
        most = (x1 - x0) * (y1 - y0)
        most = ua if ua < most else most
        most = ub if ub < most else most
        if most < low * (ua + ub - most or 1):  # ua + ub - most >= 0
            continue
        inter = int(norm(crops_a[i][y0 - ay0:y1 - ay0, x0 - ax0:x1 - ax0], l1,
                         mask=crops_b[j][y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]))
        union = ua + ub - inter
        keep.append(k)
        ious.append(inter / union if union > 0 else 0.0)
    return np.array(keep, dtype=np.int64), np.array(ious, dtype=np.float64)


def mask_iou(
    crops_a: Sequence[np.ndarray],
    offsets_a: np.ndarray,
    crops_b: Sequence[np.ndarray],
    offsets_b: np.ndarray,
    *,
    pairs: np.ndarray | None = None,
    areas_a: np.ndarray | None = None,
    areas_b: np.ndarray | None = None,
    skip_below: float | np.ndarray = 0.0,
) -> np.ndarray:
    """IoU of box-local masks, computed on the overlap of each pair's crop rectangles only.

    Args:
        crops_a, crops_b: bool ``(h_i, w_i)`` masks, each inside its rectangle (bytes 0 and 1, as
            a Result's crops are: OpenCV counts the bytes).
        offsets_a, offsets_b: int ``(A, 2)``, ``(B, 2)`` ``(x, y)`` of each crop's top-left pixel
            (any integers: a crop moved partly outside the image is fine).
        pairs: optional bool ``(A, B)`` (or what broadcasts to it): pairs to compute; the others
            are 0 (e.g. same class).
        areas_a, areas_b: optional mask pixel counts, if already known.
        skip_below: a value, or one per pair ``(A, B)``: pairs whose IoU cannot reach it (its
            upper bound from the areas and the rectangles' overlap is below it) are not
            computed and given 0; a tracker that refuses matches below it loses nothing.

    Returns:
        float64 ``(A, B)`` in [0, 1]; 0 where the rectangles do not overlap or both masks are
        empty. Equal to the IoU of the full-image masks (where computed).
    """
    out = np.zeros((len(crops_a), len(crops_b)), dtype=np.float64)
    if out.size == 0:
        return out
    todo = np.ones(out.shape, dtype=bool) if pairs is None else np.broadcast_to(np.asarray(pairs, dtype=bool), out.shape)
    rows, cols = np.nonzero(todo)
    if not len(rows):
        return out
    need = np.broadcast_to(np.asarray(skip_below, dtype=np.float64), out.shape)[rows, cols]
    areas_a = np.full(len(crops_a), -1, dtype=np.int64) if areas_a is None else np.array(areas_a, dtype=np.int64)
    areas_b = np.full(len(crops_b), -1, dtype=np.int64) if areas_b is None else np.array(areas_b, dtype=np.int64)
    keep, iou = _pair_ious(
        [_u8(c) for c in crops_a], _crop_rects(crops_a, offsets_a), areas_a,
        [_u8(c) for c in crops_b], _crop_rects(crops_b, offsets_b), areas_b, rows, cols, need,
    )
    out[rows[keep], cols[keep]] = iou
    return out


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """float64 ``(A, B)`` IoU of x1, y1, x2, y2 boxes (continuous convention); 0 for empty boxes."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    wh = np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])
    np.maximum(wh, 0.0, out=wh)
    inter = wh[..., 0] * wh[..., 1]
    sa, sb = np.maximum(a[:, 2:] - a[:, :2], 0.0), np.maximum(b[:, 2:] - b[:, :2], 0.0)
    union = (sa[:, 0] * sa[:, 1])[:, None] + (sb[:, 0] * sb[:, 1])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


# -- the common frame --------------------------------------------------------------------


class Tracker:
    """One stream's tracker: ``update(result) -> result`` with ``track_ids`` set.

    Args:
        on_resize: what a frame of another size than the stream's first does: ``"error"``
            (default) raises :class:`~ovseg.errors.TrackingError` (one tracker per stream; two
            streams fed to one tracker are a mistake), ``"reset"`` drops every track and
            starts a new stream at that frame (ids keep counting up, never reused).
    """

    name: ClassVar[str] = ""

    def __init__(self, *, on_resize: OnResize = "error") -> None:
        if on_resize not in ("error", "reset"):
            raise TrackingError(f"expected on_resize 'error' or 'reset', got {on_resize!r}")
        self.on_resize: OnResize = on_resize
        self._image_hw: tuple[int, int] | None = None

    def update(self, result: Result) -> Result:
        """Associate one frame's instances with the stream's tracks.

        Returns:
            ``result`` with ``track_ids`` set (int32 ``(N,)``, -1 where no confirmed track),
            instances and their order unchanged.
        """
        if not isinstance(result, Result):
            raise TrackingError(f"expected an ovseg Result, got {type(result).__name__}")
        if self._image_hw is not None and result.image_hw != self._image_hw:
            (h0, w0), (h1, w1) = self._image_hw, result.image_hw
            if self.on_resize == "error":
                raise TrackingError(
                    f"expected a {h0}x{w0} frame (this tracker's stream), got {h1}x{w1}: "
                    "one tracker per stream (reset() starts a new one, or pass on_resize='reset')"
                )
            logger.info("frame size changed from %dx%d to %dx%d: tracks dropped, new stream", h0, w0, h1, w1)
            self.reset()
        self._image_hw = result.image_hw
        if np.isfinite(result.boxes).all() and np.isfinite(result.scores).all():
            ids = self._assign(result).astype(np.int32)
        else:
            finite = np.isfinite(result.boxes).all(axis=1) & np.isfinite(result.scores)
            ids = np.full(len(result), -1, dtype=np.int32)
            ids[finite] = self._assign(result[finite])
        if ids.size and ids.min() < -1:
            raise TrackingError(f"expected track ids >= -1 from {type(self).__name__}, got {int(ids.min())}")
        # The same Result with its ids: a shallow copy (its arrays are read-only and shared) rather
        # than dataclasses.replace, which would check every mask crop again.
        out = object.__new__(Result)
        out.__dict__.update(result.__dict__)
        ids.flags.writeable = False
        object.__setattr__(out, "track_ids", ids)
        return out

    def track(self, results: Iterable[Result]) -> Iterator[Result]:
        """``update`` each result of a stream in turn (lazily): ``for res in tracker.track(seg.stream(frames))``."""
        for result in results:
            yield self.update(result)

    def reset(self) -> None:
        """Forget every track: the next frame starts a new stream (of any size)."""
        self._image_hw = None
        self._reset()

    # -- what each tracker implements ---------------------------------------------------

    def _assign(self, result: Result) -> np.ndarray:
        """int ``(N,)`` ids for ``result``'s instances (all finite), -1 for none."""
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# -- the Open Model Zoo demo's tracker ------------------------------------------------------


class OmzTracker(Tracker):
    """The OMZ instance_segmentation_demo's ``StaticIOUTracker``, reproduced exactly.

    Per frame, for each instance in score order: among the tracks not yet taken, the one of the
    same class whose last mask has the highest IoU with the instance's mask (the first such
    track on ties; IoU stored as float32 as OMZ does); matched if that IoU > ``iou_threshold``.
    Then every track ages by one, matched tracks take the instance's mask and age 0, tracks of
    age >= ``age_threshold`` are dropped (a track survives ``age_threshold - 1`` frames without
    a match), and each unmatched instance starts a new track with the next id (from 0). Every
    instance gets an id at once; there is no motion model.

    One deviation: where both masks are empty, OMZ divides 0 by 0 (an exception); here the IoU
    is 0.
    """

    name = "omz"

    def __init__(
        self,
        iou_threshold: float = 0.5,
        age_threshold: int = 10,
        *,
        frame_rate: float | None = None,
        on_resize: OnResize = "error",
    ) -> None:
        # frame_rate is accepted (and unused: OMZ counts frames) so that every tracker takes it.
        super().__init__(on_resize=on_resize)
        self.iou_threshold = float(iou_threshold)
        self.age_threshold = int(age_threshold)
        self._next_id = 0
        self._reset()

    def _reset(self) -> None:
        # Parallel lists in track-creation order (the order OMZ's argmax breaks ties in).
        self._crops: list[np.ndarray] = []
        self._offsets: list[tuple[int, int]] = []
        self._areas: list[int] = []
        self._classes: list[int] = []
        self._ids: list[int] = []
        self._ages: list[int] = []

    def _assign(self, result: Result) -> np.ndarray:
        n, t = len(result), len(self._ids)
        areas = mask_areas(result.mask_crops)
        affinity = np.zeros((n, t), dtype=np.float32)
        if n and t:
            affinity[:] = mask_iou(
                result.mask_crops, result.mask_offsets, self._crops, np.array(self._offsets).reshape(-1, 2),
                pairs=result.class_ids[:, None] == np.array(self._classes)[None, :],
                areas_a=areas, areas_b=np.array(self._areas),
                skip_below=np.nextafter(self.iou_threshold, 1.0),  # only IoU > threshold can match
            )
        # Greedy, in score order, over the tracks not yet taken (OMZ deletes matched columns).
        free = list(range(t))
        match: list[int | None] = [None] * n
        threshold = np.float32(self.iou_threshold)
        for i in range(n):
            if free:
                row = affinity[i, free]
                k = int(np.argmax(row))
                if row[k] > threshold:
                    match[i] = free.pop(k)
        self._ages = [age + 1 for age in self._ages]
        ids = np.full(n, -1, dtype=np.int64)
        for i, j in enumerate(match):
            if j is not None:
                self._crops[j] = result.mask_crops[i]
                self._offsets[j] = tuple(result.mask_offsets[i].tolist())
                self._areas[j] = int(areas[i])
                self._ages[j] = 0
                ids[i] = self._ids[j]
        alive = [j for j, age in enumerate(self._ages) if age < self.age_threshold]
        for name in ("_crops", "_offsets", "_areas", "_classes", "_ids", "_ages"):
            values = getattr(self, name)
            setattr(self, name, [values[j] for j in alive])
        for i, j in enumerate(match):
            if j is None:
                self._crops.append(result.mask_crops[i])
                self._offsets.append(tuple(result.mask_offsets[i].tolist()))
                self._areas.append(int(areas[i]))
                self._classes.append(int(result.class_ids[i]))
                self._ages.append(0)
                self._ids.append(self._next_id)
                ids[i] = self._next_id
                self._next_id += 1
        return ids

    def __repr__(self) -> str:
        return f"OmzTracker(iou_threshold={self.iou_threshold}, age_threshold={self.age_threshold})"


# -- the trackers package (optional extra) --------------------------------------------------


def _import_trackers() -> Any:
    try:
        import trackers  # imported here: an optional extra, never needed by `import ovseg`
    except ImportError:
        raise TrackingError(f"expected the 'trackers' package for this tracker, got none installed: {_INSTALL}") from None
    return trackers


class _PackageTracker(Tracker):
    """Adapter to a tracker of the `trackers` package (2.6.x): fed boxes, scores and class ids
    as a supervision ``Detections`` without masks; its ids are mapped back to our rows."""

    _class_name: ClassVar[str] = ""
    _uses_candidates: ClassVar[bool] = False

    def __init__(self, *, frame_rate: float = 15.0, on_resize: OnResize = "error", **options: Any) -> None:
        super().__init__(on_resize=on_resize)
        trackers = _import_trackers()
        import supervision  # installed with trackers

        self._sv = supervision
        self._options = dict(options, frame_rate=float(frame_rate))
        self._base = self._next_base = 0
        try:
            self._impl = getattr(trackers, self._class_name)(**self._options)
        except (TypeError, ValueError) as error:
            raise TrackingError(f"expected options of trackers.{self._class_name}, got {options}: {error}") from None

    def _reset(self) -> None:
        # The package restarts its ids at reset; ours keep counting up across streams.
        self._base = self._next_base
        self._impl.reset()

    def _feed(self, result: Result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes, confidences and class ids handed to the package (instances first)."""
        return result.boxes, result.scores, result.class_ids

    def _assign(self, result: Result) -> np.ndarray:
        boxes, confidence, class_ids = self._feed(result)
        detections = self._sv.Detections(
            xyxy=np.asarray(boxes, dtype=np.float32),
            confidence=np.asarray(confidence, dtype=np.float32),
            class_id=np.asarray(class_ids, dtype=int),
            data={"row": np.arange(len(boxes))},
        )
        tracked = self._impl.update(detections)
        ids = np.full(len(result), -1, dtype=np.int64)
        if len(tracked) == 0:  # the package returns a bare Detections.empty() then
            return ids
        rows = np.asarray(tracked.data["row"], dtype=np.int64)
        mine = rows < len(result)  # the rest are candidates
        got = np.asarray(tracked.tracker_id, dtype=np.int64)[mine]
        ids[rows[mine]] = np.where(got >= 0, got + self._base, -1)
        if len(got):
            self._next_base = max(self._next_base, int(ids.max()) + 1)
        return ids

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._options.items())})"


class ByteTrack(_PackageTracker):
    """`trackers`' ``ByteTrackTracker``: Kalman box motion, box-IoU association of the instances,
    then of ``Result.candidates`` (the segmenter's box-only detections below its threshold, see
    ``Segmenter(candidate_threshold=)``) with the tracks left over. The split is the segmenter's
    own: every instance is a high-score detection and may start a track, every candidate is a
    low-score one. ``options`` go to ``ByteTrackTracker`` as they are (``lost_track_buffer`` in
    30-fps frames, ``minimum_consecutive_frames``, ``minimum_iou_threshold``); ``frame_rate`` is
    the stream's."""

    name = "bytetrack"
    _class_name = "ByteTrackTracker"

    def __init__(self, *, frame_rate: float = 15.0, on_resize: OnResize = "error", **options: Any) -> None:
        options.setdefault("lost_track_buffer", 60)
        super().__init__(
            frame_rate=frame_rate, on_resize=on_resize,
            **{"high_conf_det_threshold": 0.5, "track_activation_threshold": 0.5, **options},
        )

    def _feed(self, result: Result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cand = result.candidates
        ok = np.isfinite(cand.boxes).all(axis=1) & np.isfinite(cand.scores)
        # Instances 1.0 (high, may start tracks), candidates 0.25 (low): ByteTrack reads the
        # confidences only to split them at its 0.5 thresholds.
        confidence = np.concatenate([np.ones(len(result)), np.full(int(ok.sum()), 0.25)])
        return (
            np.concatenate([result.boxes, cand.boxes[ok]]),
            confidence,
            np.concatenate([result.class_ids, cand.class_ids[ok]]),
        )


class Sort(_PackageTracker):
    """`trackers`' ``SORTTracker`` (Kalman box motion, box IoU, Hungarian matching); every
    instance may start a track. ``options`` go to ``SORTTracker`` as they are."""

    name = "sort"
    _class_name = "SORTTracker"

    def __init__(self, *, frame_rate: float = 15.0, on_resize: OnResize = "error", **options: Any) -> None:
        options.setdefault("lost_track_buffer", 60)
        super().__init__(frame_rate=frame_rate, on_resize=on_resize, **{"track_activation_threshold": 0.0, **options})


class OcSort(_PackageTracker):
    """`trackers`' ``OCSORTTracker`` (observation-centric SORT: re-update after occlusion,
    direction consistency); every instance takes part. ``options`` go to ``OCSORTTracker``."""

    name = "ocsort"
    _class_name = "OCSORTTracker"

    def __init__(self, *, frame_rate: float = 15.0, on_resize: OnResize = "error", **options: Any) -> None:
        options.setdefault("lost_track_buffer", 60)
        super().__init__(frame_rate=frame_rate, on_resize=on_resize, **{"high_conf_det_threshold": 0.0, **options})



# -- our own: ByteTrack's two stages with mask IoU ------------------------------------------


class _BoxKalman:
    """Constant-velocity Kalman filters on ``(cx, cy, w, h)``, one per row, run as arrays.

    The noise model is SORT / ByteTrack's: standard deviations proportional to the box
    height (1/20 for positions, 1/160 for velocities). Each of the four coordinates and its
    velocity form an independent pair (the motion, the noises and the measurement never mix
    coordinates), so the 8x8 covariance is kept as four 2x2 blocks, ``p[:, k] = (var position,
    covariance, var velocity)`` of coordinate ``k``, and every step is a few elementwise array
    operations: the same numbers as the full 8x8 filter (``tests/test_track.py`` checks it
    against one), without a matrix inverse per track."""

    def __init__(self) -> None:
        self.x = np.zeros((0, 8))
        self.p = np.zeros((0, 4, 3))

    def add(self, boxes_cxcywh: np.ndarray) -> None:
        z = np.asarray(boxes_cxcywh, dtype=np.float64).reshape(-1, 4)
        h = np.maximum(z[:, 3], 1.0)[:, None, None]
        p = np.zeros((len(z), 4, 3))
        p[:, :, 0:1] = (2 / 20 * h) ** 2
        p[:, :, 2:3] = (10 / 160 * h) ** 2
        self.x = np.concatenate([self.x, np.concatenate([z, np.zeros_like(z)], axis=1)])
        self.p = np.concatenate([self.p, p])

    def keep(self, rows: np.ndarray) -> None:
        self.x, self.p = self.x[rows], self.p[rows]

    def predict(self, hold_size: np.ndarray | None = None) -> None:
        """One frame ahead; rows of ``hold_size`` keep their width and height (their size
        velocity is set to 0)."""
        if not len(self.x):
            return
        if hold_size is not None and hold_size.any():
            self.x[np.flatnonzero(hold_size)[:, None], [6, 7]] = 0.0
        h = np.maximum(self.x[:, 3], 1.0)[:, None]
        self.x[:, :4] += self.x[:, 4:]
        pp, pv, vv = self.p[:, :, 0], self.p[:, :, 1], self.p[:, :, 2]  # views: updated in place, in this order
        pp += 2 * pv + vv + (h / 20) ** 2
        pv += vv
        vv += (h / 160) ** 2

    def update(self, rows: np.ndarray, boxes_cxcywh: np.ndarray) -> None:
        if not len(rows):
            return
        z = np.asarray(boxes_cxcywh, dtype=np.float64).reshape(-1, 4)
        x, p = self.x[rows], self.p[rows]
        r = (np.maximum(x[:, 3], 1.0)[:, None] / 20) ** 2
        pp, pv, vv = p[:, :, 0], p[:, :, 1], p[:, :, 2]
        s = pp + r
        innovation = (z - x[:, :4]) / s
        x[:, :4] += pp * innovation
        x[:, 4:] += pv * innovation
        self.x[rows] = x
        vv -= pv * pv / s  # in this order: each line reads the ones below it
        pv *= r
        pv /= s
        pp *= r
        pp /= s
        self.p[rows] = p

    def boxes_xyxy(self) -> np.ndarray:
        half = np.maximum(self.x[:, 2:4], 1.0) / 2
        return np.concatenate([self.x[:, :2] - half, self.x[:, :2] + half], axis=1)


def _cxcywh(boxes_xyxy: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)


def _linear_sum_assignment() -> Any:
    """scipy's ``linear_sum_assignment`` (the [track] extra), imported on first use."""
    global _LSA
    if _LSA is None:
        from scipy.optimize import linear_sum_assignment

        _LSA = linear_sum_assignment
    return _LSA


_LSA: Any = None


def _assign_arrays(similarity: np.ndarray, minimum: float) -> tuple[np.ndarray, np.ndarray]:
    """Optimal (rows, cols) pairs with similarity >= minimum (scipy's linear_sum_assignment)."""
    if similarity.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows, cols = _linear_sum_assignment()(np.where(similarity >= minimum, similarity, 0.0), maximize=True)
    keep = similarity[rows, cols] >= minimum
    return rows[keep], cols[keep]


def _box_iod(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """float64 ``(A, B)``: the share of each box of ``a`` that lies inside each box of ``b`` (0 for an empty box of ``a``)."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area[:, None] > 0, iw * ih / np.where(area > 0, area, 1.0)[:, None], 0.0)


class _Frame(NamedTuple):
    """One frame's instances as the mask IoU reads them."""

    crops: list[np.ndarray]  # uint8 views of the mask crops
    rects: np.ndarray  # int64 (n, 4): x0, y0, x1, y1 (exclusive) of each crop in the image
    areas: np.ndarray  # int64 (n,): mask pixels, -1 until counted (by _pair_ious, where needed)


def _frame(result: Result) -> _Frame:
    u8 = np.uint8
    crops = [c.view(u8) if c.strides[-1] == 1 else _u8(c) for c in result.mask_crops]  # a Result's crops are bool
    return _Frame(crops, _crop_rects(result.mask_crops, result.mask_offsets), np.full(len(crops), -1, dtype=np.int64))


_HISTORY = 20  # observations kept per track for the velocity of a lost track


class MaskByteTrack(Tracker):
    """ByteTrack's two-stage association with masks and a matching cascade for lost tracks.

    Each track has a Kalman box motion model (constant velocity; its size is held while the
    track is lost, so that a box shrinking behind an occluder is not extrapolated to nothing).
    Per frame, each step optimal (``linear_sum_assignment``) on what the previous steps left:

    1. instances against the confirmed tracks matched in the previous frame, by the mean of two IoUs:
       the *mask* IoU with the track's last mask moved by its predicted motion, and the box IoU
       with its predicted box (``similarity="mean"``; ``"mask"``, ``"box"`` or ``"min"`` use
       one or the smaller), and in the same assignment against the lost tracks of their class,
       by box IoU with the box their motion gives (two objects crossing behind an occluder: the
       one that comes out may be the lost one, not the one just seen), >= ``min_similarity``;
    2. what is left against the lost tracks still unmatched, of the same class, by box IoU with the predicted
       box or the share of the instance's box inside it (an object coming out from behind an
       occluder is first seen as a sliver), whichever is larger, >= ``min_similarity``; a
       track's motion from the frame it was lost on is that of the free edge of its box (the
       edge an occluder does not hold) and its box is laid from that edge at the object's full
       size (see :meth:`_lost_state`): occlusions longer than OMZ's 10 frames, by a static
       occluder or the image border, also for an object seen whole only briefly; then against the
       tentative tracks (not yet confirmed), as in step 1 (after the lost ones, as ByteTrack
       does, so that an object coming back goes to its lost track);
    3. the box-only ``Result.candidates`` (``Segmenter(candidate_threshold=)``) against the tracks
       of step 1 still unmatched, by box IoU >= ``min_candidate_iou`` (keeps a track through a
       low-score stretch; its mask stays the last one);
    4. unmatched instances start tentative tracks, confirmed (given an id) after ``min_hits``
       consecutive frames, or at once in the stream's first frame (or with ``min_hits=1``). A
       tentative track that misses a frame is dropped, a confirmed one after ``max_lost_s``
       seconds without a match (``frame_rate`` frames a second) or as soon as its motion has
       taken its box wholly out of the image (it left: it does not take the id of the next
       object coming in there).

    Steps 1 and 3 are class-agnostic (a class flicker keeps the id). Mask IoU is computed only
    where it can decide: for pairs whose moved crops overlap, whose bound can reach the
    minimum, and that are not alone (a pair that is the only candidate of its instance and of
    its track, with a box IoU that reaches the minimum alone, is matched without it). Needs
    scipy (``pip install "ovseg[track]"``).
    """

    name = "mask-bytetrack"
    _skip_decided: ClassVar[bool] = True  # False: mask IoU of every pair that can reach the minimum (tests)

    def __init__(
        self,
        *,
        frame_rate: float = 15.0,
        max_lost_s: float = 5.0,
        min_hits: int = 2,
        min_similarity: float = 0.2,
        min_candidate_iou: float = 0.5,
        similarity: Literal["mean", "mask", "box", "min"] = "mean",
        on_resize: OnResize = "error",
    ) -> None:
        if similarity not in ("mean", "mask", "box", "min"):
            raise TrackingError(f"expected similarity 'mean', 'mask', 'box' or 'min', got {similarity!r}")
        self.similarity = similarity
        super().__init__(on_resize=on_resize)
        try:
            import scipy.optimize  # noqa: F401  (checked here, used in _match)
        except ImportError:
            raise TrackingError(f"expected scipy for the mask-bytetrack tracker, got none installed: {_INSTALL}") from None
        if not (frame_rate > 0 and max_lost_s >= 0):
            raise TrackingError(f"expected frame_rate > 0 and max_lost_s >= 0, got {frame_rate} and {max_lost_s}")
        self.frame_rate = float(frame_rate)
        self.max_lost_s = float(max_lost_s)
        self.max_lost = int(round(max_lost_s * frame_rate))
        self.min_hits = int(min_hits)
        self.min_similarity = float(min_similarity)
        self.min_candidate_iou = float(min_candidate_iou)
        self._next_id = 0
        self._reset()

    def _reset(self) -> None:
        self._kf = _BoxKalman()
        self._ids = np.zeros(0, dtype=np.int64)  # -1: tentative
        self._classes = np.zeros(0, dtype=np.int64)
        self._hits = np.zeros(0, dtype=np.int64)  # consecutive matched frames
        self._lost = np.zeros(0, dtype=np.int64)  # frames since the last match
        self._crops: list[np.ndarray] = []  # the last mask of each track, as a uint8 view
        self._rects = np.zeros((0, 4), dtype=np.int64)  # where it lay: x0, y0, x1, y1 (exclusive)
        self._mask_centres = np.zeros((0, 2))  # box centre when the mask was taken
        self._areas = np.zeros(0, dtype=np.int64)  # of the last masks, -1 until counted
        # the last _HISTORY matches of each track, (frame, x0, y0, x1, y1), a ring: match k in row k % _HISTORY
        self._history = np.zeros((0, _HISTORY, 5))
        self._matches = np.zeros(0, dtype=np.int64)  # matches so far per track
        self._frames = 0

    def _lost_state(self, j: int) -> np.ndarray | None:
        """Kalman state ``(cx, cy, w, h, vx, vy, 0, 0)`` for the current frame of track ``j``, lost
        in it, from its recent boxes: ``None`` when there are too few (under 3 over 3 frames).

        Occluders stand still (a pillar, a parked object, the image border): of a box's two edges
        on an axis, one held by an occluder stops while the free one moves with the object (both
        going in, and coming out). So each edge's velocity is fitted (least squares) and, where
        the two differ (by > 0.5 px a frame and > 25 %) and do not move apart or together (both
        fast, opposite ways: growing or shrinking in depth), the faster one is the object's and
        the box is laid from it at the object's full size (the 90th percentile of its widths and
        heights); otherwise (seen whole, or in depth) the centre moves with the edges' mean."""
        count = int(self._matches[j])
        ring = self._history[j]  # frame, x0, y0, x1, y1
        obs = ring[:count] if count <= _HISTORY else np.roll(ring, -(count % _HISTORY), axis=0)
        if len(obs) < 3 or obs[-1, 0] - obs[0, 0] < 3:
            return None
        t = obs[:, 0] - obs[:, 0].mean()
        edges = obs[:, 1:]
        velocity = (t @ (edges - edges.mean(axis=0))) / (t @ t)
        last = edges.mean(axis=0) + velocity * t[-1]  # the fitted edges at the last match
        size = np.percentile(edges[:, 2:] - edges[:, :2], 90, axis=0)
        centre, motion = np.zeros(2), np.zeros(2)
        for axis in (0, 1):
            v_low, v_high = velocity[axis], velocity[axis + 2]
            fast, slow = max(abs(v_low), abs(v_high)), min(abs(v_low), abs(v_high))
            apart = abs(v_low - v_high) > max(0.5, 0.25 * fast)
            # both edges moving, apart: the object grows or shrinks (depth), it is not held
            scaling = v_low * v_high < 0 and slow > max(0.5, 0.25 * fast)
            if apart and not scaling and abs(v_low) > abs(v_high):  # the low edge is free
                motion[axis], centre[axis] = v_low, last[axis] + size[axis] / 2
            elif apart and not scaling:  # the high edge is free
                motion[axis], centre[axis] = v_high, last[axis + 2] - size[axis] / 2
            else:
                motion[axis], centre[axis] = (v_low + v_high) / 2, (last[axis] + last[axis + 2]) / 2
        centre += motion * (self._frames - obs[-1, 0])
        return np.concatenate([centre, size, motion, [0.0, 0.0]])

    def _similarity(self, frame: _Frame, seen: np.ndarray, boxes: np.ndarray, elsewhere: np.ndarray) -> np.ndarray:
        """``(n, len(seen))`` similarity of the frame's instances to tracks seen in the previous
        frame (see ``similarity``), given their box IoU ``boxes``; ``elsewhere``: bool per
        instance, it is a candidate of another track in the same assignment (a lost one)."""
        if not boxes.size or self.similarity == "box":
            return boxes
        sure = None
        if self.similarity == "mean":
            # Pairs of box IoU < min_similarity / 2 are left to the box IoU alone (their mask IoU
            # would have to be 3 times as high): most overlaps of two different objects.
            todo = boxes >= self.min_similarity / 2
            # A pair that is the only candidate of its instance and of its track and whose box IoU
            # alone reaches the minimum (mean >= box / 2) is matched whatever its mask IoU: the
            # optimal assignment splits into separate groups of candidates, and this group is the
            # pair alone. Its mask IoU is not computed (its similarity is given as its bound).
            if self._skip_decided:
                sure = todo & (boxes >= 2 * self.min_similarity)
                sure &= ((todo.sum(axis=1) == 1) & ~elsewhere)[:, None] & (todo.sum(axis=0) == 1)[None, :]
                todo &= ~sure
            rows, cols = np.nonzero(todo)
            # the least mask IoU that can still reach min_similarity: pairs below are skipped
            need: float | np.ndarray = 2 * self.min_similarity - boxes[rows, cols]
        else:
            rows, cols = np.nonzero(np.ones(boxes.shape, dtype=bool))
            need = self.min_similarity
        masks = np.zeros(boxes.shape)
        if len(rows):
            # each track's last mask moved by its motion since
            shift = np.rint(self._kf.x[:, :2] - self._mask_centres).astype(np.int64)
            keep, iou = _pair_ious(frame.crops, frame.rects, frame.areas, self._crops,
                                   self._rects + np.concatenate([shift, shift], axis=1), self._areas,
                                   rows, seen[cols], need)
            masks[rows[keep], cols[keep]] = iou
        if self.similarity == "mean":
            if sure is not None:
                masks[sure] = 1.0
            return (masks + boxes) / 2
        return masks if self.similarity == "mask" else np.minimum(masks, boxes)

    @staticmethod
    def _match(sim: np.ndarray, rows: np.ndarray, cols: np.ndarray, minimum: float) -> tuple[np.ndarray, np.ndarray]:
        """Optimal pairs ``(rows[r], cols[c])`` of ``sim[r, c] >= minimum``, as two index arrays."""
        r, c = _assign_arrays(sim, minimum)
        return rows[r], cols[c]

    def _assign(self, result: Result) -> np.ndarray:
        n = len(result)
        frame = _frame(result)
        boxes = result.boxes.astype(np.float64)
        classes = result.class_ids.astype(np.int64)
        ids = np.full(n, -1, dtype=np.int64)
        track_of = np.full(n, -1, dtype=np.int64)  # the track row each instance went to
        t = len(self._ids)
        if t:
            self._associate(result, frame, boxes, classes, track_of, ids)
        # 4. new tracks
        new = np.flatnonzero(track_of < 0)
        if len(new):
            self._kf.add(_cxcywh(boxes[new]))
            first = self._frames == 0 or self.min_hits <= 1
            new_ids = np.arange(self._next_id, self._next_id + len(new)) if first else np.full(len(new), -1)
            if first:
                self._next_id += len(new)
                ids[new] = new_ids
            self._ids = np.concatenate([self._ids, new_ids])
            self._classes = np.concatenate([self._classes, classes[new]])
            self._hits = np.concatenate([self._hits, np.ones(len(new), dtype=np.int64)])
            self._lost = np.concatenate([self._lost, np.zeros(len(new), dtype=np.int64)])
            self._crops += [frame.crops[i] for i in new.tolist()]
            history = np.zeros((len(new), _HISTORY, 5))
            history[:, 0, 0], history[:, 0, 1:] = self._frames, boxes[new]
            self._history = np.concatenate([self._history, history])
            self._matches = np.concatenate([self._matches, np.ones(len(new), dtype=np.int64)])
            self._rects = np.concatenate([self._rects, frame.rects[new]])
            self._mask_centres = np.concatenate([self._mask_centres, (boxes[new, :2] + boxes[new, 2:]) / 2])
            self._areas = np.concatenate([self._areas, frame.areas[new]])
        self._frames += 1
        return ids

    def _associate(
        self, result: Result, frame: _Frame, boxes: np.ndarray, classes: np.ndarray, track_of: np.ndarray,
        ids: np.ndarray,
    ) -> None:
        """Steps 1-3 against the existing tracks, their updates and the dropping of the dead ones:
        sets ``track_of`` (the track row of each instance, -1 for none) and ``ids``."""
        n, t = len(boxes), len(self._ids)
        lost_before = self._lost
        fresh = lost_before == 0
        self._kf.predict(hold_size=~fresh)
        predicted = self._kf.boxes_xyxy()
        ious = box_iou(boxes, predicted)  # (n, t), every step takes its part
        everyone = np.arange(n)
        same_class = classes[:, None] == self._classes[None, :]
        # Similarity to the tracks seen in the previous frame, for steps 1 and 2b at once (one
        # mask IoU pass; step 2b uses the rows step 1 leaves).
        lost = (~fresh).nonzero()[0]
        seen = fresh.nonzero()[0]
        if len(lost):
            sim_lost = np.where(same_class[:, lost], ious[:, lost], 0.0)
            elsewhere = (sim_lost >= self.min_similarity).any(axis=1)
        else:
            sim_lost, elsewhere = np.zeros((n, 0)), np.zeros(n, dtype=bool)
        sim_seen = self._similarity(frame, seen, ious[:, seen], elsewhere=elsewhere)
        is_confirmed = self._ids[seen] >= 0
        # 1. instances against the confirmed tracks seen in the previous frame and, in the same
        # assignment, the lost tracks of their class by box IoU with the box their motion gives
        rows, cols = self._match(np.concatenate([sim_seen[:, is_confirmed], sim_lost], axis=1), everyone,
                                 np.concatenate([seen[is_confirmed], lost]), self.min_similarity)
        track_of[rows] = cols
        matched = np.zeros(t, dtype=bool)
        matched[cols] = True
        # 2. what is left against the lost tracks still unmatched, of the same class, by box IoU
        # or the share inside the box their motion gives
        left = (track_of < 0).nonzero()[0]
        lost = lost[~matched[lost]]
        if len(left) and len(lost):
            # IoU, or the share of the instance inside the predicted box: an object coming out
            # from behind an occluder is first seen as a sliver of itself.
            # The box where it may be grows with the time lost: by 20 % of its motion (the error
            # of a velocity fitted on a few noisy boxes) on each side.
            margin = 0.2 * np.abs(self._kf.x[lost, 4:6]) * lost_before[lost, None]
            grown = predicted[lost] + np.concatenate([-margin, margin], axis=1)
            sim = np.maximum(ious[np.ix_(left, lost)], _box_iod(boxes[left], grown))
            sim[~same_class[np.ix_(left, lost)]] = 0.0
            rows, cols = self._match(sim, left, lost, self.min_similarity)
            track_of[rows] = cols
            matched[cols] = True
            left = (track_of < 0).nonzero()[0]
        # 2b. then against the tentative tracks (after the lost ones, as ByteTrack does, so that a
        # half-visible object coming out of an occlusion goes back to its lost track)
        if len(left) and not is_confirmed.all():
            rows, cols = self._match(sim_seen[np.ix_(left, (~is_confirmed).nonzero()[0])], left, seen[~is_confirmed],
                                     self.min_similarity)
            track_of[rows] = cols
            matched[cols] = True
        # 3. candidates against the fresh tracks still unmatched, by box IoU
        mine = (track_of >= 0).nonzero()[0]
        rows = track_of[mine]
        cand = result.candidates
        open_fresh = (fresh & ~matched).nonzero()[0]
        cand_tracks = cand_rows = np.zeros(0, dtype=np.int64)
        if len(open_fresh) and len(cand):
            ok = np.flatnonzero(np.isfinite(cand.boxes).all(axis=1) & np.isfinite(cand.scores))
            if len(ok):
                cand_tracks, cand_rows = self._match(box_iou(predicted[open_fresh], cand.boxes[ok]), open_fresh, ok,
                                                     self.min_candidate_iou)
        # updates
        whole_boxes = _cxcywh(boxes[mine])
        if len(cand_tracks):
            self._kf.update(np.concatenate([rows, cand_tracks]),
                            np.concatenate([whole_boxes, _cxcywh(cand.boxes[cand_rows])]))
            matched[cand_tracks] = True
        else:
            self._kf.update(rows, whole_boxes)
        # A track lost from this frame on moves on with the free edge of its box (see _lost_state).
        every_track = matched.all()
        for j in [] if every_track else (~matched & fresh).nonzero()[0].tolist():
            state = self._lost_state(j)
            if state is not None:
                self._kf.x[j] = state
        self._hits = np.where(matched, self._hits + 1, 0)
        self._lost = np.where(matched, 0, self._lost + 1)
        slots = self._matches[rows] % _HISTORY
        self._history[rows, slots, 0], self._history[rows, slots, 1:] = self._frames, boxes[mine]
        self._matches[rows] += 1
        crops = self._crops
        for i, j in zip(mine.tolist(), rows.tolist(), strict=True):
            crops[j] = frame.crops[i]
        self._rects[rows] = frame.rects[mine]
        self._mask_centres[rows] = whole_boxes[:, :2]
        self._areas[rows] = frame.areas[mine]
        self._classes[rows] = classes[mine]
        confirm = (self._ids < 0) & matched & (self._hits >= self.min_hits)
        if confirm.any():
            self._ids[confirm] = np.arange(self._next_id, self._next_id + int(confirm.sum()))
            self._next_id += int(confirm.sum())
        ids[mine] = self._ids[rows]
        # drop tentative tracks that missed, and confirmed ones lost too long or gone out of the
        # image (their box moved by their motion lies wholly outside it: they left)
        if every_track:  # all matched in this frame: none to drop
            return
        height, width = result.image_hw
        x0, y0, x1, y1 = self._kf.boxes_xyxy().T
        inside = (x1 > 0) & (y1 > 0) & (x0 < width) & (y0 < height)
        alive = np.where(self._ids < 0, matched, (self._lost <= self.max_lost) & (matched | inside))
        if not alive.all():
            keep = alive.nonzero()[0]
            self._kf.keep(keep)
            for name in ("_ids", "_classes", "_hits", "_lost", "_rects", "_mask_centres", "_areas", "_history", "_matches"):
                setattr(self, name, getattr(self, name)[keep])
            self._crops = [self._crops[j] for j in keep.tolist()]

    def __repr__(self) -> str:
        return (
            f"MaskByteTrack(frame_rate={self.frame_rate}, max_lost_s={self.max_lost_s}, min_hits={self.min_hits}, "
            f"min_similarity={self.min_similarity}, min_candidate_iou={self.min_candidate_iou}, similarity={self.similarity!r})"
        )


# -- by name ---------------------------------------------------------------------------------

#: The trackers by name (``ovseg predict --tracker NAME``).
TRACKERS: dict[str, type[Tracker]] = {
    cls.name: cls for cls in (OmzTracker, ByteTrack, Sort, OcSort, MaskByteTrack)
}

#: The benchmark's winner (benchmarks/tracking.py): the highest HOTA and IDF1 over all its
#: sequences, above the OMZ tracker on every kind.
DEFAULT_TRACKER = "mask-bytetrack"


def make_tracker(name: str = DEFAULT_TRACKER, **options: Any) -> Tracker:
    """A new tracker by name (see :data:`TRACKERS`), ``options`` passed to its class. Every
    tracker takes ``frame_rate`` (the stream's frames per second; the motion trackers' lost-track
    budgets are in seconds or 30-fps frames) and ``on_resize``."""
    try:
        cls = TRACKERS[name]
    except KeyError:
        raise TrackingError(f"expected a tracker name in {sorted(TRACKERS)}, got {name!r}") from None
    try:
        return cls(**options)
    except TypeError as error:
        raise TrackingError(f"expected options of the {name} tracker, got {sorted(options)}: {error}") from None


def track(results: Iterable[Result], tracker: str | Tracker = DEFAULT_TRACKER, **options: Any) -> Iterator[Result]:
    """Track one stream: ``for res in ovseg.track.track(seg.stream(frames), "bytetrack")``.

    ``tracker`` is a name of :data:`TRACKERS` (a new tracker made with ``options``) or a tracker
    object (then no ``options``)."""
    if isinstance(tracker, Tracker):
        if options:
            raise TrackingError(f"expected no options with a tracker object, got {sorted(options)}")
        return tracker.track(results)
    return make_tracker(tracker, **options).track(results)
