"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..bench import PRECISIONS
from ..capture import IMAGE_SUFFIXES, read_image
from ..errors import ConfigError, OvsegError
from ..segmenter import Segmenter

__all__ = [
    "threshold_arg",
    "positive_int_arg",
    "positive_float_arg",
    "IMAGE_SUFFIXES",
    "add_model_options",
    "segmenter_from_args",
    "compile_config",
    "expand_inputs",
    "read_image",
    "atomic_write",
    "check_writable",
]



def threshold_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return value


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


def add_model_options(parser: argparse.ArgumentParser, *, threshold: float | None = 0.5) -> None:
    """--model, --device, --infer-precision, --config (and --threshold unless None)."""
    parser.add_argument(
        "-m", "--model", required=True,
        help="model IR .xml (its .bin beside it) or .onnx, or a catalogue name fetched with `ovseg fetch` (ovseg models)",
    )
    parser.add_argument(
        "-d", "--device", default="CPU", help="OpenVINO device: CPU, GPU, NPU, AUTO, HETERO:GPU,CPU, ... (default CPU)"
    )
    parser.add_argument(
        "--infer-precision",
        choices=PRECISIONS,
        help="inference precision hint (OpenVINO's CPU default: bf16 on CPUs with AVX-512 BF16 or AMX, else f32)",
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="OpenVINO property passed to compile_model, e.g. PERFORMANCE_HINT=LATENCY (repeatable)",
    )
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
    kwargs: dict[str, Any] = {
        "device": args.device,
        "threshold": getattr(args, "threshold", 0.5),
        "config": compile_config(args),
    }
    kwargs.update(overrides)
    return Segmenter(args.model, **kwargs)


def expand_inputs(paths: Iterable[str]) -> Iterator[Path]:
    """Files as given; directories expand to their image files (sorted, not recursive)."""
    for text in paths:
        path = Path(text)
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield path


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place, so
    that ``path`` is either absent or complete. The file gets the usual permissions (0666 less
    the umask), not the temporary file's 0600. File-system errors become one-line
    :class:`OvsegError`s naming the path."""
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as error:
        raise OvsegError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def check_writable(path: str | Path | None) -> None:
    """Fail early, before a long run, when ``path`` cannot be written (a folder, a parent that is
    a file or cannot be created)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise OvsegError(f"cannot write {path}: expected a file name, got a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OvsegError(f"cannot write {path}: {error.strerror or error}") from None
    if not os.access(path.parent, os.W_OK):
        raise OvsegError(f"cannot write {path}: its folder is not writable")
