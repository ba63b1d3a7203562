"""A small KServe v2 gRPC server (grpcio, tritonclient's protocol definitions) running an IR
with OpenVINO, whose receive limit can be set: OpenVINO Model Server, KServe and most gRPC
deployments refuse messages over a limit (gRPC's default is 4 MB), Triton does not, so this is
the server that shows a request too large for the server. Binds 127.0.0.1 only."""

from __future__ import annotations

from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import openvino as ov
from tritonclient.grpc import service_pb2, service_pb2_grpc

_TYPES = {"f32": "FP32", "i32": "INT32", "i64": "INT64"}
_NP = {"FP32": np.float32, "INT32": np.int32, "INT64": np.int64}


class _Service(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, name: str, xml: Path) -> None:
        self.name = name
        self.compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def _tensors(self, ports: list) -> list:
        return [
            service_pb2.ModelMetadataResponse.TensorMetadata(
                name=p.get_any_name(), datatype=_TYPES[p.get_element_type().get_type_name()], shape=list(p.get_shape())
            )
            for p in ports
        ]

    def ModelMetadata(self, request, context):  # noqa: N802 - the protocol's name
        if request.name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"model {request.name!r} not found")
        return service_pb2.ModelMetadataResponse(
            name=self.name, versions=["1"], platform="openvino",
            inputs=self._tensors(self.compiled.inputs), outputs=self._tensors(self.compiled.outputs),
        )

    def ModelInfer(self, request, context):  # noqa: N802
        feed = {
            tensor.name: np.frombuffer(raw, dtype=_NP[tensor.datatype]).reshape(list(tensor.shape))
            for tensor, raw in zip(request.inputs, request.raw_input_contents, strict=True)
        }
        outputs = self.compiled.create_infer_request().infer(feed)
        reply = service_pb2.ModelInferResponse(model_name=self.name, model_version="1")
        for port in self.compiled.outputs:
            value = np.ascontiguousarray(outputs[port])
            reply.outputs.add(name=port.get_any_name(), datatype=_TYPES[port.get_element_type().get_type_name()],
                              shape=list(value.shape))
            reply.raw_output_contents.append(value.tobytes())
        return reply


def start(name: str, xml: Path, *, max_receive_bytes: int) -> tuple[grpc.Server, int]:
    """Start the server; returns it and its port (stop it with ``server.stop(0)``)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2),
        options=[("grpc.max_receive_message_length", max_receive_bytes), ("grpc.max_send_message_length", 2**31 - 1)],
    )
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(_Service(name, xml), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port
