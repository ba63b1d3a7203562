"""``ovseg serve``: a KServe v2 (Open Inference Protocol) server on KServe's own model server.

Two models, one compiled network:

- **NAME** (the catalogue name, or the file's stem): the network as raw tensors, as OpenVINO
  Model Server serves an IR: the IR's input and output tensor names, shapes and datatypes
  (``FP32``, ``INT32``, ...), model metadata and readiness, binary tensors over REST (the
  binary tensor extension) and gRPC. Any v2 client (tritonclient, ovseg's own) can use it.
- **NAME-pipeline**: an encoded image in (``image``, ``BYTES``, one element: the JPEG or PNG
  file; base64 text in a JSON request, raw bytes in binary and gRPC requests), optionally
  ``threshold`` (``FP32``, one element), the per-image JSON document of ``ovseg predict``
  out (``result``, ``BYTES``, one element), for thin clients such as curl or a browser.

Both share the compiled model's infer requests (:class:`RequestPool`, created once): a request
waits for an idle one, nothing is compiled per request.

Why KServe's server is assembled here rather than started with ``kserve.ModelServer``: in
kserve 0.21.0 its REST server binds ``0.0.0.0`` and its gRPC server ``[::]`` whatever one wants,
and a server told to listen on one interface that listens on all of them is a security bug.
The parts are KServe's own (its FastAPI application, data plane, v2 endpoints, gRPC servicer
and error mapping); only the listening sockets are ours: uvicorn serves KServe's application on
a socket bound to the host given, and a ``grpc.aio`` server with KServe's servicer listens on
that host only. ``kserve.model_server`` also parses ``sys.argv`` when imported (its own
options); it is imported with the program name alone so that ours never reach it.

Limits (see :mod:`ovseg.uploads`): the pipeline's uploads by size (refused from their
``Content-Length``, or while a chunked body arrives, before the body is kept) and by pixels
(from the image header, before decoding); every REST body and gRPC message by size.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import socket
import sys
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import openvino as ov

from .errors import ConfigError, ImageError, InferenceError, OvsegError
from .images import image_hw
from .model import ov_message, request_outputs
from .options import (
    SERVE_GRPC_PORT,
    SERVE_HTTP_PORT,
    SERVE_INSTALL_HINT,
    SERVE_MAX_PIXELS,
    SERVE_MAX_REQUEST_MB,
    SERVE_MAX_UPLOAD_MB,
)
from .pipeline import optimal_requests
from .preprocess import as_bgr
from .segmenter import Segmenter
from .sinks import image_document
from .uploads import decode_upload

_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import grpc
    import uvicorn
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from kserve import Model
    from kserve.errors import InferenceError as KServeInferenceError
    from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
    from kserve.model_repository import ModelRepository
    from kserve.model_server import app as kserve_app
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
    from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
    from kserve.protocol.grpc.servicer import InferenceServicer
    from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.server import RESTServer
    from kserve.utils.numpy_codec import from_np_dtype
except ImportError as _error:
    raise ImportError(f"ovseg serve needs KServe ({_error}): {SERVE_INSTALL_HINT}") from None
finally:
    sys.argv = _argv

__all__ = ["ServeOptions", "RequestPool", "TensorModel", "PipelineModel", "Server", "serve", "model_name_for"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The pipeline model's name is the raw model's with this suffix.
PIPELINE_SUFFIX = "-pipeline"
#: JSON around a base64 upload: the HTTP body limit of the pipeline is the upload limit's
#: base64 length plus this.
_JSON_SLACK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """Where the server listens and what a request may bring.

    Attributes:
        host: the one address both servers listen on (``127.0.0.1``: this machine only).
        http_port, grpc_port: ports (0: any free port; :attr:`Server.ports` says which).
        max_upload_bytes: largest encoded image the pipeline model takes.
        max_pixels: largest ``height * width`` it decodes (read from the image header first).
        max_request_bytes: largest REST body of the raw-tensor model, and largest gRPC message
            either way (a raw ``raw_masks`` reply is 25 MB).
        nireq: infer requests shared by all clients (default: the compiled model's optimum).
        name: the raw model's name (default :func:`model_name_for`).
        grace_s: how long a stop waits for requests in flight.
    """

    host: str = "127.0.0.1"
    http_port: int = SERVE_HTTP_PORT
    grpc_port: int = SERVE_GRPC_PORT
    max_upload_bytes: int = int(SERVE_MAX_UPLOAD_MB * 2**20)
    max_pixels: int = SERVE_MAX_PIXELS
    max_request_bytes: int = int(SERVE_MAX_REQUEST_MB * 2**20)
    nireq: int | None = None
    name: str | None = None
    grace_s: float = 5.0


def model_name_for(segmenter: Segmenter) -> str:
    """The name a model is served under: its catalogue name, else its file's stem."""
    entry = segmenter.info.entry
    return entry.name if entry is not None else segmenter.info.path.stem


# -- the shared infer requests ----------------------------------------------------------------


class RequestPool:
    """The compiled model's infer requests, created once and shared by every request of both
    models: :meth:`run` waits (without blocking the event loop) for an idle request of the
    right input size, runs ``work(request)`` on a worker thread and gives the request back.

    Args:
        compiled_models: the compiled model per network input size
            (:attr:`Segmenter.compiled_models`).
        nireq: requests per input size (default: ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``).
    """

    def __init__(self, compiled_models: Mapping[tuple[int, int], ov.CompiledModel], nireq: int | None = None) -> None:
        self._requests = {
            hw: [cm.create_infer_request() for _ in range(nireq or optimal_requests(cm))] for hw, cm in compiled_models.items()
        }
        self._idle: dict[tuple[int, int], asyncio.Queue[ov.InferRequest]] = {}
        # One thread per request: a thread runs only while it holds a request.
        self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="ovseg-infer")

    @property
    def size(self) -> int:
        """Infer requests in all."""
        return sum(len(r) for r in self._requests.values())

    def sizes(self) -> dict[tuple[int, int], int]:
        return {hw: len(r) for hw, r in self._requests.items()}

    def _queue(self, input_hw: tuple[int, int]) -> asyncio.Queue[ov.InferRequest]:
        if input_hw not in self._idle:  # made in the event loop that uses it
            idle: asyncio.Queue[ov.InferRequest] = asyncio.Queue()
            for request in self._requests[input_hw]:
                idle.put_nowait(request)
            self._idle[input_hw] = idle
        return self._idle[input_hw]

    async def run(self, input_hw: tuple[int, int], work: Callable[[ov.InferRequest], T]) -> T:
        """``work(request)`` on an idle request for ``input_hw``, on a worker thread."""
        idle = self._queue(input_hw)
        request = await idle.get()
        future = asyncio.get_running_loop().run_in_executor(self._executor, work, request)
        try:
            # A client that goes away cancels this coroutine, not the inference: the request
            # is given back only when its thread is done with it.
            return await asyncio.shield(future)
        finally:
            if future.done():
                idle.put_nowait(request)
            else:
                future.add_done_callback(lambda _: idle.put_nowait(request))

    def close(self) -> None:
        """Wait for the inferences in flight and stop the worker threads."""
        self._executor.shutdown(wait=True)


