"""What one ``ovseg predict`` run writes and counts, shared by the plain command
(:mod:`ovseg.commands.predict`) and the Ray one (:mod:`ovseg.batch`), so that both write the
same files the same way.

- :class:`Tally`: frames, instances and failed inputs, each failure reported as it happens.
- :class:`Stems`: output stems in input order (``a``, ``a-2``, ``a-3`` for three ``a.*``).
- :func:`image_done` / :func:`video_done`: whether an input's final files exist (``--skip-existing``).
- :func:`write_image_files`: one image's ``NAME.png`` and ``NAME.json``, each complete or absent.
- :func:`run_videos`: videos, cameras and streams through one model, each its ``NAME.jsonl`` and
  ``NAME.mp4`` (and its tracker).
- :func:`failure_line`: the run's last line on stderr when inputs failed.

The segmenter is typed loosely (``Any``) so that this module stays below :mod:`ovseg.segmenter`.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CaptureError, OvsegError
from .files import atomic_write
from .images import is_image_file
from .result import Result
from .sinks import JsonlWriter, frame_record, image_document, partial_path
from .sources import FrameSource, ImageSource, deferred, open_sources, safe_name
from .video import DEFAULT_FPS, VideoWriter

__all__ = [
    "Tally",
    "Stems",
    "summary",
    "image_done",
    "video_done",
    "write_image_files",
    "image_line",
    "VideoOptions",
    "run_videos",
    "failure_line",
    "Inputs",
    "open_inputs",
    "image_stems",
    "video_stems",
]


def summary(result: Result) -> str:
    """'3 instance(s) (person 0.97, car 0.88, dog 0.51)', at most five named."""
    if not len(result):
        return "0 instance(s)"
    named = [f"{label} {score:.2f}" for label, score in zip(result.labels[:5], result.scores[:5].tolist(), strict=True)]
    more = [f"+{len(result) - 5} more"] if len(result) > 5 else []
    return f"{len(result)} instance(s) ({', '.join(named + more)})"


@dataclass
class Tally:
    """What the run did, for its last line."""

    frames: int = 0
    instances: int = 0
    failed: list[str] = field(default_factory=list)
    processing_s: float = 0.0

    def fail(self, what: str, error: BaseException | str) -> None:
        print(f"ovseg: error: {error}", file=sys.stderr)
        self.failed.append(what)


def failure_line(failed: Sequence[str], inputs_total: int) -> str:
    """``ovseg: 2 of 100 input(s) failed: a.jpg, b.jpg``, at most five named."""
    shown = ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else "")
    return f"ovseg: {len(failed)} of {inputs_total} input(s) failed: {shown}"


class Stems:
    """Output stems: a file's stem, ``-2``, ``-3`` ... for the second and third of one name."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, stem: str) -> str:
        name, n = stem, 2
        while name in self.used:
            name, n = f"{stem}-{n}", n + 1
        self.used.add(name)
        return name


@dataclass
class Inputs:
    """A command line's inputs (:func:`open_inputs`), in input order: ``images``, the image files
    of every image input, and ``entries``, the videos, cameras and streams; in their places among
    them (an image file's name among the images), the inputs that did not open, as their text."""

    images: list[Path | str]
    entries: list[FrameSource | str]

    @property
    def opened_images(self) -> list[Path]:
        return [p for p in self.images if not isinstance(p, str)]

    @property
    def sources(self) -> list[FrameSource]:
        return [e for e in self.entries if not isinstance(e, str)]


def open_inputs(
    specs: Sequence[str | Path], *, recursive: bool, on_open_error: Callable[[str, CaptureError], None],
    defer_videos: bool = False,
) -> Inputs:
    """A command line's inputs, each opened (checked) in turn; those that do not open are told to
    ``on_open_error`` and kept as their text, so that :func:`image_stems` and :func:`video_stems`
    keep their output names free and a later run in which they open names the others alike
    (``--skip-existing``). ``defer_videos``: each video file, once checked, is closed and opened
    again on first read (:func:`~ovseg.sources.deferred`)."""
    images: list[Path | str] = []
    entries: list[FrameSource | str] = []
    try:
        for spec in specs:
            failed: list[str] = []

            def failure(what: str, error: CaptureError, failed: list[str] = failed) -> None:
                failed.append(what)
                on_open_error(what, error)

            for source in open_sources([spec], recursive=recursive, on_open_error=failure):
                if isinstance(source, ImageSource):
                    images += source.paths
                else:
                    entries.append(deferred(source) if defer_videos else source)
            for what in failed:
                (images if is_image_file(Path(what)) else entries).append(what)
    except BaseException:
        for entry in entries:
            if not isinstance(entry, str):
                entry.release()
        raise
    return Inputs(images, entries)


def image_stems(names: Stems, images: Sequence[Path | str]) -> list[tuple[Path, int, str]]:
    """``(path, position, stem)`` of each image of :func:`open_inputs`, stems taken in input order
    (an image that did not open takes, and leaves unused, the stem it would have had); position:
    1-based among the images that opened."""
    out: list[tuple[Path, int, str]] = []
    for entry in images:
        stem = names.take(Path(entry).stem)
        if not isinstance(entry, str):
            out.append((entry, len(out) + 1, stem))
    return out


