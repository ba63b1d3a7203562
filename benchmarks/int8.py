"""INT8 against float, side by side: AP on images not used for calibration, and speed in
``ovseg bench`` in the same run.

The COCO set is split by position in file-name order (COCO names are zero-padded ids, so this
is id order): images at even positions (0, 2, 4, ...) calibrate, images at odd positions are
scored. ``ovseg quantize`` makes the INT8 IR from the calibration half (unless ``--int8`` gives
one), ``ovseg eval`` scores both models on the other half (f32 inference, legacy paste, both box
conventions), and ``ovseg bench`` times both, alternating, ``--rounds`` times per hint, at the
CPU's default precision (bf16 where native, else f32). Medians are reported.

    python benchmarks/int8.py -m MODEL.xml --images DIR --annotations JSON [--quantize-args "..."] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark


def ovseg(*args: str, what: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "ovseg", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"int8.py: {what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}")
    return proc.stdout


def bench(model: Path, hint: str, seconds: float) -> tuple[float, float, str]:
    """(FPS, median latency ms, precision) of one ``ovseg bench`` run."""
    out = ovseg("bench", "-m", str(model), "-hint", hint, "-t", str(seconds), what=f"bench {model.name} {hint}")
    fps = float(re.findall(r"Throughput:\s+([\d.]+) FPS", out)[-1])
    median = float(re.search(r"Median:\s+([\d.]+) ms", out).group(1))
    precision = re.search(r"precision (\S+),", out)
    return fps, median, precision.group(1) if precision else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--model", required=True, type=Path, help="the float IR")
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--annotations", required=True, type=Path)
    parser.add_argument("--int8", type=Path, help="an INT8 IR to use instead of quantizing here")
    parser.add_argument("--quantize-args", default="", help="extra ovseg quantize options, e.g. \"--ignored-scope none\"")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-t", "--time", type=float, default=10.0, help="seconds per bench run (default 10)")
    parser.add_argument("--hints", default="throughput,latency")
    parser.add_argument("--work", type=Path, default=None, help="where the split and the INT8 IR go (default: a temp folder)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="ovseg-int8-"))
    work.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    calib_names, score_names = names[0::2], names[1::2]
    doc = json.loads(args.annotations.read_text())
    score_ids = sorted(im["id"] for im in doc["images"] if im["file_name"] in set(score_names))
    print(machine())
    print(f"split: {len(calib_names)} calibration images (even positions in name order), {len(score_ids)} scored (odd)")

    int8 = args.int8
    if int8 is None:
        calib = work / "calib"
        calib.mkdir(exist_ok=True)
        for name in calib_names:
            link = calib / name
            if not link.exists():
                link.symlink_to((args.images / name).resolve())
        int8 = work / f"{args.model.stem}-int8.xml"
        start = time.perf_counter()
        out = ovseg("quantize", str(args.model), "--calib", str(calib), "-o", str(int8), *shlex.split(args.quantize_args),
                    what="quantize")
        print(f"{out.strip()} [{time.perf_counter() - start:.0f} s wall]")

    ap: dict[str, dict[str, list[float]]] = {}
    for tag, model in (("float", args.model), ("int8", int8)):
        ap[tag] = {}
        for convention in ("coco", "omz"):
            stats = work / f"{tag}-{convention}.json"
            ovseg("eval", "-m", str(model), "--images", str(args.images), "--annotations", str(args.annotations),
                  "--infer-precision", "f32", "--paste", "legacy", "--box-convention", convention,
                  "--image-ids", ",".join(map(str, score_ids)), "--stats", str(stats), what=f"eval {tag}")
            s = json.loads(stats.read_text())
            ap[tag][convention] = [s["bbox"][0] * 100, s["segm"][0] * 100]
    print(f"\nAP on the {len(score_ids)} scored images (f32 inference, legacy paste):")
    print("| model | box AP (coco) | box AP (omz +1) | mask AP |")
    print("|---|---|---|---|")
    for tag in ("float", "int8"):
        print(f"| {tag} | {ap[tag]['coco'][0]:.2f} | {ap[tag]['omz'][0]:.2f} | {ap[tag]['coco'][1]:.2f} |")
    drop = [ap["float"]["coco"][0] - ap["int8"]["coco"][0], ap["float"]["omz"][0] - ap["int8"]["omz"][0],
            ap["float"]["coco"][1] - ap["int8"]["coco"][1]]
    print(f"| drop | {drop[0]:.2f} | {drop[1]:.2f} | {drop[2]:.2f} |")

    speed: dict[str, dict[str, list[tuple[float, float, str]]]] = {}
    for hint in args.hints.split(","):
        speed[hint] = {"float": [], "int8": []}
        for _ in range(args.rounds):
            for tag, model in (("float", args.model), ("int8", int8)):
                speed[hint][tag].append(bench(model, hint, args.time))
    print(f"\nspeed, ovseg bench --mode infer, CPU default precision, {args.rounds} alternating rounds of {args.time:g} s, medians:")
    print("| hint | float FPS | INT8 FPS | INT8 / float | float median latency | INT8 median latency | precision |")
    print("|---|---|---|---|---|---|---|")
    for hint, runs in speed.items():
        f_fps, q_fps = (statistics.median(r[0] for r in runs[tag]) for tag in ("float", "int8"))
        f_lat, q_lat = (statistics.median(r[1] for r in runs[tag]) for tag in ("float", "int8"))
        print(f"| {hint} | {f_fps:.2f} | {q_fps:.2f} | {q_fps / f_fps:.2f}x | {f_lat:.1f} ms | {q_lat:.1f} ms | "
              f"{runs['float'][0][2]} / {runs['int8'][0][2]} |")
    print(machine())
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "ap": ap, "drop": drop, "speed": speed, "int8": str(int8)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
