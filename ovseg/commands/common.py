"""Options and helpers shared by the subcommands.

Light on purpose: the command modules import only this, ``ovseg.options`` and
``ovseg.errors`` at module level, so that ``ovseg --help`` and ``--version`` load neither
OpenVINO nor pycocotools; each command imports what it runs inside its ``run``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..options import DEFAULT_REMOTE_TIMEOUT_S, INFER_PRECISIONS, TRACK_CANDIDATES
from ..remote_url import URL_FORMS, looks_remote, parse_remote_url

if TYPE_CHECKING:
    from ..segmenter import Segmenter

__all__ = [
    "threshold_arg",
    "positive_int_arg",
    "positive_float_arg",
    "add_model_options",
    "add_remote_option",
    "refuse_local_options",
    "LOCAL_MODEL_OPTIONS",
    "add_cache_option",
    "segmenter_from_args",
    "compile_config",
    "expand_inputs",
    "bounded_float_arg",
    "add_stream_options",
    "tracking_overrides",
    "tracker_for",
    "quiet_opencv",
]



def bounded_float_arg(low: float, high: float, what: str = "a number") -> Callable[[str], float]:
    """argparse type: a number in ``[low, high]``; the message names ``what`` is expected."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} in [{low:g}, {high:g}], got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} in [{low:g}, {high:g}], got {text}")
        return value

    return parse


#: argparse type: a score threshold in [0, 1].
threshold_arg = bounded_float_arg(0.0, 1.0)


def positive_float_arg(text: str) -> float:
    """argparse type: a number > 0 (seconds, frames per second)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def positive_int_arg(text: str) -> int:
    """argparse type: an integer >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def add_cache_option(parser: argparse.ArgumentParser, dest: str = "cache_dir") -> None:
    """--cache-dir: where catalogue names are fetched to and looked up."""
    parser.add_argument(
        "--cache-dir", metavar="DIR", dest=dest,
        help="model cache that catalogue names are fetched to and read from (default $OVSEG_HOME or the per-user cache)",
    )


#: Options of :func:`add_model_options` that configure a model compiled here (dest: flag); a
#: served model (``--model grpc://...``) refuses them.
LOCAL_MODEL_OPTIONS = {"cache_dir": "--cache-dir", "device": "--device", "infer_precision": "--infer-precision",
                       "config": "--config"}


def add_remote_option(parser: argparse.ArgumentParser) -> None:
    """--remote-timeout: the bound of every call to a served model."""
    parser.add_argument(
        "--remote-timeout", type=positive_float_arg, default=DEFAULT_REMOTE_TIMEOUT_S, metavar="S",
        help=f"with a model URL: give up on any call to the server (metadata, each inference) after S seconds "
        f"(default {DEFAULT_REMOTE_TIMEOUT_S:g})",
    )


def refuse_local_options(args: argparse.Namespace, options: dict[str, str] = LOCAL_MODEL_OPTIONS) -> bool:
    """With a model URL, refuse (one line) the options given that only configure a model compiled
    here (``options``: dest -> flag; given means not ``None`` / empty). Returns whether the model
    is a URL; a malformed one is a :class:`ConfigError` naming the accepted forms."""
    if not looks_remote(args.model):
        return False
    parse_remote_url(args.model)
    given = {flag: getattr(args, dest, None) for dest, flag in options.items()}
    given = {flag: value for flag, value in given.items() if value not in (None, [], False)}
    if given:
        shown = " ".join(f"{flag} {' '.join(map(str, v)) if isinstance(v, list) else v}" for flag, v in given.items())
        raise ConfigError(
            f"expected no {', '.join(given)} with a served model ({args.model}: the server compiles and runs it), got {shown}"
        )
    return True


def add_model_options(
    parser: argparse.ArgumentParser, *, threshold: float | None = 0.5, positional: bool = False, remote: bool = True
) -> None:
    """--model (``MODEL`` when ``positional``), --cache-dir, --device, --infer-precision, --config,
    --remote-timeout when a served model's URL is accepted (``remote``), and --threshold unless
    None."""
    names = ["model"] if positional else ["-m", "--model"]
    parser.add_argument(
        *names, **({"metavar": "MODEL"} if positional else {"required": True}),
        help="model IR .xml (its .bin beside it) or .onnx, a catalogue name fetched with `ovseg fetch` (ovseg models)"
        + (f", or a served model's URL: {URL_FORMS}" if remote else ""),
    )
    add_cache_option(parser)
    parser.add_argument(
        "-d", "--device", help="OpenVINO device: CPU, GPU, NPU, AUTO, HETERO:GPU,CPU, ... (default CPU)"
    )
    parser.add_argument(
        "--infer-precision",
        choices=INFER_PRECISIONS,
        help="inference precision hint (OpenVINO's CPU default: bf16 on CPUs with AVX-512 BF16 or AMX, else f32)",
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="OpenVINO property passed to compile_model, e.g. PERFORMANCE_HINT=LATENCY (repeatable)",
    )
    if remote:
        add_remote_option(parser)
    if threshold is not None:
        parser.add_argument(
            "-t", "--threshold", type=threshold_arg, default=threshold,
            help=f"keep detections with score >= T (default {threshold})",
        )


