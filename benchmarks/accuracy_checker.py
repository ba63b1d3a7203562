"""ovseg eval beside OMZ's Accuracy Checker (AC): the same model, images and annotations, both
box conventions, both resize rules.

AC is not installed by this script, nor is it an extra of ovseg: it wants NumPy < 2, so it lives
in its own environment, outside the repository, made once like this (OMZ's tag 2024.6.0 holds AC
0.10.6; ``openvino-dev`` 2024.6 no longer ships it)::

    git clone --depth 1 --branch 2024.6.0 https://github.com/openvinotoolkit/open_model_zoo /tmp/omz
    python3 -m venv /tmp/acenv
    /tmp/acenv/bin/pip install "openvino==2024.6.*" "numpy<2" "opencv-python<4.11" pycocotools
    /tmp/acenv/bin/pip install /tmp/omz/tools/accuracy_checker "numpy<2"

Then, from ovseg's own environment::

    python benchmarks/accuracy_checker.py --ac /tmp/acenv/bin/accuracy_check \\
        -m MODEL.xml --images DIR --annotations instances.json [--resize fit short-long] [--work DIR]

For each resize rule it writes an AC config (the official 0083 one of OMZ 2021.2, launcher
``openvino`` instead of the retired ``dlsdk``):

- ``fit``: ``resize`` 640x480 ``aspect_ratio_scale: fit_to_window``, ``padding`` 640x480
  ``right_bottom`` (numpy), adapter ``mask_rcnn``, ``im_info`` as ``IMAGE_INFO``;
- ``short-long``: ``resize`` ``frcnn_keep_aspect_ratio`` (short side 480, long side at most
  640), ``padding`` ``right_bottom`` to a multiple of 32 (``stride: 32``) and
  ``allow_reshape_input``: the network is reshaped to each padded size. (ovseg's
  ``short-long`` pads to the whole 480x640 or 640x480 window instead.)

and the metrics ``coco_orig_segm_precision`` and ``coco_orig_precision`` twice, with AC's default
``include_boundaries: True`` and with ``False``. It runs AC once and ``ovseg eval`` once per box
convention (``omz``: AC's default; ``coco``: ``include_boundaries: False``), all with
``INFERENCE_PRECISION_HINT f32``, legacy paste, on the same images, and prints the table.
AC's annotation conversion uses the original COCO file as ground truth (no subsampling).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark

AC_METRICS = {"AP@masks": "mask", "AP@boxes": "box omz", "AP@boxes_no_boundaries": "box coco"}


def ac_config(model: Path, images: Path, annotations: Path, resize: str, device: str) -> str:
    """The AC YAML for ``model`` on ``images`` / ``annotations`` (paths absolute, JSON-quoted)."""
    q = json.dumps
    if resize == "fit":
        preprocessing = """\
          - type: resize
            dst_width: 640
            dst_height: 480
            aspect_ratio_scale: fit_to_window
          - type: padding
            dst_width: 640
            dst_height: 480
            pad_type: right_bottom
            use_numpy: True"""
        reshape = ""
    elif resize == "short-long":
        preprocessing = """\
          - type: resize
            dst_width: 640
            dst_height: 480
            aspect_ratio_scale: frcnn_keep_aspect_ratio
          - type: padding
            stride: 32
            pad_type: right_bottom
            use_numpy: True"""
        reshape = "\n        allow_reshape_input: True"
    else:
        raise ValueError(f"expected resize fit or short-long, got {resize!r}")
    return f"""\
models:
  - name: {q(model.stem)}
    launchers:
      - framework: openvino
        device: {device}
        model: {q(str(model))}
        weights: {q(str(model.with_suffix(".bin")))}{reshape}
        device_config:
          {device}:
            INFERENCE_PRECISION_HINT: f32
        adapter:
          type: mask_rcnn
          classes_out: classes
          scores_out: scores
          boxes_out: boxes
          raw_masks_out: raw_masks
        inputs:
          - name: im_info
            type: IMAGE_INFO
    datasets:
      - name: ms_coco_mask_rcnn_short_80_classes
        annotation_conversion:
          converter: mscoco_mask_rcnn
          annotation_file: {q(str(annotations))}
          has_background: True
          sort_annotations: True
        data_source: {q(str(images))}
        preprocessing:
{preprocessing}
        metrics:
          - name: AP@masks
            type: coco_orig_segm_precision
          - name: AP@boxes
            type: coco_orig_precision
          - name: AP@boxes_no_boundaries
            type: coco_orig_precision
            include_boundaries: False
