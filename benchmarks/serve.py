"""``ovseg serve`` over loopback against the same model run in this process, side by side.

Each round measures, one after the other (so that a change in the machine's load touches all
alike):

- **raw tensors**, requests per second with 1 and with ``--clients`` concurrent clients:
  local (this process: the same IR and config compiled here, one infer request per client,
  the inputs already in tensors: the ceiling), tritonclient gRPC, tritonclient HTTP with binary
  tensors. Every client sends the same preprocessed frame and asks for every output (the whole
  ``raw_masks``: 25 MB a frame for the 0033 interface).
- **the pipeline model**, milliseconds per image for one client: local (``Segmenter`` on the
  decoded image, plus the JPEG decode) and through the server, JSON (base64) and the binary
  extension.

Prints the CPU line, a table of the medians over rounds and the ratio to local.

    python benchmarks/serve.py --model ../shared/fixtures/models/standin-yolov5s-seg-0033-interface.xml \\
        --image ../shared/fixtures/coco-val2017-lightly/images/000000000139.jpg
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark

READY = re.compile(r"on http://(?P<host>[^ ]+):(?P<http>\d+) \(REST\) and \S+:(?P<grpc>\d+) \(gRPC\)")


def start_server(model: str, args: list[str], log: Path) -> tuple[subprocess.Popen[bytes], str, int, int, str]:
    out = log.with_suffix(".out")
    with out.open("wb") as stdout, log.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "ovseg", "serve", model, "--http-port", "0", "--grpc-port", "0", *args],
                                   stdout=stdout, stderr=stderr, start_new_session=True)
    deadline = time.monotonic() + 120
    while (match := READY.search(out.read_text())) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"ovseg serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    name = out.read_text().split("ovseg serve: ")[1].split(" and ")[0]
    return process, match["host"], int(match["http"]), int(match["grpc"]), name


def stop_server(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def rate(make_call: Callable[[], Callable[[], None]], clients: int, duration_s: float) -> float:
    """Calls per second of ``clients`` threads, each with its own call (client, request) made
    in its own thread (tritonclient.http's clients stay in theirs), for ``duration_s`` after
    one warm-up call each."""
    counts = [0] * clients
    ready = threading.Barrier(clients + 1)
    window: list[float] = []

    def loop(i: int) -> None:
        call = make_call()
        call()
        ready.wait()
        while time.perf_counter() < window[0]:
            call()
            counts[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    window.append(time.perf_counter() + 1e9)
    ready.wait()
    start = time.perf_counter()
    window[0] = start + duration_s
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True, help="a JPEG: the frame of the raw requests and the pipeline's upload")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default 5)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pipeline-n", type=int, default=5, help="images per pipeline measurement (default 5)")
    parser.add_argument("--infer-precision", default="f32")
    parser.add_argument("--no-pipeline", action="store_true", help="raw tensors only (a slim IR before ovseg decodes it)")
    args = parser.parse_args()

    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    from ovseg import Segmenter
    from ovseg.images import read_image

    config = {"INFERENCE_PRECISION_HINT": args.infer_precision, "PERFORMANCE_HINT": "THROUGHPUT"}
    print(machine())
    local = Segmenter(args.model, config=config)
    compiled = local.compiled_models[local.info.input_hw]
    image = read_image(args.image)
    im_data, im_info, _ = local.preprocess(image)
    arrays = {"im_data": im_data, "im_info": im_info}
    reply_bytes = sum(int(np.prod(list(p.get_shape()))) * p.get_element_type().size for p in compiled.outputs)
    data = Path(args.image).read_bytes()

    log = Path(tempfile.mkdtemp(prefix="ovseg-serve-bench-")) / "serve.log"
    process, host, http_port, grpc_port, name = start_server(
        args.model, ["--infer-precision", args.infer_precision, "--nireq", str(args.clients)], log)
    print(f"model {name}: request {sum(a.nbytes for a in arrays.values())} bytes, reply {reply_bytes} bytes; "
          f"server: {args.clients} infer requests, {args.infer_precision}; {args.duration:g} s per measurement, {args.rounds} round(s)")
    try:
        def local_call() -> Callable[[], None]:
            request = compiled.create_infer_request()
            return lambda: request.infer(arrays)

        def grpc_call() -> Callable[[], None]:
            client = grpcclient.InferenceServerClient(f"{host}:{grpc_port}")
            inputs = []
            for key, array in arrays.items():
                tensor = grpcclient.InferInput(key, list(array.shape), "FP32")
                tensor.set_data_from_numpy(array)
                inputs.append(tensor)
            return lambda: client.infer(name, inputs, client_timeout=120)

        def http_call() -> Callable[[], None]:
            client = httpclient.InferenceServerClient(f"{host}:{http_port}", network_timeout=120)
            inputs = []
            for key, array in arrays.items():
                tensor = httpclient.InferInput(key, list(array.shape), "FP32")
                tensor.set_data_from_numpy(array, binary_data=True)
                inputs.append(tensor)
            outputs = [httpclient.InferRequestedOutput(p.get_any_name(), binary_data=True) for p in compiled.outputs]
            return lambda: client.infer(name, inputs, outputs=outputs)

        element = struct.pack("<I", len(data)) + data
        binary_header = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                                "parameters": {"binary_data_size": len(element)}}],
                                    "parameters": {"binary_data_output": True}}).encode()
        json_body = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                            "data": [base64.b64encode(data).decode()]}]}).encode()

        def post(body: bytes, headers: dict[str, str]) -> None:
            conn = http.client.HTTPConnection(host, http_port, timeout=120)
            conn.request("POST", f"/v2/models/{name}-pipeline/infer", body, headers)
            response = conn.getresponse()
            assert response.status == 200, response.read()[:300]
            response.read()
            conn.close()

        pipeline = {
            "local": lambda: local(read_image(args.image)),
            "JSON (base64)": lambda: post(json_body, {"Content-Type": "application/json"}),
            "binary extension": lambda: post(binary_header + element, {
                "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(binary_header))}),
        }
        if args.no_pipeline:
            pipeline = {}
        raw = {"local": local_call, "gRPC": grpc_call, "HTTP binary": http_call}
        rates: dict[tuple[str, int], list[float]] = {}
        latencies: dict[str, list[float]] = {}
        for round_ in range(args.rounds):
            for clients in (1, args.clients):
                for label, make in raw.items():
                    value = rate(make, clients, args.duration)
                    rates.setdefault((label, clients), []).append(value)
                    print(f"  round {round_ + 1}: raw {label}, {clients} client(s): {value:.2f} req/s", flush=True)
            for label, call in pipeline.items():
                call()  # warm-up
                times = []
                for _ in range(args.pipeline_n):
                    start = time.perf_counter()
                    call()
                    times.append((time.perf_counter() - start) * 1e3)
                latencies.setdefault(label, []).append(statistics.median(times))
                print(f"  round {round_ + 1}: pipeline {label}: {statistics.median(times):.1f} ms/image", flush=True)
    finally:
        stop_server(process)

    print("\n| raw tensors | clients | req/s (median of rounds) | vs local |")
    print("|---|---|---|---|")
    for clients in (1, args.clients):
        base = statistics.median(rates[("local", clients)])
        for label in raw:
            value = statistics.median(rates[(label, clients)])
            print(f"| {label} | {clients} | {value:.2f} | {value / base:.2f}x |")
    if not latencies:
        return
    print("\n| pipeline, 1 client | ms/image (median of rounds) | vs local |")
    print("|---|---|---|")
    base = statistics.median(latencies["local"])
    for label, values in latencies.items():
        print(f"| {label} | {statistics.median(values):.1f} | {statistics.median(values) / base:.2f}x |")


if __name__ == "__main__":
    main()
