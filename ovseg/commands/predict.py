"""``ovseg predict SOURCE... --model M [-o DIR]``: segment images, folders, videos, cameras and
streams through the streaming pipeline and write results files (see :mod:`ovseg.sinks`)."""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CaptureError, ConfigError, ImageError, OvsegError
from ..options import DEFAULT_PASTE, PASTE_MODES
from .common import (
    add_model_options,
    add_reduced_read_option,
    add_stream_options,
    compile_config,
    positive_int_arg,
    quiet_opencv,
    refuse_local_options,
    segmenter_from_args,
    tracker_for,
    tracking_overrides,
)

if TYPE_CHECKING:
    from ..result import Result
    from ..segmenter import Segmenter
    from ..sources import FrameSource


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "predict",
        help="segment images, folders, videos, cameras or streams: overlays and JSON results",
        description="Segment every input through the streaming pipeline (several frames in flight) and write, "
        "per image, DIR/NAME.json (instances with COCO RLE masks) and DIR/NAME.png (the overlay); per video, "
        "camera or stream, DIR/NAME.jsonl (one line per processed frame) and DIR/NAME.mp4 (the overlays). "
        "SOURCE: image files, folders of images (sorted; --recursive for subfolders), glob patterns "
        "(quote them: '*.jpg', '**' recursive), .txt files listing image paths, video files, camera indices, "
        "rtsp:// or http:// URLs. Files appear complete or not at all; ^C keeps what is finished "
        "(videos stopped half-way as NAME.partial.*) and exits 130.",
    )
    parser.add_argument("inputs", nargs="+", metavar="SOURCE", help="images, folders, patterns, lists, videos, cameras, URLs")
    add_model_options(parser)
    parser.add_argument("-o", "--output", default="out", metavar="DIR", help="output directory (default ./out)")
    parser.add_argument(
        "--paste", choices=PASTE_MODES, default=DEFAULT_PASTE, help=f"mask paste algorithm (default {DEFAULT_PASTE})"
    )
    parser.add_argument("--recursive", action="store_true", help="folders: their subfolders' images too")
    parser.add_argument(
        "--nireq", type=positive_int_arg, metavar="N", help="infer requests in flight (default: the device's optimum)"
    )
    parser.add_argument("--limit", type=positive_int_arg, metavar="N", help="stop each source after N frames")
    parser.add_argument("--no-overlay", dest="overlay", action="store_false", help="write no PNG or MP4, results only")
    add_reduced_read_option(parser)
    parser.add_argument(
        "--coco", metavar="FILE",
        help="also write the image inputs' detections (not video frames) as one COCO results JSON, loadable by "
        "pycocotools' loadRes; image_id is the file name's number where it is one (COCO's own names, "
        "000000000139.jpg -> 139), else the image's 1-based position among the inputs",
    )
    parser.add_argument(
        "--skip-existing", action="store_true",
        help="skip every input whose final files already exist (a second run after ^C redoes only the rest)",
    )
    add_stream_options(
        parser,
        track_help="give instances of videos, cameras and streams ids that stay with an object across frames (track_id "
        "in the JSONL; -1 until a track is confirmed); one tracker per source; images are independent",
    )
    parser.set_defaults(func=run)


def _summary(result: Result) -> str:
    """'3 instance(s) (person 0.97, car 0.88, dog 0.51)', at most five named."""
    if not len(result):
        return "0 instance(s)"
    named = [f"{label} {score:.2f}" for label, score in zip(result.labels[:5], result.scores[:5].tolist(), strict=True)]
    more = [f"+{len(result) - 5} more"] if len(result) > 5 else []
    return f"{len(result)} instance(s) ({', '.join(named + more)})"


@dataclass
class _Tally:
    """What the run did, for its last line."""

    frames: int = 0
    instances: int = 0
    failed: list[str] = field(default_factory=list)
    processing_s: float = 0.0

    def fail(self, what: str, error: BaseException) -> None:
        print(f"ovseg: error: {error}", file=sys.stderr)
        self.failed.append(what)


