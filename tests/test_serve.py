"""``ovseg serve`` against real clients: tritonclient gRPC and HTTP (binary tensors), and raw
HTTP the way curl sends it (http.client), on real servers started by the tests (127.0.0.1,
ports the OS picks, process groups killed at the end). No mocks."""

from __future__ import annotations

import base64
import http.client
import importlib.util
import ipaddress
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import F32
from tests.servers import Served, serve_process, stop_group

# Found, not imported: kserve's gRPC messages and tritonclient's are both the protobuf package
# ``inference``, which one process cannot load twice (duplicate symbol). Servers run apart.
if importlib.util.find_spec("kserve") is None:
    pytest.skip('ovseg serve needs the serve extra: pip install "ovseg[serve]"', allow_module_level=True)
grpcclient = pytest.importorskip("tritonclient.grpc", reason='tritonclient is needed to test as a v2 client')
httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient is needed to test as a v2 client")
from tritonclient.utils import InferenceServerException  # noqa: E402

TIMEOUT_S = 60
IMAGES = ["000000000139.jpg", "000000000285.jpg", "000000000632.jpg", "000000000724.jpg"]


# -- helpers ------------------------------------------------------------------------------------


def request(server: Served, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            *, chunks: list[bytes] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request as curl would send it; (status, headers, body)."""
    conn = http.client.HTTPConnection(server.host, server.http_port, timeout=TIMEOUT_S)
    try:
        if chunks is not None:
            conn.putrequest(method, path)
            for key, value in (headers or {}).items():
                conn.putheader(key, value)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            try:
                for chunk in chunks:
                    conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed before the rest arrived
        else:
            conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def pipeline_json(server: Served, data: bytes, *, image: str | None = None, threshold: float | None = None) -> tuple[int, Any]:
    """The pipeline model through a plain JSON v2 request (the image as base64 text)."""
    inputs: list[dict[str, Any]] = [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(data).decode()]}]
    if threshold is not None:
        inputs.append({"name": "threshold", "datatype": "FP32", "shape": [1], "data": [threshold]})
    body: dict[str, Any] = {"inputs": inputs}
    if image is not None:
        body["parameters"] = {"image": image}
    status, _, reply = request(server, "POST", f"/v2/models/{server.pipeline}/infer", json.dumps(body).encode(),
                               {"Content-Type": "application/json"})
    payload = json.loads(reply)
    if status != 200:
        return status, payload
    (output,) = payload["outputs"]
    assert output["name"] == "result" and output["datatype"] == "BYTES" and output["shape"] == [1]
    return status, json.loads(output["data"][0])


def pipeline_binary(server: Served, data: bytes, *, image: str) -> dict[str, Any]:
    """The pipeline model through the binary tensor extension, both ways, by hand."""
    element = struct.pack("<I", len(data)) + data  # a BYTES tensor: 4-byte length, then the bytes
    header = json.dumps({
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(element)}}],
        "parameters": {"image": image, "binary_data_output": True},
    }).encode()
    status, headers, reply = request(
        server, "POST", f"/v2/models/{server.pipeline}/infer", header + element,
        {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))},
    )
    assert status == 200, reply[:300]
    json_length = int(headers["inference-header-content-length"])
    meta, raw = json.loads(reply[:json_length]), reply[json_length:]
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == len(raw)
    (length,) = struct.unpack("<I", raw[:4])
    return json.loads(raw[4:4 + length])


def raw_inputs(module: Any, arrays: dict[str, np.ndarray]) -> list[Any]:
    inputs = []
    for name, array in arrays.items():
        tensor = module.InferInput(name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


def predict_document(model: Path, image: Path, out: Path) -> dict[str, Any]:
    """What ``ovseg predict`` writes for ``image`` (f32)."""
    subprocess.run([sys.executable, "-m", "ovseg", "predict", str(image), "--model", str(model), "--infer-precision", "f32",
                    "--no-overlay", "-o", str(out)], check=True, capture_output=True, timeout=120)
    return json.loads((out / f"{image.stem}.json").read_text())


def without_speed(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "speed_ms"}


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket the process holds, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            if width == 8:
                text = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:  # four little-endian 32-bit words; an IPv4-mapped address is that IPv4 address only
                v6 = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
                text = str(v6.ipv4_mapped or v6)
            found.add((text, int(port, 16)))
    return found


def bomb_png(side: int = 40_000) -> bytes:
    """A valid PNG of ``side`` x ``side`` black pixels (1-bit gray): about 0.2 MB that decodes to
    1.6 G pixels (4.8 GB as BGR)."""
    row = b"\x00" * (1 + -(-side // 8))
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)) + chunk(b"IDAT", idat) + \
        chunk(b"IEND", b"")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


# -- a server on the fixture stand-in, f32, shared by the tests of this module -------------------


@pytest.fixture(scope="module")
def standin_server(standin_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with serve_process(standin_model, "--infer-precision", "f32", log_dir=tmp_path_factory.mktemp("serve")) as server:
        yield server


@pytest.fixture(scope="module")
def local_standin(standin_model: Path) -> Any:
    """The same model compiled here as the server compiles it (f32, THROUGHPUT)."""
    from ovseg import Segmenter

    return Segmenter(standin_model, config={**F32, "PERFORMANCE_HINT": "THROUGHPUT"})


def local_outputs(segmenter: Any, image: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    im_data, im_info, _ = segmenter.preprocess(image)
    compiled = segmenter.compiled_models[segmenter.info.input_hw]
    request = compiled.create_infer_request()
    request.infer({"im_data": im_data, "im_info": im_info})
    outputs = {port.get_any_name(): np.array(request.get_tensor(port).data, copy=True) for port in compiled.outputs}
    return {"im_data": im_data, "im_info": im_info}, outputs


# -- the listing, metadata, readiness -------------------------------------------------------------


def test_the_listing_names_both_models_and_the_metadata_is_the_irs(standin_server: Served, local_standin: Any) -> None:
    name, pipeline = standin_server.name, standin_server.pipeline
    assert name == "standin-yolov5s-seg-0033-interface" and pipeline == name + "-pipeline"
    status, _, body = request(standin_server, "GET", "/v2/models")
    assert status == 200 and sorted(json.loads(body)["models"]) == sorted([name, pipeline])
    http = httpclient.InferenceServerClient(standin_server.http_url, connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S)
    assert sorted(m["name"] for m in http.get_model_repository_index()) == sorted([name, pipeline])
    assert http.is_server_live() and http.is_server_ready() and http.is_model_ready(name) and http.is_model_ready(pipeline)

    compiled = local_standin.compiled_models[local_standin.info.input_hw]
    expected = {
        "inputs": [{"name": p.get_any_name(), "datatype": "FP32", "shape": list(p.get_shape())} for p in compiled.inputs],
        "outputs": [{"name": p.get_any_name(), "datatype": {"f32": "FP32", "i32": "INT32"}[p.get_element_type().get_type_name()],
                     "shape": list(p.get_shape())} for p in compiled.outputs],
    }
    assert expected["outputs"][-1] == {"name": "raw_masks", "datatype": "FP32", "shape": [100, 81, 28, 28]}
    metadata = http.get_model_metadata(name)
    assert {"inputs": metadata["inputs"], "outputs": metadata["outputs"]} == expected
    # OVMS names its one version 1: the versioned paths answer as the model.
    assert http.get_model_metadata(name, model_version="1")["outputs"] == expected["outputs"]

    grpc = grpcclient.InferenceServerClient(standin_server.grpc_url)
    try:
        meta = grpc.get_model_metadata(name, as_json=True)
        assert [{"name": t["name"], "datatype": t["datatype"], "shape": [int(d) for d in t["shape"]]} for t in meta["outputs"]] == \
            expected["outputs"]
        assert grpc.is_model_ready(pipeline)
        index = grpc.get_model_repository_index(as_json=True)["models"]
        assert sorted(m["name"] for m in index) == sorted([name, pipeline]) and {m["state"] for m in index} == {"READY"}
        pipe = grpc.get_model_metadata(pipeline, as_json=True)
        assert [(t["name"], t["datatype"]) for t in pipe["inputs"]] == [("image", "BYTES"), ("threshold", "FP32")]
        assert [(t["name"], t["datatype"]) for t in pipe["outputs"]] == [("result", "BYTES")]
    finally:
        grpc.close()


# -- raw tensors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_raw_tensors_equal_the_local_compiled_models(protocol: str, standin_server: Served, local_standin: Any,
                                                     coco_images: Path) -> None:
    from ovseg.images import read_image

    module = grpcclient if protocol == "grpc" else httpclient
    client = (grpcclient.InferenceServerClient(standin_server.grpc_url) if protocol == "grpc" else
              httpclient.InferenceServerClient(standin_server.http_url, network_timeout=TIMEOUT_S))
    try:
        for file in IMAGES[:2]:
            inputs, expected = local_outputs(local_standin, read_image(coco_images / file))
            kwargs = {"client_timeout": TIMEOUT_S} if protocol == "grpc" else {}
            outputs = [module.InferRequestedOutput(n, **({} if protocol == "grpc" else {"binary_data": True})) for n in expected]
            reply = client.infer(standin_server.name, raw_inputs(module, inputs), outputs=outputs, **kwargs)
            for name, array in expected.items():
                got = reply.as_numpy(name)
                assert got.dtype == array.dtype and got.shape == array.shape, name
                np.testing.assert_array_equal(got, array, err_msg=f"{file} {name}")
            assert int((expected["classes"] > 0).sum()) > 0  # the image has detections: a real comparison
    finally:
        client.close()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_raw_requests_of_another_shape_or_datatype_are_one_line_errors(protocol: str, standin_server: Served) -> None:
    module = grpcclient if protocol == "grpc" else httpclient
    client = (grpcclient.InferenceServerClient(standin_server.grpc_url) if protocol == "grpc" else
              httpclient.InferenceServerClient(standin_server.http_url, network_timeout=TIMEOUT_S))
    good_info = np.array([[480, 640, 1]], np.float32)
    cases = [
        ({"im_data": np.zeros((1, 3, 480, 64), np.float32), "im_info": good_info},
         "input im_data: expected FP32 [1,3,480,640], got FP32 [1,3,480,64]"),
        ({"im_data": np.zeros((1, 3, 480, 640), np.float32)}, "expected inputs ['im_data', 'im_info'], got ['im_data']"),
    ]
    try:
        for arrays, message in cases:
            with pytest.raises(InferenceServerException) as caught:
                client.infer(standin_server.name, raw_inputs(module, arrays))
            assert message in str(caught.value) and "\n" not in str(caught.value)
        typed = module.InferInput("im_data", [1, 3, 480, 640], "INT32")
        typed.set_data_from_numpy(np.zeros((1, 3, 480, 640), np.int32))
        with pytest.raises(InferenceServerException, match=r"input im_data: expected FP32 \[1,3,480,640\], got INT32"):
            client.infer(standin_server.name, [typed, *raw_inputs(module, {"im_info": good_info})])
        with pytest.raises(InferenceServerException, match="Model with name no-such-model does not exist"):
            client.infer("no-such-model", raw_inputs(module, {"im_info": good_info}))
    finally:
        client.close()


# -- the pipeline model --------------------------------------------------------------------------------


def test_the_pipeline_returns_what_ovseg_predict_writes(standin_server: Served, standin_model: Path, coco_images: Path,
                                                        tmp_path: Path) -> None:
    for file in IMAGES[:2]:
        path = coco_images / file
        expected = predict_document(standin_model, path, tmp_path / file)
        assert expected["instances"], "a real comparison needs detections"
        status, document = pipeline_json(standin_server, path.read_bytes(), image=str(path))
        assert status == 200, document
        assert without_speed(document) == without_speed(expected)
        assert set(document["speed_ms"]) == {"preprocess", "infer", "decode"}
        assert without_speed(pipeline_binary(standin_server, path.read_bytes(), image=str(path))) == without_speed(expected)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_the_pipeline_through_tritonclient(protocol: str, standin_server: Served, coco_images: Path) -> None:
    """Any v2 client: a BYTES tensor holding the file (binary over HTTP, raw over gRPC)."""
    module = grpcclient if protocol == "grpc" else httpclient
    client = (grpcclient.InferenceServerClient(standin_server.grpc_url) if protocol == "grpc" else
              httpclient.InferenceServerClient(standin_server.http_url, network_timeout=TIMEOUT_S))
    data = (coco_images / IMAGES[1]).read_bytes()
    try:
        image = module.InferInput("image", [1], "BYTES")
        image.set_data_from_numpy(np.array([data], dtype=np.object_))
        threshold = module.InferInput("threshold", [1], "FP32")
        threshold.set_data_from_numpy(np.array([0.3], np.float32))
        reply = client.infer(standin_server.pipeline, [image, threshold], parameters={"image": "street.jpg"})
        (text,) = reply.as_numpy("result")
        document = json.loads(text)
    finally:
        client.close()
    _, expected = pipeline_json(standin_server, data, image="street.jpg", threshold=0.3)
    assert document["image"] == "street.jpg"
    assert without_speed(document) == without_speed(expected) and document["instances"]


def test_the_pipeline_threshold_input(standin_server: Served, coco_images: Path) -> None:
    data = (coco_images / IMAGES[0]).read_bytes()
    _, default = pipeline_json(standin_server, data)
    _, everything = pipeline_json(standin_server, data, threshold=0.0)
    _, strict = pipeline_json(standin_server, data, threshold=0.9)
    assert default["image"] == "upload"
    assert len(strict["instances"]) < len(default["instances"]) < len(everything["instances"])
    assert all(i["score"] >= 0.9 for i in strict["instances"])
    status, error = pipeline_json(standin_server, data, threshold=1.5)
    assert status == 400 and "input threshold: expected FP32 [1] in [0, 1], got FP32 [1.5]" in error["error"]


def test_concurrent_clients_get_their_own_results(standin_server: Served, local_standin: Any, coco_images: Path) -> None:
    """Four clients at once, pipeline and raw tensors, on a server with two infer requests: each
    gets the results of its own image, every time."""
    from ovseg.images import read_image

    assert "2 infer request(s)" in standin_server.stdout.read_text() or os.cpu_count() != 2
    files = [coco_images / f for f in IMAGES]
    expected = {f.name: pipeline_json(standin_server, f.read_bytes())[1] for f in files}
    raw = {f.name: local_outputs(local_standin, read_image(f)) for f in files}
    assert len({json.dumps(without_speed(d)["instances"]) for d in expected.values()}) == len(files)
    failures: list[str] = []

    def client(path: Path) -> None:
        grpc = grpcclient.InferenceServerClient(standin_server.grpc_url)
        try:
            inputs, outputs = raw[path.name]
            for _ in range(3):
                _, document = pipeline_json(standin_server, path.read_bytes())
                if without_speed(document) != without_speed(expected[path.name]):
                    failures.append(f"{path.name}: pipeline result differs")
                reply = grpc.infer(standin_server.name, raw_inputs(grpcclient, inputs), client_timeout=TIMEOUT_S)
                if not all(np.array_equal(reply.as_numpy(n), a) for n, a in outputs.items()):
                    failures.append(f"{path.name}: raw outputs differ")
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(f"{path.name}: {type(error).__name__}: {error}")
        finally:
            grpc.close()

    threads = [threading.Thread(target=client, args=(f,)) for f in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=4 * TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert failures == []


# -- faults of the pipeline endpoint ----------------------------------------------------------------------


def test_non_images_are_one_line_400s(standin_server: Served) -> None:
    status, error = pipeline_json(standin_server, b"%PDF-1.7 not an image")
    assert status == 400 and error == {"error": "upload: expected a JPEG or PNG image, got 21 bytes starting '%PDF-1.7'"}
    status, error = pipeline_json(standin_server, b"\xff\xd8\xff\xe0 truncated jpeg")
    assert status == 400 and "expected a JPEG with a frame header giving its size" in error["error"]
    body = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["%%% not base64"]}]}).encode()
    status, _, reply = request(standin_server, "POST", f"/v2/models/{standin_server.pipeline}/infer", body,
                               {"Content-Type": "application/json"})
    assert status == 400 and "expected the file as base64 text in a JSON request" in json.loads(reply)["error"]
    body = json.dumps({"inputs": [{"name": "picture", "datatype": "BYTES", "shape": [1], "data": ["aGk="]}]}).encode()
    status, _, reply = request(standin_server, "POST", f"/v2/models/{standin_server.pipeline}/infer", body,
                               {"Content-Type": "application/json"})
    assert status == 400 and "expected inputs image (BYTES [1]) and optionally threshold, got ['picture']" in json.loads(reply)["error"]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"{not json", "application/json", "expected a v2 inference request, got unparsable JSON"),
        (b'{"inputs": 3}', "application/json", "expected a v2 inference request, got inputs: Input should be a valid list"),
        (b'{"inputs": [{"name": "image"}]}', "application/json", "expected a v2 inference request, got inputs.0."),
        (b"\xff\xd8 a JPEG posted as it is", "image/jpeg",
         "expected a v2 inference request: JSON with Content-Type: application/json, or the binary tensor extension"),
    ],
    ids=["unparsable", "inputs-not-a-list", "input-without-shape", "bare-file"],
)
def test_malformed_requests_are_one_line_400s(body: bytes, content_type: str, message: str, standin_server: Served) -> None:
    status, _, reply = request(standin_server, "POST", f"/v2/models/{standin_server.pipeline}/infer", body,
                               {"Content-Type": content_type})
    error = json.loads(reply)
    assert status == 400 and list(error) == ["error"] and error["error"].startswith(message) and "\n" not in error["error"]


def test_uploads_over_the_limits_are_refused_before_they_cost_memory(start_serve: Any, tiny_model: Path,
                                                                    coco_images: Path) -> None:
    server = start_serve(tiny_model, "--max-upload-mb", "1", "--max-pixels", "1000000")
    pid = server.process.pid
    jpeg = (coco_images / IMAGES[0]).read_bytes()
    assert pipeline_json(server, jpeg)[0] == 200
    baseline_mb = peak_rss_mb(pid)
    path = f"/v2/models/{server.pipeline}/infer"
    json_headers = {"Content-Type": "application/json"}

    # 200 MB announced: refused from the Content-Length, the body never read.
    conn = http.client.HTTPConnection(server.host, server.http_port, timeout=TIMEOUT_S)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(200 * 2**20))
        conn.endheaders()
        conn.send(b'{"inputs": [')
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"].startswith(f"expected an image upload of at most {2**20} bytes (--max-upload-mb), got 209715200 bytes")
    finally:
        conn.close()
    # A chunked body (no Content-Length): refused once what arrived passes the limit.
    status, _, reply = request(server, "POST", path, headers=json_headers, chunks=[b"x" * 2**20] * 8)
    assert status == 413 and "more than" in json.loads(reply)["error"]
    # Between the JSON body limit and the upload limit: refused by the model, one line.
    status, error = pipeline_json(server, b"\xff\xd8" + b"\x00" * (2**20 + 10))
    assert status == 400 and error["error"] == f"upload: expected an upload of at most {2**20} bytes, got {2**20 + 12} bytes"

    # The decompression bomb: 0.2 MB of PNG, 1.6 G pixels. Refused from its header.
    bomb = bomb_png()
    assert len(bomb) < 2**20
    status, error = pipeline_json(server, bomb)
    assert status == 400 and error["error"] == (
        "upload: expected an image of at most 1000000 pixels, got a PNG of 40000x40000 = 1600000000 pixels (refused before decoding)")
    # A JPEG of 640x426 is over 0.2 MP: refused the same way.
    server_strict = start_serve(tiny_model, "--max-pixels", "200000")
    status, error = pipeline_json(server_strict, jpeg)
    assert status == 400 and "got a JPEG of 640x426 = 272640 pixels" in error["error"]
    # The same over gRPC (the message limit is --max-request-mb; the upload limit is the model's).
    grpc = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        for data, message in [(b"\xff\xd8" + b"\x00" * (2**20 + 10), f"expected an upload of at most {2**20} bytes"),
                              (bomb, "expected an image of at most 1000000 pixels, got a PNG of 40000x40000")]:
            image = grpcclient.InferInput("image", [1], "BYTES")
            image.set_data_from_numpy(np.array([data], dtype=np.object_))
            with pytest.raises(InferenceServerException, match=r"INVALID_ARGUMENT\] upload: " + re.escape(message)):
                grpc.infer(server.pipeline, [image], client_timeout=TIMEOUT_S)
    finally:
        grpc.close()
    assert peak_rss_mb(pid) - baseline_mb < 100, "the refused uploads cost memory"
    assert pipeline_json(server, jpeg)[0] == 200  # still serving


def test_raw_requests_over_the_request_limit(start_serve: Any, tiny_model: Path) -> None:
    server = start_serve(tiny_model, "--max-request-mb", "1")
    arrays = {"im_data": np.zeros((1, 3, 480, 640), np.float32), "im_info": np.array([[480, 640, 1]], np.float32)}
    http = httpclient.InferenceServerClient(server.http_url, network_timeout=TIMEOUT_S)
    grpc = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        with pytest.raises(InferenceServerException, match=r"expected a request body of at most 1048576 bytes \(--max-request-mb\)"):
            http.infer(server.name, raw_inputs(httpclient, arrays))
        with pytest.raises(InferenceServerException, match="RESOURCE_EXHAUSTED"):
            grpc.infer(server.name, raw_inputs(grpcclient, arrays), client_timeout=TIMEOUT_S)
    finally:
        http.close()
        grpc.close()


# -- listening, stopping --------------------------------------------------------------------------------


def test_it_listens_on_the_host_given_only(start_serve: Any, tiny_model: Path) -> None:
    server = start_serve(tiny_model)
    assert listening(server.process.pid) == {("127.0.0.1", server.http_port), ("127.0.0.1", server.grpc_port)}
    # Another address of this machine, where there is one: nothing there.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 9))  # picks the outgoing interface; sends nothing
        other = probe.getsockname()[0]
    except OSError:
        other = None
    finally:
        probe.close()
    if other and not other.startswith("127."):
        for port in (server.http_port, server.grpc_port):
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=5).close()


@pytest.mark.parametrize("which", ["HTTP", "gRPC"])
def test_a_port_in_use_is_a_one_line_error(which: str, tiny_model: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        ports = ["--http-port", str(port), "--grpc-port", "0"] if which == "HTTP" else ["--http-port", "0", "--grpc-port", str(port)]
        out = subprocess.run([sys.executable, "-m", "ovseg", "serve", str(tiny_model), *ports],
                             capture_output=True, text=True, timeout=120, start_new_session=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"ovseg: error: cannot listen on 127.0.0.1:{port} ({which}): Address already in use"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_it_cleanly(sig: int, tiny_model: Path, tmp_path: Path, coco_images: Path) -> None:
    with serve_process(tiny_model, log_dir=tmp_path) as server:
        assert pipeline_json(server, (coco_images / IMAGES[0]).read_bytes())[0] == 200
        code = stop_group(server.process, sig, timeout_s=20)
        assert code == 0, server.log()[-2000:]
        with pytest.raises(ProcessLookupError):
            os.killpg(server.process.pid, 0)  # the whole group is gone
        assert server.stderr.read_text().strip().splitlines()[-1] == "ovseg serve: stopped"
        assert "Traceback" not in server.log()


def test_a_stop_with_requests_in_flight_neither_hangs_nor_leaves_a_process(make_model: Any, tmp_path: Path,
                                                                          coco_images: Path) -> None:
    model = make_model(classes=[1], scores=[0.9], boxes=[[0, 0, 1, 1]], boxes_relative=True, work=40, name="slow")
    data = (coco_images / IMAGES[0]).read_bytes()
    outcomes: list[str] = []
    with serve_process(model, "--nireq", "1", log_dir=tmp_path) as server:
        started = time.perf_counter()
        assert pipeline_json(server, data)[0] == 200
        one_s = time.perf_counter() - started

        def client() -> None:
            try:
                outcomes.append(str(pipeline_json(server, data)[0]))
            except (OSError, http.client.HTTPException, ValueError) as error:
                outcomes.append(type(error).__name__)

        threads = [threading.Thread(target=client) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(min(0.5, one_s / 2))
        code = stop_group(server.process, signal.SIGTERM, timeout_s=30)
        for thread in threads:
            thread.join(timeout=TIMEOUT_S)
        assert code == 0, server.log()[-2000:]
        assert not any(t.is_alive() for t in threads) and len(outcomes) == 3, outcomes
        with pytest.raises(ProcessLookupError):
            os.killpg(server.process.pid, 0)


# -- other models, the command line -----------------------------------------------------------------


def test_a_slim_ir_is_served_as_it_is(start_serve: Any, make_model: Any) -> None:
    """raw_masks [100, 1, 28, 28] (one map per slot, as ``ovseg export`` writes): served with
    that shape and those values."""
    model = make_model(classes=[1, 3], scores=[0.9, 0.4], boxes=[[0, 0, 1, 1], [0.5, 0.5, 1, 1]], boxes_relative=True,
                       num_channels=1, name="slim")
    server = start_serve(model, "--name", "slim")
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        meta = client.get_model_metadata("slim", as_json=True)
        assert {t["name"]: [int(d) for d in t["shape"]] for t in meta["outputs"]}["raw_masks"] == [100, 1, 28, 28]
        arrays = {"im_data": np.zeros((1, 3, 480, 640), np.float32), "im_info": np.array([[480, 640, 1]], np.float32)}
        reply = client.infer("slim", raw_inputs(grpcclient, arrays), client_timeout=TIMEOUT_S)
        assert reply.as_numpy("raw_masks").shape == (100, 1, 28, 28)
        assert reply.as_numpy("scores")[:3].tolist() == pytest.approx([0.9, 0.4, 0.0])
    finally:
        client.close()


def test_without_the_extra_it_says_how_to_install_it(tiny_model: Path) -> None:
    code = f"import sys\nsys.modules['kserve'] = None\nimport ovseg.cli\nsys.exit(ovseg.cli.main(['serve', {str(tiny_model)!r}]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("ovseg: error: ovseg serve needs KServe") and line.endswith('pip install "ovseg[serve]"')
