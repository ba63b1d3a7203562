"""Video soak: ``ovseg predict`` over a long generated 1080p video; memory must stay flat,
and the JSONL must hold every frame, in order.

The video is made here (MJPG, 1920x1080, moving shapes; each frame's index is drawn into its
top-left corner as a binary code so that the JSONL lines can be matched to frames). ``ovseg
predict`` runs in this process (``ovseg.cli.main``) with overlays on or off; a thread samples
this process's RSS every 0.5 s. Reported: frames in / lines out / misordered, RSS after the
warm-up and at the end, growth.

    python benchmarks/video_soak.py [--frames 10000] [--model M.xml] [--overlay]

Without ``--model`` a generated model with the 0033 interface and 20 detections a frame is used.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from ovseg.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark
from soak import default_model, rss_mb  # noqa: E402 - the same generated model and RSS reader as the pipeline soak


def make_video(path: Path, count: int, hw: tuple[int, int] = (1080, 1920), fps: float = 25.0) -> Path:
    height, width = hw
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    base = np.zeros((height, width, 3), np.uint8)
    base[:] = (60, 90, 120)
    for i in range(count):
        frame = base.copy()
        cv2.circle(frame, (200 + (7 * i) % (width - 400), height // 2), 150, (200, 200, 200), -1)
        for bit in range(16):  # the index, as 16 black/white squares
            frame[0:24, bit * 24 : (bit + 1) * 24] = 255 if (i >> bit) & 1 else 0
        writer.write(frame)
    writer.release()
    return path


def soak(model: Path, video: Path, out: Path, *, warmup_s: float = 20.0, overlay: bool = False) -> dict[str, float]:
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), rss_mb()))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    args = ["predict", str(video), "-m", str(model), "-o", str(out), "-t", "0.0", "--infer-precision", "f32"]
    code = main(args + ([] if overlay else ["--no-overlay"]))
    stop.set()
    sampler.join()
    elapsed = time.perf_counter() - start
    lines = (out / f"{video.stem}.jsonl").read_text().splitlines()
    indices = [json.loads(line)["frame"] for line in lines]
    after = [rss for t, rss in samples if t - start >= min(warmup_s, elapsed / 4)]
    return {
        "exit": code,
        "lines": len(lines),
        "misordered": sum(1 for i, j in enumerate(indices) if i != j),
        "rss_start_mb": after[0] if after else float("nan"),
        "rss_end_mb": after[-1] if after else float("nan"),
        "rss_max_mb": max(after) if after else float("nan"),
        "fps": len(lines) / elapsed,
    }


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--overlay", action="store_true", help="write the MP4 too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model or default_model(folder)
        print(f"machine: {machine()}, {platform.machine()}; model {'generated (20 detections/frame)' if args.model is None else model}")
        t0 = time.perf_counter()
        video = make_video(folder / "long.avi", args.frames)
        print(f"video: {args.frames} frames 1920x1080 MJPG, made in {time.perf_counter() - t0:.0f} s")
        stats = soak(model, video, folder / "out", overlay=args.overlay)
    growth = stats["rss_end_mb"] - stats["rss_start_mb"]
    print(f"frames in {args.frames}, JSONL lines {stats['lines']}, misordered {stats['misordered']}, {stats['fps']:.1f} FPS")
    print(f"RSS after warm-up {stats['rss_start_mb']:.1f} MB, at end {stats['rss_end_mb']:.1f} MB, max {stats['rss_max_mb']:.1f} MB, "
          f"growth {growth:+.1f} MB (goal < 5 MB): {'ok' if growth < 5 and stats['lines'] == args.frames else 'FAILED'}")


if __name__ == "__main__":
    main_cli()
