"""Streaming segmentation: frames in, :class:`~ovseg.result.Result` out, in input order.

Several frames are in flight at once, so that preprocessing and decoding run while the device
infers::

    caller's thread     pull frame -> preprocess into an idle request's im_data -> start_async
    OpenVINO's threads  infer -> callback: gather (small copies), free the request
    decode thread       decode (box mapping, mask pasting) -> mark the frame finished
    caller's thread     yield finished frames in input order

Guarantees:

- **Order**: results come out in the order the frames went in, whatever order the requests
  finish in.
- **Bounded memory**: at most ``max_in_flight`` frames are between "pulled from the source"
  and "yielded" (default: twice the number of infer requests). The source is not read further
  until the caller takes a result: back-pressure.
- **Requests are freed at once**: the callback copies out only what decoding needs
  (:meth:`Segmenter.gather`: the kept slots and one ``m x m`` map each), so a request can run
  the next frame while the previous one is still being decoded.
- **Errors reach the caller**: an exception raised in a callback or while decoding is re-raised
  from the generator when its frame's turn comes; one raised by the source or by preprocessing
  is raised at once. Either way the in-flight requests are waited for before it propagates.
- **Clean shutdown**: when the caller stops early (``break``, ``close()``, garbage collection),
  the generator waits for the requests in flight and stops its decode thread.

One request queue is made per network input size (``StreamModel.infer_queues``), so the
``short-long`` resize policy (landscape frames at 480x640, portrait at 640x480) streams with
both compiled models, each with its own requests. A local model's queue is an
:class:`~openvino.AsyncInferQueue`; a served model's (``Segmenter("grpc://...")``) is
:class:`ovseg.remote.RemoteInferQueue`, with the same surface, so everything above holds over
the network too.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import numpy as np
import openvino as ov

from .decode import Detections
from .errors import ConfigError, InferenceError
from .images import image_hw
from .model import ov_message as _ov_message
from .model import request_outputs
from .preprocess import Transform
from .result import Result

__all__ = ["Pipeline", "StreamModel", "optimal_requests"]

logger = logging.getLogger(__name__)

_NOTHING = object()
#: How long the stream waits for an event before it asks its requests whether one failed.
_ORPHAN_POLL_S = 0.25


class StreamModel(Protocol):
    """What the pipeline needs of a model (:class:`~ovseg.segmenter.Segmenter` is one): a request
    queue per network input size and the three per-frame steps around inference.

    ``infer_queues(nireq)`` returns, per input size, an :class:`openvino.AsyncInferQueue` or an
    object with the same surface as the pipeline uses it (``len``, ``set_callback``,
    ``get_idle_request_id``, ``[i]`` giving a request whose input tensors ``fill_inputs`` writes
    and whose ``latency`` and outputs (:func:`ovseg.model.request_outputs`) the callback reads,
    ``start_async(userdata=)``, ``wait_all``): :class:`ovseg.remote.RemoteInferQueue` for a
    served model. ``nireq=None``: the model's own choice."""

    device: str

    def infer_queues(self, nireq: int | None) -> Mapping[tuple[int, int], Any]: ...

    def input_hw_for(self, image_hw: tuple[int, int]) -> tuple[int, int]: ...

    def fill_inputs(self, request: ov.InferRequest, image: np.ndarray) -> Transform: ...

    def gather(self, outputs: Mapping[str, np.ndarray]) -> Detections: ...

    def decode(self, dets: Detections, transform: Transform) -> Result: ...


def optimal_requests(compiled: ov.CompiledModel) -> int:
    """The compiled model's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` (1 if it does not say)."""
    try:
        return max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    except (RuntimeError, TypeError, ValueError):
        return 1


def _weak_callback(pipeline: Pipeline) -> Any:
    ref = weakref.ref(pipeline)

    def on_done(request: ov.InferRequest, userdata: tuple[_Frame, tuple[int, int]]) -> None:
        owner = ref()
        if owner is not None:
            owner._on_done(request, userdata)

    return on_done


@dataclasses.dataclass(eq=False)
class _Frame:
    """Book-keeping of one frame between its submission and its yield."""

    index: int
    item: Any = None
    transform: Transform | None = None
    preprocess_ms: float = 0.0
    infer_ms: float = 0.0
    dets: Detections | None = None
    result: Result | None = None
    error: BaseException | None = None
    finished: bool = False
    input_hw: tuple[int, int] = (0, 0)
    request_id: int = -1
    called_back: bool = False