def _infer(request: ov.InferRequest, device: str) -> None:
    try:
        request.infer()
    except RuntimeError as error:
        raise InferenceError(f"inference failed on {device}: {ov_message(error)}") from None


async def _answer(what: str, call: Awaitable[T]) -> T:
    """Await ``call``, turning ovseg's errors into KServe's: bad input is a 400 (gRPC
    INVALID_ARGUMENT), a failed inference a 500 (INTERNAL), each with its one line."""
    try:
        return await call
    except InferenceError as error:
        logger.warning("%s: %s", what, error)
        raise KServeInferenceError(str(error)) from None
    except OvsegError as error:
        logger.info("%s refused: %s", what, error)
        raise InvalidInput(str(error)) from None


def _parameter(parameters: Any, key: str) -> Any:
    """A request parameter from REST (a dict) or gRPC (a map of InferParameter)."""
    if not parameters or key not in parameters:
        return None
    value = parameters[key]
    if hasattr(value, "WhichOneof"):
        kind = value.WhichOneof("parameter_choice")
        return getattr(value, kind) if kind else None
    return value


def _requested(request: InferRequest, available: list[str], model: str) -> list[str]:
    """Names of the outputs a request asks for (all when it names none)."""
    if not request.request_outputs:
        return available
    names = [output.name for output in request.request_outputs]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(f"model {model}: expected outputs among {available}, got {unknown}")
    return names


