"""The public entry point: ``Segmenter(model, device=, threshold=, config=)(image) -> Result``.

Stages, each timed into ``Result.speed_ms``::

    image --preprocess--> im_data, im_info --OpenVINO--> outputs --gather--> Detections
          --decode--> Result

A Segmenter may be shared between threads: synchronous calls are serialized on its one infer
request by a lock (OpenVINO requests are not re-entrant). For throughput, run several frames
at once through the streaming API instead.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from .cache import ModelRef
from .decode import Detections, decode, gather_labels_boxes_masks, gather_maskrcnn
from .errors import ConfigError, InferenceError
from .images import image_hw
from .model import MASKRCNN_FAMILY, compile_model, ov_message, read_model, request_outputs, reshape_input
from .options import DEFAULT_PASTE, DEFAULT_REMOTE_TIMEOUT_S, PASTE_MODES, RESIZE_POLICIES, PasteMode, ResizePolicy
from .pipeline import Pipeline, optimal_requests
from .preprocess import Transform, preprocess
from .remote_url import RemoteURL, looks_remote, parse_remote_url
from .result import Result

__all__ = ["Segmenter"]

logger = logging.getLogger(__name__)

#: Requests a stream keeps in flight on a served model by default (the server's instances and
#: the network both overlap with local preprocessing and decoding).
REMOTE_REQUESTS = 4


@dataclasses.dataclass(frozen=True)
class _Tagged:
    """A frame of a merged stream with its source's name (its pixels are what the pipeline sees)."""

    name: str
    frame: Any

    @property
    def image(self) -> np.ndarray:
        return self.frame.image