class Pipeline:
    """Asynchronous, ordered, bounded streaming over a :class:`~ovseg.segmenter.Segmenter`.

    Args:
        segmenter: supplies the compiled model(s) and the building blocks (``fill_inputs``,
            ``gather``, ``decode``; :class:`StreamModel`); its settings (threshold, paste,
            resize) apply.
        nireq: infer requests per network input size; default: the compiled model's
            ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` (2 on a 2-core CPU with the THROUGHPUT hint).
        max_in_flight: most frames pulled from the source and not yet yielded; default
            ``2 * nireq`` (per input size summed). Must be at least 1.

    One stream at a time: :meth:`stream` raises :class:`~ovseg.errors.ConfigError` if called
    while another stream of the same pipeline is still open.

    >>> pipe = Pipeline(Segmenter("0083.xml", config={"PERFORMANCE_HINT": "THROUGHPUT"}))
    >>> for result in pipe.stream(frames):
    ...     ...
    """

    def __init__(self, segmenter: StreamModel, *, nireq: int | None = None, max_in_flight: int | None = None) -> None:
        if nireq is not None and (not isinstance(nireq, int) or nireq < 1):
            raise ConfigError(f"expected nireq >= 1 (or None for the device's optimum), got {nireq!r}")
        if max_in_flight is not None and (not isinstance(max_in_flight, int) or max_in_flight < 1):
            raise ConfigError(f"expected max_in_flight >= 1 (or None for 2 x nireq), got {max_in_flight!r}")
        self.segmenter = segmenter
        self._queues: dict[tuple[int, int], ov.AsyncInferQueue] = {}
        for input_hw, infer_queue in segmenter.infer_queues(nireq).items():
            # A bound method would make a cycle through C++ (queue -> callback -> pipeline ->
            # queue) that Python's collector cannot see: every pipeline, its requests and their
            # output tensors would live forever. The callback holds the pipeline weakly.
            infer_queue.set_callback(_weak_callback(self))
            self._queues[input_hw] = infer_queue
        self.nireq = sum(len(q) for q in self._queues.values())
        self.max_in_flight = max_in_flight if max_in_flight is not None else 2 * self.nireq
        self._cond = threading.Condition()
        self._events = 0  # bumped (under _cond) whenever a request frees or a frame finishes
        self._idle: dict[tuple[int, int], int] = {}
        self._decode_queue: queue.SimpleQueue[_Frame | None] = queue.SimpleQueue()
        self._busy = threading.Lock()
        self._pending: collections.deque[_Frame] = collections.deque()
        logger.info(
            "pipeline: %s infer request(s) for input size(s) %s, at most %d frame(s) in flight",
            "+".join(str(len(q)) for q in self._queues.values()), list(self._queues), self.max_in_flight,
        )

    @property
    def requests_per_size(self) -> dict[tuple[int, int], int]:
        """Number of infer requests per network input size."""
        return {hw: len(q) for hw, q in self._queues.items()}

    # -- OpenVINO's threads ----------------------------------------------------------------

    def _on_done(self, request: ov.InferRequest, userdata: tuple[_Frame, tuple[int, int]]) -> None:
        """Request callback: copy out the detections and free the request. Never raises (an
        exception here would be lost or abort the process); errors travel with the frame."""
        frame, input_hw = userdata
        frame.called_back = True
        try:
            frame.infer_ms = float(request.latency)
            frame.dets = self.segmenter.gather(request_outputs(request))
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            frame.error = error
        self._decode_queue.put(frame)
        with self._cond:
            self._idle[input_hw] += 1
            self._events += 1
            self._cond.notify_all()

    # -- the decode thread -----------------------------------------------------------------

    def _decode_loop(self, cancel: threading.Event) -> None:
        while True:
            frame = self._decode_queue.get()
            if frame is None:
                return
            if frame.error is None and not cancel.is_set():
                try:
                    assert frame.dets is not None and frame.transform is not None
                    start = time.perf_counter()
                    result = self.segmenter.decode(frame.dets, frame.transform)
                    speed = {
                        "preprocess": frame.preprocess_ms,
                        "infer": frame.infer_ms,
                        "decode": (time.perf_counter() - start) * 1e3,
                    }
                    frame.result = dataclasses.replace(result, speed_ms=speed)
                except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
                    frame.error = error
            frame.dets = None
            with self._cond:
                frame.finished = True
                self._events += 1
                self._cond.notify_all()

    # -- the caller's thread ---------------------------------------------------------------

    def _submit(
        self, image: np.ndarray, input_hw: tuple[int, int], frame: _Frame, full_hw: tuple[int, int] | None = None
    ) -> None:
        """Preprocess ``image`` straight into an idle request's input tensor(s) and start it.
        ``full_hw``: the size of the image that ``image`` is a reduced read of; results are
        mapped to it (the per-axis factors of the resize then include the reduction)."""
        infer_queue = self._queues[input_hw]
        # The callback counts the request idle a moment before AsyncInferQueue does; this call
        # then blocks for that moment only.
        request_id = infer_queue.get_idle_request_id()
        # A request whose inference failed is idle again without its callback having run
        # (OpenVINO skips the callback on failure): its frame fails before the request is reused.
        self._fail_orphans(input_hw, request_id)
        request = infer_queue[request_id]
        start = time.perf_counter()
        transform = self.segmenter.fill_inputs(request, image)
        frame.transform = transform if full_hw is None else dataclasses.replace(transform, image_hw=tuple(full_hw))
        frame.preprocess_ms = (time.perf_counter() - start) * 1e3
        frame.input_hw, frame.request_id = input_hw, request_id
        infer_queue.start_async(userdata=(frame, input_hw))

    def _fail_orphans(self, input_hw: tuple[int, int], request_id: int | None = None) -> None:
        """Fail the frames whose request finished with an error (its callback never runs):
        those on ``request_id`` (about to be reused, so certainly finished), or, without it,
        any whose request reports an error now. Each gives its request back to the count."""
        infer_queue = self._queues[input_hw]
        for frame in self._pending:
            if frame.called_back or frame.finished or frame.input_hw != input_hw or frame.request_id < 0:
                continue
            if request_id is not None and frame.request_id != request_id:
                continue
            try:
                done = infer_queue[frame.request_id].wait_for(0)
            except RuntimeError as error:
                failure: BaseException = InferenceError(
                    f"inference failed on {self.segmenter.device}: {_ov_message(error)}"
                )
            else:
                if not done or request_id is None:
                    continue  # still running, or finished with its callback about to run
                failure = InferenceError(f"inference failed on {self.segmenter.device} (no result)")
            with self._cond:
                if frame.called_back:
                    continue
                frame.error, frame.finished = failure, True
                self._idle[input_hw] += 1
                self._events += 1

    def stream(self, frames: Iterable[np.ndarray]) -> Iterator[Result]:
        """Segment ``frames`` (BGR uint8 ``(H, W, 3)`` arrays, or what
        :func:`~ovseg.preprocess.as_bgr` accepts), yielding one :class:`Result` per frame in
        input order. Each result's ``speed_ms`` has ``preprocess``, ``infer`` (the request's
        own latency) and ``decode``.

        The source is pulled lazily; frames are not kept after preprocessing, so the caller may
        reuse a frame buffer once the next frame is requested from its iterator.
        """
        for _, result in self.stream_frames(frames):
            yield result

    def stream_frames(self, frames: Iterable[Any]) -> Iterator[tuple[Any, Result]]:
        """:meth:`stream` for frames that carry more than pixels: each item is an array, or any
        object with an ``image`` array (a :class:`~ovseg.sources.Frame`), and comes back with
        its result, ``(item, result)``, in input order. The item is held until it is yielded
        (at most ``max_in_flight`` of them). An item with a ``full_hw`` (a frame read at a
        reduced scale) gets results in that size's coordinates."""
        if not self._busy.acquire(blocking=False):
            raise ConfigError("expected one open stream per Pipeline, got a second one while the first is running")
        try:
            yield from self._stream(iter(frames))
        finally:
            self._busy.release()

    def _stream(self, source: Iterator[Any]) -> Iterator[tuple[Any, Result]]:
        seg = self.segmenter
        with self._cond:
            self._idle = {hw: len(q) for hw, q in self._queues.items()}
        cancel = threading.Event()
        decoder = threading.Thread(target=self._decode_loop, args=(cancel,), name="ovseg-decode", daemon=True)
        decoder.start()
        pending: collections.deque[_Frame] = collections.deque()
        self._pending = pending
        held: Any = _NOTHING  # a frame pulled from the source, waiting for an idle request
        exhausted = False
        count = 0
        try:
            while True:
                with self._cond:
                    seen = self._events
                progressed = False
                # Yield what is finished at the head, in input order.
                while pending and pending[0].finished:
                    frame = pending.popleft()
                    if frame.error is not None:
                        raise frame.error
                    assert frame.result is not None
                    pair = (frame.item, frame.result)
                    frame.item = frame.result = None
                    progressed = True
                    yield pair
                # Submit while the bound and the idle requests allow.
                while not exhausted and len(pending) < self.max_in_flight:
                    if held is _NOTHING:
                        held = next(source, _NOTHING)
                        if held is _NOTHING:
                            exhausted = True
                            break
                    image = getattr(held, "image", held)
                    input_hw = seg.input_hw_for(image_hw(image))
                    with self._cond:
                        if self._idle[input_hw] == 0:
                            break
                        self._idle[input_hw] -= 1
                    frame = _Frame(index=count, item=held)
                    try:
                        self._submit(image, input_hw, frame, getattr(held, "full_hw", None))
                    except BaseException:
                        with self._cond:
                            self._idle[input_hw] += 1
                        raise
                    held = _NOTHING
                    count += 1
                    pending.append(frame)
                    progressed = True
                if exhausted and not pending:
                    return
                if not progressed:
                    with self._cond:
                        if self._events == seen:
                            self._cond.wait(_ORPHAN_POLL_S)
                        stalled = self._events == seen
                    if stalled:
                        for input_hw in self._queues:
                            self._fail_orphans(input_hw)
        finally:
            # Stop early (close, error) or end normally: let the requests finish, stop the
            # decoder. wait_all releases the GIL, so the callbacks can run meanwhile.
            cancel.set()
            for infer_queue in self._queues.values():
                try:
                    infer_queue.wait_all()
                except RuntimeError as error:  # a failed request; its frame carries the error
                    logger.info("an inference failed while the stream stopped: %s", _ov_message(error))
            self._decode_queue.put(None)
            decoder.join()
            if pending:
                logger.info("stream stopped with %d frame(s) in flight (discarded)", len(pending))