def video_stems(names: Stems, entries: Sequence[FrameSource | str]) -> list[tuple[FrameSource, str]]:
    """Each source of :func:`open_inputs` with its output stem, taken in input order; an input
    that did not open takes (and leaves unused) the stem it would have had."""
    stems = [(entry, names.take(safe_name(entry if isinstance(entry, str) else entry.name))) for entry in entries]
    return [(entry, stem) for entry, stem in stems if not isinstance(entry, str)]


def image_done(out_dir: Path, stem: str, overlay: bool) -> bool:
    """An image's final files exist: ``NAME.json`` (and ``NAME.png`` with overlays)."""
    return (out_dir / f"{stem}.json").is_file() and (not overlay or (out_dir / f"{stem}.png").is_file())


def video_done(out_dir: Path, stem: str, overlay: bool) -> bool:
    """A video's final files exist: ``NAME.jsonl`` (and ``NAME.mp4`` with overlays)."""
    return (out_dir / f"{stem}.jsonl").is_file() and (not overlay or (out_dir / f"{stem}.mp4").is_file())


def _write_png(path: Path, image: Any) -> None:
    import cv2

    if not cv2.imwrite(str(path), image):
        raise OvsegError(f"cannot write {path}")


def write_image_files(
    out_dir: Path, stem: str, frame: Any, result: Result, *, overlay: Any, model: str, device: str
) -> list[Path]:
    """Write one image's overlay ``NAME.png`` (when ``overlay`` is an :class:`~ovseg.draw.Overlay`)
    and its ``NAME.json``, each complete or absent; returns the paths written.

    Raises:
        OvsegError: a file cannot be written.
    """
    text = json.dumps(image_document(result, image=str(frame.path), model=model, device=device)) + "\n"
    written = [out_dir / f"{stem}.json"]
    if overlay is not None:
        written.insert(0, out_dir / f"{stem}.png")
        atomic_write(written[0], functools.partial(_write_png, image=overlay(frame.image, result)))
    atomic_write(written[-1], functools.partial(Path.write_text, data=text))
    return written


def image_line(path: Path | str, result: Result, written: Sequence[Path]) -> str:
    """The line printed for one image: its summary, the files and its time."""
    return (f"{path}: {summary(result)} -> {', '.join(map(str, written))} "
            f"[{sum(result.speed_ms.values()):.0f} ms]")


@dataclass(frozen=True)
class VideoOptions:
    """The options of a video run: ``nireq`` (requests in flight), ``timeout`` (seconds a
    camera or stream may be silent), ``limit`` (frames per source), ``tracker_for`` (a new
    tracker for a source, or ``None``) and ``files_at_once`` (video files read at the same
    time, in order; cameras and streams all at once)."""

    nireq: int | None = None
    timeout: float = 5.0
    limit: int | None = None
    tracker_for: Callable[[FrameSource], Any] = lambda source: None
    files_at_once: int | None = None


class _VideoOut:
    """The files of one video, camera or stream, its tracker and its counts."""

    def __init__(self, source: FrameSource, stem: str, options: VideoOptions, out_dir: Path, overlay: Any) -> None:
        self.source, self.stem = source, stem
        self.length, self.fps = source.length, source.fps  # read now: the source is released when it ends
        self.jsonl = JsonlWriter(out_dir / f"{stem}.jsonl")
        mp4 = out_dir / f"{stem}.mp4"
        self.video = VideoWriter(mp4, source.fps or DEFAULT_FPS, partial=partial_path(mp4)) if overlay else None
        self.tracker = options.tracker_for(source)
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


def run_videos(
    segmenter: Any, jobs: list[tuple[FrameSource, str]], options: VideoOptions, out_dir: Path,
    overlay: Any, tally: Tally, bar: Any,
) -> None:
    """Videos, cameras and streams through the one model (``Segmenter.stream_many``; the
    cameras and streams all at once, the files ``options.files_at_once`` at a time): each its
    JSONL and MP4, opened when the source starts, renamed into place when it ends well, kept as
    partial files when it fails or the run is interrupted (the error is reported, the other
    sources go on); a file the run never reached writes nothing. ``bar``: a tqdm bar (its
    ``write`` prints the line of each finished source, ``update`` counts frames)."""
    outs: dict[str, _VideoOut] = {}
    by_stem = {stem: source for source, stem in jobs}

    def on_start(stem: str) -> None:
        outs[stem] = _VideoOut(by_stem[stem], stem, options, out_dir, overlay)

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
        out = outs.get(end.name)
        if out is None:  # never started (the run stopped first): nothing written
            return
        out.end = end
        finish(out)

    stream = None
    try:
        stream = segmenter.stream_many(by_stem, nireq=options.nireq, on_end=on_end, stall_timeout_s=options.timeout,
                                       limit=options.limit, max_files=options.files_at_once, on_start=on_start)
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
            out.limited = options.limit is not None and out.frames >= options.limit
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
