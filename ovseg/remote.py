"""Inference on a served model: the KServe v2 / Open Inference Protocol over gRPC or HTTP.

A :class:`~ovseg.segmenter.Segmenter` given a URL (``grpc://HOST:PORT/MODEL``,
``http://HOST:PORT/v2/models/MODEL``; :mod:`ovseg.remote_url`) keeps preprocessing and
decoding local and runs inference on the server: OpenVINO Model Server, Triton, KServe,
``ovseg serve``, any v2 server. This module is its inference half, the only one that imports
the client library (``tritonclient``, the optional extra ``ovseg[remote]``):

- :class:`RemoteModel` reads the model's metadata (bounded by the timeout) and checks its
  interface with the same check and the same one-line errors as a local IR
  (:func:`ovseg.ports.check_ports`), so the family is told from the same port names.
- :class:`RemoteRequest` is the counterpart of an OpenVINO infer request: input arrays that
  :meth:`Segmenter.fill_inputs` writes, ``infer()``, ``start_async``, ``latency`` and the
  outputs :func:`ovseg.model.request_outputs` reads.
- :class:`RemoteInferQueue` is the counterpart of :class:`openvino.AsyncInferQueue`
  (``len``, ``set_callback``, ``get_idle_request_id``, ``[i]``, ``start_async``, ``wait_all``),
  so :class:`ovseg.pipeline.Pipeline` streams over the network unchanged, several requests in
  flight: ordering, back-pressure, tracking, several sources, predict, eval, bench, demo.

Tensors always travel binary (gRPC's raw contents; HTTP's binary tensor extension), never as
JSON: one frame's ``raw_masks`` is 25 MB of float32. Every call is bounded by ``timeout_s``;
a request that fails (server down, timeout, server stopped, a reply whose shapes or datatypes
are not those of the metadata) fails its frame with a one-line
:class:`~ovseg.errors.InferenceError`; its callback always runs, so no stream waits forever.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, InferenceError, ModelError
from .model import ModelInfo
from .options import DEFAULT_REMOTE_TIMEOUT_S, REMOTE_INSTALL_HINT
from .ports import Port, check_ports
from .remote_url import RemoteURL

__all__ = ["RemoteModel", "RemoteRequest", "RemoteInferQueue", "DEFAULT_REMOTE_TIMEOUT_S"]

logger = logging.getLogger(__name__)

#: Large enough for any reply (gRPC's default receive limit is 4 MB; raw_masks is 25 MB).
_MAX_GRPC_MESSAGE = 2**31 - 1
#: An HTTP worker thread with no request for this long ends (a new one starts on demand).
_HTTP_WORKER_IDLE_S = 10.0
_NP_TYPES = {
    "FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64,
    "INT16": np.int16, "INT8": np.int8, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
    "UINT64": np.uint64, "BOOL": np.bool_,
}


def _client_modules() -> tuple[Any, Any]:
    try:
        import tritonclient.grpc as grpcclient
        import tritonclient.http as httpclient
    except ImportError:
        raise ConfigError(f"a model URL needs the KServe v2 client: {REMOTE_INSTALL_HINT}") from None
    return grpcclient, httpclient


def _one_line(error: BaseException) -> str:
    """The informative line of a client exception (gRPC's come with a status prefix and may span lines)."""
    text = ""
    message = getattr(error, "message", None)
    if callable(message):
        try:
            text = str(message() or "")
        except Exception:  # noqa: BLE001 - fall back to str()
            text = ""
    text = text or str(error) or type(error).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    text = " ".join(lines[:2]) if lines else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _is_timeout(error: BaseException, text: str) -> bool:
    name = type(error).__name__.lower()
    lowered = text.lower()
    return "timeout" in name or "deadline" in lowered or "timed out" in lowered or "timeout" in lowered


def _shape_text(datatype: str, shape: Any) -> str:
    return f"{datatype} [{','.join('?' if int(d) < 0 else str(int(d)) for d in shape)}]"


_Finished = Callable[[dict[str, np.ndarray] | None, InferenceError | None], None]


class _Tensor:
    """What ``request.get_tensor(...)`` gives: the array under ``data``."""

    __slots__ = ("data",)

    def __init__(self, data: np.ndarray) -> None:
        self.data = data


class _OutputPort:
    """What ``request.model_outputs`` lists: a port with its names."""

    def __init__(self, name: str) -> None:
        self.name = name

    def get_names(self) -> set[str]:
        return {self.name}


class RemoteRequest:
    """One request slot on a served model: the counterpart of :class:`openvino.InferRequest`.

    ``get_tensor(name).data`` is the input array to fill (``im_data``, ``im_info``, or
    ``image``); after a successful inference, ``get_tensor(port).data`` for a port of
    ``model_outputs`` is that output (owned arrays, replaced by the next inference), and
    ``latency`` is the round trip in milliseconds. After a failed one, reading an output raises
    the request's :class:`InferenceError`.
    """

    def __init__(self, model: RemoteModel) -> None:
        self._model = model
        self.inputs = {
            port.name: np.zeros(tuple(int(d) for d in port.dims or ()), dtype=_NP_TYPES.get(model.datatypes[port.name]))
            for port in model.inputs
        }
        self.model_outputs = [_OutputPort(port.name) for port in model.outputs]
        self.latency = 0.0
        self._outputs: dict[str, np.ndarray] = {}
        self._error: InferenceError | None = None
        self._done = threading.Event()
        self._done.set()
        self._deadline = 0.0

    def get_tensor(self, key: Any) -> _Tensor:
        if isinstance(key, _OutputPort):
            if self._error is not None:
                raise self._error
            return _Tensor(self._outputs[key.name])
        try:
            return _Tensor(self.inputs[key])
        except KeyError:
            raise ConfigError(f"expected an input of {self._model.url}: {sorted(self.inputs)}, got {key!r}") from None

    @property
    def error(self) -> InferenceError | None:
        """The last inference's error, ``None`` if it succeeded."""
        return self._error

    def start_async(self, callback: Callable[[RemoteRequest], None] | None = None) -> None:
        """Send the inputs; ``callback(self)`` runs (on a client thread) when the reply or the
        failure arrives, always, within the timeout."""
        self._done.clear()
        self._error = None
        self._outputs = {}
        start = time.perf_counter()
        self._deadline = start + self._model.timeout_s

        def finished(outputs: dict[str, np.ndarray] | None, error: InferenceError | None) -> None:
            self.latency = (time.perf_counter() - start) * 1e3
            self._outputs, self._error = outputs or {}, error
            try:
                if callback is not None:
                    callback(self)
            except Exception:  # noqa: BLE001 - a callback must not kill the client's thread
                logger.exception("a remote request's callback raised")
            finally:
                self._done.set()

        self._model._send(self, finished)

    def infer(self) -> None:
        """Run one inference synchronously.

        Raises:
            InferenceError: the request failed (one line naming the server and what happened).
        """
        self.start_async()
        self.wait()
        if self._error is not None:
            raise self._error

    def wait(self) -> None:
        # The transports bound every call by the timeout; the margin covers the callback itself.
        if not self._done.wait(self._model.timeout_s + 30.0):
            raise InferenceError(f"{self._model.url}: no answer within {self._model.timeout_s:g} s and no error from the client")

    def wait_for(self, timeout_ms: int) -> bool:
        """Whether the request is done (``timeout_ms`` > 0 waits that long); never raises: a
        failed request's callback has run, with its error."""
        return self._done.wait(max(0, timeout_ms) / 1e3) if timeout_ms else self._done.is_set()


class RemoteInferQueue:
    """Requests on a served model driven asynchronously: the counterpart of
    :class:`openvino.AsyncInferQueue`, with its surface as :class:`~ovseg.pipeline.Pipeline`
    uses it. The callback runs for every request, failed ones included (read the outputs
    to get the error), before the request counts as idle again."""

    def __init__(self, model: RemoteModel, size: int) -> None:
        if size < 1:
            raise ConfigError(f"expected at least 1 request in flight, got {size}")
        self._requests = [model.create_request() for _ in range(size)]
        self._idle: collections.deque[int] = collections.deque(range(size))
        self._cond = threading.Condition()
        self._callback: Callable[[RemoteRequest, Any], None] | None = None

    def __len__(self) -> int:
        return len(self._requests)

    def __getitem__(self, index: int) -> RemoteRequest:
        return self._requests[index]

    def __iter__(self) -> Any:
        return iter(self._requests)

    def set_callback(self, callback: Callable[[RemoteRequest, Any], None]) -> None:
        self._callback = callback

    def get_idle_request_id(self) -> int:
        """The id of the request the next :meth:`start_async` uses (waits for one to be idle)."""
        with self._cond:
            while not self._idle:
                self._cond.wait()
            return self._idle[0]

    def is_ready(self) -> bool:
        with self._cond:
            return bool(self._idle)

    def start_async(self, inputs: Any = None, userdata: Any = None) -> None:
        """Start the next idle request (its inputs filled in place; ``inputs`` must be ``None``)."""
        if inputs is not None:
            raise ConfigError("expected the inputs filled in the request's tensors (inputs=None), got inputs")
        with self._cond:
            while not self._idle:
                self._cond.wait()
            index = self._idle.popleft()

        def done(request: RemoteRequest) -> None:
            try:
                if self._callback is not None:
                    self._callback(request, userdata)
            finally:
                with self._cond:
                    self._idle.append(index)
                    self._cond.notify_all()

        self._requests[index].start_async(done)

    def wait_all(self) -> None:
        """Wait until every request is idle (each is bounded by the model's timeout)."""
        with self._cond:
            while len(self._idle) < len(self._requests):
                self._cond.wait()


class _HttpWorker:
    """A thread owning one HTTP client (tritonclient's HTTP client is not thread-safe and runs
    on gevent: each is made and used on one thread only), taking one request at a time."""

    def __init__(self, model: RemoteModel) -> None:
        self._model = model
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[Any], None]) -> None:
        with self._lock:
            self._jobs.put(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ovseg-remote-http", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        client = None
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=_HTTP_WORKER_IDLE_S)
                except queue.Empty:
                    with self._lock:
                        if self._jobs.empty():
                            self._thread = None
                            return
                    continue
                if job is None:  # stop, unless a request came after it
                    with self._lock:
                        if self._jobs.empty():
                            self._thread = None
                            return
                    continue
                if client is None:
                    client = self._model._http_client()
                job(client)
        finally:
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass

    def stop(self) -> None:
        self._jobs.put(None)


