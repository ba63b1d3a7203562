"""Batch prediction on a Ray cluster: ``ovseg predict SOURCE... --ray`` and :func:`predict`.

The same inputs, options and files as the plain ``ovseg predict`` (per image ``NAME.json`` and
``NAME.png``, per video ``NAME.jsonl`` and ``NAME.mp4``, the ``--coco`` file in input order,
``--skip-existing``), made by a pool of actors across a cluster:

- **The driver** expands the inputs (folders, patterns, lists) and fixes every output stem in
  input order, exactly as the plain command does, then cuts the work into *units*: runs of
  image paths (paths travel, not pixels), and one unit per video file, so that one actor owns a
  whole video (its JSONL, MP4 and tracker stay whole).
- **A Ray Data pipeline** over the units: ``map_batches`` with an actor pool
  (``compute=ActorPoolStrategy(size=N)``) of :class:`_Worker`, each compiling the model once
  with the plain command's options. An actor decodes its images, segments them through the
  streaming pipeline (:meth:`Segmenter.stream_frames`, several in flight) and **writes the
  files itself** (:mod:`ovseg.runs`, the plain command's own code: each file complete or
  absent). Only a small report per unit travels back (lines, errors, counts, the image's COCO
  detections as text), so neither pixels nor overlays cross the network and the driver holds
  what is in flight, never the whole run.
- **The driver** takes the reports in input order (``preserve_order``), prints the plain
  command's lines and appends the COCO detections to a temporary file, renamed into place at
  the end.

Models: a path that every node sees (a shared folder, or the same file copied to each), or a
catalogue name that each node resolves in its own cache (``cache_dir`` is a path on each node),
fetching it there first if it is missing (verified, under the cache's lock: once per node).
The output folder too must be one that every node sees.

Faults: an image that cannot be read is one failed input (reported, the rest go on, exit 2);
an actor that dies is restarted by Ray and its unit run again (``max_restarts`` /
``max_task_retries``); files are renamed into place whole, the report of a unit counted once,
and temporary files left by a killed actor are removed at the end. ``^C`` stops the run and
shuts down the cluster it started.

Ray is imported only here: ``pip install "ovseg[ray]"``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, ImageError, ModelError, OvsegError
from .options import DEFAULT_PASTE, RAY_INSTALL_HINT, TRACK_CANDIDATES, PasteMode, ResizePolicy
from .runs import (
    Stems,
    Tally,
    VideoOptions,
    failure_line,
    image_done,
    image_line,
    image_stems,
    open_inputs,
    run_videos,
    video_done,
    video_stems,
    write_image_files,
)

__all__ = ["predict", "BatchReport", "INSTALL_HINT", "import_ray", "default_actors", "start_local_cluster", "run_command"]

logger = logging.getLogger(__name__)

INSTALL_HINT = RAY_INSTALL_HINT
#: Most images per unit of work (one actor call): large enough that the actor's pipeline
#: stays full, small enough that a restarted actor redoes little.
MAX_IMAGES_PER_UNIT = 64
#: How long an actor waits for another actor of its node fetching the same model.
FETCH_WAIT_S = 3600.0


def import_ray() -> Any:
    """``import ray`` (with Ray Data), or a one-line :class:`ConfigError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError(f"expected Ray for --ray, got none installed: {INSTALL_HINT}") from None
    return ray


@dataclass
class BatchReport:
    """What a batch run did.

    Attributes:
        frames: images and video frames segmented.
        instances: instances found in them.
        failed: the inputs that failed (paths, video names), in input order.
        inputs: inputs counted (images, videos and inputs that did not open).
        processing_s: seconds from the first actor ready (its model compiled) to the last report:
            what the frame rate is of, start-up excluded as in the plain command.
        startup_s: seconds to start or join the cluster.
        actor_startup_s: seconds from the pipeline's start to the first actor ready.
        actors: the actor pool's size.
        nodes: frames per node (``"ADDRESS (node ID)"``, the first 8 digits of Ray's node id).
        processes: the actor processes that reported (more than ``actors`` when one died and
            was replaced).
        interrupted: stopped by ``^C``.
        coco: the COCO file written, if any.
    """

    frames: int = 0
    instances: int = 0
    failed: list[str] = field(default_factory=list)
    inputs: int = 0
    processing_s: float = 0.0
    startup_s: float = 0.0
    actor_startup_s: float = 0.0
    actors: int = 0
    nodes: dict[str, int] = field(default_factory=dict)
    processes: set[int] = field(default_factory=set)
    interrupted: bool = False
    coco: Path | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.processing_s if self.processing_s > 0 else 0.0


# -- what runs in the actors -----------------------------------------------------------------


class _Recorder(Tally):
    """An actor's tally: failures kept for the report (the driver prints them), not printed."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[tuple[str, str]] = []

    def fail(self, what: str, error: BaseException | str) -> None:
        self.errors.append((what, str(error)))
        self.failed.append(what)


class _Lines:
    """Stands in for the plain command's progress bar inside an actor: keeps the lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str, file: Any = None) -> None:
        self.lines.append(line)

    def update(self, n: int = 1) -> None:
        pass


def ensure_model(model: str, cache_dir: str | None, *, wait_s: float = FETCH_WAIT_S) -> None:
    """On this node: a catalogue name missing from the node's cache is fetched into it
    (verified; one fetch per node and cache, the others wait for its lock). A path is left
    as it is (it must exist on every node)."""
    from .cache import catalogue_name, resolve_model
    from .catalog import load_catalog
    from .download import fetch

    named = catalogue_name(model)
    if named is None:
        return
    try:
        resolve_model(model, cache=cache_dir)
        return
    except ModelError:
        catalog = load_catalog()
        name, precision = named
        if name not in catalog or not catalog.get(name).readable:
            raise  # unknown or unreadable: the message says what to do
        entry = catalog.get(name)
        if precision is not None and precision not in entry.files:
            raise
    logger.info("%s is not in this node's model cache: fetching it", model)
    fetch(name, precision or entry.default_precision(), cache=cache_dir, catalog=catalog, wait_s=wait_s)


class _Worker:
    """One actor of the pool: compiles the model once, then segments units of work and writes
    their files. Constructed by Ray Data with the plain command's options."""

    def __init__(self, options: dict[str, Any]) -> None:
        import ray

        from .draw import Overlay
        from .remote_url import looks_remote
        from .segmenter import Segmenter

        self.options = options
        config = dict(options["config"])
        config.setdefault("PERFORMANCE_HINT", "THROUGHPUT")  # files only: frames per second
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        if cpus:  # the CPUs Ray gave this actor, not all of the node's
            config.setdefault("INFERENCE_NUM_THREADS", max(1, int(cpus)))
        extra = {"candidate_threshold": min(TRACK_CANDIDATES, options["threshold"])} if options["track"] else {}
        if looks_remote(options["model"]):  # a served model: inference there, the rest here
            if options["remote_timeout"] is not None:
                extra["remote_timeout_s"] = options["remote_timeout"]
            self.segmenter = Segmenter(options["model"], threshold=options["threshold"], paste=options["paste"],
                                       resize=options["resize"], **extra)
        else:
            ensure_model(options["model"], options["cache_dir"])
            self.segmenter = Segmenter(
                options["model"], device=options["device"] or "CPU", threshold=options["threshold"], config=config,
                paste=options["paste"], resize=options["resize"], cache_dir=options["cache_dir"], **extra,
            )
        self.overlay = Overlay() if options["overlay"] else None
        self.out_dir = Path(options["output"])
        self.node = ray.get_runtime_context().get_node_id()
        self.pid = os.getpid()
        self.ready = time.time()  # wall clock: compared with the driver's (one machine, or synchronised clocks)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        reports = []
        for unit in batch["unit"]:
            job = json.loads(unit)
            report = self._images(job) if job["kind"] == "images" else self._video(job)
            report.update(unit=job["unit"], node=self.node, pid=self.pid, ready=self.ready)
            reports.append(json.dumps(report))
        return {"report": reports}

    def _images(self, job: dict[str, Any]) -> dict[str, Any]:
        from .sinks import coco_fragment, coco_image_id
        from .sources import ImageSource

        o = self.options
        tally, lines = _Recorder(), _Lines()
        paths = [Path(p) for p in job["paths"]]
        coco: list[tuple[str, int]] = []
        source = ImageSource(paths, name="images", on_error=lambda path, error: tally.fail(str(path), error),
                             reduce_to=self.segmenter.input_hw_for if o["reduced_read"] else None)
        for frame, result in self.segmenter.stream_frames(source, nireq=o["nireq"]):
            i = frame.index
            if o["coco"]:
                coco.append((coco_fragment(result, coco_image_id(frame.path, job["positions"][i])), len(result)))
            tally.frames += 1
            tally.instances += len(result)
            if job["keep"][i]:
                continue
            try:
                written = write_image_files(self.out_dir, job["stems"][i], frame, result, overlay=self.overlay,
                                            model=o["model_text"], device=self.segmenter.device)
            except OvsegError as error:
                tally.fail(str(frame.path), error)
                continue
            lines.write(image_line(frame.path, result, written))
        return {"frames": tally.frames, "instances": tally.instances, "errors": tally.errors, "lines": lines.lines,
                "coco": coco}

    def _video(self, job: dict[str, Any]) -> dict[str, Any]:
        from .errors import CaptureError
        from .sources import open_source

        o = self.options
        tally, lines = _Recorder(), _Lines()
        try:
            source = open_source(job["paths"][0])
        except CaptureError as error:
            tally.fail(job["paths"][0], error)
        else:
            try:
                run_videos(self.segmenter, [(source, job["stems"][0])], _video_options(o), self.out_dir, self.overlay,
                           tally, lines)
            finally:
                source.release()
        return {"frames": tally.frames, "instances": tally.instances, "errors": tally.errors, "lines": lines.lines,
                "coco": []}


def _video_options(o: Mapping[str, Any]) -> VideoOptions:
    def tracker_for(source: Any) -> Any:
        if not o["track"]:
            return None
        from .track import make_tracker

        return make_tracker(o["tracker"], **({"frame_rate": source.fps} if source.fps else {}))

    return VideoOptions(o["nireq"], o["timeout"], o["limit"], tracker_for)


# -- the driver ------------------------------------------------------------------------------


def default_actors(ray: Any) -> tuple[int, int]:
    """``(actors, cpus per actor)`` for the connected cluster: one actor per node that has CPUs,
    each reserving the CPUs of the smallest such node (one OpenVINO instance per node uses its
    cores best: its own streams and threads)."""
    cpus = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) >= 1]
    if not cpus:
        raise ConfigError("expected a Ray cluster with CPUs, got one whose nodes have none")
    return len(cpus), min(cpus)


def _connect(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Join ``address`` (``auto``, ``ray://...``, ``HOST:PORT``) or start a local cluster bound to
    127.0.0.1; returns whether this process started it. Already connected: used as it is."""
    if ray.is_initialized():
        return False
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if not address:
        start_local_cluster(ray, num_cpus or os.cpu_count() or 1, **common)
        return True
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    host = host.strip("[]")
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    if address != "auto" and port.isdigit():  # Ray waits minutes for a GCS that is not there
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as error:
            raise ConfigError(f"expected a Ray cluster at {address!r}, got nothing listening: "
                              f"{error.strerror or error}") from None
    try:
        with _loopback() if loopback else contextlib.nullcontext():
            ray.init(address=address, **common)
    except (ConnectionError, RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"expected a Ray cluster at {address!r}, got none reachable: {first}") from None
    return False


#: Ray's switch (meant for single-machine Windows and macOS) that makes it take the loopback
#: address as the node's: without it Ray replaces 127.0.0.1 by the machine's outward address.
_LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def _loopback() -> Iterator[None]:
    """Ray takes 127.0.0.1 as this machine's node address (instead of replacing it by the
    machine's outward one) while this is in force; processes started meanwhile keep it."""
    from ray._private import ray_constants

    before_env, before = os.environ.get(_LOOPBACK_SWITCH), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_LOOPBACK_SWITCH] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before
        if before_env is None:
            os.environ.pop(_LOOPBACK_SWITCH, None)
        else:
            os.environ[_LOOPBACK_SWITCH] = before_env


def _check_loopback(ray: Any) -> None:
    addresses = {n["NodeManagerAddress"] for n in ray.nodes()}
    if addresses != {"127.0.0.1"}:
        ray.shutdown()
        raise ConfigError(f"expected a local Ray node on 127.0.0.1, got one on {', '.join(sorted(addresses))}")


def start_local_cluster(ray: Any, num_cpus: int, **options: Any) -> None:
    """``ray.init`` of a one-machine cluster whose node, GCS, raylet and workers listen on
    127.0.0.1 only (``_node_ip_address="127.0.0.1"``, no dashboard by default). Ray replaces
    127.0.0.1 by the machine's outward address unless its single-machine switch is off
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, meant for Windows and macOS), so the switch is off
    for the start (the processes started keep it) and restored after."""
    options.setdefault("include_dashboard", False)
    # Ray runs its workers at nice 15 (below its own daemons); here they are the run's work, at
    # the priority the plain command has.
    options.setdefault("_system_config", {"worker_niceness": 0})
    with _loopback():
        ray.init(num_cpus=num_cpus, _node_ip_address="127.0.0.1", **options)
    _check_loopback(ray)


_TEMPORARY = re.compile(r"^\.(?P<stem>.+)\.[A-Za-z0-9_]{8}\.(json|png|jsonl|mp4)$")


def _sweep(out_dir: Path, stems: set[str]) -> int:
    """Remove the temporary files (``files.temporary_path``'s names) of this run's stems that a
    killed actor left behind; returns how many."""
    removed = 0
    try:
        names = os.listdir(out_dir)
    except OSError:
        return 0
    for name in names:
        match = _TEMPORARY.match(name)
        if match and match["stem"] in stems:
            Path(out_dir, name).unlink(missing_ok=True)
            removed += 1
    return removed


def predict(
    sources: Sequence[str | Path],
    *,
    model: str | Path,
    output: str | Path = "out",
    device: str | None = None,
    threshold: float = 0.5,
    config: Mapping[str, Any] | None = None,
    paste: PasteMode = DEFAULT_PASTE,
    resize: ResizePolicy | None = None,
    cache_dir: str | Path | None = None,
    coco: str | Path | None = None,
    skip_existing: bool = False,
    overlay: bool = True,
    recursive: bool = False,
    nireq: int | None = None,
    limit: int | None = None,
    track: bool = False,
    tracker: str | None = None,
    timeout: float = 5.0,
    address: str | None = None,
    actors: int | None = None,
    num_cpus: int | None = None,
    images_per_unit: int | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    reduced_read: bool = False,
    remote_timeout: float | None = None,
    echo: bool = False,
) -> BatchReport:
    """Segment image and video files on a Ray cluster, writing what ``ovseg predict`` writes.

    Args:
        sources: image files, folders, glob patterns, ``.txt`` lists, video files (no cameras
            or live streams: they are read where they are, run them without Ray).
        model: an IR/ONNX path every node sees, a catalogue name each node resolves in its
            own cache (fetched there when missing), or a served model's URL (``grpc://...``) that
            every node reaches.
        output: the output folder (every node must see it).
        device, threshold, config, paste, resize, cache_dir: the :class:`~ovseg.segmenter.Segmenter`
            options (device default CPU); ``config`` as OpenVINO properties (``PERFORMANCE_HINT``
            defaults to THROUGHPUT); none but threshold, paste and resize for a served model.
        coco: also write the images' COCO results file (in input order).
        skip_existing, overlay, recursive, nireq, limit, track, tracker, timeout: as the command's
            ``--skip-existing``, ``--no-overlay``, ``--recursive``, ``--nireq``, ``--limit``,
            ``--track``, ``--tracker``, ``--timeout``.
        address: ``None``: a local cluster bound to 127.0.0.1 (shut down at the end; an
            existing connection of this process is used as it is); ``"auto"``, ``"ray://..."``
            or ``"HOST:PORT"``: an existing cluster.
        actors: the actor pool's size (default: one per node, see :func:`default_actors`).
        num_cpus: CPUs of a local cluster (default: this machine's).
        images_per_unit: images per actor call (default: a few calls per actor, at most 64).
        runtime_env: Ray's runtime environment for the actors (``{"env_vars": {...}}``, ...).
        reduced_read: as ``--reduced-read`` (large JPEGs decoded at a reduced scale; no overlays).
        remote_timeout: a served model's call bound (``--remote-timeout``; default the Segmenter's).
        echo: print the plain command's lines and a progress bar.

    Returns:
        a :class:`BatchReport` (``failed`` non-empty when inputs failed: the command exits 2).

    Raises:
        ConfigError: Ray missing (with the install hint), a camera or stream among the inputs,
            no cluster at ``address``.
        OvsegError: what the plain command raises for the same inputs and options.
    """
    ray = import_ray()
    from .cache import catalogue_name
    from .files import check_folder, check_writable
    from .model import read_model
    from .remote_url import looks_remote
    from .sinks import CocoResults
    from .track import DEFAULT_TRACKER

    if reduced_read and overlay:
        raise ConfigError("expected --reduced-read with --no-overlay (overlays are drawn on the full-size image), "
                          "got --reduced-read with overlays")
    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise OvsegError(f"cannot write {out_dir}: expected a folder, got a file")
    check_folder(out_dir)
    check_writable(coco)
    report = BatchReport()
    tally = Tally()
    inputs = open_inputs([str(s) for s in sources], recursive=recursive, on_open_error=tally.fail)
    videos, opened_images = inputs.sources, inputs.opened_images
    for source in videos:
        source.release()  # opened to check them; each is opened again by the actor that owns it
    live = [s.name for s in videos if s.live or not s.finite]
    if live:
        raise ConfigError(f"expected image or video files with --ray, got the live source {live[0]} "
                          "(cameras and streams are read where they are: run them without --ray)")
    if not opened_images and not videos:
        raise ImageError(f"expected images, folders, videos, cameras or URLs that open, got none in {list(map(str, sources))}")
    if track and not videos:
        raise ConfigError("expected a video, camera or stream to --track, got images only (each image is independent)")
    report.inputs = len(opened_images) + len(videos) + len(tally.failed)

    # Stems and what to skip: the plain command's rules, in input order.
    names = Stems()
    image_jobs = []
    for path, position, stem in image_stems(names, inputs.images):
        done = image_done(out_dir, stem, overlay)
        if skip_existing and done and coco is None:
            continue
        image_jobs.append((str(path), position, stem, skip_existing and done))
    video_jobs = []
    for source, stem in video_stems(names, inputs.entries):
        if skip_existing and video_done(out_dir, stem, overlay):
            if echo:
                print(f"{source.name}: skipped, {stem}.jsonl exists (--skip-existing)")
            continue
        video_jobs.append((source.name, stem))

    if address is None and catalogue_name(model) is None and not looks_remote(model):
        read_model(model)  # a local file: the plain command's errors, before any start-up
    started_connect = time.perf_counter()
    started = _connect(ray, address, num_cpus)
    coco_out = None
    try:
        nodes, node_cpus = default_actors(ray)
        size = actors or nodes
        cpus = node_cpus if size <= nodes else max(1, node_cpus * nodes // size)
        report.actors = size
        if limit is not None:
            image_jobs = image_jobs[:limit]  # the first N image inputs (a bad one among them counts)
        per_unit = images_per_unit or max(1, min(MAX_IMAGES_PER_UNIT, math.ceil(len(image_jobs) / (4 * size)) or 1))
        units = []
        for first in range(0, len(image_jobs), per_unit):
            chunk = image_jobs[first:first + per_unit]
            units.append({"kind": "images", "first": first, "paths": [j[0] for j in chunk], "positions": [j[1] for j in chunk],
                          "stems": [j[2] for j in chunk], "keep": [j[3] for j in chunk]})
        units += [{"kind": "video", "first": 0, "paths": [name], "positions": [0], "stems": [stem], "keep": [False]}
                  for name, stem in video_jobs]
        for i, unit in enumerate(units):
            unit["unit"] = i
        options = {
            "model": str(model), "model_text": str(model), "device": device, "threshold": float(threshold),
            "config": dict(config or {}), "paste": paste, "resize": resize,
            "cache_dir": None if cache_dir is None else str(cache_dir), "output": str(out_dir.resolve()),
            "overlay": overlay, "coco": coco is not None, "nireq": nireq, "limit": limit, "track": track,
            "tracker": tracker or DEFAULT_TRACKER, "timeout": timeout, "reduced_read": reduced_read,
            "remote_timeout": remote_timeout,
        }
        report.startup_s = time.perf_counter() - started_connect
        coco_out = CocoResults(coco) if coco is not None else None
        began = time.time()
        try:
            if units:
                _run(ray, units, options, size, cpus, report, tally, coco_out, echo, runtime_env)
        except KeyboardInterrupt:
            report.interrupted = True
        if report.processing_s:
            report.actor_startup_s = time.time() - began - report.processing_s
        if coco_out is not None and not report.interrupted:
            coco_out.write()
            report.coco = coco_out.path
            if echo:
                print(f"wrote {coco_out.path} ({coco_out.count} detections of {coco_out.images} image(s))")
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        if coco_out is not None and report.coco is None:
            coco_out.discard()
        if started:
            ray.shutdown()
        _sweep(out_dir, names.used)
    report.frames, report.instances, report.failed = tally.frames, tally.instances, tally.failed
    return report


def _run(
    ray: Any, units: list[dict[str, Any]], options: dict[str, Any], size: int, cpus: int, report: BatchReport,
    tally: Tally, coco: Any, echo: bool, runtime_env: Mapping[str, Any] | None = None,
) -> None:
    """The pipeline: units -> actor pool -> reports, taken in input order."""
    from tqdm import tqdm

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    data_logger = logging.getLogger("ray.data")
    level = data_logger.level
    data_logger.setLevel(logging.ERROR)  # its progress bars and "execution finished" lines: this run's own lines instead
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    dataset = ray.data.from_items([{"unit": json.dumps(u)} for u in units], override_num_blocks=len(units))
    results = dataset.map_batches(
        _Worker,
        fn_constructor_args=(options,),
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=size),
        num_cpus=cpus,
        runtime_env=dict(runtime_env) if runtime_env else None,
        # Ray Data's actor pools restart a dead actor and retry its tasks (max_restarts=-1,
        # max_task_retries=-1 by default; passing them is deprecated since Ray 2.60).
    )
    total = sum(len(u["paths"]) for u in units if u["kind"] == "images") or None
    addresses = {n["NodeID"]: f"{n['NodeManagerAddress']} (node {n['NodeID'][:8]})" for n in ray.nodes()}
    ready = math.inf
    bar = tqdm(total=total, unit="frame", desc="predict", file=sys.stderr, disable=None if echo else True,
               dynamic_ncols=True)
    try:
        for row in results.iter_rows():
            unit = json.loads(row["report"])
            for what, message in unit["errors"]:
                tally.fail(what, message)
            if echo:
                for line in unit["lines"]:
                    bar.write(line, file=sys.stdout)
            if coco is not None:
                for fragment, count in unit["coco"]:
                    coco.add_fragment(fragment, count)
            tally.frames += unit["frames"]
            tally.instances += unit["instances"]
            node = addresses.get(unit["node"], unit["node"])
            report.nodes[node] = report.nodes.get(node, 0) + unit["frames"]
            ready = min(ready, unit["ready"])
            report.processes.add(unit["pid"])
            bar.update(unit["frames"])
    except Exception as error:
        raise _ovseg_error(error) from None
    finally:
        bar.close()
        data_logger.setLevel(level)
        if ready < math.inf:  # from the first actor ready (its model compiled) to the last report
            report.processing_s = time.time() - ready


def _ovseg_error(error: BaseException) -> BaseException:
    """The ovseg error inside Ray's wrappers (an actor that could not start, say), else the error.
    Ray passes the error of an actor's creation on as text (its traceback), so the last
    ``ovseg.errors.NAME: message`` line is read back as that error."""
    from . import errors

    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, OvsegError) and type(seen).__module__ == errors.__name__:
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    found = re.findall(r"^ovseg\.errors\.(\w+): (.+)$", str(error), re.MULTILINE)
    if found:
        name, message = found[-1]
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, OvsegError):
            return cls(message)
    return error


# -- the command -----------------------------------------------------------------------------


def run_command(args: argparse.Namespace, config: dict[str, Any]) -> int:
    """``ovseg predict ... --ray``: :func:`predict` with the command's options, its lines and
    exit codes (0, 2 when inputs failed, 130 on ``^C``)."""
    report = predict(
        args.inputs, model=args.model, output=args.output, device=args.device, threshold=args.threshold, config=config,
        paste=args.paste, cache_dir=args.cache_dir, coco=args.coco, skip_existing=args.skip_existing,
        overlay=args.overlay, recursive=args.recursive, nireq=args.nireq, limit=args.limit, track=args.track,
        tracker=args.tracker, timeout=args.timeout, address=args.ray_address, actors=args.ray_actors,
        reduced_read=args.reduced_read, remote_timeout=getattr(args, "remote_timeout", None), echo=True,
    )
    where = ", ".join(f"{node} {frames}" for node, frames in sorted(report.nodes.items()))
    print(f"ray: {report.actors} actor(s); start-up {report.startup_s:.1f} s cluster, {report.actor_startup_s:.1f} s actors "
          f"(not in the FPS); frames per node: {where or 'none'}")
    print(f"{report.frames} frames, {report.instances} instances, {report.fps:.1f} FPS, {len(report.failed)} failed"
          + (" [interrupted]" if report.interrupted else ""))
    if report.interrupted:
        return 130
    if report.failed:
        print(failure_line(report.failed, report.inputs), file=sys.stderr)
        return 2
    return 0
