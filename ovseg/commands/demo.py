"""``ovseg demo --model M --input 0``: live instance segmentation from a camera, video or images."""

from __future__ import annotations

import argparse
import functools
import re
import sys
from typing import Any

from ..controls import KEY_HELP
from .common import (
    add_model_options,
    add_stream_options,
    compile_config,
    positive_float_arg,
    positive_int_arg,
    quiet_opencv,
    refuse_local_options,
    segmenter_from_args,
    tracker_for,
    tracking_overrides,
)


def _resolution(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}")
    return int(match[1]), int(match[2])


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="live segmentation of a camera, video, images or stream, in a window and/or to a video",
        description="Segment a camera, a video file, an image, a directory of images or a URL "
        "(rtsp://, http://) frame by frame; show the overlays in a window and/or write them to "
        f"a video. Keys in the window: {KEY_HELP}. Live sources (cameras, URLs) always process "
        "the newest frame and drop the ones there was no time for; files lose none.",
    )
    parser.add_argument(
        "-i", "--input", action="append", metavar="SOURCE",
        help="camera index, video file, image, folder of images or URL (default 0, the first camera); repeat it "
        "for several sources at once through one model, shown as a mosaic with a status line per source",
    )
    add_model_options(parser)
    parser.add_argument(
        "-o", "--output", metavar="VIDEO",
        help="write the annotated frames to a video (.mp4, .m4v, .mov, .avi, .mkv) at the source's frame rate and size",
    )
    parser.add_argument("--no-show", dest="show", action="store_false", help="no window (headless)")
    parser.add_argument("--limit", type=positive_int_arg, metavar="N", help="stop after N frames")
    parser.add_argument("--resolution", type=_resolution, metavar="WxH", help="camera mode to request, e.g. 1280x720")
    parser.add_argument(
        "--fps", type=positive_float_arg,
        help="frame rate of --output (default: the source's; images 1; 25 when a stream reports none)",
    )
    parser.add_argument(
        "--live", action=argparse.BooleanOptionalAction, default=None,
        help="drop stale frames and always process the newest (default: on for cameras and URLs, off for files)",
    )
    add_stream_options(
        parser, track_help="ids that stay with each object: colour by id, the id in the label, a trail of box centres"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ..sources import open_source
    from ..video import check_output

    refuse_local_options(args)  # a URL with local compile options: one line, before any work

    if args.output is not None:
        check_output(args.output)  # a bad name or folder before the camera opens
    inputs = args.input or ["0"]
    if len(inputs) > 1:
        return _run_many(args, inputs)
    args.input = inputs[0]
    with quiet_opencv():
        # The source first: a missing camera is reported before seconds of compiling.
        source = open_source(args.input, resolution=args.resolution, live=args.live, image_fps=args.fps or 1.0)
        # A camera wants each frame soon (one request, all cores); a file wants frames per
        # second (several requests in flight through Segmenter.stream). --config overrides.
        config = compile_config(args)
        config.setdefault("PERFORMANCE_HINT", "LATENCY" if source.live else "THROUGHPUT")
        try:
            tracker = tracker_for(args, source)
            segmenter = segmenter_from_args(args, config=config, **tracking_overrides(args))
        except BaseException:
            source.release()
            raise
        summary = run_demo(
            segmenter, source, show=args.show, output=args.output, output_fps=args.fps, limit=args.limit,
            stall_timeout_s=args.timeout, first_frame_timeout_s=3 * args.timeout, tracker=tracker,
        )
    print(
        f"{summary.source}: {summary.frames} frame(s) in {summary.duration_s:.1f} s, "
        f"mean {f'{summary.mean_fps:.1f}' if summary.frames > 1 else '-'} FPS, "
        f"mean latency {summary.mean_latency_ms:.1f} ms "
        f"(infer {summary.mean_infer_ms:.1f} ms)"
        + (f", {summary.dropped} stale frame(s) dropped" if summary.dropped else "")
        + {"limit": f" [--limit {args.limit}]", "quit": " [quit]", "interrupted": " [interrupted]"}.get(summary.ended, "")
    )
    if summary.output is not None and summary.output_hw is not None:
        height, width = summary.output_hw
        print(f"wrote {summary.output} ({summary.frames} frames, {width}x{height}, {summary.output_fps:g} fps)")
    return 130 if summary.ended == "interrupted" else 0


def _run_many(args: argparse.Namespace, inputs: list[str]) -> int:
    """Several sources: one model, a mosaic. A source that cannot be opened is an error before
    anything starts; one that fails during the run ends alone and is reported at the end."""
    from ..mosaic import run_mosaic
    from ..sources import open_source

    with quiet_opencv():
        sources: dict[str, Any] = {}
        try:
            for spec in inputs:
                name, n = spec, 2
                while name in sources:
                    name, n = f"{spec} ({n})", n + 1
                sources[name] = open_source(spec, resolution=args.resolution, live=args.live, image_fps=args.fps or 1.0)
            # Several sources want frames per second in all: THROUGHPUT, unless --config says.
            config = compile_config(args)
            config.setdefault("PERFORMANCE_HINT", "THROUGHPUT")
            segmenter = segmenter_from_args(args, config=config, **tracking_overrides(args))
        except BaseException:
            for source in sources.values():
                source.release()
            raise
        summary = run_mosaic(segmenter, sources, show=args.show, output=args.output, output_fps=args.fps,
                             limit=args.limit, stall_timeout_s=args.timeout,
                             make_tracker=functools.partial(tracker_for, args) if args.track else None)
    failed = 0
    for name in summary.frames:
        error = summary.errors[name]
        dropped = f", {summary.dropped[name]} stale frame(s) dropped" if summary.dropped[name] else ""
        print(f"{name}: {summary.frames[name]} frame(s){dropped}" + (f" [failed: {error}]" if error else ""))
        if error:
            print(f"ovseg: error: {error}", file=sys.stderr)
            failed += 1
    if summary.output is not None and summary.output_hw is not None:
        height, width = summary.output_hw
        print(f"wrote {summary.output} (mosaic {width}x{height})")
    if summary.ended == "interrupted":
        return 130
    return 2 if failed else 0
