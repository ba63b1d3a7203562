"""Throughput runs in the manner of OpenVINO's ``benchmark_app``, plus end-to-end runs.

Two modes:

- ``infer``: like ``benchmark_app``'s inference-only mode. The input tensors of every infer
  request are prepared once (from the given images, round-robin, or a synthetic frame), then
  requests are restarted as fast as they finish on an :class:`~openvino.AsyncInferQueue`.
  Latency is each request's own ``latency``.
- ``e2e``: what an application gets. Each iteration reads an image file (or, with
  ``preload``, takes an already decoded frame, as a camera loop does), then preprocesses,
  infers and decodes it to full-resolution (box-local) instance masks through :class:`ovseg.pipeline.Pipeline`.
  Latency is from the start of the read to the result's arrival; per-stage latencies are kept.

:func:`run_bench` returns a :class:`BenchReport`; :meth:`BenchReport.to_json` gives
``benchmark_app``'s ``-json_stats`` layout (``cmd_options``, ``configuration_setup``,
``execution_results``; values as strings, as ``benchmark_app`` writes them). Nothing here
prints: the ``ovseg bench`` command formats the report.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import openvino as ov

from .errors import ConfigError
from .images import read_image
from .model import compiled_property
from .options import DEFAULT_BENCH_S, DEFAULT_REMOTE_TIMEOUT_S, HINTS, INFER_PRECISIONS
from .pipeline import Pipeline, optimal_requests
from .remote_url import looks_remote
from .segmenter import Segmenter
from .sources import reduced_frame

__all__ = [
    "BenchMode",
    "BenchOptions",
    "BenchReport",
    "StageStats",
    "HINTS",
    "DEFAULT_DURATION_S",
    "compile_properties",
    "percentile",
    "synthetic_frame",
    "run_bench",
]

logger = logging.getLogger(__name__)

BenchMode = Literal["infer", "e2e"]
DEFAULT_DURATION_S = DEFAULT_BENCH_S


@dataclass(frozen=True)
class BenchOptions:
    """What to measure; field names follow ``benchmark_app``'s long options.

    Attributes:
        model: IR ``.xml`` or ``.onnx`` path, or a model catalogue name (see ``ovseg models``).
        device: OpenVINO device string.
        mode: ``"infer"`` or ``"e2e"`` (see the module docstring).
        inputs: image files (directories already expanded); required for ``e2e``.
        preload: ``e2e`` only: decode the images once, iterate over decoded frames.
        hint: ``PERFORMANCE_HINT``: ``throughput``, ``latency``, ``cumulative_throughput`` or
            ``none`` (no hint set).
        nireq: infer requests (default: ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``).
        nstreams: ``NUM_STREAMS`` (a number or ``AUTO``).
        nthreads: ``INFERENCE_NUM_THREADS``.
        time_s: run at least this long (seconds); with ``niter`` too, both must be reached.
        niter: run at least this many iterations (rounded up to a multiple of ``nireq`` in
            ``infer`` mode, as ``benchmark_app`` does).
        infer_precision: ``INFERENCE_PRECISION_HINT`` (``f32``, ``bf16``, ``f16``).
        cache_dir: ``CACHE_DIR`` for compiled blobs.
        model_cache: the model cache catalogue names are read from (``--cache-dir``).
        latency_percentile: the percentile reported as "latency" (1..100, 50 = median).
        threshold, paste, resize: the Segmenter's settings (``e2e`` decodes with them;
            ``None``: the Segmenter's default paste, the model's own resize rule).
        warmup: run one inference before measuring (``benchmark_app``'s first inference).
        reduced_read: ``e2e`` only: read large JPEGs at a reduced scale in libjpeg
            (:mod:`ovseg.jpeg`; results still in full-size coordinates).
        remote_timeout_s: a served model's (``model`` a URL) bound of every call, seconds; the
            compile options (``device``, ``hint``, ``nstreams``, ``nthreads``, ``infer_precision``,
            ``cache_dir``) do not apply to it.
    """

    model: str | Path
    device: str = "CPU"
    mode: BenchMode = "infer"
    inputs: tuple[Path, ...] = ()
    preload: bool = False
    hint: str = "throughput"
    nireq: int | None = None
    nstreams: str | None = None
    nthreads: int | None = None
    time_s: float | None = None
    niter: int | None = None
    infer_precision: str | None = None
    cache_dir: str | None = None
    model_cache: str | None = None
    latency_percentile: int = 50
    threshold: float = 0.5
    paste: str | None = None
    resize: str | None = None
    warmup: bool = True
    reduced_read: bool = False
    remote_timeout_s: float = DEFAULT_REMOTE_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.mode not in ("infer", "e2e"):
            raise ConfigError(f"expected mode 'infer' or 'e2e', got {self.mode!r}")
        if self.hint not in HINTS:
            raise ConfigError(f"expected hint one of {', '.join(HINTS)}, got {self.hint!r}")
        if self.infer_precision is not None and self.infer_precision not in INFER_PRECISIONS:
            raise ConfigError(
                f"expected infer_precision one of {', '.join(INFER_PRECISIONS)}, got {self.infer_precision!r}"
            )
        for name in ("nireq", "nthreads", "niter"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"expected {name} >= 1, got {value}")
        if self.time_s is not None and not self.time_s > 0:
            raise ConfigError(f"expected a time limit > 0 seconds, got {self.time_s}")
        if not 1 <= self.latency_percentile <= 100:
            raise ConfigError(f"expected latency_percentile in [1, 100], got {self.latency_percentile}")
        if self.nstreams is not None and not (self.nstreams.isdigit() or self.nstreams.upper() == "AUTO"):
            raise ConfigError(f"expected nstreams a number or AUTO, got {self.nstreams!r}")
        if self.mode == "e2e" and not self.inputs:
            raise ConfigError("expected image files (-i IMAGE_OR_DIR) for --mode e2e, got none")
        if self.preload and self.mode != "e2e":
            raise ConfigError("expected --preload with --mode e2e only, got it with --mode infer")
        if self.reduced_read and self.mode != "e2e":
            raise ConfigError("expected --reduced-read with --mode e2e only, got it with --mode infer")

    @property
    def duration_s(self) -> float:
        """The time limit in effect: ``time_s``, else 0 with ``niter``, else the default."""
        if self.time_s is not None:
            return float(self.time_s)
        return 0.0 if self.niter else DEFAULT_DURATION_S


@dataclass(frozen=True)
class StageStats:
    """Latency statistics of one stage, milliseconds."""

    median: float
    average: float
    min: float
    max: float
    percentile: float

    @classmethod
    def of(cls, values_ms: Sequence[float], pct: int = 50) -> StageStats:
        if not values_ms:
            return cls(math.nan, math.nan, math.nan, math.nan, math.nan)
        ordered = sorted(values_ms)
        return cls(
            median=percentile(ordered, 50),
            average=sum(ordered) / len(ordered),
            min=ordered[0],
            max=ordered[-1],
            percentile=percentile(ordered, pct),
        )


@dataclass(frozen=True)
class BenchReport:
    """The outcome of one run (all times in milliseconds unless named otherwise).

    Attributes:
        options: what was asked.
        compile_ms: compile time (both input sizes for ``resize="short-long"``).
        first_inference_ms: latency of the warm-up inference (NaN without warm-up).
        count: iterations (frames) measured.
        duration_ms: wall time from the first submission to the last result.
        latency: per frame: the request's latency (``infer``) or read-to-result (``e2e``).
        stages: ``e2e`` only: ``read``, ``preprocess``, ``infer``, ``decode``.
        peak_rss_mb: the process's peak resident memory so far (MiB).
        cpu_ms_per_frame: CPU time (user + system, all threads) the process spent during the
            measured loop, per frame: what one frame costs the machine, which stays meaningful
            when other processes compete for the cores and wall-clock FPS does not.
        setup: what the device settled on (streams, requests, precision, hint, ...).
        instances: ``e2e`` only: instances decoded in all measured frames.
    """

    options: BenchOptions
    compile_ms: float
    first_inference_ms: float
    count: int
    duration_ms: float
    latency: StageStats
    stages: Mapping[str, StageStats] = field(default_factory=dict)
    peak_rss_mb: float = math.nan
    cpu_ms_per_frame: float = math.nan
    setup: Mapping[str, str] = field(default_factory=dict)
    instances: int = 0

    @property
    def fps(self) -> float:
        return self.count / (self.duration_ms / 1e3) if self.duration_ms > 0 else 0.0

    def to_json(self, cmd_options: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """``benchmark_app``'s ``-json_stats`` layout, with ovseg's additions (mode, stages,
        peak RSS) in the same sections. ``cmd_options`` default to the options' fields."""
        opts = self.options
        if cmd_options is None:
            cmd_options = {k: v for k, v in vars(opts).items()}
        pct = opts.latency_percentile
        results: dict[str, Any] = {
            "compile model time (ms)": f"{self.compile_ms:.2f}",
            "first inference time (ms)": f"{self.first_inference_ms:.2f}",
            "total execution time (ms)": f"{self.duration_ms:.2f}",
            "total number of iterations": str(self.count),
            "latency (ms)" if pct == 50 else f"latency ({pct} percentile) (ms)": f"{self.latency.percentile:.2f}",
            "avg latency": f"{self.latency.average:.2f}",
            "min latency": f"{self.latency.min:.2f}",
            "max latency": f"{self.latency.max:.2f}",
            "cpu time per frame (ms)": f"{self.cpu_ms_per_frame:.2f}",
        }
        for stage, stats in self.stages.items():
            results[f"{stage} latency (ms)"] = f"{stats.median:.2f}"
            results[f"{stage} avg latency"] = f"{stats.average:.2f}"
        if opts.mode == "e2e":
            results["peak RSS (MB)"] = f"{self.peak_rss_mb:.1f}"
            results["instances"] = str(self.instances)
        results["throughput"] = f"{self.fps:.2f}"
        return {
            "cmd_options": {str(k): _text(v) for k, v in cmd_options.items()},
            "configuration_setup": dict(self.setup),
            "execution_results": results,
        }


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """``benchmark_app``'s percentile: the element at ``ceil(n * pct / 100) - 1`` of the
    sorted values (no interpolation)."""
    if not sorted_values:
        return math.nan
    return float(sorted_values[max(0, math.ceil(len(sorted_values) * pct / 100) - 1)])


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, all threads (seconds)."""
    return time.process_time()


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (``getrusage``; NaN where there is none)."""
    try:
        import resource  # POSIX only
    except ImportError:  # pragma: no cover (Windows)
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def compile_properties(options: BenchOptions) -> dict[str, Any]:
    """OpenVINO properties for ``compile_model`` from the benchmark_app-style options."""
    config: dict[str, Any] = {}
    if options.hint != "none":
        config["PERFORMANCE_HINT"] = options.hint.upper()
    if options.nstreams is not None:
        config["NUM_STREAMS"] = options.nstreams.upper()
    if options.nthreads is not None:
        config["INFERENCE_NUM_THREADS"] = int(options.nthreads)
    if options.infer_precision is not None:
        config["INFERENCE_PRECISION_HINT"] = options.infer_precision
    if options.cache_dir is not None:
        config["CACHE_DIR"] = options.cache_dir
    return config


def synthetic_frame(image_hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A BGR uint8 ``(H, W, 3)`` frame of smooth random blobs (not noise, so detectors do
    some work on it), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(1, image_hw[0] // 32), max(1, image_hw[1] // 32), 3), dtype=np.uint8)
    return cv2.resize(small, (image_hw[1], image_hw[0]), interpolation=cv2.INTER_CUBIC)


def _setup(seg: Segmenter, options: BenchOptions, nireq: int) -> dict[str, str]:
    compiled = next(iter(seg.compiled_models.values()), None)  # None: a served model

    def prop(name: str) -> str:
        return compiled_property(compiled, name)

    return {
        "topology": seg.model_path.stem,
        "target device": seg.device if seg.remote_url else options.device,
        "API": "async",
        "inference_only": str(options.mode == "infer"),
        "mode": options.mode,
        "preload": str(options.preload),
        "reduced_read": str(options.reduced_read),
        "precision": prop("INFERENCE_PRECISION_HINT") or "UNSPECIFIED",
        "performance hint": prop("PERFORMANCE_HINT"),
        "batch size": "1",
        "number of iterations": str(options.niter or 0),
        "number of parallel infer requests": str(nireq),
        "duration (ms)": f"{options.duration_s * 1e3:.0f}",
        f"number of {options.device} streams": prop("NUM_STREAMS"),
        "input sizes": ",".join(f"{h}x{w}" for h, w in seg.input_sizes),
        "threshold": f"{seg.threshold:g}",
        "paste": seg.paste,
        "resize": seg.resize,
    }


@dataclass
class _Loop:
    """What a measuring loop returns."""

    first_ms: float
    count: int
    duration_ms: float
    cpu_s: float
    times_ms: list[float]
    nireq: int
    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    instances: int = 0


def _oriented(seg: Segmenter, frame: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """``frame``, transposed if it would not go through the network of ``input_hw``."""
    if seg.input_hw_for(frame.shape[:2]) != input_hw:  # the other network of short-long
        return np.ascontiguousarray(frame.transpose(1, 0, 2))
    return frame


def _run_infer(seg: Segmenter, options: BenchOptions, frames: Sequence[np.ndarray]) -> _Loop:
    """benchmark_app's ``async_inference_only`` loop on ovseg-prepared tensors, after its warm-up
    (one inference on one of the measured requests, whose latency is the first inference time)."""
    if seg.remote_url is not None:  # requests to the server, as many in flight
        infer_queue = seg.infer_queues(options.nireq)[seg.info.input_hw]
    else:
        compiled = seg.compiled_models[seg.info.input_hw]
        infer_queue = ov.AsyncInferQueue(compiled, options.nireq or optimal_requests(compiled))
    nireq = len(infer_queue)
    for i, request in enumerate(infer_queue):
        # Infer mode runs the model's own input size (as benchmark_app does).
        seg.fill_inputs(request, _oriented(seg, frames[i % len(frames)], seg.info.input_hw))
    first_ms = math.nan
    if options.warmup:
        idle = infer_queue.get_idle_request_id()
        infer_queue.start_async()
        infer_queue.wait_all()
        first_ms = float(infer_queue[idle].latency)
    niter = options.niter
    if niter:
        niter = math.ceil(niter / nireq) * nireq
    duration_s = options.duration_s
    times: list[float] = []
    in_flight: set[int] = set()
    iteration = 0
    cpu_start = cpu_seconds()
    start = time.perf_counter()
    elapsed = 0.0
    while (niter and iteration < niter) or (duration_s and elapsed < duration_s) or iteration % nireq:
        idle = infer_queue.get_idle_request_id()
        if idle in in_flight:
            times.append(float(infer_queue[idle].latency))
        else:
            in_flight.add(idle)
        infer_queue.start_async()
        iteration += 1
        elapsed = time.perf_counter() - start
    infer_queue.wait_all()
    total_s = max(time.perf_counter() - start, 1e-9)
    times.extend(float(infer_queue[i].latency) for i in in_flight)
    return _Loop(first_ms, iteration, total_s * 1e3, cpu_seconds() - cpu_start, times, nireq)


def _reader(seg: Segmenter, reduced: bool) -> Callable[[Path], Any]:
    """How e2e reads an image file: whole (``read_image``), or as a reduced-scale
    :class:`~ovseg.sources.Frame` that carries the file's full size."""
    return functools.partial(reduced_frame, reduce_to=seg.input_hw_for) if reduced else read_image


def _run_e2e(seg: Segmenter, options: BenchOptions, preloaded: Sequence[Any] | None, probe: np.ndarray) -> _Loop:
    """The streaming loop; warm-up as benchmark_app's: one frame through one of the measured
    requests (per input size), its inference latency is the first inference time."""
    pipe = Pipeline(seg, nireq=options.nireq)
    first_ms = math.nan
    if options.warmup:
        warm = list(pipe.stream(_oriented(seg, probe, hw) for hw in seg.input_sizes))
        first_ms = float(warm[0].speed_ms.get("infer", math.nan))
    paths, read = options.inputs, _reader(seg, options.reduced_read)
    starts: deque[tuple[float, float]] = deque()
    duration_s = options.duration_s
    niter = options.niter or 0
    t_start = 0.0

    def source() -> Iterator[Any]:
        i = 0
        while (niter and i < niter) or (duration_s and time.perf_counter() - t_start < duration_s):
            t0 = time.perf_counter()
            if preloaded is not None:
                frame = preloaded[i % len(preloaded)]
            else:
                frame = read(paths[i % len(paths)])
            starts.append((t0, (time.perf_counter() - t0) * 1e3))
            i += 1
            yield frame

    latency: list[float] = []
    stages: dict[str, list[float]] = {"read": [], "preprocess": [], "infer": [], "decode": []}
    instances = 0
    cpu_start = cpu_seconds()
    t_start = time.perf_counter()
    for _, result in pipe.stream_frames(source()):
        t_end = time.perf_counter()
        t0, read_ms = starts.popleft()
        latency.append((t_end - t0) * 1e3)
        stages["read"].append(read_ms)
        for stage in ("preprocess", "infer", "decode"):
            stages[stage].append(float(result.speed_ms.get(stage, math.nan)))
        instances += len(result)
    total_ms = max(time.perf_counter() - t_start, 1e-9) * 1e3
    return _Loop(first_ms, len(latency), total_ms, cpu_seconds() - cpu_start, latency, pipe.nireq, stages, instances)


def run_bench(options: BenchOptions, *, core: ov.Core | None = None) -> BenchReport:
    """Compile, warm up and measure as ``options`` say.

    Raises:
        ModelError, DeviceError: the model cannot be read or compiled as asked.
        ImageError: an input image cannot be decoded.
        ConfigError: inconsistent options (see :class:`BenchOptions`).
    """
    local: dict[str, Any] = {"device": options.device, "config": compile_properties(options), "core": core,
                             "cache_dir": options.model_cache}
    seg = Segmenter(
        options.model,
        threshold=options.threshold,
        resize=options.resize,  # type: ignore[arg-type]
        **({"remote_timeout_s": options.remote_timeout_s} if looks_remote(options.model) else local),
        **({"paste": options.paste} if options.paste else {}),
    )
    logger.info("compiled %s for %s in %.1f ms", seg.model_path.name, options.device, seg.compile_ms)
    preloaded: list[np.ndarray] | None = None
    if options.inputs and (options.mode == "infer" or options.preload):
        read = read_image if options.mode == "infer" else _reader(seg, options.reduced_read)
        preloaded = [read(p) for p in options.inputs]
    probe = getattr(preloaded[0], "image", preloaded[0]) if preloaded else (
        read_image(options.inputs[0]) if options.inputs else synthetic_frame(seg.info.input_hw)
    )
    pct = options.latency_percentile
    if options.mode == "infer":
        loop = _run_infer(seg, options, preloaded or [probe])
    else:
        loop = _run_e2e(seg, options, preloaded if options.preload else None, probe)
    return BenchReport(
        options=options,
        compile_ms=seg.compile_ms,
        first_inference_ms=loop.first_ms,
        count=loop.count,
        duration_ms=loop.duration_ms,
        latency=StageStats.of(loop.times_ms, pct),
        stages={name: StageStats.of(values, pct) for name, values in loop.stage_ms.items()},
        peak_rss_mb=peak_rss_mb(),
        cpu_ms_per_frame=loop.cpu_s * 1e3 / loop.count if loop.count else math.nan,
        setup=_setup(seg, options, loop.nireq),
        instances=loop.instances,
    )