def _output(name: str, datatype: str, array: np.ndarray) -> InferOutput:
    """An output tensor held as raw bytes: what gRPC and the binary extension send as they are,
    and what KServe turns into JSON for a JSON reply. (Held as an array, kserve 0.21.0's gRPC
    encoder fails on it: it takes the array's truth value.)"""
    output = InferOutput(name=name, shape=list(array.shape), datatype=datatype)
    output.set_data_from_numpy(array, binary_data=True)
    return output


def _response(request: InferRequest, model: str, outputs: list[InferOutput]) -> InferResponse:
    return InferResponse(
        response_id=request.id or str(uuid.uuid4()),
        model_name=model,
        infer_outputs=outputs,
        use_binary_outputs=request.use_binary_outputs,
        requested_outputs=request.request_outputs,
    )


# -- the raw-tensor model ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Port:
    """One tensor of the v2 interface: OpenVINO's name, v2 shape (-1: dynamic) and datatype."""

    name: str
    shape: list[int]
    datatype: str
    dtype: np.dtype

    @classmethod
    def of(cls, port: Any) -> _Port:
        dtype = np.dtype(port.get_element_type().to_dtype())
        shape = [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]
        return cls(port.get_any_name(), shape, from_np_dtype(dtype), dtype)

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}

    def describe(self) -> str:
        return f"{self.datatype} [{','.join(map(str, self.shape))}]"