def compile_config(args: argparse.Namespace) -> dict[str, Any]:
    """OpenVINO properties from --config KEY=VALUE and --infer-precision."""
    config: dict[str, Any] = {}
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected --config KEY=VALUE, got {item!r}")
        config[key.strip()] = value.strip()
    if getattr(args, "infer_precision", None):
        config["INFERENCE_PRECISION_HINT"] = args.infer_precision
    return config


def segmenter_from_args(args: argparse.Namespace, **overrides: Any) -> Segmenter:
    """A :class:`~ovseg.segmenter.Segmenter` from the model options (``overrides`` win). With a
    model URL the local compile options are refused (:func:`refuse_local_options`), a
    ``config`` override (the commands' performance hint) is dropped, and ``args.device``
    becomes the URL (what the outputs report as the device)."""
    from ..segmenter import Segmenter

    if refuse_local_options(args):
        overrides.pop("config", None)
        kwargs: dict[str, Any] = {
            "threshold": getattr(args, "threshold", 0.5),
            "remote_timeout_s": getattr(args, "remote_timeout", DEFAULT_REMOTE_TIMEOUT_S),
        }
        kwargs.update(overrides)
        segmenter = Segmenter(args.model, **kwargs)
        args.device = segmenter.device
        return segmenter
    args.device = args.device or "CPU"
    kwargs = {
        "device": args.device,
        "threshold": getattr(args, "threshold", 0.5),
        "config": compile_config(args),
        "cache_dir": getattr(args, "cache_dir", None),
    }
    kwargs.update(overrides)
    return Segmenter(args.model, **kwargs)


def expand_inputs(paths: Iterable[str]) -> Iterator[Path]:
    """Image inputs as :func:`ovseg.sources.image_paths` reads them (folders sorted, glob
    patterns, ``.txt`` lists, image files); anything else as given (the caller says what is
    wrong with it)."""
    from ..sources import image_paths

    for text in paths:
        found = image_paths(text)
        yield from found if found is not None else [Path(text)]


def add_reduced_read_option(parser: argparse.ArgumentParser) -> None:
    """--reduced-read (predict and bench; never eval, whose protocol reads every pixel)."""
    parser.add_argument(
        "--reduced-read", action="store_true",
        help="decode JPEGs at least twice the network input at 1/2, 1/4 or 1/8 scale inside libjpeg (faster reading; "
        "the network sees slightly other pixels: AP moved by about +0.2 on the fixture set, README 'Reduced-scale "
        "reading'); results stay in full-size coordinates; image files only",
    )


def add_stream_options(parser: argparse.ArgumentParser, *, track_help: str) -> None:
    """--timeout for cameras and streams, --track and --tracker (predict and demo)."""
    from ..track import DEFAULT_TRACKER, TRACKERS

    parser.add_argument(
        "--timeout", type=positive_float_arg, default=5.0, metavar="S",
        help="give up on a camera or stream that delivers no frame for S seconds (default 5; 3x that for the first)",
    )
    parser.add_argument("--track", action="store_true", help=track_help)
    parser.add_argument(
        "--tracker", choices=sorted(TRACKERS), default=DEFAULT_TRACKER,
        help=f"which tracker --track uses (default {DEFAULT_TRACKER}, the tracking benchmark's best)",
    )


def tracking_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Segmenter options for --track: the box-only candidates the trackers' low-score
    association needs (never in the output)."""
    return {"candidate_threshold": min(TRACK_CANDIDATES, args.threshold)} if args.track else {}


def tracker_for(args: argparse.Namespace, source: Any) -> Any:
    """A new tracker for one source under --track (at the source's frame rate where it has
    one), else ``None``."""
    if not args.track:
        return None
    from ..track import make_tracker

    return make_tracker(args.tracker, **({"frame_rate": source.fps} if source.fps else {}))


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """OpenCV's own log lines (a missing camera gives half a dozen, warnings and errors, from
    the backends it tries) would bury the one-line message; they are silenced for the run and
    restored after. What matters reaches the user as ovseg's own errors."""
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    # FFmpeg's own messages ("[tcp @ 0x...] Connection refused"): read when FFmpeg starts.
    ffmpeg_level = os.environ.get("OPENCV_FFMPEG_LOGLEVEL")
    if ffmpeg_level is None:
        os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"  # AV_LOG_QUIET
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)
        if ffmpeg_level is None:
            os.environ.pop("OPENCV_FFMPEG_LOGLEVEL", None)
