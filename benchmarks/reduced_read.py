"""What reading JPEGs at a reduced scale does to accuracy and to read time (issue 17, item 2).

The fixture's COCO images are about 640x480, the network input's size, so nothing could be
reduced. The script therefore makes a large-image version of the set first: every image
upscaled 3x (``cv2.INTER_LINEAR``; 640x480 -> 1920x1440) and re-encoded as JPEG quality 95
under ``--workdir``, with the ground truth scaled to match (boxes and polygons x3, crowd RLE
masks repeated 3x3, areas x9). Each image is then segmented twice, f32, threshold 0:

- ``full``: ovseg's reader (``images.read_image``, the whole JPEG), then the protocol's resize;
- ``reduced``: ``ovseg.jpeg.read_image_reduced`` (libjpeg decodes at 1/2 here: the largest
  reduction keeping both sides >= 480x640), then the same resize of the smaller image;

and each inference is decoded in both paste modes directly into the full-resolution frame
(the Transform's ``image_hw`` set to the file's size, so boxes and masks are mapped back by the
exact per-axis factor). Box and mask AP (pycocotools) per (read, paste); read time per image is
the median over interleaved repeats of both readers on every file.

    python benchmarks/reduced_read.py [--fixtures /work/shared/fixtures] [--workdir /tmp/ovseg-reduced-read]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util

from ovseg.coco import evaluate
from ovseg.decode import decode
from ovseg.evaluation import load_annotations
from ovseg.images import read_image
from ovseg.jpeg import read_image_reduced, reduction_for
from ovseg.model import request_outputs
from ovseg.segmenter import Segmenter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
FACTOR = 3


def make_large_set(images: Path, annotations: Path, workdir: Path) -> tuple[Path, Path]:
    """The fixture set upscaled FACTOR x, as JPEGs, with ground truth to match."""
    out_images = workdir / f"images-x{FACTOR}"
    out_images.mkdir(parents=True, exist_ok=True)
    gt = json.loads(annotations.read_text())
    for info in gt["images"]:
        target = out_images / info["file_name"]
        if not target.exists():
            image = cv2.imread(str(images / info["file_name"]), cv2.IMREAD_COLOR)
            big = cv2.resize(image, (image.shape[1] * FACTOR, image.shape[0] * FACTOR), interpolation=cv2.INTER_LINEAR)
            cv2.imwrite(str(target), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
        info["height"], info["width"] = info["height"] * FACTOR, info["width"] * FACTOR
    sizes = {info["id"]: (info["height"], info["width"]) for info in gt["images"]}
    for ann in gt["annotations"]:
        ann["bbox"] = [v * FACTOR for v in ann["bbox"]]
        ann["area"] = ann["area"] * FACTOR * FACTOR
        seg = ann["segmentation"]
        if isinstance(seg, list):
            ann["segmentation"] = [[v * FACTOR for v in poly] for poly in seg]
        else:
            h, w = seg["size"]
            rle = mask_util.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg
            mask = mask_util.decode(rle)
            big = np.repeat(np.repeat(mask, FACTOR, axis=0), FACTOR, axis=1)
            assert big.shape == sizes[ann["image_id"]]
            enc = mask_util.encode(np.asfortranarray(big))
            ann["segmentation"] = {"size": list(enc["size"]), "counts": enc["counts"].decode("ascii")}
    out_json = workdir / f"instances-x{FACTOR}.json"
    out_json.write_text(json.dumps(gt))
    return out_images, out_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=Path("/work/shared/fixtures"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ovseg-reduced-read"))
    parser.add_argument("--read-repeats", type=int, default=5)
    args = parser.parse_args()
    model = args.fixtures / "models" / "standin-yolov5s-seg-0033-interface.xml"
    images, annotations = make_large_set(
        args.fixtures / "coco-val2017-lightly" / "images", args.fixtures / "coco-val2017-lightly" / "instances.json", args.workdir
    )
    coco = load_annotations(annotations)
    seg = Segmenter(model, "CPU", threshold=0.0, config=F32)
    input_hw = seg.info.input_hw
    files = [(info["id"], images / info["file_name"]) for info in coco.dataset["images"]]

    detections: dict[tuple[str, str], list[dict]] = {(r, p): [] for r in ("full", "reduced") for p in ("legacy", "aligned")}
    reductions: list[int] = []
    for image_id, path in files:
        for read in ("full", "reduced"):
            if read == "full":
                image = read_image(path)
                full_hw = image.shape[:2]
            else:
                image, full_hw = read_image_reduced(path, input_hw)
                reductions.append(round(full_hw[0] / image.shape[0]))
            request = seg.compiled_models[seg.input_hw_for(image.shape[:2])].create_infer_request()
            transform = seg.fill_inputs(request, image)
            request.infer()
            dets = seg.gather(request_outputs(request))
            to_full = dataclasses.replace(transform, image_hw=(int(full_hw[0]), int(full_hw[1])))
            for paste in ("legacy", "aligned"):
                detections[(read, paste)].extend(decode(dets, to_full, paste=paste).to_coco(image_id))

    # Read time, and read + preprocess (the resize to the network input shrinks less after a
    # reduced read), on the files that were reduced.
    reduced_files = [path for (_, path), r in zip(files, reductions, strict=True) if r > 1]
    times: dict[str, list[float]] = {"full": [], "reduced": [], "full+pre": [], "reduced+pre": []}
    for _ in range(args.read_repeats):
        for path in reduced_files:
            t = time.perf_counter()
            image = read_image(path)
            t1 = time.perf_counter()
            seg.preprocess(image)
            t2 = time.perf_counter()
            small, _ = read_image_reduced(path, input_hw)
            t3 = time.perf_counter()
            seg.preprocess(small)
            t4 = time.perf_counter()
            times["full"].append(t1 - t)
            times["full+pre"].append(t2 - t)
            times["reduced"].append(t3 - t2)
            times["reduced+pre"].append(t4 - t2)

    print(f"machine: {machine()}, {cv2.getNumberOfCPUs()} CPUs, opencv {cv2.__version__}; model {model.name}, f32, threshold 0")
    sizes = sorted({tuple(coco.imgs[i]['height'] for _ in (0,)) + (coco.imgs[i]['width'],) for i, _ in files})
    print(f"{len(files)} fixture images upscaled {FACTOR}x ({sizes[0][1]}x{sizes[0][0]} .. {sizes[-1][1]}x{sizes[-1][0]}), JPEG q95; "
          f"reductions used: {dict(zip(*np.unique(reductions, return_counts=True), strict=True))}")
    print(f"{'read':8s} {'paste':8s} {'box AP':>7s} {'mask AP':>8s} {'d box':>7s} {'d mask':>7s}")
    stats = {key: evaluate(coco, dets)[0] for key, dets in detections.items()}
    for read in ("full", "reduced"):
        for paste in ("legacy", "aligned"):
            box, mask = stats[(read, paste)]["bbox"][0] * 100, stats[(read, paste)]["segm"][0] * 100
            dbox = box - stats[("full", paste)]["bbox"][0] * 100
            dmask = mask - stats[("full", paste)]["segm"][0] * 100
            print(f"{read:8s} {paste:8s} {box:7.2f} {mask:8.2f} {dbox:+7.2f} {dmask:+7.2f}")
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"on the {len(reduced_files)} reduced files, median of {args.read_repeats} interleaved rounds, ms per image:")
    print(f"  read:              full {med['full']:.2f}, reduced {med['reduced']:.2f}, speedup {med['full'] / med['reduced']:.2f}x")
    print(f"  read + preprocess: full {med['full+pre']:.2f}, reduced {med['reduced+pre']:.2f}, "
          f"speedup {med['full+pre'] / med['reduced+pre']:.2f}x")
    print(f"(reduction_for(1080x1920) = {reduction_for((1080, 1920), input_hw)} for a {input_hw[1]}x{input_hw[0]} input)")


if __name__ == "__main__":
    main()
