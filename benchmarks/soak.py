"""Soak: the streaming pipeline over thousands of frames; memory must not grow, nothing may be
lost or reordered.

Each frame has its own size (derived from its index), so every result says which frame it came
from (``Result.image_hw``) and order is checked exactly. RSS is read from /proc after a warm-up
and at the end.

    python benchmarks/soak.py [--frames 5000] [--model M.xml] [--threshold 0.0]

Without ``--model`` it generates a small model with the 0033 interface and 20 detections per
frame (see ovseg.synthetic), so the decode path runs at full load.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import ovseg
from ovseg.synthetic import maskrcnn_model, save_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def frame_hw(index: int) -> tuple[int, int]:
    """A size unique to each index below 251 * 241 = 60,491."""
    return 64 + index % 251, 64 + (index // 251) % 241


def frames(count: int) -> Iterator[np.ndarray]:
    for i in range(count):
        h, w = frame_hw(i)
        yield np.full((h, w, 3), i % 256, np.uint8)


def default_model(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 20
    x1y1 = rng.uniform(0, 0.7, (n, 2))
    boxes = np.hstack([x1y1, x1y1 + rng.uniform(0.05, 0.3, (n, 2))])
    return save_model(
        maskrcnn_model(rng.integers(1, 81, n), np.sort(rng.uniform(0.1, 1, n))[::-1], boxes, boxes_relative=True, work=1),
        folder / "soak.xml",
    )


def soak(model: Path, count: int, threshold: float, warmup: int = 200) -> dict[str, float]:
    seg = ovseg.Segmenter(model, threshold=threshold, config={"PERFORMANCE_HINT": "THROUGHPUT"})
    out = 0
    misordered = 0
    rss_start = 0.0
    start = time.perf_counter()
    for i, result in enumerate(seg.stream(frames(count))):
        if result.image_hw != frame_hw(i):
            misordered += 1
        _ = result.masks  # build full masks as an application would
        out += 1
        if i == warmup:
            gc.collect()
            rss_start = rss_mb()
    duration = time.perf_counter() - start
    gc.collect()
    return {
        "frames_in": count,
        "frames_out": out,
        "misordered": misordered,
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_mb(),
        "fps": out / duration,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--threshold", type=float, default=0.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or default_model(Path(tmp))
        stats = soak(model, args.frames, args.threshold)
    growth = stats["rss_end_mb"] - stats["rss_start_mb"]
    print(f"machine: {machine()}, model {args.model or 'generated (20 detections/frame)'}")
    print(f"frames in {stats['frames_in']}, out {stats['frames_out']}, misordered {stats['misordered']}, "
          f"{stats['fps']:.1f} FPS")
    print(f"RSS after warm-up {stats['rss_start_mb']:.1f} MB, at end {stats['rss_end_mb']:.1f} MB, growth {growth:+.1f} MB "
          f"(goal < 5 MB): {'ok' if growth < 5 else 'FAILED'}")


if __name__ == "__main__":
    main()