class TensorModel(Model):
    """The network as raw tensors (OVMS compatible): inputs and outputs named, shaped and typed
    as in the IR, outputs as OpenVINO computes them."""

    def __init__(self, name: str, segmenter: Segmenter, pool: RequestPool) -> None:
        super().__init__(name)
        self.segmenter, self.pool = segmenter, pool
        self.input_hw = segmenter.info.input_hw
        compiled = segmenter.compiled_models[self.input_hw]
        self.inputs = [_Port.of(p) for p in compiled.inputs]
        self.outputs = [_Port.of(p) for p in compiled.outputs]
        self.ready = True

    def get_input_types(self) -> list[dict[str, Any]]:
        return [p.metadata() for p in self.inputs]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [p.metadata() for p in self.outputs]

    def _arrays(self, request: InferRequest) -> dict[str, np.ndarray]:
        """The request's inputs, checked against the IR's names, datatypes and shapes."""
        given = {i.name: i for i in request.inputs}
        expected = [p.name for p in self.inputs]
        if sorted(given) != sorted(expected):
            raise ConfigError(f"model {self.name}: expected inputs {expected}, got {sorted(given)}")
        arrays = {}
        for port in self.inputs:
            tensor = given[port.name]
            shape = list(tensor.shape)
            fits = len(shape) == len(port.shape) and all(e in (-1, g) for e, g in zip(port.shape, shape, strict=True))
            if tensor.datatype != port.datatype or not fits:
                raise ConfigError(
                    f"model {self.name}: input {port.name}: expected {port.describe()}, "
                    f"got {tensor.datatype} [{','.join(map(str, shape))}]"
                )
            try:
                array = tensor.as_numpy()
            except (ValueError, TypeError) as error:
                raise ConfigError(f"model {self.name}: input {port.name}: expected {port.describe()} data, got {error}") from None
            if array.shape != tuple(shape):
                raise ConfigError(
                    f"model {self.name}: input {port.name}: expected {int(np.prod(shape))} values for shape {shape}, "
                    f"got {array.size}"
                )
            arrays[port.name] = array.astype(port.dtype, copy=False)
        return arrays

    def _infer(self, request: ov.InferRequest, arrays: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        for name, array in arrays.items():
            request.get_tensor(name).data[...] = array
        _infer(request, self.segmenter.device)
        return {name: np.array(request.get_tensor(name).data, copy=True) for name in wanted}

    async def _predict(self, payload: InferRequest) -> InferResponse:
        arrays = self._arrays(payload)
        wanted = _requested(payload, [p.name for p in self.outputs], self.name)
        results = await self.pool.run(self.input_hw, lambda request: self._infer(request, arrays, wanted))
        datatypes = {p.name: p.datatype for p in self.outputs}
        outputs = [_output(n, datatypes[n], a) for n, a in results.items()]
        return _response(payload, self.name, outputs)

    async def predict(self, payload: InferRequest, headers: Any = None, response_headers: Any = None) -> InferResponse:
        return await _answer(f"model {self.name}", self._predict(payload))


# -- the pipeline model -----------------------------------------------------------------------


class PipelineModel(Model):
    """Encoded image in, ``ovseg predict``'s per-image JSON document out.

    Inputs: ``image`` (``BYTES``, one element: the PNG or JPEG file; base64 text in a JSON
    request) and optionally ``threshold`` (``FP32``, one element in [0, 1]; default the
    server's ``--threshold``). A request parameter ``image`` names the image in the document
    (default ``"upload"``). Output: ``result`` (``BYTES``, one element: the document as JSON).
    """

    INPUTS = [{"name": "image", "datatype": "BYTES", "shape": [1]}, {"name": "threshold", "datatype": "FP32", "shape": [1]}]
    OUTPUTS = [{"name": "result", "datatype": "BYTES", "shape": [1]}]

    def __init__(self, name: str, segmenter: Segmenter, pool: RequestPool, *, model_label: str, options: ServeOptions) -> None:
        super().__init__(name)
        self.segmenter, self.pool, self.options = segmenter, pool, options
        self.model_label = model_label
        self.ready = True

    def get_input_types(self) -> list[dict[str, Any]]:
        return self.INPUTS

    def get_output_types(self) -> list[dict[str, Any]]:
        return self.OUTPUTS

    def _inputs(self, request: InferRequest) -> tuple[bytes, float]:
        given = {i.name: i for i in request.inputs}
        unknown = sorted(set(given) - {"image", "threshold"})
        if "image" not in given or unknown:
            raise ConfigError(
                f"model {self.name}: expected inputs image (BYTES [1]) and optionally threshold, got {sorted(given)}"
            )
        tensor = given["image"]
        if tensor.datatype != "BYTES":
            raise ConfigError(f"model {self.name}: input image: expected BYTES [1] (the encoded file), got {tensor.datatype}")
        values = tensor.as_numpy().reshape(-1)
        if values.size != 1:
            raise ConfigError(f"model {self.name}: input image: expected one element (one file), got {values.size}")
        value = values[0]
        if isinstance(value, str):  # JSON: BYTES elements are text, the file is base64
            try:
                data = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ImageError(
                    f"model {self.name}: input image: expected the file as base64 text in a JSON request, "
                    f"got {len(value)} characters that are not base64"
                ) from None
        else:
            data = bytes(value)
        threshold = self.segmenter.threshold
        if "threshold" in given:
            t = given["threshold"]
            values = t.as_numpy().reshape(-1) if t.datatype in ("FP32", "FP64") else np.zeros(0)
            if values.size != 1 or not 0.0 <= float(values[0]) <= 1.0:
                raise ConfigError(
                    f"model {self.name}: input threshold: expected FP32 [1] in [0, 1], "
                    f"got {t.datatype} {values.tolist() if values.size else list(t.shape)}"
                )
            threshold = float(values[0])
        return data, threshold

    def _infer(self, request: ov.InferRequest, image: np.ndarray, threshold: float) -> tuple[Any, Any, float, float]:
        t0 = time.perf_counter()
        transform = self.segmenter.fill_inputs(request, image)
        t1 = time.perf_counter()
        _infer(request, self.segmenter.device)
        t2 = time.perf_counter()
        dets = self.segmenter.gather(request_outputs(request), threshold=threshold)
        return dets, transform, (t1 - t0) * 1e3, (t2 - t1) * 1e3

    async def _predict(self, payload: InferRequest) -> InferResponse:
        data, threshold = self._inputs(payload)
        label = str(_parameter(payload.parameters, "image") or "upload")
        limits = {"max_bytes": self.options.max_upload_bytes, "max_pixels": self.options.max_pixels}
        image = await asyncio.to_thread(lambda: as_bgr(decode_upload(data, name=label, **limits)))
        dets, transform, pre_ms, infer_ms = await self.pool.run(
            self.segmenter.input_hw_for(image_hw(image)), lambda request: self._infer(request, image, threshold)
        )
        start = time.perf_counter()
        result = await asyncio.to_thread(self.segmenter.decode, dets, transform)
        speed = {"preprocess": pre_ms, "infer": infer_ms, "decode": (time.perf_counter() - start) * 1e3}
        result = dataclasses.replace(result, speed_ms=speed)
        document = image_document(result, image=label, model=self.model_label, device=self.segmenter.device)
        text = json.dumps(document).encode()
        return _response(payload, self.name, [_output("result", "BYTES", np.array([text], dtype=np.object_))])

    async def predict(self, payload: InferRequest, headers: Any = None, response_headers: Any = None) -> InferResponse:
        return await _answer(f"model {self.name}", self._predict(payload))


# -- the HTTP side: body limits, version paths, the repository index --------------------------


async def _send_error(send: Callable[..., Awaitable[None]], status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


_INFER_PATH = re.compile(r"^/v2/models/(?P<model>[^/]+)/infer$")
_HEADER_LENGTH = b"inference-header-content-length"
#: Most bytes of a refused body read and dropped before the 413, and the longest pause in them.
_DRAIN_MAX = 64 * 2**20
_DRAIN_IDLE_S = 0.5


async def _drain(receive: Any, message: dict[str, Any]) -> None:
    """Read and drop what the client still sends of a refused body (at most ``_DRAIN_MAX``
    bytes, until it pauses ``_DRAIN_IDLE_S``) before the 413 goes out: the server closes the
    connection after a refusal, and a close with unread bytes makes the kernel reset it, which
    can destroy the 413 before the client has read it. A client that waits for the answer
    before sending the body (a pause) gets it at once."""
    drained = 0
    while message.get("more_body", False) and drained < _DRAIN_MAX:
        try:
            message = await asyncio.wait_for(receive(), _DRAIN_IDLE_S)
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))