class _Names:
    """Output stems: a file's stem, ``-2``, ``-3`` ... for the second and third of one name."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, stem: str) -> str:
        name, n = stem, 2
        while name in self.used:
            name, n = f"{stem}-{n}", n + 1
        self.used.add(name)
        return name


def _write_png(path: Path, image: Any) -> None:
    import cv2

    if not cv2.imwrite(str(path), image):
        raise OvsegError(f"cannot write {path}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..draw import Overlay
    from ..files import atomic_write, check_folder, check_writable
    from ..sinks import CocoResults, coco_image_id, image_document
    from ..sources import ImageSource, open_sources, safe_name

    refuse_local_options(args)  # a URL with local compile options: one line, before any work

    if args.reduced_read and args.overlay:
        raise ConfigError("expected --reduced-read with --no-overlay (overlays are drawn on the full-size image), "
                          "got --reduced-read with overlays")
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise OvsegError(f"cannot write {out_dir}: expected a folder, got a file")
    check_folder(out_dir)
    check_writable(args.coco)
    tally = _Tally()
    names = _Names()

    # Every input first, so that a typo is reported before seconds of compiling. Images of
    # all inputs form one stream; each video, camera and URL is a source of its own.
    with quiet_opencv():
        opened = open_sources(args.inputs, recursive=args.recursive, on_open_error=tally.fail)
    images: list[Path] = next((s.paths for s in opened if isinstance(s, ImageSource)), [])
    sources = [s for s in opened if not isinstance(s, ImageSource)]
    if not images and not sources:
        raise ImageError(f"expected images, folders, videos, cameras or URLs that open, got none in {args.inputs}")
    if args.track and not sources:
        raise ConfigError("expected a video, camera or stream to --track, got images only (each image is independent)")

    inputs_total = len(images) + len(sources) + len(tally.failed)
    overlay = Overlay() if args.overlay else None
    coco = CocoResults(args.coco) if args.coco else None
    # Files want frames per second (several requests in flight); cameras and streams want each
    # frame soon. A mix gets THROUGHPUT: the live sources then drop what they cannot keep up with.
    config = compile_config(args)
    all_live = not images and all(s.live for s in sources)
    config.setdefault("PERFORMANCE_HINT", "LATENCY" if all_live else "THROUGHPUT")
    try:
        segmenter = segmenter_from_args(args, paste=args.paste, config=config, **tracking_overrides(args))
    except BaseException:
        for source in sources:
            source.release()
        raise
    model, device = str(args.model), args.device

    # Image outputs: stems fixed in input order, whatever is skipped.
    image_jobs = []
    for position, path in enumerate(images, 1):
        stem = names.take(path.stem)
        doc, png = out_dir / f"{stem}.json", out_dir / f"{stem}.png"
        done = doc.is_file() and (png.is_file() or not args.overlay)
        if args.skip_existing and done and coco is None:
            continue
        image_jobs.append((path, position, stem, args.skip_existing and done))
    video_jobs = []
    for source in sources:
        stem = names.take(safe_name(source.name))
        done = (out_dir / f"{stem}.jsonl").is_file() and ((out_dir / f"{stem}.mp4").is_file() or not args.overlay)
        if args.skip_existing and done:
            print(f"{source.name}: skipped, {stem}.jsonl exists (--skip-existing)")
            source.release()
            continue
        video_jobs.append((source, stem))

    lengths = [len(image_jobs)] + [s.length for s, _ in video_jobs]
    total = None if None in lengths else sum(min(n, args.limit or n) for n in lengths if n is not None)
    bar = tqdm(total=total, unit="frame", desc="predict", file=sys.stderr, disable=None, dynamic_ncols=True)
    interrupted = False
    started = time.perf_counter()
    try:
        if image_jobs:
            source = ImageSource([p for p, *_ in image_jobs], name="images",
                                 on_error=lambda path, error: tally.fail(str(path), error),
                                 reduce_to=segmenter.input_hw_for if args.reduced_read else None)
            frames = source if args.limit is None else _limited(source, args.limit)
            for frame, result in segmenter.stream_frames(frames, nireq=args.nireq):
                _, position, stem, keep = image_jobs[frame.index]  # index: the position in image_jobs
                if coco is not None:
                    coco.add(result, coco_image_id(frame.path, position))
                tally.frames += 1
                tally.instances += len(result)
                bar.update(1)
                if keep:  # --skip-existing with --coco: scored again, files left as they are
                    continue
                text = json.dumps(image_document(result, image=str(frame.path), model=model, device=device)) + "\n"
                written = [out_dir / f"{stem}.json"]
                try:
                    if overlay is not None:
                        written.insert(0, out_dir / f"{stem}.png")
                        atomic_write(written[0], functools.partial(_write_png, image=overlay(frame.image, result)))
                    atomic_write(written[-1], functools.partial(Path.write_text, data=text))
                except OvsegError as error:  # this image's files; the others go on
                    tally.fail(str(frame.path), error)
                    continue
                bar.write(f"{frame.path}: {_summary(result)} -> {', '.join(map(str, written))} "
                          f"[{sum(result.speed_ms.values()):.0f} ms]", file=sys.stdout)
        if video_jobs:
            _run_videos(segmenter, video_jobs, args, out_dir, overlay, tally, bar)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        tally.processing_s = time.perf_counter() - started
        bar.close()
        for source, _ in video_jobs:
            source.release()
    if coco is not None and not interrupted:
        coco.write()
        print(f"wrote {coco.path} ({len(coco.detections)} detections of {coco.images} image(s))")
    fps = tally.frames / tally.processing_s if tally.processing_s > 0 else 0.0
    print(f"{tally.frames} frames, {tally.instances} instances, {fps:.1f} FPS, {len(tally.failed)} failed"
          + (" [interrupted]" if interrupted else ""))
    if interrupted:
        return 130
    if tally.failed:
        shown = ", ".join(tally.failed[:5]) + (" ..." if len(tally.failed) > 5 else "")
        print(f"ovseg: {len(tally.failed)} of {inputs_total} input(s) failed: {shown}", file=sys.stderr)
        return 2
    return 0


def _limited(frames: Any, limit: int) -> Any:
    for i, frame in enumerate(frames):
        if i >= limit:
            return
        yield frame


class _VideoOut:
    """The files of one video, camera or stream, its tracker and its counts."""

    def __init__(self, source: FrameSource, stem: str, args: argparse.Namespace, out_dir: Path, overlay: Any) -> None:
        from ..sinks import JsonlWriter, partial_path
        from ..video import DEFAULT_FPS, VideoWriter

        self.source, self.stem = source, stem
        self.length, self.fps = source.length, source.fps  # read now: the source is released when it ends
        self.jsonl = JsonlWriter(out_dir / f"{stem}.jsonl")
        mp4 = out_dir / f"{stem}.mp4"
        self.video = VideoWriter(mp4, source.fps or DEFAULT_FPS, partial=partial_path(mp4)) if overlay else None
        self.tracker = tracker_for(args, source)
        self.frames = 0
        self.last_ms: float | None = None
        self.closed = False
        self.limited = False  # --limit reached
        self.end: Any = None  # the SourceEnd, once the source is over

    def close(self, complete: bool, dropped: int = 0) -> str:
        try:
            where = self.jsonl.close(complete)
        finally:
            try:
                shown = self.video.close(complete) if self.video is not None else None
            finally:
                self.closed = True
        files = ", ".join(str(p) for p in (where, shown) if p is not None) or "nothing written"
        drops = f", {dropped} stale frame(s) dropped" if dropped else ""
        return f"{self.source.name}: {self.frames} frame(s){drops} -> {files}"


def _run_videos(
    segmenter: Segmenter, jobs: list[tuple[FrameSource, str]], args: argparse.Namespace, out_dir: Path,
    overlay: Any, tally: _Tally, bar: Any,
) -> None:
    """Every video, camera and stream at once through the one model (:meth:`Segmenter.stream_many`):
    each its JSONL and MP4, renamed into place when it ends well, kept as partial files when it
    fails or the run is interrupted (the error is reported, the other sources go on)."""
    from ..sinks import frame_record

    outs: dict[str, _VideoOut] = {}

    def finish(out: _VideoOut) -> None:
        """Close a source's files once its end is known and all its results are written (its
        end is announced when its last frame is *taken*; those results may still be in flight)."""
        end = out.end
        if out.closed or (not out.limited and (end is None or out.frames < end.frames)):
            return
        stopped = end is not None and end.stopped and not out.limited  # cut short by ^C or an error elsewhere
        failure = None if out.limited or stopped else end.error
        if failure is None and not out.limited and not stopped:
            failure = _truncated(out.source.name, out.length, out.fps, out.frames, out.last_ms)
        if failure is not None:
            tally.fail(out.source.name, failure)
        try:
            bar.write(out.close(failure is None and not stopped, end.dropped if end is not None else 0), file=sys.stdout)
        except OvsegError as error:  # its files could not be renamed: this source fails, the others go on
            tally.fail(out.source.name, error)

    def on_end(end: Any) -> None:
        outs[end.name].end = end
        finish(outs[end.name])

    stream = None
    try:
        for source, stem in jobs:
            outs[stem] = _VideoOut(source, stem, args, out_dir, overlay)
        stream = segmenter.stream_many({stem: source for source, stem in jobs}, nireq=args.nireq, on_end=on_end,
                                       stall_timeout_s=args.timeout, limit=args.limit)
        for stem, frame, result in stream:
            out = outs[stem]
            if out.closed:
                continue  # frames in flight beyond --limit
            if out.tracker is not None:
                result = out.tracker.update(result)
            out.jsonl.write(frame_record(frame, result))
            if out.video is not None:
                out.video.write(overlay(frame.image, result))
            out.frames += 1
            out.last_ms = frame.timestamp_ms
            tally.frames += 1
            tally.instances += len(result)
            bar.update(1)
            out.limited = args.limit is not None and out.frames >= args.limit
            finish(out)
    finally:
        if stream is not None:
            stream.close()  # capture threads and requests stopped before the files and sources go
        for out in outs.values():
            if not out.closed:
                out.close(False)


def _truncated(
    name: str, length: int | None, fps: float | None, frames: int, last_ms: float | None
) -> CaptureError | None:
    """An error when a video ended well before its container said it would. The frame count is
    the container's estimate (duration x nominal rate; wrong for variable frame rates), so the
    last frame's timestamp is compared with that duration where there is one."""
    if length is None or frames >= length:
        return None
    if last_ms is not None and fps:
        duration_ms = length / fps * 1e3
        if last_ms >= 0.9 * duration_ms - 2e3 / fps:
            return None
        return CaptureError(
            f"{name}: expected frames up to {duration_ms / 1e3:.1f} s, got {frames} ending at "
            f"{last_ms / 1e3:.1f} s (truncated or damaged file)"
        )
    if frames >= 0.9 * length:
        return None
    return CaptureError(f"{name}: expected {length} frames, got {frames} (truncated or damaged file)")
