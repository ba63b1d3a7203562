"""``ovseg predict`` against ``ovseg bench --mode e2e`` on the same images and model, side by
side, and against what predict was before it streamed (one synchronous call per image).

Rounds alternate, each contender in a fresh process:

- ``bench e2e``: ``ovseg bench --mode e2e -i DIR -niter N`` (reads, preprocesses, infers and
  decodes every frame through the pipeline; its ``Throughput`` line);
- ``predict``: ``ovseg predict DIR --no-overlay -o OUT`` (the same, plus the JSON files; its
  last line's FPS, start-up excluded);
- ``predict, sync``: the former predict's loop (read, ``Segmenter.__call__``, JSON) in a
  fresh process, FPS over the loop.

Then the same three on a 1080p video made from the images (bench on its frames as 1080p JPEGs).
Prints FPS per round, means and the ratios to bench e2e; and the CPU.

    python benchmarks/predict.py --model M.xml --images DIR [--rounds 2] [--video-frames 40]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark

SYNC = r"""
import json, sys, time
from pathlib import Path
import ovseg
from ovseg.images import list_images, read_image
from ovseg.sources import open_source

seg = ovseg.Segmenter(sys.argv[1], config={"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
src, out = Path(sys.argv[2]), Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
frames = (f.image for f in open_source(src)) if src.is_file() else (read_image(p) for p in list_images(src))
n, start = 0, time.perf_counter()
for image in frames:
    res = seg(image)
    (out / f"{n}.json").write_text(json.dumps({"instances": res.to_records()}))
    n += 1
print(f"FPS {n / (time.perf_counter() - start):.3f}")
"""


def run(args: list[str], pattern: str) -> float:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(args[:4])}...: exit {proc.returncode}: {proc.stderr[-500:]}")
    match = re.search(pattern, proc.stdout)
    if not match:
        raise SystemExit(f"no FPS in the output of {' '.join(args[:4])}: {proc.stdout[-500:]}")
    return float(match.group(1))


def make_video(images: list[Path], path: Path, count: int) -> tuple[Path, Path]:
    """A 1920x1080 MJPG video of the images (letterboxed), and the same frames as JPEG files."""
    from ovseg.images import read_image
    from ovseg.video import fit_into

    jpegs = path.parent / "frames1080"
    jpegs.mkdir()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (1920, 1080))
    for i in range(count):
        frame = fit_into(read_image(images[i % len(images)]), (1080, 1920))
        writer.write(frame)
        cv2.imwrite(str(jpegs / f"{i:05d}.jpg"), frame)
    writer.release()
    return path, jpegs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--video-frames", type=int, default=40)
    opts = parser.parse_args()
    from ovseg.images import list_images

    images = list_images(opts.images)
    ovseg_cmd = [sys.executable, "-m", "ovseg"]
    print(f"machine: {machine()}; model {opts.model}; precision f32; hint throughput (predict, bench), latency (sync)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        video, jpegs = make_video(images, tmp_path / "video1080.avi", opts.video_frames)
        cases = {
            f"{len(images)} images": (opts.images, opts.images, len(images)),
            f"1080p video, {opts.video_frames} frames": (video, jpegs, opts.video_frames),
        }
        for title, (source, bench_input, count) in cases.items():
            fps: dict[str, list[float]] = {"bench e2e": [], "predict": [], "predict, sync (before)": []}
            for r in range(opts.rounds):
                out = tmp_path / f"out-{title[:4]}-{r}"
                fps["bench e2e"].append(run([*ovseg_cmd, "bench", "-m", opts.model, "--mode", "e2e", "-i", str(bench_input),
                                             "-niter", str(count), "-infer_precision", "f32", "--threshold", "0.5"],
                                            r"Throughput:\s+([\d.]+) FPS"))
                fps["predict"].append(run([*ovseg_cmd, "predict", str(source), "-m", opts.model, "--no-overlay", "-o",
                                           str(out / "p"), "--infer-precision", "f32"], r"instances, ([\d.]+) FPS"))
                fps["predict, sync (before)"].append(run([sys.executable, "-c", SYNC, opts.model, str(source), str(out / "s")],
                                                         r"FPS ([\d.]+)"))
            base = statistics.mean(fps["bench e2e"])
            print(f"\n{title}")
            print(f"  {'run':<26}{'FPS per round':<22}{'mean':>7}{'ratio':>8}")
            for name, values in fps.items():
                mean = statistics.mean(values)
                print(f"  {name:<26}{' '.join(f'{v:.2f}' for v in values):<22}{mean:7.2f}{mean / base:7.2f}x")


if __name__ == "__main__":
    main()
