"""A Triton Inference Server (through nvidia-pytriton) serving OpenVINO IRs, for the remote tests.

Runs in its own environment (pytriton pins NumPy < 2; see ``tests/triton.py``), never imported
by ovseg or the test process. Each model of the JSON spec is an IR run by OpenVINO (f32) inside
pytriton's Python callable, under the IR's own tensor names::

    python triton_server.py SPEC.json

    SPEC = {"grpc_port": 8001, "http_port": 8000, "metrics_port": 8002, "workspace": "/tmp/...",
            "models": [{"name": "standin", "xml": "/path/model.xml",
                        "instances": 2,          # concurrent requests the model runs
                        "delay_s": 0,            # sleep before answering (a slow server)
                        "declare": {"raw_masks": ["FP32", [100, 81, 14, 14]]},  # metadata lies
                        "reply": {"raw_masks": ["FP64", null]}}]}   # replies differ from metadata

``declare`` changes what the model's metadata says an output is; ``reply`` changes what the
server actually returns (a datatype and/or a shape: the array is cast and cut or tiled). It
prints ``READY`` on stdout once Triton serves every model, and runs until SIGTERM / SIGINT.
"""

from __future__ import annotations

import json
import signal
import sys
import time

import numpy as np
import openvino as ov
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

DTYPES = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8}
OV_TO_NP = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i32": np.int32, "i64": np.int64, "u8": np.uint8}


def _reshape(array: np.ndarray, shape: list[int] | None) -> np.ndarray:
    if shape is None:
        return array
    flat = np.resize(array.ravel(), int(np.prod(shape)))
    return flat.reshape(shape)


def make_callables(spec: dict, core: ov.Core) -> tuple[list, list[Tensor], list[Tensor]]:
    model = core.read_model(spec["xml"])
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "THROUGHPUT"})
    declare = spec.get("declare", {})
    reply = spec.get("reply", {})
    delay_s = float(spec.get("delay_s", 0))

    def tensor(port: ov.Output) -> Tensor:
        name = port.get_any_name()
        dtype = OV_TO_NP[port.get_element_type().get_type_name()]
        shape = tuple(d.get_length() if d.is_static else -1 for d in port.get_partial_shape())
        if name in declare:
            dtype = DTYPES[declare[name][0]] if declare[name][0] else dtype
            shape = tuple(declare[name][1]) if declare[name][1] is not None else shape
        return Tensor(name=name, dtype=dtype, shape=shape)

    inputs = [tensor(p) for p in compiled.inputs]
    outputs = [tensor(p) for p in compiled.outputs]

    def one_instance() -> object:
        request = compiled.create_infer_request()

        def infer(requests: list) -> list[dict[str, np.ndarray]]:
            answers = []
            for req in requests:
                if delay_s:
                    time.sleep(delay_s)
                feed = {port.get_any_name(): np.asarray(req[port.get_any_name()]) for port in compiled.inputs}
                request.infer(feed)
                answer = {}
                for port in compiled.outputs:
                    name = port.get_any_name()
                    value = np.array(request.get_tensor(port).data, copy=True)
                    if name in reply:
                        dtype, shape = reply[name]
                        value = _reshape(value, shape).astype(DTYPES[dtype] if dtype else value.dtype)
                    answer[name] = value
                answers.append(answer)
            return answers

        return infer

    return [one_instance() for _ in range(int(spec.get("instances", 2)))], inputs, outputs


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    config = TritonConfig(
        http_address="127.0.0.1", http_port=spec["http_port"], grpc_address="127.0.0.1", grpc_port=spec["grpc_port"],
        metrics_address="127.0.0.1", metrics_port=spec["metrics_port"], allow_metrics=False, log_verbose=0,
        exit_timeout_secs=2,
    )
    core = ov.Core()
    with Triton(config=config, workspace=spec.get("workspace")) as triton:
        for model_spec in spec["models"]:
            callables, inputs, outputs = make_callables(model_spec, core)
            triton.bind(
                model_name=model_spec["name"], infer_func=callables, inputs=inputs, outputs=outputs,
                config=ModelConfig(batching=False), strict=False,
            )
        signal.signal(signal.SIGTERM, lambda *_: triton.stop())
        triton.run()
        print("READY", flush=True)
        try:
            while True:
                time.sleep(0.5)
                if not triton.is_alive():
                    break
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
