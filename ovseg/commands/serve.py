"""``ovseg serve MODEL [--host H] [--http-port P] [--grpc-port Q]``: a KServe v2 server."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ConfigError
from ..options import (
    SERVE_GRPC_PORT,
    SERVE_HTTP_PORT,
    SERVE_INSTALL_HINT,
    SERVE_MAX_PIXELS,
    SERVE_MAX_REQUEST_MB,
    SERVE_MAX_UPLOAD_MB,
)
from .common import add_model_options, compile_config, positive_float_arg, positive_int_arg, segmenter_from_args


def _port(text: str) -> int:
    """argparse type: a TCP port, 0 for any free one."""
    if not text.strip().isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port in [0, 65535] (0: any free port), got {text!r}")
    return int(text)


def _name(text: str) -> str:
    """argparse type: a model name that fits a URL path segment."""
    if not text or not all(c.isalnum() or c in "._-" for c in text):
        raise argparse.ArgumentTypeError(f"expected a model name of letters, digits, '.', '_' and '-', got {text!r}")
    return text


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help=f"serve the model over KServe v2 / Open Inference Protocol, REST and gRPC ({SERVE_INSTALL_HINT})",
        description="Serve the model with KServe's model server: as raw tensors under its name (the catalogue name or "
        "the file's stem; OVMS-compatible names, shapes, datatypes and metadata, for any v2 client) and as NAME-pipeline "
        "(an encoded JPEG or PNG in, ovseg predict's per-image JSON out, for curl or a browser). Both listen on --host "
        "only (default 127.0.0.1: this machine). SIGINT or SIGTERM stops it.",
    )
    add_model_options(parser, positional=True, remote=False)
    parser.add_argument("--host", default="127.0.0.1",
                        help="the one address to listen on (default 127.0.0.1; 0.0.0.0 exposes the server to every network "
                        "the machine is on: no authentication, no TLS)")
    parser.add_argument("--http-port", type=_port, default=SERVE_HTTP_PORT, metavar="P",
                        help=f"REST port (default {SERVE_HTTP_PORT}, KServe's; 0: any free port)")
    parser.add_argument("--grpc-port", type=_port, default=SERVE_GRPC_PORT, metavar="Q",
                        help=f"gRPC port (default {SERVE_GRPC_PORT}, KServe's; 0: any free port)")
    parser.add_argument("--name", type=_name, help="serve the raw model under this name (default: catalogue name or file stem)")
    parser.add_argument("--nireq", type=positive_int_arg, metavar="N",
                        help="infer requests shared by all clients (default: the device's optimum with the THROUGHPUT hint)")
    parser.add_argument("--max-upload-mb", type=positive_float_arg, default=SERVE_MAX_UPLOAD_MB, metavar="MB",
                        help=f"largest encoded image the pipeline model takes (default {SERVE_MAX_UPLOAD_MB:g})")
    parser.add_argument("--max-pixels", type=positive_int_arg, default=SERVE_MAX_PIXELS, metavar="N",
                        help=f"largest width x height the pipeline model decodes, read from the image header before "
                        f"decoding (default {SERVE_MAX_PIXELS})")
    parser.add_argument("--max-request-mb", type=positive_float_arg, default=SERVE_MAX_REQUEST_MB, metavar="MB",
                        help=f"largest raw-tensor REST body and gRPC message, either way (default {SERVE_MAX_REQUEST_MB:g}; "
                        "one frame's raw_masks is 25 MB)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..remote_url import looks_remote

    if looks_remote(args.model):
        raise ConfigError(f"expected a model to serve from here (IR .xml, .onnx or a catalogue name), got the served "
                          f"model {args.model}: point its clients at that server instead")
    try:
        from ..serve import ServeOptions, Server, serve
    except ImportError as error:
        message = str(error) if SERVE_INSTALL_HINT in str(error) else f"ovseg serve needs KServe: {SERVE_INSTALL_HINT}"
        raise ConfigError(message) from None

    options = ServeOptions(
        host=args.host, http_port=args.http_port, grpc_port=args.grpc_port, name=args.name, nireq=args.nireq,
        max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
        max_request_bytes=int(args.max_request_mb * 2**20),
    )
    config = compile_config(args)
    config.setdefault("PERFORMANCE_HINT", "THROUGHPUT")  # several clients at once
    segmenter = segmenter_from_args(args, config=config)

    def ready(server: Server) -> None:
        host, ports = args.host, server.ports
        http_host = f"[{host}]" if ":" in host else host
        print(f"ovseg serve: {server.name} and {server.pipeline_name} on http://{http_host}:{ports['http']} (REST) and "
              f"{http_host}:{ports['grpc']} (gRPC), {server.pool.size} infer request(s) on {segmenter.device}; "
              "SIGINT or SIGTERM stops", flush=True)

    serve(segmenter, options, model_label=str(args.model), on_ready=ready)
    print("ovseg serve: stopped", file=sys.stderr, flush=True)
    return 0
