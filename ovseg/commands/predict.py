"""``ovseg predict SOURCE... --model M [-o DIR]``: segment images, folders, videos, cameras and
streams through the streaming pipeline and write results files (see :mod:`ovseg.sinks`)."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ImageError, OvsegError
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
    pass


#: Video files a predict run reads at once: enough to keep the requests in flight busy, few
#: enough that a thousand inputs do not hold a thousand decoders and output files.
FILES_AT_ONCE = 4


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
    parser.add_argument(
        "--files-at-once", type=positive_int_arg, default=FILES_AT_ONCE, metavar="N",
        help=f"video files read at the same time, in the order given, the next one started as one ends (default "
        f"{FILES_AT_ONCE}); cameras and streams all run at once",
    )
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
    parser.add_argument(
        "--ray", action="store_true",
        help="run on a local Ray cluster (bound to 127.0.0.1): image and video files only, the same files "
        "(needs the ray extra)",
    )
    parser.add_argument(
        "--ray-address", metavar="ADDRESS",
        help="run on an existing Ray cluster: auto, HOST:PORT or ray://HOST:PORT (implies --ray); the model path "
        "or catalogue name, --cache-dir and the output folder must be valid on every node",
    )
    parser.add_argument(
        "--ray-actors", type=positive_int_arg, metavar="N",
        help="--ray: actors segmenting at once (default one per node, each with the node's CPUs)",
    )
    add_stream_options(
        parser,
        track_help="give instances of videos, cameras and streams ids that stay with an object across frames (track_id "
        "in the JSONL; -1 until a track is confirmed); one tracker per source; images are independent",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..draw import Overlay
    from ..files import check_folder, check_writable
    from ..runs import (
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
    from ..sinks import CocoResults, coco_image_id
    from ..sources import ImageSource

    refuse_local_options(args)  # a URL with local compile options: one line, before any work

    if args.reduced_read and args.overlay:
        raise ConfigError("expected --reduced-read with --no-overlay (overlays are drawn on the full-size image), "
                          "got --reduced-read with overlays")
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise OvsegError(f"cannot write {out_dir}: expected a folder, got a file")
    check_folder(out_dir)
    check_writable(args.coco)
    if args.ray or args.ray_address:
        from ..batch import run_command

        with quiet_opencv():
            return run_command(args, compile_config(args))
    tally = Tally()
    names = Stems()

    # Every input first, so that a typo is reported before seconds of compiling. Images of
    # all inputs form one stream; each video, camera and URL is a source of its own.
    with quiet_opencv():
        # Each video file is opened to check it, then again when its turn comes (--files-at-once),
        # so that many inputs do not hold a decoder each for the whole run.
        inputs = open_inputs(args.inputs, recursive=args.recursive, on_open_error=tally.fail, defer_videos=True)
    sources, opened_images = inputs.sources, inputs.opened_images
    if not opened_images and not sources:
        raise ImageError(f"expected images, folders, videos, cameras or URLs that open, got none in {args.inputs}")
    if args.track and not sources:
        raise ConfigError("expected a video, camera or stream to --track, got images only (each image is independent)")

    inputs_total = len(opened_images) + len(sources) + len(tally.failed)
    overlay = Overlay() if args.overlay else None
    coco = CocoResults(args.coco) if args.coco else None
    # Files want frames per second (several requests in flight); cameras and streams want each
    # frame soon. A mix gets THROUGHPUT: the live sources then drop what they cannot keep up with.
    config = compile_config(args)
    all_live = not opened_images and all(s.live for s in sources)
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
    for path, position, stem in image_stems(names, inputs.images):
        done = image_done(out_dir, stem, args.overlay)
        if args.skip_existing and done and coco is None:
            continue
        image_jobs.append((path, position, stem, args.skip_existing and done))
    video_jobs = []
    for source, stem in video_stems(names, inputs.entries):
        done = video_done(out_dir, stem, args.overlay)
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
                try:
                    written = write_image_files(out_dir, stem, frame, result, overlay=overlay, model=model, device=device)
                except OvsegError as error:  # this image's files; the others go on
                    tally.fail(str(frame.path), error)
                    continue
                bar.write(image_line(frame.path, result, written), file=sys.stdout)
        if video_jobs:
            options = VideoOptions(args.nireq, args.timeout, args.limit, functools.partial(tracker_for, args),
                                   args.files_at_once)
            run_videos(segmenter, video_jobs, options, out_dir, overlay, tally, bar)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if coco is not None and interrupted:
            coco.discard()
        tally.processing_s = time.perf_counter() - started
        bar.close()
        for source, _ in video_jobs:
            source.release()
    if coco is not None and not interrupted:
        coco.write()
        print(f"wrote {coco.path} ({coco.count} detections of {coco.images} image(s))")
    fps = tally.frames / tally.processing_s if tally.processing_s > 0 else 0.0
    print(f"{tally.frames} frames, {tally.instances} instances, {fps:.1f} FPS, {len(tally.failed)} failed"
          + (" [interrupted]" if interrupted else ""))
    if interrupted:
        return 130
    if tally.failed:
        print(failure_line(tally.failed, inputs_total), file=sys.stderr)
        return 2
    return 0


def _limited(frames: Any, limit: int) -> Any:
    for i, frame in enumerate(frames):
        if i >= limit:
            return
        yield frame
