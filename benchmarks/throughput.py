"""OpenVINO's own ``benchmark_app`` against ``ovseg bench`` (infer and e2e), same IR, same device.

Each round runs, one after the other and each in a fresh process:

1. ``benchmark_app`` in inference-only mode, fed exactly the tensors ovseg's preprocessing makes
   of the first frame (``-ip f32 -i im_data:X.npy,im_info:Y.npy``);
2. ``ovseg bench --mode infer`` on that frame (the same tensors);
3. ``ovseg bench --mode e2e --preload``, ``--mode e2e`` (JPEG read and decoded every
   iteration) and ``--mode e2e --reduced-read`` (JPEGs decoded at a reduced scale in libjpeg)
   at each threshold asked for;

then the next round, so that a change in the machine's load touches every configuration alike.
Frames are the given images resized to ``--frame-size`` (default 1920x1080) and stored as JPEG
in a temporary folder. The table gives FPS per round, the mean, and the ratio to benchmark_app's
mean, next to the issue's goals.

    # the fixture stand-in (about 60 ms/frame f32): a few minutes with the defaults
    python benchmarks/throughput.py --model ../shared/fixtures/models/standin-yolov5s-seg-0033-interface.xml \\
        --images ../shared/fixtures/coco-val2017-lightly/images

    # the 0033 compute twin (seconds per frame here): one round, fixed iteration counts
    python benchmarks/make_twin.py /tmp/twin/twin0033.xml
    python benchmarks/throughput.py --model /tmp/twin/twin0033.xml --images DIR -niter 8 --rounds 1 --thresholds 0.5

Precisions the CPU cannot run natively (bf16 without AVX-512 BF16 or AMX) are skipped with a
note: the CPU plugin would silently run them in f32.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

from ovseg.preprocess import preprocess

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# Issue 17's goals (the stand-in; the twin: e2e >= 0.97x), by run kind and threshold.
GOALS = {
    ("infer", None): "0.95-1.05",
    ("e2e-preload", 0.5): ">= 0.97 (twin >= 0.97)",
    ("e2e-jpeg", 0.5): ">= 0.92",
    ("e2e-reduced", 0.5): ">= 0.92",
    ("e2e-preload", 0.0): ">= 0.85",
}


def goal(name: str) -> str:
    kind = "infer" if "mode infer" in name else "e2e-preload" if "preload" in name else \
        "e2e-reduced" if "reduced" in name else "e2e-jpeg" if "JPEG" in name else ""
    threshold = float(m.group(1)) if (m := re.search(r"threshold ([0-9.]+)", name)) else None
    return GOALS.get((kind, threshold), "")


def prepare_frames(images: list[Path], frame_hw: tuple[int, int], count: int, folder: Path) -> list[Path]:
    """``count`` JPEGs of ``frame_hw`` made from ``images`` (resized, aspect not kept)."""
    out = []
    for i, src in enumerate(images[:count]):
        image = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"throughput.py: cannot read {src}")
        frame = cv2.resize(image, (frame_hw[1], frame_hw[0]), interpolation=cv2.INTER_LINEAR)
        path = folder / f"frame{i:03d}.jpg"
        cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        out.append(path)
    return out


def run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise SystemExit(f"throughput.py: {what} failed (exit {proc.returncode}):\n  " + "\n  ".join(tail))
    return proc.stdout


def fps_from_stdout(text: str) -> float:
    match = re.findall(r"Throughput:\s+([\d.]+) FPS", text)
    if not match:
        raise SystemExit("throughput.py: no 'Throughput: N FPS' line in the output")
    return float(match[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--images", required=True, type=Path, help="folder (or file) of images to make frames of")
    parser.add_argument("--frames", type=int, default=8, help="number of frames (default 8)")
    parser.add_argument("--frame-size", default="1920x1080", help="WxH of the frames (default 1920x1080)")
    parser.add_argument("-d", "--device", default="CPU")
    parser.add_argument("-hint", default="throughput")
    parser.add_argument("-nireq", type=int)
    parser.add_argument("-t", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument("-niter", type=int, help="iterations per run instead of -t")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--precisions", default="f32,bf16", help="comma-separated (default f32,bf16)")
    parser.add_argument("--thresholds", default="0.5,0", help="e2e thresholds (default 0.5,0)")
    parser.add_argument("--paste", choices=("legacy", "aligned"), help="e2e mask paste (default: the Segmenter's)")
    parser.add_argument("--json", type=Path, help="also write all numbers here")
    parser.add_argument("--no-reduced-read", dest="reduced_read", action="store_false",
                        help="skip the e2e runs with --reduced-read (JPEGs decoded at 1/2 scale in libjpeg)")
    args = parser.parse_args(argv)

    bapp = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    if not Path(bapp).exists():
        raise SystemExit("throughput.py: benchmark_app not found (it ships in the openvino pip package)")
    width, height = (int(v) for v in args.frame_size.lower().split("x"))
    sources = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) \
        if args.images.is_dir() else [args.images]
    if not sources:
        raise SystemExit(f"throughput.py: no images in {args.images}")
    caps = ov.Core().get_property(args.device.split(":")[0], "OPTIMIZATION_CAPABILITIES") \
        if args.device.upper().startswith("CPU") else []
    precisions = []
    for precision in args.precisions.split(","):
        if precision == "bf16" and args.device.upper().startswith("CPU") and "BF16" not in caps:
            print(f"note: {args.device} has no native bf16 ({', '.join(caps)}): bf16 would run as f32; skipped")
            continue
        precisions.append(precision)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    limit = ["-niter", str(args.niter)] if args.niter else ["-t", f"{args.t:g}"]
    common = ["-d", args.device, "-hint", args.hint, *limit, *(["-nireq", str(args.nireq)] if args.nireq else [])]

    print(f"machine: {machine()}")
    print(f"model:   {args.model}; mask paste: {args.paste or 'the Segmenter default'}")
    print(f"frames:  {min(args.frames, len(sources))} JPEG {width}x{height} from {args.images}; "
          f"{' '.join(limit)} per run, {args.rounds} round(s), alternating")
    table: dict[str, dict[str, list[float]]] = {}
    cpu_table: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ovseg-throughput-") as tmp:
        folder = Path(tmp)
        frames = prepare_frames(sources, (height, width), args.frames, folder)
        frame0 = cv2.imread(str(frames[0]))
        im_data, im_info, _ = preprocess(frame0, (480, 640))
        np.save(folder / "im_data.npy", im_data)
        np.save(folder / "im_info.npy", im_info)
        ovseg = [sys.executable, "-m", "ovseg", "bench", "-m", str(args.model), *common]
        if args.paste:
            ovseg += ["--paste", args.paste]
        for precision in precisions:
            runs: dict[str, list[str]] = {
                "benchmark_app (inference only)": [
                    bapp, "-m", str(args.model), *common, "-infer_precision", precision, "-ip", "f32",
                    "-i", f"im_data:{folder / 'im_data.npy'},im_info:{folder / 'im_info.npy'}",
                ],
                "ovseg bench --mode infer": [*ovseg, "-infer_precision", precision, "--mode", "infer",
                                             "-i", str(frames[0])],
            }
            for threshold in thresholds:
                e2e = [*ovseg, "-infer_precision", precision, "--mode", "e2e", "--threshold", f"{threshold:g}",
                       "-i", *map(str, frames)]
                runs[f"ovseg e2e --preload, threshold {threshold:g}"] = [*e2e, "--preload"]
                runs[f"ovseg e2e JPEG read, threshold {threshold:g}"] = e2e
                if args.reduced_read:
                    runs[f"ovseg e2e JPEG --reduced-read, threshold {threshold:g}"] = [*e2e, "--reduced-read"]
            fps: dict[str, list[float]] = {name: [] for name in runs}
            cpu: dict[str, list[float]] = {name: [] for name in runs}
            for round_ in range(args.rounds):
                for name, cmd in runs.items():
                    start = time.perf_counter()
                    stats = folder / "stats.json"
                    if cmd[0] != bapp:
                        cmd = [*cmd, "-json_stats", str(stats)]
                    out = run(cmd, name)
                    value = fps_from_stdout(out)
                    extra = ""
                    if cmd[0] != bapp:
                        res = json.loads(stats.read_text())["execution_results"]
                        cpu[name].append(float(res["cpu time per frame (ms)"]))
                        extra = f"  [CPU {res['cpu time per frame (ms)']} ms/frame]"
                    if cmd[0] != bapp and "e2e" in name:
                        extra += (f"  [read {res['read avg latency']} pre {res['preprocess avg latency']} "
                                 f"infer {res['infer avg latency']} decode {res['decode avg latency']} ms avg, "
                                 f"{res['instances']} instances, peak RSS {res['peak RSS (MB)']} MB]")
                    fps[name].append(value)
                    print(f"  {precision} round {round_ + 1}: {name:50s} {value:8.2f} FPS "
                          f"({time.perf_counter() - start:.0f} s){extra}", flush=True)
            table[precision] = fps
            cpu_table[precision] = cpu

    for precision, fps in table.items():
        base = float(np.mean(fps["benchmark_app (inference only)"]))
        print(f"\n{precision}: FPS per round, mean, ratio to benchmark_app ({args.device}, hint {args.hint})")
        print(f"  {'run':50s} {'rounds':>27s} {'mean':>8s} {'ratio':>7s} {'CPU ms/frame':>13s} {'CPU ratio':>9s}  goal")
        cpu = cpu_table[precision]
        cpu_infer = float(np.mean(cpu["ovseg bench --mode infer"]))
        for name, values in fps.items():
            mean = float(np.mean(values))
            cpu_mean = float(np.mean(cpu[name])) if cpu[name] else float("nan")
            rounds = " ".join(f"{v:.2f}" for v in values)
            print(f"  {name:50s} {rounds:>27s} {mean:8.2f} {mean / base:6.2f}x {cpu_mean:13.1f} "
                  f"{cpu_infer / cpu_mean:8.2f}x  {goal(name)}")
        print("  (CPU ratio: CPU time of an inference-only frame / of this run's frame, both measured by ovseg"
              " bench;\n   the FPS ratio to expect on otherwise idle cores when the CPU is the limit)")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        doc = {"machine": machine(), "model": str(args.model), "fps": table, "cpu_ms_per_frame": cpu_table}
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