def _binary_request(body: bytes, json_length: int, model: str) -> InferRequest:
    """A request of the binary tensor extension (JSON header, then each binary input's bytes),
    its binary inputs kept as the bytes they are.

    kserve 0.21.0's own reader turns every binary input into a JSON-style list first: a BYTES
    input that is not UTF-8 text (a JPEG) fails there, and a 3.7 MB ``im_data`` becomes a list
    of 921,600 Python floats."""
    if not 0 < json_length <= len(body):
        raise InvalidInput(f"expected an Inference-Header-Content-Length in [1, {len(body)}], got {json_length}")
    try:
        header = json.loads(body[:json_length])
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(f"expected a JSON inference header of {json_length} bytes, got unparsable JSON ({error})") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise InvalidInput("expected a JSON inference header with a list of inputs")
    inputs, raw, offset = [], [], json_length
    try:
        for item in header["inputs"]:
            parameters = item.get("parameters") or {}
            tensor = InferInput(name=item["name"], shape=list(item["shape"]), datatype=item["datatype"], parameters=parameters)
            size = parameters.get("binary_data_size")
            if size is None:
                tensor.data = item["data"]
                raw.append(None)
            else:
                if not isinstance(size, int) or size < 0 or offset + size > len(body):
                    raise InvalidInput(f"input {tensor.name}: expected binary_data_size within the {len(body) - offset} bytes "
                                       f"left in the body, got {size}")
                raw.append(body[offset:offset + size])
                offset += size
            inputs.append(tensor)
        outputs = [RequestedOutput(name=o["name"], parameters=o.get("parameters")) for o in header.get("outputs") or []]
    except (KeyError, TypeError, AttributeError) as error:
        raise InvalidInput(
            f"expected inputs with name, shape, datatype and data or binary_data_size, got {error!r} missing or wrong"
        ) from None
    if offset != len(body):
        raise InvalidInput(f"expected {offset} bytes (the header and the binary inputs it sizes), got {len(body)}")
    request = InferRequest(model_name=model, infer_inputs=inputs, request_id=header.get("id"), raw_inputs=raw,
                           parameters=header.get("parameters"), request_outputs=outputs or None)
    return request