class RemoteModel:
    """A model served over the KServe v2 protocol, its interface checked from its metadata.

    Args:
        url: the model's address (:func:`ovseg.remote_url.parse_remote_url`).
        timeout_s: bound of every call, the metadata and each inference (seconds).

    Raises:
        ConfigError: ``tritonclient`` is not installed (the message says how to install it).
        ModelError: the server cannot be reached or does not serve the model (one line: the
            server's own message).
        InterfaceError: the model's inputs or outputs are not those of a supported family.
    """

    def __init__(self, url: RemoteURL, *, timeout_s: float = DEFAULT_REMOTE_TIMEOUT_S) -> None:
        if not timeout_s > 0:
            raise ConfigError(f"expected a remote timeout > 0 seconds, got {timeout_s!r}")
        self._grpc, self._http = _client_modules()
        self.url = url
        self.timeout_s = float(timeout_s)
        self._grpc_client: Any = None
        self._workers: list[_HttpWorker] = []
        self._workers_lock = threading.Lock()
        metadata = self._metadata()
        try:
            self.inputs = [Port.from_kserve(t["name"], t["datatype"], t["shape"]) for t in metadata.get("inputs", [])]
            self.outputs = [Port.from_kserve(t["name"], t["datatype"], t["shape"]) for t in metadata.get("outputs", [])]
            self.datatypes = {t["name"]: str(t["datatype"]).upper() for t in [*metadata["inputs"], *metadata["outputs"]]}
            self.shapes = {t["name"]: tuple(int(d) for d in t["shape"]) for t in [*metadata["inputs"], *metadata["outputs"]]}
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"{url}: expected KServe v2 model metadata (inputs, outputs), got {error!r}") from None
        family, input_hw = check_ports(self.inputs, self.outputs, where=str(url))
        self.info = ModelInfo(path=Path(url.model), family=family, input_hw=input_hw)
        logger.info(
            "%s: %s model, input %s, outputs %s", url, family, input_hw,
            ", ".join(f"{p.name} {p.describe()}" for p in self.outputs),
        )

    # -- clients ---------------------------------------------------------------------------

    def _grpc_channel(self) -> Any:
        if self._grpc_client is None:
            self._grpc_client = self._grpc.InferenceServerClient(
                url=self.url.address, ssl=self.url.ssl,
                channel_args=[
                    ("grpc.max_send_message_length", _MAX_GRPC_MESSAGE),
                    ("grpc.max_receive_message_length", _MAX_GRPC_MESSAGE),
                ],
            )
        return self._grpc_client

    def _http_client(self) -> Any:
        return self._http.InferenceServerClient(
            url=self.url.address, ssl=self.url.ssl, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
        )

    def _failure(self, error: BaseException, what: str) -> str:
        text = _one_line(error)
        if _is_timeout(error, text):
            return f"{self.url}: {what} timed out after {self.timeout_s:g} s (--remote-timeout): {text}"
        return f"{self.url}: {what} failed: {text}"

    def _metadata(self) -> dict[str, Any]:
        try:
            if self.url.protocol == "grpc":
                return self._grpc_channel().get_model_metadata(
                    self.url.model, self.url.version, as_json=True, client_timeout=self.timeout_s
                )
            client = self._http_client()
            try:
                return client.get_model_metadata(self.url.model, self.url.version)
            finally:
                client.close()
        except BaseException as error:  # noqa: BLE001 - gevent's Timeout is a BaseException
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            raise ModelError(self._failure(error, "reading the model's metadata")) from None

    # -- requests --------------------------------------------------------------------------

    def create_request(self) -> RemoteRequest:
        return RemoteRequest(self)

    def infer_queue(self, size: int) -> RemoteInferQueue:
        """``size`` requests to keep in flight."""
        return RemoteInferQueue(self, size)

    def _infer_inputs(self, module: Any, request: RemoteRequest) -> tuple[list[Any], list[Any]]:
        inputs = []
        for name, array in request.inputs.items():
            tensor = module.InferInput(name, list(array.shape), self.datatypes[name])
            if module is self._http:
                tensor.set_data_from_numpy(array, binary_data=True)
            else:
                tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        if module is self._http:
            outputs = [module.InferRequestedOutput(p.name, binary_data=True) for p in self.outputs]
        else:
            outputs = [module.InferRequestedOutput(p.name) for p in self.outputs]
        return inputs, outputs

    def _read_reply(self, result: Any) -> dict[str, np.ndarray]:
        """The reply's outputs, each checked against the metadata (datatype and shape)."""
        outputs = {}
        for port in self.outputs:
            name = port.name
            described = result.get_output(name)
            if described is None:
                raise InferenceError(f"{self.url}: expected an output {name} in the reply, got none")
            if isinstance(described, dict):
                datatype, shape = str(described.get("datatype", "")), list(described.get("shape", []))
            else:
                datatype, shape = str(described.datatype), list(described.shape)
            declared, declared_shape = self.datatypes[name], self.shapes[name]
            shape_ok = len(shape) == len(declared_shape) and all(
                d < 0 or d == int(s) for d, s in zip(declared_shape, shape, strict=True)
            )
            if datatype.upper() != declared or not shape_ok:
                raise InferenceError(
                    f"{self.url}: output {name}: expected {_shape_text(declared, declared_shape)} (the model's metadata), "
                    f"got {_shape_text(datatype, shape)}"
                )
            try:
                array = result.as_numpy(name)
            except Exception as error:  # noqa: BLE001 - a reply whose bytes do not match its shape
                raise InferenceError(f"{self.url}: output {name}: unreadable reply ({_one_line(error)})") from None
            if array is None:
                raise InferenceError(f"{self.url}: output {name}: expected binary data in the reply, got none")
            outputs[name] = array
        return outputs

    def _send(self, request: RemoteRequest, finished: _Finished) -> None:
        """Start one inference; ``finished(outputs, error)`` is called exactly once."""

        def complete(result: Any, error: BaseException | None) -> None:
            if error is None:
                try:
                    outputs = self._read_reply(result)
                except InferenceError as failure:
                    finished(None, failure)
                    return
                finished(outputs, None)
            else:
                finished(None, error if isinstance(error, InferenceError) else InferenceError(self._failure(error, "inference")))

        if self.url.protocol == "grpc":
            try:
                inputs, outputs = self._infer_inputs(self._grpc, request)
                self._grpc_channel().async_infer(
                    self.url.model, inputs, complete, model_version=self.url.version, outputs=outputs,
                    client_timeout=self.timeout_s,
                )
            except Exception as error:  # noqa: BLE001 - e.g. a closed channel: fail this frame
                complete(None, error)
            return

        def job(client: Any) -> None:
            try:
                inputs, outputs = self._infer_inputs(self._http, request)
                result = client.infer(self.url.model, inputs, model_version=self.url.version, outputs=outputs)
            except BaseException as error:  # noqa: BLE001 - gevent's Timeout is a BaseException
                if isinstance(error, (KeyboardInterrupt, SystemExit)):
                    raise
                complete(None, error)
                return
            complete(result, None)

        worker = self._worker_for(request)
        worker.submit(job)

    def _worker_for(self, request: RemoteRequest) -> _HttpWorker:
        """The HTTP worker of ``request`` (one each, so requests run side by side)."""
        worker = getattr(request, "_http_worker", None)
        if worker is None:
            with self._workers_lock:
                worker = _HttpWorker(self)
                self._workers.append(worker)
            request._http_worker = worker  # type: ignore[attr-defined]
        return worker

    def close(self) -> None:
        """Close the connections (later requests open new ones)."""
        with self._workers_lock:
            for worker in self._workers:
                worker.stop()
            self._workers.clear()
        if self._grpc_client is not None:
            try:
                self._grpc_client.close()
            except Exception:  # noqa: BLE001 - closing a broken channel
                pass
            self._grpc_client = None

    def __repr__(self) -> str:
        return f"RemoteModel({str(self.url)!r}, timeout_s={self.timeout_s:g})"