"""


def run(cmd: list[str], what: str, log: Path) -> str:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    log.write_text(f"$ {' '.join(cmd)}\n\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        raise SystemExit(f"accuracy_checker.py: {what} failed (exit {proc.returncode}, log {log}):\n  " + "\n  ".join(tail))
    print(f"  {what}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return proc.stdout


def ac_results(stdout: str) -> dict[str, float]:
    """AC's metric lines (``AP@boxes: 45.82%``) -> {metric name: AP in percent}."""
    found = {name: float(value) for name, value in re.findall(r"^\s*(AP@\w+):\s*([\d.]+)%", stdout, re.M)}
    missing = [name for name in AC_METRICS if name not in found]
    if missing:
        raise SystemExit(f"accuracy_checker.py: no {missing} lines in AC's output")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ac", required=True, help="the accuracy_check executable of the AC environment")
    parser.add_argument("-m", "--model", required=True, type=Path, help="IR .xml of the 0033 family")
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--annotations", required=True, type=Path, help="COCO instances JSON")
    parser.add_argument("--resize", nargs="+", choices=("fit", "short-long"), default=["fit", "short-long"])
    parser.add_argument("-d", "--device", default="CPU")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ovseg-ac"), help="configs, logs, stats (default /tmp/ovseg-ac)")
    parser.add_argument("--json", type=Path, help="also write all numbers here")
    args = parser.parse_args(argv)

    model, images, annotations = (p.resolve() for p in (args.model, args.images, args.annotations))
    for path, what in ((model, "model"), (images, "image folder"), (annotations, "annotations")):
        if not path.exists():
            raise SystemExit(f"accuracy_checker.py: {what} not found: {path}")
    if not Path(args.ac).is_file():
        raise SystemExit(f"accuracy_checker.py: expected the accuracy_check executable at {args.ac} (see this file's docstring)")
    ac_version = subprocess.run(
        [str(Path(args.ac).with_name("python")), "-c",
         "import accuracy_checker, openvino, numpy; print(accuracy_checker.__version__, openvino.get_version(), numpy.__version__)"],
        capture_output=True, text=True, check=False,
    ).stdout.split()
    args.work.mkdir(parents=True, exist_ok=True)

    print(machine())
    if len(ac_version) == 3:
        print(f"AC {ac_version[0]} (OpenVINO {ac_version[1]}, NumPy {ac_version[2]})", end="; ")
    import numpy
    import openvino

    import ovseg

    print(f"ovseg {ovseg.__version__} (OpenVINO {openvino.get_version()}, NumPy {numpy.__version__}); f32, legacy paste")
    rows = []
    for resize in args.resize:
        config = args.work / f"ac-{resize}.yml"
        config.write_text(ac_config(model, images, annotations, resize, args.device))
        print(f"{resize}: AC config {config}", file=sys.stderr)
        ac = ac_results(run([args.ac, "-c", str(config), "-td", args.device], f"AC {resize}", args.work / f"ac-{resize}.log"))
        ours = {}
        for convention in ("omz", "coco"):
            stats = args.work / f"ovseg-{resize}-{convention}.json"
            run([sys.executable, "-m", "ovseg", "eval", "-m", str(model), "--images", str(images), "--annotations", str(annotations),
                 "-d", args.device, "--infer-precision", "f32", "--paste", "legacy", "--resize", resize,
                 "--box-convention", convention, "--stats", str(stats)],
                f"ovseg eval {resize} --box-convention {convention}", args.work / f"ovseg-{resize}-{convention}.log")
            doc = json.loads(stats.read_text())
            ours[convention] = (doc["bbox"][0] * 100, doc["segm"][0] * 100, doc["settings"]["images"])
        rows.append({
            "resize": resize,
            "ac": {"box omz": ac["AP@boxes"], "box coco": ac["AP@boxes_no_boundaries"], "mask": ac["AP@masks"]},
            "ovseg": {"box omz": ours["omz"][0], "box coco": ours["coco"][0], "mask": ours["omz"][1],
                      "mask (coco run)": ours["coco"][1]},
            "images": ours["omz"][2],
        })

    print()
    print("| resize | tool | box AP, omz (+1, AC default) | box AP, coco (include_boundaries: False) | mask AP | images |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        ac, us = row["ac"], row["ovseg"]
        print(f"| {row['resize']} | Accuracy Checker | {ac['box omz']:.2f} | {ac['box coco']:.2f} | {ac['mask']:.2f} | {row['images']} |")
        print(f"| {row['resize']} | ovseg eval | {us['box omz']:.2f} | {us['box coco']:.2f} | {us['mask']:.2f} | {row['images']} |")
        print(f"| {row['resize']} | difference | {us['box omz'] - ac['box omz']:+.2f} | {us['box coco'] - ac['box coco']:+.2f} | "
              f"{us['mask'] - ac['mask']:+.2f} | |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "ac_version": ac_version, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
