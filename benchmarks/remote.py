"""Local e2e FPS against remote e2e FPS (KServe v2 over loopback), original and slim export.

Each round runs, one after the other in this process, ``ovseg bench --mode e2e`` (JPEG read,
preprocessed, inferred, decoded to box-local masks, every iteration) on the local model, then on
every served URL, so that a change in the machine's load touches every configuration alike.
The table gives FPS per round, the median, the ratio to the local median, and the bytes one
frame moves over the network (request + reply, tensors only, from the model's metadata).

Without ``--url``, it starts Triton (nvidia-pytriton, its environment built under /tmp as the
tests build it, see tests/triton.py) on 127.0.0.1 serving ``--model`` as ``plain`` and its slim
export (``ovseg export``) as ``slim``, runs OpenVINO f32 inside, and measures gRPC and HTTP for
both. With ``--url`` (repeatable), it measures those URLs instead, e.g. against ``ovseg serve``
or OpenVINO Model Server::

    python benchmarks/remote.py --model ../shared/fixtures/models/standin-yolov5s-seg-0033-interface.xml \\
        --images ../shared/fixtures/coco-val2017-lightly/images
    python benchmarks/remote.py --model M.xml --images DIR --url grpc://127.0.0.1:8081/m --url grpc://127.0.0.1:8081/m-slim

The server shares this machine's cores with the client: over loopback the remote figure is what
the network path costs on top of the same inference, not a second machine's gain.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from ovseg.bench import BenchOptions, run_bench
from ovseg.export import export_slim
from ovseg.remote import RemoteModel
from ovseg.remote_url import parse_remote_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark

_BYTES = {"FP32": 4, "FP16": 2, "FP64": 8, "INT32": 4, "INT64": 8, "UINT8": 1, "INT8": 1, "BOOL": 1}


def frame_bytes(url: str, timeout_s: float) -> tuple[int, int]:
    """(request, reply) tensor bytes of one frame, from the served model's metadata."""
    model = RemoteModel(parse_remote_url(url), timeout_s=timeout_s)
    sizes = {name: int(np.prod([max(int(d), 1) for d in shape])) * _BYTES.get(model.datatypes[name], 4)
             for name, shape in model.shapes.items()}
    request = sum(sizes[p.name] for p in model.inputs)
    reply = sum(sizes[p.name] for p in model.outputs)
    model.close()
    return request, reply


def measure(model: str, images: list[Path], args: argparse.Namespace) -> float:
    remote = model.startswith(("grpc://", "http://", "https://"))
    options = BenchOptions(
        model=model,
        mode="e2e",
        inputs=tuple(images),
        preload=args.preload,
        hint="none" if remote else "throughput",
        infer_precision=None if remote else "f32",
        niter=args.niter,
        nireq=args.nireq_remote if remote else None,
        threshold=args.threshold,
        remote_timeout_s=args.remote_timeout,
    )
    return run_bench(options).fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the local IR (and, without --url, what Triton serves)")
    parser.add_argument("--images", required=True, help="folder of JPEG images read every iteration")
    parser.add_argument("--url", action="append", default=[], help="a served model's URL to measure (repeatable)")
    parser.add_argument("--niter", type=int, default=24, help="frames per run (default 24)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--nireq-remote", type=int, default=4, help="requests in flight to the server (default 4)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--preload", action="store_true", help="decode the images once (no JPEG read in the loop)")
    parser.add_argument("--remote-timeout", type=float, default=60.0)
    parser.add_argument("--instances", type=int, default=2, help="Triton: concurrent requests per model (default 2)")
    args = parser.parse_args()

    images = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:16]
    if not images:
        raise SystemExit(f"remote.py: no images in {args.images}")
    server = None
    urls = list(args.url)
    work = Path(tempfile.mkdtemp(prefix="ovseg-remote-bench-"))
    try:
        if not urls:
            from tests.triton import TritonServer

            slim = export_slim(args.model, work / "slim.xml").output
            server = TritonServer(
                [{"name": "plain", "xml": str(Path(args.model).resolve()), "instances": args.instances},
                 {"name": "slim", "xml": str(slim), "instances": args.instances}],
                work,
            ).start()
            urls = [server.grpc_url("plain"), server.grpc_url("slim"), server.http_url("plain"), server.http_url("slim")]
        sizes = {url: frame_bytes(url, args.remote_timeout) for url in urls}
        configs = ["local", *urls]
        fps: dict[str, list[float]] = {c: [] for c in configs}
        for round_ in range(args.rounds):
            for config in configs:
                value = measure(args.model if config == "local" else config, images, args)
                fps[config].append(value)
                print(f"round {round_ + 1}: {config}: {value:.2f} FPS", file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(machine())
    print(f"model {Path(args.model).name}, e2e{' (preloaded)' if args.preload else ' (JPEG read every frame)'}, "
          f"{args.niter} frames a run, {args.rounds} rounds, threshold {args.threshold:g}; local: f32, THROUGHPUT, "
          f"its optimal requests; remote: {args.nireq_remote} requests in flight"
          + (f", Triton {args.instances} instances per model (OpenVINO f32 inside), same machine" if server else ""))
    base = statistics.median(fps["local"])
    print(f"{'configuration':<48} {'FPS per round':<26} {'median':>7} {'x local':>8} {'MB/frame (req + reply)':>24}")
    for config in configs:
        rounds = " ".join(f"{v:.2f}" for v in fps[config])
        median = statistics.median(fps[config])
        moved = "-" if config == "local" else f"{sizes[config][0] / 1e6:.2f} + {sizes[config][1] / 1e6:.2f}"
        print(f"{config:<48} {rounds:<26} {median:7.2f} {median / base:8.2f} {moved:>24}")
    print("goal: slim over gRPC >= 0.9x local e2e")


if __name__ == "__main__":
    main()