async def _validation_error(_: Any, error: RequestValidationError) -> JSONResponse:
    """FastAPI's list of validation failures as one line (KServe leaves them as they are)."""
    first = error.errors()[0] if error.errors() else {}
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "invalid")
        message = f"expected a v2 inference request, got unparsable JSON ({reason})"
        return JSONResponse(status_code=400, content={"error": message})
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "InferenceRequest"))
    return JSONResponse(status_code=400, content={
        "error": f"expected a v2 inference request, got {where or 'the body'}: {first.get('msg', 'invalid')}"})


_STATUS = ((InvalidInput, 400), (ModelNotFound, 404), (ModelNotReady, 503), (KServeInferenceError, 500))


class _Front:
    """ASGI wrapper around KServe's application:

    - refuses a body over its path's limit (413, one line) from its ``Content-Length``, or, for
      a chunked body, as soon as what arrived passes the limit (at most the limit is held);
    - serves ``.../versions/1/...`` as the model itself (OVMS names its one version 1; kserve
      0.21.0 answers 501 to any version);
    - reads requests of the binary tensor extension itself (:func:`_binary_request`) and hands
      them to KServe's data plane; JSON requests and everything else go to KServe's routes.
    """

    def __init__(self, app: Any, dataplane: DataPlane, *, pipeline_path: str, pipeline_limit: int, upload_limit: int,
                 request_limit: int) -> None:
        self.app, self.dataplane = app, dataplane
        self.pipeline_path, self.pipeline_limit, self.upload_limit = pipeline_path, pipeline_limit, upload_limit
        self.request_limit = request_limit

    def _limit(self, path: str) -> tuple[int, str]:
        if path.startswith(self.pipeline_path):
            return self.pipeline_limit, f"an image upload of at most {self.upload_limit} bytes (--max-upload-mb)"
        return self.request_limit, f"a request body of at most {self.request_limit} bytes (--max-request-mb)"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if "/versions/1/" in path or path.endswith("/versions/1"):
            path = path.replace("/versions/1", "", 1)
            scope = dict(scope, path=path, raw_path=path.encode())
        limit, expected = self._limit(path)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                text = length.decode(errors="replace")
                return await _send_error(send, 400, f"expected a Content-Length in bytes, got {text!r}")
            if int(length) > limit:
                await _drain(receive, {"more_body": True})
                return await _send_error(send, 413, f"expected {expected}, got {int(length)} bytes")
        infer = scope["method"] == "POST" and _INFER_PATH.match(path)
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if infer and _HEADER_LENGTH not in headers and kind != b"application/json":
            return await _send_error(
                send, 400,
                "expected a v2 inference request: JSON with Content-Type: application/json, or the binary tensor extension "
                f"with an Inference-Header-Content-Length header; got Content-Type {kind.decode(errors='replace') or 'none'}",
            )
        binary = infer if infer and _HEADER_LENGTH in headers else None
        if length is not None and not binary:
            return await self.app(scope, receive, send)
        # Read the body here (at most the limit): a chunked one, or one of the binary extension.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                chunks.clear()
                await _drain(receive, message)
                return await _send_error(send, 413, f"expected {expected}, got more than {limit} bytes")
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks
        if binary:
            return await self._binary(binary["model"], body, headers[_HEADER_LENGTH], scope, send)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _binary(self, model: str, body: bytes, json_length: bytes, scope: dict[str, Any], send: Any) -> None:
        try:
            if not json_length.isdigit():
                text = json_length.decode(errors="replace")
                raise InvalidInput(f"expected an Inference-Header-Content-Length in bytes, got {text!r}")
            request = _binary_request(body, int(json_length), model)
            del body
            await self.dataplane.model_ready(model, True)  # ModelNotFound for an unknown name
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            response, _ = await self.dataplane.infer(model_name=model, request=request, headers=headers)
            reply, json_size = response.to_rest()
        except Exception as error:  # noqa: BLE001 - every failure is one line to the client
            status = next((code for kind, code in _STATUS if isinstance(error, kind)), 500)
            if status == 500:
                logger.exception("model %s: binary request failed", model)
            known = status != 500 or isinstance(error, KServeInferenceError)
            message = str(error) if known else f"{type(error).__name__}: {error}"
            return await _send_error(send, status, message)
        if json_size is None:  # every output asked for as JSON
            content, kind, extra = json.dumps(reply).encode(), b"application/json", []
        else:
            content, kind, extra = reply, b"application/octet-stream", [(_HEADER_LENGTH, str(json_size).encode())]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", kind), (b"content-length", str(len(content)).encode()), *extra]})
        await send({"type": "http.response.body", "body": content})


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _text_field(number: int, data: bytes) -> bytes:
    """A length-delimited protobuf field (string or embedded message)."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _repository_index_handler(models: list[str]) -> Any:
    """gRPC ``RepositoryIndex`` (Triton's repository extension; kserve 0.21.0's servicer has
    none): every model, version 1, READY. The reply is encoded here (``RepositoryIndexResponse
    {repeated ModelIndex models = 1}``, ``ModelIndex {name = 1, version = 2, state = 3}``)
    because kserve's protobuf module does not define the message; the request's filters
    (repository name, ready only) change nothing, every model here being ready."""
    reply = b"".join(
        _text_field(1, _text_field(1, name.encode()) + _text_field(2, b"1") + _text_field(3, b"READY")) for name in models
    )

    async def index(request: bytes, context: Any) -> bytes:
        return reply

    handler = grpc.unary_unary_rpc_method_handler(index, request_deserializer=bytes, response_serializer=bytes)
    return grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {"RepositoryIndex": handler})


class _Uvicorn(uvicorn.Server):
    """uvicorn that leaves signals to :class:`Server` (which stops REST and gRPC together)."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise ConfigError(f"cannot listen on {host}:{port} (HTTP): {reason}") from None