class Segmenter:
    """Instance segmentation with an OpenVINO model of the 0033 family or of the newer OMZ
    family (``image`` -> ``labels``, ``boxes``, ``masks``); the family is read from the ports.

    Args:
        model: path of an IR ``.xml`` (its ``.bin`` beside it) or an ``.onnx`` file, or a model
            catalogue name such as ``"instance-segmentation-security-0083"`` (``NAME:FP16-INT8``
            picks a precision) whose files ``ovseg fetch`` put in the cache; or a served model's
            URL, ``grpc://HOST:PORT/MODEL[/versions/V]`` or
            ``http://HOST:PORT/v2/models/MODEL[/versions/V]`` (any KServe v2 server; ``pip install
            "ovseg[remote]"``): preprocessing and decoding stay here, inference runs there, and
            ``device``, ``config`` and ``core`` do not apply.
        device: any OpenVINO device string (``CPU``, ``GPU``, ``NPU``, ``AUTO``,
            ``HETERO:GPU,CPU``, ...).
        threshold: keep detections with ``score >= threshold``; 0 keeps every slot (COCO AP).
        config: OpenVINO properties passed to ``compile_model`` as they are, e.g.
            ``{"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
            "CACHE_DIR": "cache"}``.
        paste: mask paste algorithm: ``"aligned"`` (default; detectron2 semantics, +1.0 mask AP on
            the fixture set) or ``"legacy"`` (OMZ `segm_postprocess`, the protocol behind the card).
        resize: ``"fit"``, ``"short-long"`` or ``"stretch"`` (see
            :data:`ovseg.options.ResizePolicy`; for ``short-long`` both input shapes are compiled
            up front). ``None``: the model's own rule when it is a catalogue model (named, or
            recognised by the content of its ``.xml``), else ``"fit"``; the log says which at INFO.
        im_info_scale: pass the resize factor in ``im_info[2]`` (2019 demo) instead of 1.
        core: an ``openvino.Core`` to share between models.
        cache_dir: the model cache catalogue names are looked up in (default ``$OVSEG_HOME``,
            else the per-user cache; what ``ovseg fetch --cache-dir`` wrote to).
        remote_timeout_s: for a served model, the bound of every call (metadata, each
            inference), seconds.
        candidate_threshold: also hand trackers the detections with ``candidate_threshold <=
            score < threshold``, box-only (no masks pasted), in ``Result.candidates``; they are
            never instances of the result nor in its files (ByteTrack's low-score association,
            see :mod:`ovseg.track`). ``None`` (default): none.

    Calling the segmenter on a BGR uint8 ``(H, W, 3)`` image (grayscale, BGRA and 16-bit
    images are converted) returns a :class:`~ovseg.result.Result`.
    """

    def __init__(
        self,
        model: str | Path | ModelRef,
        device: str = "CPU",
        threshold: float = 0.5,
        config: Mapping[str, Any] | None = None,
        *,
        paste: PasteMode = DEFAULT_PASTE,
        resize: ResizePolicy | None = None,
        im_info_scale: bool = False,
        core: ov.Core | None = None,
        cache_dir: str | Path | None = None,
        candidate_threshold: float | None = None,
        remote_timeout_s: float = DEFAULT_REMOTE_TIMEOUT_S,
    ) -> None:
        if isinstance(threshold, bool) or not (isinstance(threshold, numbers.Real) and 0.0 <= float(threshold) <= 1.0):
            raise ConfigError(f"expected a threshold in [0, 1], got {threshold!r}")
        if candidate_threshold is not None and (
            isinstance(candidate_threshold, bool)
            or not (isinstance(candidate_threshold, numbers.Real) and 0.0 <= float(candidate_threshold) <= float(threshold))
        ):
            raise ConfigError(f"expected a candidate_threshold in [0, {threshold}] or None, got {candidate_threshold!r}")
        if paste not in PASTE_MODES:
            raise ConfigError(f"expected paste 'legacy' or 'aligned', got {paste!r}")
        if resize is not None and resize not in RESIZE_POLICIES:
            raise ConfigError(f"expected resize 'fit', 'short-long', 'stretch' or None, got {resize!r}")
        self.threshold = float(threshold)
        self.candidate_threshold = None if candidate_threshold is None else float(candidate_threshold)
        self.paste: PasteMode = paste
        self.im_info_scale = im_info_scale
        self.config: dict[str, Any] = dict(config or {})
        #: The served model's address when ``model`` is a URL (inference on a KServe v2 server), else ``None``.
        self.remote_url: RemoteURL | None = parse_remote_url(model) if looks_remote(model) else None
        if self.remote_url is not None:
            self._init_remote(self.remote_url, device, resize, remote_timeout_s)
            return
        self.device = device
        self.core = core or ov.Core()
        self._model, self.info = read_model(model, self.core, cache=cache_dir)
        self.resize: ResizePolicy = resize or self._default_resize()
        if self.resize == "short-long" and self.info.family != MASKRCNN_FAMILY:
            raise ConfigError(f"expected resize 'fit' or 'stretch' for a {self.info.family} model, got 'short-long'")
        resize = self.resize
        self._image_input = "im_data" if self.info.family == MASKRCNN_FAMILY else "image"

        start = time.perf_counter()
        self._compiled: dict[tuple[int, int], ov.CompiledModel] = {
            self.info.input_hw: compile_model(self.core, self._model, device, self.config)
        }
        portrait_hw = self.info.input_hw[::-1]
        if resize == "short-long" and portrait_hw != self.info.input_hw:
            self._compiled[portrait_hw] = compile_model(
                self.core, reshape_input(self._model, portrait_hw), device, self.config
            )
        self.compile_ms = (time.perf_counter() - start) * 1e3
        self._requests = {hw: cm.create_infer_request() for hw, cm in self._compiled.items()}
        self._lock = threading.Lock()

    def _init_remote(self, url: RemoteURL, device: str, resize: ResizePolicy | None, timeout_s: float) -> None:
        """Inference on a served model: its metadata read and checked, nothing compiled here."""
        from .remote import RemoteModel

        if self.config:
            raise ConfigError(f"expected no OpenVINO config for a served model ({url}), got {sorted(self.config)}")
        if device != "CPU":
            raise ConfigError(f"expected no device for a served model ({url}: the server picks it), got {device!r}")
        start = time.perf_counter()
        self._remote = RemoteModel(url, timeout_s=timeout_s)
        self.compile_ms = (time.perf_counter() - start) * 1e3
        self.device = str(url)
        self.core = None
        self._model = None
        self.info = self._remote.info
        self.resize = resize or "fit"
        if self.resize == "short-long":
            raise ConfigError(f"expected resize 'fit' or 'stretch' for a served model (one input size), got 'short-long' ({url})")
        self._image_input = "im_data" if self.info.family == MASKRCNN_FAMILY else "image"
        self._compiled = {}
        self._requests = {self.info.input_hw: self._remote.create_request()}
        self._lock = threading.Lock()

    def _default_resize(self) -> ResizePolicy:
        """The catalogue's rule for a catalogue model, else ``fit`` (aspect kept, zero padding:
        the 0033 family's protocol and 0002 / 0091's)."""
        entry = self.info.entry
        if entry is not None:
            logger.info(
                "%s is catalogue model %s %s: resize %r, its accuracy config's rule",
                self.info.path.name, entry.name, self.info.precision, entry.resize,
            )
            return entry.resize  # type: ignore[return-value]
        logger.info("%s is not a catalogue model: resize 'fit' (aspect kept, zero padding)", self.info.path.name)
        return "fit"

    # -- building blocks (also used by the streaming pipeline) ----------------------------

    @property
    def model_path(self) -> Path:
        return self.info.path

    @property
    def input_sizes(self) -> tuple[tuple[int, int], ...]:
        """The network input sizes frames go through (two for ``short-long``; one for a served model)."""
        return tuple(self._compiled) or (self.info.input_hw,)

    @property
    def compiled_models(self) -> Mapping[tuple[int, int], ov.CompiledModel]:
        """The compiled model per network input size (one, or two for ``short-long``; none for a
        served model)."""
        return dict(self._compiled)

    def infer_queues(self, nireq: int | None = None) -> dict[tuple[int, int], Any]:
        """A new asynchronous request queue per network input size, ``nireq`` requests each
        (default: the compiled model's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``; for a served
        model, :data:`REMOTE_REQUESTS`): :class:`openvino.AsyncInferQueue`, or its network
        counterpart :class:`ovseg.remote.RemoteInferQueue`, for :class:`~ovseg.pipeline.Pipeline`."""
        if self.remote_url is not None:
            return {self.info.input_hw: self._remote.infer_queue(nireq or REMOTE_REQUESTS)}
        return {hw: ov.AsyncInferQueue(cm, nireq or optimal_requests(cm)) for hw, cm in self._compiled.items()}

    def input_hw_for(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """The network input size an image of ``image_hw`` goes through."""
        in_h, in_w = self.info.input_hw
        if self.resize == "short-long" and (image_hw[0] > image_hw[1]) != (in_h > in_w):
            return (in_w, in_h)
        return self.info.input_hw

    def preprocess(self, image: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, Transform]:
        """``im_data``, ``im_info`` and the :class:`Transform` of one image (see
        :func:`ovseg.preprocess.preprocess`); ``out`` may be an input tensor to fill."""
        mode = "stretch" if self.resize == "stretch" else "fit"
        return preprocess(image, self.input_hw_for(image_hw(image)), resize=mode, im_info_scale=self.im_info_scale, out=out)

    def fill_inputs(self, request: ov.InferRequest, image: np.ndarray) -> Transform:
        """Preprocess ``image`` straight into ``request``'s input tensor(s), for either family
        (``im_data`` + ``im_info``, or ``image``), and return the :class:`Transform`."""
        _, im_info, transform = self.preprocess(image, out=request.get_tensor(self._image_input).data)
        if self.info.family == MASKRCNN_FAMILY:
            request.get_tensor("im_info").data[...] = im_info
        return transform

    def gather(self, outputs: Mapping[str, np.ndarray], *, threshold: float | None = None) -> Detections:
        """Select and copy out the detections of one inference's outputs (``score >=
        threshold``, by default the segmenter's own)."""
        threshold = self.threshold if threshold is None else threshold
        if self.info.family == MASKRCNN_FAMILY:
            return gather_maskrcnn(outputs, threshold, candidate_threshold=self.candidate_threshold)
        return gather_labels_boxes_masks(outputs, threshold, candidate_threshold=self.candidate_threshold)

    def decode(self, dets: Detections, transform: Transform) -> Result:
        """Map detections back to the image and paste their masks."""
        return decode(dets, transform, paste=self.paste)

    # -- streaming (ovseg.pipeline) ----------------------------------------------------------

    def stream(
        self, frames: Iterable[np.ndarray], *, nireq: int | None = None, max_in_flight: int | None = None
    ) -> Iterator[Result]:
        """Segment a stream of frames with several in flight; results come in input order.

        Preprocessing and decoding overlap with inference, at most ``max_in_flight`` frames
        (default ``2 * nireq``) are held, and stopping early (``break``) shuts down cleanly. See
        :class:`ovseg.pipeline.Pipeline`; compile with ``config={"PERFORMANCE_HINT":
        "THROUGHPUT"}`` for the most frames per second.

        Args:
            frames: any iterable of BGR uint8 ``(H, W, 3)`` images; pulled lazily.
            nireq: infer requests per input size (default: OPTIMAL_NUMBER_OF_INFER_REQUESTS).
            max_in_flight: most frames pulled and not yet yielded.
        """
        return Pipeline(self, nireq=nireq, max_in_flight=max_in_flight).stream(frames)

    def stream_frames(
        self, frames: Iterable[Any], *, nireq: int | None = None, max_in_flight: int | None = None
    ) -> Iterator[tuple[Any, Result]]:
        """:meth:`stream` for :class:`~ovseg.sources.Frame` objects (or anything with an
        ``image``, or arrays): yields ``(frame, result)`` in input order, so the metadata (source,
        index, timestamp) and the pixels travel with the result. ``for frame, res in
        seg.stream_frames(ovseg.open_source("cam.mp4"))``."""
        return Pipeline(self, nireq=nireq, max_in_flight=max_in_flight).stream_frames(frames)

    def stream_many(
        self,
        sources: Mapping[str, Any],
        *,
        nireq: int | None = None,
        max_in_flight: int | None = None,
        on_end: Any = None,
        stall_timeout_s: float = 5.0,
        limit: int | None = None,
        max_files: int | None = None,
        on_start: Any = None,
    ) -> Iterator[tuple[str, Any, Result]]:
        """Several sources at once through this one model: ``{"gate": "rtsp://...", "lobby": 0}``
        (anything :func:`ovseg.sources.open_source` opens, or opened sources) yields
        ``(name, frame, result)``, each source's frames in its own order; a live source that
        falls behind drops its own stale frames, one that fails ends alone (``on_end`` gets a
        :class:`~ovseg.multi.SourceEnd` per source, with its error if any); ``limit`` ends each
        source after that many frames; ``max_files`` reads at most that many files at once, in
        order (``on_start`` is called with each source's name as it starts). See :mod:`ovseg.multi`.
        """
        from .multi import merge
        from .sources import deferred, open_source

        if max_files is not None and max_files < 1:
            raise ValueError(f"expected max_files >= 1 or None, got {max_files}")
        opened: dict[str, Any] = {}
        try:
            for name, source in sources.items():
                if isinstance(source, (str, int, Path)):
                    # checked now; with max_files, a video file is opened again when its turn comes
                    source = open_source(source)
                    source = source if max_files is None else deferred(source)
                opened[name] = source
        except BaseException:
            for source in opened.values():
                source.release()
            raise
        merged = merge(opened, on_end=on_end, stall_timeout_s=stall_timeout_s, first_frame_timeout_s=3 * stall_timeout_s,
                       limit=limit, max_files=max_files, on_start=on_start)
        pipe = Pipeline(self, nireq=nireq, max_in_flight=max_in_flight)
        pairs = pipe.stream_frames(_Tagged(name, frame) for name, frame in merged)
        try:
            for tagged, result in pairs:
                yield tagged.name, tagged.frame, result
        finally:
            pairs.close()
            merged.close()

    def map(self, images: Iterable[np.ndarray], *, nireq: int | None = None) -> list[Result]:
        """Segment many images at once (see :meth:`stream`); one result per image, in order."""
        return list(self.stream(images, nireq=nireq))

    # -- the call --------------------------------------------------------------------------

    def __call__(self, image: np.ndarray) -> Result:
        """Segment one image (BGR uint8 ``(H, W, 3)``; see :func:`ovseg.preprocess.as_bgr`)."""
        t0 = time.perf_counter()
        with self._lock:
            request = self._requests[self.input_hw_for(image_hw(image))]
            transform = self.fill_inputs(request, image)
            t1 = time.perf_counter()
            try:
                request.infer()
            except RuntimeError as error:
                raise InferenceError(f"inference failed on {self.device}: {ov_message(error)}") from None
            t2 = time.perf_counter()
            dets = self.gather(request_outputs(request))
        result = self.decode(dets, transform)
        speed = {
            "preprocess": (t1 - t0) * 1e3,
            "infer": (t2 - t1) * 1e3,
            "decode": (time.perf_counter() - t2) * 1e3,
        }
        return dataclasses.replace(result, speed_ms=speed)

    def close(self) -> None:
        """Close a served model's connections (a local model has none); later calls reopen them."""
        if self.remote_url is not None:
            self._remote.close()

    def __repr__(self) -> str:
        if self.remote_url is not None:
            where = str(self.remote_url)
            return f"Segmenter({where!r}, threshold={self.threshold}, paste={self.paste!r}, resize={self.resize!r})"
        return (
            f"Segmenter({str(self.info.path)!r}, device={self.device!r}, threshold={self.threshold}, "
            f"paste={self.paste!r}, resize={self.resize!r})"
        )
