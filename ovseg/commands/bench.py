"""``ovseg bench --model M [--mode infer|e2e] [-i IMAGE_OR_DIR...]``: throughput like benchmark_app.

The options that matter keep ``benchmark_app``'s spelling (``-d``, ``-hint``, ``-nireq``,
``-nstreams``, ``-nthreads``, ``-t``, ``-niter``, ``-infer_precision``, ``-cdir``,
``-latency_percentile``, ``-json_stats``), so a command line can be moved between the two.
One difference: ``-json_stats`` takes the file to write (benchmark_app's is a flag that picks
JSON for the report in ``-report_folder``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ImageError
from ..options import DEFAULT_BENCH_S, HINTS, INFER_PRECISIONS, PASTE_MODES, RESIZE_POLICIES
from .common import (
    add_cache_option,
    add_reduced_read_option,
    add_remote_option,
    expand_inputs,
    positive_float_arg,
    refuse_local_options,
    threshold_arg,
)

#: bench's options that configure a model compiled here (dest: flag), refused with a model URL.
_LOCAL_ONLY = {
    "device": "-d", "perf_hint": "-hint", "number_streams": "-nstreams", "number_threads": "-nthreads",
    "infer_precision": "-infer_precision", "cache_dir": "-cdir", "model_cache": "--cache-dir",
}

if TYPE_CHECKING:
    from ..bench import BenchOptions, BenchReport


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench",
        help="measure throughput and latency like benchmark_app (inference only or end to end)",
        description="Measure frames per second and latency. --mode infer fills the input tensors "
        "once and runs inference only, like benchmark_app; --mode e2e reads, preprocesses, infers "
        "and decodes every frame to full-resolution (box-local) instance masks, as an application does.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "-m", "--model", required=True,
        help="model IR .xml (its .bin beside it), .onnx, a catalogue name, or a served model's URL (grpc://HOST:PORT/MODEL, "
        "http://HOST:PORT/v2/models/MODEL)",
    )
    add_cache_option(parser, dest="model_cache")
    parser.add_argument("-d", "--device", help="OpenVINO device (default CPU)")
    add_remote_option(parser)
    parser.add_argument(
        "--mode", choices=("infer", "e2e"), default="infer",
        help="what one iteration does (default infer)",
    )
    parser.add_argument(
        "-i", "--input", nargs="+", default=[], metavar="IMAGE_OR_DIR",
        help="images (files or directories); infer: tensors prepared from them once (default: a synthetic "
        "frame); e2e: read and decoded every iteration (required)",
    )
    parser.add_argument(
        "--preload", action="store_true",
        help="e2e: decode the images once, iterate over decoded frames",
    )
    parser.add_argument(
        "-hint", "--perf_hint", choices=HINTS,
        help="performance hint (default throughput)",
    )
    parser.add_argument(
        "-nireq", "--number_infer_requests", type=int, metavar="N",
        help="infer requests (default: the device's optimum)",
    )
    parser.add_argument("-nstreams", "--number_streams", metavar="N|AUTO", help="device streams (NUM_STREAMS)")
    parser.add_argument("-nthreads", "--number_threads", type=int, metavar="N", help="CPU inference threads")
    parser.add_argument(
        "-t", "--time", type=positive_float_arg, metavar="SECONDS",
        help=f"run time in seconds (default {DEFAULT_BENCH_S:g} unless -niter is given)",
    )
    parser.add_argument("-niter", "--number_iterations", type=int, metavar="N", help="iterations to run")
    parser.add_argument("-infer_precision", choices=INFER_PRECISIONS, help="inference precision hint")
    parser.add_argument("-cdir", "--cache_dir", metavar="DIR", help="OpenVINO's cache of compiled models (CACHE_DIR)")
    parser.add_argument(
        "-latency_percentile", "--latency_percentile", type=int, default=50, metavar="P",
        help="percentile reported as latency, 1..100 (default 50: median)",
    )
    parser.add_argument(
        "-json_stats", "--json_stats", metavar="FILE",
        help="write the report as JSON (benchmark_app's layout)",
    )
    parser.add_argument(
        "--threshold", type=threshold_arg, default=0.5,
        help="e2e: keep detections with score >= T (default 0.5)",
    )
    parser.add_argument(
        "--paste", choices=PASTE_MODES, help="e2e: mask paste algorithm (default: the Segmenter's)"
    )
    parser.add_argument(
        "--resize",
        choices=RESIZE_POLICIES,
        help="resize policy (default: the model's own; fit for the 0033 family)",
    )
    add_reduced_read_option(parser)
    parser.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    from ..bench import BenchOptions

    remote = refuse_local_options(args, _LOCAL_ONLY)
    inputs = tuple(expand_inputs(args.input))
    if args.input and not inputs:
        raise ImageError(f"expected image files or directories with images, got none in {args.input}")
    missing = [str(p) for p in inputs if not p.is_file()]
    if missing:
        raise ImageError(f"expected image files, got missing path(s): {', '.join(missing[:3])}")
    return BenchOptions(
        model=args.model,
        device=args.model if remote else (args.device or "CPU"),
        mode=args.mode,
        inputs=inputs,
        preload=args.preload,
        hint=args.perf_hint or ("none" if remote else "throughput"),
        nireq=args.number_infer_requests,
        nstreams=args.number_streams,
        nthreads=args.number_threads,
        time_s=args.time,
        niter=args.number_iterations,
        infer_precision=args.infer_precision,
        cache_dir=args.cache_dir,
        latency_percentile=args.latency_percentile,
        threshold=args.threshold,
        paste=args.paste,
        resize=args.resize,
        model_cache=args.model_cache,
        reduced_read=args.reduced_read,
        remote_timeout_s=args.remote_timeout,
    )


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f} ms"


def format_report(report: BenchReport) -> list[str]:
    """The console report, benchmark_app's lines and order, ``[ INFO ]`` prefixed."""
    opts, setup = report.options, report.setup
    pct = opts.latency_percentile
    lat = report.latency
    lines = [
        f"Model: {opts.model} ({setup.get('input sizes', '')}), device {opts.device}, mode {opts.mode}"
        + (" (preloaded frames)" if opts.preload else "") + (" (reduced-scale JPEG reads)" if opts.reduced_read else ""),
        f"Compile model took {report.compile_ms:.2f} ms",
        f"Performance hint: {setup.get('performance hint', '') or 'none'}, precision {setup.get('precision', '')}, "
        f"streams {setup.get(f'number of {opts.device} streams', '') or 'n/a'}, "
        f"infer requests {setup.get('number of parallel infer requests', '')}",
        f"First inference took {_ms(report.first_inference_ms)}",
        f"Count:            {report.count} iterations",
        f"Duration:         {report.duration_ms:.2f} ms",
        "Latency:" if opts.mode == "infer" else "Latency (read to result):",
        f"   {'Median' if pct == 50 else f'{pct} percentile'}:{' ' * (8 if pct == 50 else 4)}{_ms(lat.percentile)}",
        f"   Average:       {_ms(lat.average)}",
        f"   Min:           {_ms(lat.min)}",
        f"   Max:           {_ms(lat.max)}",
    ]
    if report.stages:
        lines.append("Stages (median / average / max per frame):")
        for stage, stats in report.stages.items():
            lines.append(f"   {stage + ':':<14} {stats.median:8.2f} / {stats.average:8.2f} / {stats.max:8.2f} ms")
        threshold = setup.get("threshold", "")
        lines.append(f"Instances:        {report.instances} in {report.count} frames (threshold {threshold})")
        lines.append(f"Peak RSS:         {report.peak_rss_mb:.1f} MiB")
    busy = report.cpu_ms_per_frame * report.count / report.duration_ms if report.duration_ms else math.nan
    lines.append(f"CPU time:         {report.cpu_ms_per_frame:.2f} ms per frame ({busy:.2f} cores busy on average)")
    lines.append(f"Throughput:   {report.fps:.2f} FPS")
    return [f"[ INFO ] {line}" for line in lines]


def run(args: argparse.Namespace) -> int:
    from ..bench import run_bench
    from ..files import atomic_write

    options = options_from_args(args)
    report = run_bench(options)
    lines = format_report(report)
    if args.json_stats:
        cmd = {k: v for k, v in vars(args).items() if k != "func"}
        text = json.dumps(report.to_json(cmd), indent=4)
        atomic_write(Path(args.json_stats), lambda tmp: tmp.write_text(text + "\n"))
        lines.insert(-1, f"[ INFO ] Statistics report is stored to {args.json_stats}")
    for line in lines:  # the last one is "Throughput: N FPS", as benchmark_app ends
        print(line)
    return 0