def _check_free(host: str, port: int, what: str) -> None:
    """Bind and release ``host:port`` once, so that a port in use is one line of ours rather than
    gRPC's C-core log lines and its "Failed to bind" (it would tell the reason only at debug
    verbosity)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise ConfigError(f"cannot listen on {host}:{port} ({what}): {reason}") from None


def _grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _ClientErrors(logging.Filter):
    """Drops KServe's log records of refused requests (bad input, each logged with its whole
    traceback); ovseg logs those in one line. Everything else KServe logs passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InvalidInput))


# -- the server -------------------------------------------------------------------------------


class Server:
    """Both models on KServe's REST and gRPC servers, listening on ``options.host`` only.

    >>> server = Server(Segmenter("model.xml"), ServeOptions(http_port=0, grpc_port=0))
    >>> asyncio.run(server.run())  # until SIGINT / SIGTERM (or server.stop())
    """

    def __init__(self, segmenter: Segmenter, options: ServeOptions, *, model_label: str | None = None) -> None:
        self.segmenter, self.options = segmenter, options
        self.name = options.name or model_name_for(segmenter)
        self.pipeline_name = self.name + PIPELINE_SUFFIX
        self.pool = RequestPool(segmenter.compiled_models, options.nireq)
        label = model_label or str(segmenter.info.path)
        self.models = [
            TensorModel(self.name, segmenter, self.pool),
            PipelineModel(self.pipeline_name, segmenter, self.pool, model_label=label, options=options),
        ]
        self.ports: dict[str, int] = {}
        self._rest: _Uvicorn | None = None
        self._grpc: Any = None
        self._stopping: asyncio.Event | None = None

    def _application(self, dataplane: DataPlane, extension: ModelRepositoryExtension) -> Any:
        rest = RESTServer("kserve.model_server:app", dataplane, extension, 0)
        rest.create_application()  # KServe's FastAPI app (kserve_app), its v2 endpoints and error handlers
        app = kserve_app
        models = [m.name for m in self.models]

        async def repository_index() -> list[dict[str, str]]:
            """Triton's repository index (``tritonclient``'s ``get_model_repository_index``)."""
            return [{"name": name, "version": "1", "state": "READY"} for name in models]

        app.add_api_route("/v2/repository/index", repository_index, methods=["POST"])
        app.add_exception_handler(RequestValidationError, _validation_error)
        upload = self.options.max_upload_bytes
        return _Front(
            app, dataplane,
            pipeline_path=f"/v2/models/{self.pipeline_name}/",
            pipeline_limit=-(-upload * 4 // 3) + _JSON_SLACK,
            upload_limit=upload,
            request_limit=self.options.max_request_bytes,
        )

    async def run(self, *, on_ready: Callable[[Server], None] | None = None) -> None:
        """Serve until :meth:`stop` (or SIGINT / SIGTERM when run in the main thread)."""
        options = self.options
        repository = ModelRepository()
        for model in self.models:
            repository.update(model)
        dataplane = DataPlane(model_registry=repository)
        extension = ModelRepositoryExtension(model_registry=repository)
        self._stopping = asyncio.Event()
        logging.getLogger("kserve").addFilter(_ClientErrors())
        # kserve 0.21.0's application answers with FastAPI's ORJSONResponse, which FastAPI now
        # deprecates: one warning at the first request, about KServe's code, not the user's.
        warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")

        sock = _bind(options.host, options.http_port)
        config = uvicorn.Config(
            self._application(dataplane, extension), log_config=None, access_log=False,
            timeout_graceful_shutdown=max(1, int(options.grace_s)), lifespan="off",
        )
        self._rest = _Uvicorn(config)
        limit = options.max_request_bytes
        self._grpc = grpc.aio.server(
            interceptors=(ExceptionToStatusInterceptor(),),
            options=[("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit),
                     ("grpc.so_reuseport", 0)],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(dataplane, extension), self._grpc)
        self._grpc.add_generic_rpc_handlers((_repository_index_handler([m.name for m in self.models]),))
        try:
            _check_free(options.host, options.grpc_port, "gRPC")
            grpc_port = self._grpc.add_insecure_port(_grpc_address(options.host, options.grpc_port))
        except RuntimeError as error:
            sock.close()
            raise ConfigError(f"cannot listen on {options.host}:{options.grpc_port} (gRPC): {error}") from None
        except ConfigError:
            sock.close()
            raise
        self.ports = {"http": sock.getsockname()[1], "grpc": grpc_port}

        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, RuntimeError):  # not in the main thread: stop() only
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.stop)
        await self._grpc.start()
        rest_task = asyncio.create_task(self._rest.serve(sockets=[sock]))
        try:
            while not self._rest.started and not rest_task.done():
                await asyncio.sleep(0.01)
            if rest_task.done():
                rest_task.result()
                raise ConfigError(f"the HTTP server on {options.host}:{self.ports['http']} did not start")
            if on_ready is not None:
                on_ready(self)
            await self._stopping.wait()
        finally:
            self._rest.should_exit = True
            await self._grpc.stop(grace=options.grace_s)
            with contextlib.suppress(asyncio.CancelledError):
                await rest_task
            await asyncio.to_thread(self.pool.close)
            with contextlib.suppress(ValueError, RuntimeError):
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    def stop(self) -> None:
        """Stop both servers (requests in flight get ``grace_s`` to finish)."""
        if self._stopping is not None:
            self._stopping.set()


def serve(segmenter: Segmenter, options: ServeOptions, *, model_label: str | None = None,
          on_ready: Callable[[Server], None] | None = None) -> None:
    """Run :class:`Server` until SIGINT or SIGTERM."""
    asyncio.run(Server(segmenter, options, model_label=model_label).run(on_ready=on_ready))
