"""Tracking against ground truth: rendered sequences, the real model, TrackEval's HOTA / IDF1.

Sequences are rendered from the fixture set's real COCO images: instance cutouts with their
real (RLE) masks move over real backgrounds (fixture images resized to 640x480 and blurred,
sigma 4, so that the stand-in model finds nothing in them alone), cross, occlude each other,
enter and leave; 15 fps. Ground truth per frame: each object's *visible* mask (what no object in
front covers) and its box; an object less than 25 % visible is absent from the ground truth
for that frame (a gap a tracker must bridge). The stand-in model then runs on the rendered
frames (CPU, f32, threshold 0.5, box-only candidates down to 0.1), so detections carry the
model's real noise, and every tracker of ``ovseg.track`` is scored on the same detections with
TrackEval 1.3 (HOTA, IDF1, ID switches, fragmentation, MOTA), once with box IoU and once with
mask IoU as the similarity. Unconfirmed detections (track id -1) are not tracker output.

Kinds (each rendered in ``--variants`` variants with other cutouts, backgrounds and mirrored
paths):
- ``crossing``: three people and one other object cross each other in depth (75 frames);
- ``occlusion-short``: two people walk behind a person standing near the camera, hidden up to
  7 frames (< OMZ's 10 frame age limit; 75 frames);
- ``occlusion-long``: the same behind two people standing side by side, hidden 21-24 frames
  (> 10; 75 frames);
- ``enter-leave``: objects enter and leave at the edges; one leaves where another of its
  class enters soon after (90 frames);
- ``occlusion-wall`` (``--wall-seeds`` sequences, each drawn at random from its seed): a
  static pillar that is no object (a darkened strip of another background, 150-200 px wide);
  two people walk behind it from opposite sides and meet behind it, a third follows the first
  at another speed and height, an object passes in front of it; most gaps 21-57 frames (90 frames).
The gaps actually rendered are printed per sequence. Scores are given per kind, for the
sequences with gaps longer than OMZ's 10 frames together (occlusion-long + occlusion-wall), for
all, and per sequence; ``gt-ids (bound)`` is no tracker: the detections with the ground truth's
ids, what a tracker that never errs could score on them (the detector's misses stay misses).
``mask-bytetrack@REV`` is mask-bytetrack as it was at git revision ``--baseline`` (loaded from
git), scored and timed beside today's.

Then the tracking cost: each tracker's median ``update`` time per frame with 20 instances on
1920x1080 frames (synthetic moving ellipses, box-local masks; the trackers measured in turns),
against the model's own median time per frame from the run above; and mask-bytetrack before
(``--baseline``) and now side by side at 5, 20 and 50 instances, with the ratio.

Run (installs the tracker extra and the evaluator; trackeval 1.3 works with NumPy 2)::

    pip install -e ".[track]" "trackeval==1.3.*"
    python benchmarks/tracking.py                # ~10 min on 2 cores the first time; the model's
                                                 # results are then cached (~2 min a run)
    python benchmarks/tracking.py --variants 1 --trackers omz,bytetrack

The model's results are cached under ``--cache`` (default /tmp/ovseg-tracking-cache) by a hash
of the rendered frames and the model; ``--no-cache`` recomputes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util

from ovseg import Segmenter
from ovseg.result import Candidates, Result
from ovseg.track import TRACKERS, box_iou, make_tracker, mask_iou

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark

FIXTURES = Path(os.environ.get("OVSEG_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures"))
FRAME_HW = (480, 640)
FPS = 15.0
VISIBLE_MIN = 0.25
# Fixture images with no detection of the stand-in model at 0.3 once resized to 640x480 and
# blurred with sigma 4 (screened once, over all 100 images).
BACKGROUNDS = [
    "000000000285.jpg", "000000000776.jpg", "000000000802.jpg", "000000001353.jpg",
    "000000001490.jpg", "000000002587.jpg", "000000002923.jpg", "000000003156.jpg",
]


# -- cutouts and backgrounds ------------------------------------------------------------------


@dataclass
class Cutout:
    name: str
    pixels: np.ndarray  # uint8 (h, w, 3), the annotation's box
    mask: np.ndarray  # bool (h, w)


def load_cutouts(fixtures: Path) -> dict[str, list[Cutout]]:
    """Cutouts per class: whole (not at the image border), not crowd, >= 5000 px, compact."""
    data = json.loads((fixtures / "coco-val2017-lightly" / "instances.json").read_text())
    images = {im["id"]: im for im in data["images"]}
    names = {c["id"]: c["name"] for c in data["categories"]}
    out: dict[str, list[Cutout]] = {}
    cache: dict[int, np.ndarray] = {}
    for ann in sorted(data["annotations"], key=lambda a: a["id"]):
        x, y, w, h = ann["bbox"]
        im = images[ann["image_id"]]
        if ann["iscrowd"] or ann["area"] < 5000 or ann["area"] / (w * h) < 0.4:
            continue
        if x < 2 or y < 2 or x + w > im["width"] - 2 or y + h > im["height"] - 2:
            continue
        if ann["image_id"] not in cache:
            cache[ann["image_id"]] = cv2.imread(str(fixtures / "coco-val2017-lightly" / "images" / im["file_name"]))
        rle = ann["segmentation"]
        if isinstance(rle["counts"], list):
            rle = mask_util.frPyObjects(rle, *rle["size"])
        full = mask_util.decode(rle).astype(bool)
        x0, y0, x1, y1 = int(x), int(y), int(np.ceil(x + w)), int(np.ceil(y + h))
        out.setdefault(names[ann["category_id"]], []).append(
            Cutout(names[ann["category_id"]], cache[ann["image_id"]][y0:y1, x0:x1].copy(), full[y0:y1, x0:x1].copy())
        )
    return out


def load_background(fixtures: Path, name: str) -> np.ndarray:
    image = cv2.imread(str(fixtures / "coco-val2017-lightly" / "images" / name))
    return cv2.GaussianBlur(cv2.resize(image, FRAME_HW[::-1], interpolation=cv2.INTER_AREA), (0, 0), 4)


# -- sequences ---------------------------------------------------------------------------------


@dataclass
class Actor:
    cutout: Cutout
    height: int  # rendered height in pixels (aspect kept)
    keys: list[tuple[int, float, float]]  # (frame, centre x, centre y), linear in between
    z: int  # larger: nearer the camera (drawn later)

    def centre(self, t: int) -> tuple[float, float] | None:
        if t < self.keys[0][0] or t > self.keys[-1][0]:
            return None
        for (t0, x0, y0), (t1, x1, y1) in zip(self.keys, self.keys[1:], strict=False):
            if t0 <= t <= t1:
                a = (t - t0) / max(t1 - t0, 1)
                return x0 + a * (x1 - x0), y0 + a * (y1 - y0)
        return self.keys[-1][1], self.keys[-1][2]


@dataclass
class Wall:
    """A static occluder that is no object (a pillar): drawn at depth ``z``, never in the ground truth."""

    x0: int
    pixels: np.ndarray  # uint8 (480, w, 3), full frame height
    z: int


@dataclass
class Sequence:
    name: str
    kind: str
    frames: int
    background: np.ndarray
    actors: list[Actor]
    walls: list[Wall] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    gt: list[list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = field(default_factory=list)
    """per frame: (actor index, box xyxy, crop bool, offset (x, y)) of each visible actor."""


def _scaled(cutout: Cutout, height: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = cutout.mask.shape
    size = (max(int(round(w * height / h)), 1), height)
    pixels = cv2.resize(cutout.pixels, size, interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(cutout.mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    return pixels, mask


def render(seq: Sequence) -> None:
    """Fill ``seq.images`` and ``seq.gt``: draw back to front, visible masks from the id map."""
    height, width = FRAME_HW
    scaled = [_scaled(a.cutout, a.height) for a in seq.actors]
    full_area = [int(m.sum()) for _, m in scaled]
    # actors as 0.., walls as -2, -3, ...; equal depths: walls first
    order = sorted([(a.z, 1, i) for i, a in enumerate(seq.actors)] + [(w.z, 0, -2 - k) for k, w in enumerate(seq.walls)])
    for t in range(seq.frames):
        image = seq.background.copy()
        owner = np.full(FRAME_HW, -1, dtype=np.int32)
        for _, _, i in order:
            if i < 0:
                wall = seq.walls[-2 - i]
                image[:, wall.x0 : wall.x0 + wall.pixels.shape[1]] = wall.pixels
                owner[:, wall.x0 : wall.x0 + wall.pixels.shape[1]] = i
                continue
            c = seq.actors[i].centre(t)
            if c is None:
                continue
            pixels, mask = scaled[i]
            h, w = mask.shape
            x0, y0 = int(round(c[0] - w / 2)), int(round(c[1] - h / 2))
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            sub = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
            image[cy0:cy1, cx0:cx1][sub] = pixels[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0][sub]
            owner[cy0:cy1, cx0:cx1][sub] = i
        entries = []
        for i in range(len(seq.actors)):
            visible = owner == i
            area = int(visible.sum())
            if area < VISIBLE_MIN * full_area[i] or area == 0:
                continue
            ys, xs = np.nonzero(visible)
            x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
            entries.append((i, np.array([x0, y0, x1, y1], np.float64), visible[y0:y1, x0:x1].copy(), np.array([x0, y0])))
        seq.images.append(image)
        seq.gt.append(entries)


def gaps(seq: Sequence) -> list[int]:
    """Lengths of the runs of frames an actor is absent from the ground truth between two
    stretches where it is present."""
    out = []
    for i in range(len(seq.actors)):
        present = [any(e[0] == i for e in frame) for frame in seq.gt]
        idx = [t for t, p in enumerate(present) if p]
        out += [b - a - 1 for a, b in zip(idx, idx[1:], strict=False) if b - a > 1]
    return sorted(out)


def build_sequences(fixtures: Path, variants: int, wall_seeds: int = 0) -> list[Sequence]:
    cut = load_cutouts(fixtures)
    others = [c for name in ("sheep", "motorcycle", "chair", "bowl", "banana", "surfboard") for c in cut.get(name, [])]
    # People tall enough to be seen whole, narrow enough to be occluded.
    people = [p for p in cut["person"] if 1.3 < p.mask.shape[0] / p.mask.shape[1] < 4.5]
    seqs = [s for v in range(variants) for s in _variant(fixtures, v, people, others)]
    seqs += [_wall_sequence(fixtures, seed, people, others) for seed in range(wall_seeds)]
    for seq in seqs:
        render(seq)
    return seqs


def _variant(fixtures: Path, v: int, people: list[Cutout], others: list[Cutout]) -> list[Sequence]:
    """The four kinds, variant ``v``: other cutouts and backgrounds, paths mirrored when odd."""

    def person(k: int) -> Cutout:
        return people[(7 * v + k) % len(people)]

    def mirror(keys: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
        return [(t, FRAME_HW[1] - x, y) for t, x, y in keys] if v % 2 else keys

    def bg(k: int) -> np.ndarray:
        return load_background(fixtures, BACKGROUNDS[(3 * v + k) % len(BACKGROUNDS)])

    # Occluders: people near the camera (tall, standing still); the others walk behind them.
    big = [p for p in people if 1.8 < p.mask.shape[0] / p.mask.shape[1] < 2.6]  # 170-245 px wide at 440
    slim = [p for p in people if 2.6 <= p.mask.shape[0] / p.mask.shape[1] < 3.6]  # 120-170 px wide
    n, m = 75, 90
    return [
        Sequence(f"crossing-{v}", "crossing", n, bg(0), [
            Actor(person(0), 230, mirror([(0, -40, 290), (n - 1, 690, 270)]), z=2),
            Actor(person(1), 220, mirror([(0, 690, 280), (n - 1, -40, 300)]), z=1),
            Actor(person(2), 190, mirror([(0, 150, 250), (n - 1, 470, 260)]), z=0),
            Actor(others[v % len(others)], 110, mirror([(0, 330, 60), (n - 1, 300, 420)]), z=3),
        ]),
        Sequence(f"occlusion-short-{v}", "occlusion-short", n, bg(1), [
            Actor(slim[v % len(slim)], 440, mirror([(0, 320, 260), (n - 1, 326, 260)]), z=5),
            Actor(person(3), 200, mirror([(0, -30, 300), (n - 1, 640, 300)]), z=1),
            Actor(person(4), 190, mirror([(20, 670, 310), (n - 1, 60, 310)]), z=0),
        ]),
        Sequence(f"occlusion-long-{v}", "occlusion-long", n, bg(2), [
            Actor(big[(v + 1) % len(big)], 440, mirror([(0, 270, 260), (n - 1, 270, 260)]), z=5),
            Actor(big[(v + 2) % len(big)], 430, mirror([(0, 370, 265), (n - 1, 370, 265)]), z=4),
            Actor(person(5), 200, mirror([(0, -20, 300), (n - 1, 640, 300)]), z=1),
            Actor(person(6), 190, mirror([(8, 660, 310), (n - 1, 80, 310)]), z=0),
        ]),
        Sequence(f"enter-leave-{v}", "enter-leave", m, bg(3), [
            Actor(person(7), 220, mirror([(0, -50, 300), (40, 690, 290)]), z=1),
            Actor(person(8), 210, mirror([(48, 690, 290), (m - 1, 250, 300)]), z=1),
            Actor(person(9), 200, mirror([(15, 200, -110), (60, 230, 260), (m - 1, 240, 590)]), z=0),
            Actor(others[(v + 1) % len(others)], 120, mirror([(30, -70, 400), (m - 1, 420, 380)]), z=2),
            Actor(person(10), 240, mirror([(0, 520, 260), (30, 520, 260), (65, 700, 270)]), z=0),
        ]),
    ]


def _wall_sequence(fixtures: Path, seed: int, people: list[Cutout], others: list[Cutout]) -> Sequence:
    """``occlusion-wall``, drawn at random from ``seed``: a pillar (a darkened strip of another
    blurred background, 150-200 px wide, no object) stands near the middle; two people (same
    class) walk behind it from opposite sides and meet behind it (each hidden ~20-45 frames; who
    comes out where only the motion tells), a third person follows the first at another speed
    and height, and one other object passes in front of the pillar. Speeds 3-6 px a frame, 90
    frames."""
    rng = np.random.default_rng(1000 + seed)
    n = 90
    width = FRAME_HW[1]
    wall_w = int(rng.integers(150, 201))
    wall_x0 = int(rng.integers(width // 2 - wall_w // 2 - 60, width // 2 - wall_w // 2 + 61))
    wall_c = wall_x0 + wall_w / 2
    strip = load_background(fixtures, BACKGROUNDS[(seed + 5) % len(BACKGROUNDS)])
    s0 = int(rng.integers(0, width - wall_w))
    pixels = (strip[:, s0 : s0 + wall_w].astype(np.float32) * 0.6).astype(np.uint8)
    walkers = rng.choice(len(people), 3, replace=False)
    meet = int(rng.integers(35, 56))  # frame the two meet behind the pillar's centre
    v1, v2, v3 = rng.uniform(3.0, 6.0, 3)
    y1, y2, y3 = rng.uniform(270, 320, 3)
    h1, h2, h3 = rng.integers(185, 236, 3)
    sign = 1.0 if seed % 2 == 0 else -1.0  # the first walker's direction

    def path(x_at: float, t_at: int, v: float, y: float) -> list[tuple[int, float, float]]:
        """Straight at ``v`` px a frame, at ``x_at`` in frame ``t_at`` (off-screen at times)."""
        return [(0, x_at - v * t_at, y), (n - 1, x_at + v * (n - 1 - t_at), y)]

    follow = int(rng.integers(10, 26))  # frames after the first
    other = others[int(rng.integers(0, len(others)))]
    return Sequence(f"occlusion-wall-{seed}", "occlusion-wall", n, load_background(fixtures, BACKGROUNDS[seed % len(BACKGROUNDS)]), [
        Actor(people[walkers[0]], int(h1), path(wall_c, meet, sign * v1, y1), z=1),
        Actor(people[walkers[1]], int(h2), path(wall_c, meet, -sign * v2, y2), z=0),
        Actor(people[walkers[2]], int(h3), path(wall_c, meet + follow, sign * v3, y3), z=2),
        Actor(other, int(rng.integers(100, 131)), path(wall_c, int(rng.integers(30, 61)), -sign * float(rng.uniform(2, 5)),
                                                      float(rng.uniform(80, 140))), z=5),
    ], walls=[Wall(wall_x0, pixels, z=3)])


# -- the model ---------------------------------------------------------------------------------


def run_model(seg: Segmenter, seq: Sequence, cache: Path | None) -> list[Result]:
    digest = hashlib.sha256()
    for image in seq.images:
        digest.update(image.tobytes())
    digest.update(f"{seg.model_path.stat().st_size} {seg.threshold} {seg.candidate_threshold} {seg.paste}".encode())
    path = cache / f"{seq.name}-{digest.hexdigest()[:16]}.pkl" if cache else None
    if path is not None and path.exists():
        return [_from_plain(r) for r in pickle.loads(path.read_bytes())]
    results = [seg(image) for image in seq.images]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps([_to_plain(r) for r in results]))
    return results


def _to_plain(res: Result) -> dict:
    c = res.candidates
    return {"boxes": res.boxes, "scores": res.scores, "class_ids": res.class_ids, "image_hw": res.image_hw,
            "mask_crops": res.mask_crops, "mask_offsets": res.mask_offsets, "speed_ms": dict(res.speed_ms),
            "candidates": (c.boxes, c.scores, c.class_ids)}


def _from_plain(d: dict) -> Result:
    return Result(**{**d, "candidates": Candidates(*d["candidates"])})


# -- scoring -----------------------------------------------------------------------------------


def trackeval_data(seq: Sequence, tracked: list[Result], similarity: str) -> dict:
    """TrackEval's per-sequence input (ids made contiguous), ``similarity`` 'box' or 'mask'."""
    gt_ids, tr_ids, sims = [], [], []
    gt_map: dict[int, int] = {}
    tr_map: dict[int, int] = {}
    for entries, res in zip(seq.gt, tracked, strict=True):
        keep = np.flatnonzero(res.track_ids >= 0)
        gt_ids.append(np.array([gt_map.setdefault(e[0], len(gt_map)) for e in entries], dtype=int))
        tr_ids.append(np.array([tr_map.setdefault(int(res.track_ids[k]), len(tr_map)) for k in keep], dtype=int))
        if similarity == "box":
            sim = box_iou(np.array([e[1] for e in entries]).reshape(-1, 4), res.boxes[keep])
        else:
            sim = mask_iou(
                [e[2] for e in entries], np.array([e[3] for e in entries]).reshape(-1, 2),
                [res.mask_crops[k] for k in keep], res.mask_offsets[keep],
            )
        sims.append(sim)
    return {
        "gt_ids": gt_ids, "tracker_ids": tr_ids, "similarity_scores": sims,
        "num_gt_dets": sum(len(g) for g in gt_ids), "num_tracker_dets": sum(len(t) for t in tr_ids),
        "num_gt_ids": len(gt_map), "num_tracker_ids": len(tr_map), "num_timesteps": len(seq.gt),
    }


def score(per_seq: dict[str, dict]) -> dict[str, float]:
    """HOTA, IDF1, IDSW, Frag, MOTA over sequences combined (TrackEval's own combination)."""
    import trackeval

    metrics = {"hota": trackeval.metrics.HOTA(), "clear": trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
               "id": trackeval.metrics.Identity({"PRINT_CONFIG": False})}
    combined = {}
    for key, metric in metrics.items():
        combined[key] = metric.combine_sequences({name: metric.eval_sequence(d) for name, d in per_seq.items()})
    return {
        "HOTA": 100 * float(np.mean(combined["hota"]["HOTA"])),
        "DetA": 100 * float(np.mean(combined["hota"]["DetA"])),
        "AssA": 100 * float(np.mean(combined["hota"]["AssA"])),
        "IDF1": 100 * float(combined["id"]["IDF1"]),
        "IDSW": int(combined["clear"]["IDSW"]),
        "Frag": int(combined["clear"]["Frag"]),
        "MOTA": 100 * float(combined["clear"]["MOTA"]),
    }


def ground_truth_ids(seq: Sequence, results: list[Result]) -> list[Result]:
    """The detections with the ids of the ground truth: each gets the id of the object whose
    visible box it overlaps most (box IoU > 0.5), else one of its own. Not a tracker: what a
    tracker that never errs could score on these detections (misses and false alarms stay)."""
    out, spare = [], 10**6
    for entries, res in zip(seq.gt, results, strict=True):
        iou = box_iou(res.boxes, np.array([e[1] for e in entries]).reshape(-1, 4))
        ids = []
        for k in range(len(res)):
            if iou.shape[1] and iou[k].max() > 0.5:
                ids.append(entries[int(iou[k].argmax())][0])
            else:
                ids.append(spare)
                spare += 1
        out.append(dataclasses.replace(res, track_ids=np.array(ids, dtype=np.int32)))
    return out


# -- the tracker as it was: the before of the cost table ---------------------------------------------


BASELINE_REV = "084cda5"  # ovseg/track.py before the per-pair kernel rewrite (issue 13's cost goal; 93efb76: before the lost-track work)


def load_baseline(rev: str = BASELINE_REV) -> object:
    """``ovseg/track.py`` at git revision ``rev``, imported as ``ovseg._track_<rev>`` (its relative
    imports resolve in today's ovseg; its Result is today's)."""
    import importlib.util
    import tempfile

    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "-C", str(root), "show", f"{rev}:ovseg/track.py"], capture_output=True, text=True,
                            check=True, timeout=30).stdout
    name = f"ovseg._track_{rev}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "track.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


# -- cost at 20 instances on 1080p -------------------------------------------------------------


def synthetic_stream(frames: int = 60, n: int = 20, seed: int = 0) -> list[Result]:
    """20 ellipses moving over 1920x1080, each a box-local mask, some overlapping."""
    rng = np.random.default_rng(seed)
    height, width = 1080, 1920
    size = rng.uniform(80, 260, (n, 2))
    pos = rng.uniform([150, 150], [width - 150, height - 150], (n, 2))
    vel = rng.uniform(-8, 8, (n, 2))
    classes = rng.integers(1, 4, n).astype(np.int32)
    scores = np.sort(rng.uniform(0.5, 1.0, n))[::-1].astype(np.float32)
    out = []
    for t in range(frames):
        p = np.clip(pos + t * vel, size / 2 + 1, [width, height] - size / 2 - 1)
        boxes = np.concatenate([p - size / 2, p + size / 2], axis=1).astype(np.float32)
        crops, offsets = [], []
        for (x0, y0, x1, y1) in boxes.tolist():
            w, h = int(x1) - int(x0), int(y1) - int(y0)
            crop = np.zeros((h, w), np.uint8)
            cv2.ellipse(crop, (w // 2, h // 2), (w // 2, h // 2), 0, 0, 360, 1, -1)
            crops.append(crop.astype(bool))
            offsets.append((int(x0), int(y0)))
        out.append(Result(boxes, scores, classes, (height, width), tuple(crops), np.array(offsets, np.int32)))
    return out


def tracking_cost_ms(make: str | Callable[[], object], stream: list[Result], repeats: int = 5) -> float:
    """Median ``update`` time per frame (ms) of a new tracker (``make``: a name or a factory) per repeat."""
    return statistics.median(_cost_samples(make, stream, repeats))


def _cost_samples(make: str | Callable[[], object], stream: list[Result], repeats: int) -> list[float]:
    per_frame = []
    for _ in range(repeats):
        tracker = make_tracker(make) if isinstance(make, str) else make()
        for res in stream:
            start = time.perf_counter()
            tracker.update(res)
            per_frame.append((time.perf_counter() - start) * 1e3)
    return per_frame


def side_by_side_ms(makers: dict[str, Callable[[], object]], stream: list[Result], rounds: int = 5) -> dict[str, float]:
    """Median ms a frame of each tracker, measured in turns (one stream each per round), so that
    the machine's load falls on all alike."""
    samples: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(rounds):
        for name, make in makers.items():
            samples[name] += _cost_samples(make, stream, 1)
    return {name: statistics.median(v) for name, v in samples.items()}


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--model", type=Path, default=None, help="default: the fixture stand-in model")
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument("--wall-seeds", type=int, default=10, help="occlusion-wall sequences (one per seed)")
    parser.add_argument("--held-out-from", type=int, default=6,
                        help="occlusion-wall seeds from this one on are also scored as a group of their own (held out: "
                             "not looked at while mask-bytetrack's lost-track handling was designed)")
    parser.add_argument("--trackers", default=",".join(TRACKERS), help=f"comma-separated, of {', '.join(TRACKERS)}")
    parser.add_argument("--baseline", default=BASELINE_REV,
                        help="git revision whose mask-bytetrack is scored and timed beside today's ('' for none)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ovseg-tracking-cache"))
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--save-frames", type=Path, default=None, help="write each sequence's frames as JPEGs here")
    args = parser.parse_args(argv)
    try:
        import trackeval  # noqa: F401
    except ImportError:
        print('benchmarks/tracking.py needs TrackEval: pip install "trackeval==1.3.*"', file=sys.stderr)
        return 2
    names = [n.strip() for n in args.trackers.split(",") if n.strip()]
    model = args.model or args.fixtures / "models" / "standin-yolov5s-seg-0033-interface.xml"

    print(f"CPU: {machine()}")
    print(f"numpy {np.__version__}, OpenCV {cv2.__version__}")
    start = time.perf_counter()
    seqs = build_sequences(args.fixtures, args.variants, args.wall_seeds)
    print(f"rendered {len(seqs)} sequences, {sum(s.frames for s in seqs)} frames of {FRAME_HW[1]}x{FRAME_HW[0]} at "
          f"{FPS:g} fps in {time.perf_counter() - start:.1f} s")
    for s in seqs:
        print(f"  {s.name}: {len(s.actors)} objects, ground-truth gaps (frames): {gaps(s) or 'none'}")
        if args.save_frames:
            (args.save_frames / s.name).mkdir(parents=True, exist_ok=True)
            for t, image in enumerate(s.images):
                cv2.imwrite(str(args.save_frames / s.name / f"{t:03d}.jpg"), image)

    seg = Segmenter(model, threshold=0.5, config={"INFERENCE_PRECISION_HINT": "f32"}, candidate_threshold=0.1)
    start = time.perf_counter()
    results = {s.name: run_model(seg, s, None if args.no_cache else args.cache) for s in seqs}
    model_ms = statistics.median(sum(r.speed_ms.values()) for rs in results.values() for r in rs)
    print(f"model: {model.name}, CPU f32, threshold 0.5, candidates >= 0.1; {time.perf_counter() - start:.0f} s "
          f"(cached runs are free); median {model_ms:.1f} ms a frame")

    makers: dict[str, Callable[[], object]] = {name: (lambda name=name: make_tracker(name)) for name in names}
    baseline = None
    if args.baseline:
        try:
            baseline = load_baseline(args.baseline)
        except (OSError, subprocess.SubprocessError) as error:
            print(f"expected git revision {args.baseline} of ovseg/track.py for the before columns, got {error}: "
                  "scoring today's trackers only (--baseline '' skips it)", file=sys.stderr)
    before = f"mask-bytetrack@{args.baseline}"
    if baseline is not None:
        makers[before] = lambda: baseline.make_tracker("mask-bytetrack")
        print(f"{before}: mask-bytetrack as it was at git revision {args.baseline} (ovseg/track.py), for comparison")
    kinds = list(dict.fromkeys(s.kind for s in seqs))
    # Sequences whose objects are hidden longer than OMZ's 10 frame age limit.
    groups = {kind: [s for s in seqs if s.kind == kind] for kind in kinds}
    long_kinds = [k for k in ("occlusion-long", "occlusion-wall") if k in kinds]
    held_out = [s for s in seqs if s.kind == "occlusion-wall" and int(s.name.rsplit("-", 1)[1]) >= args.held_out_from]
    if held_out:
        groups[f"occlusion-wall, held out (seeds {args.held_out_from}+)"] = held_out
    if len(long_kinds) > 1:
        groups["long occlusions (" + " + ".join(long_kinds) + ")"] = [s for s in seqs if s.kind in long_kinds]
    # Every sequence with occlusions, short or long (the goal's "sequences with occlusions").
    occluded_kinds = [k for k in kinds if k.startswith("occlusion")]
    if len(occluded_kinds) > 1:
        groups["all occlusions (" + " + ".join(occluded_kinds) + ")"] = [s for s in seqs if s.kind in occluded_kinds]
    groups["all"] = list(seqs)
    table: dict[tuple[str, str, str], dict[str, float]] = {}
    per_seq: dict[tuple[str, str], dict[str, float]] = {}
    bound = "gt-ids (bound)"
    rows = [*makers, bound]
    for name in rows:
        if name == bound:
            tracked = {s.name: ground_truth_ids(s, results[s.name]) for s in seqs}
        else:
            tracked = {s.name: list(makers[name]().track(results[s.name])) for s in seqs}
        for similarity in ("box", "mask"):
            data = {s.name: trackeval_data(s, tracked[s.name], similarity) for s in seqs}
            for group, chosen in groups.items():
                table[(group, similarity, name)] = score({s.name: data[s.name] for s in chosen})
            if similarity == "box":
                for s in seqs:
                    per_seq[(s.name, name)] = score({s.name: data[s.name]})

    for similarity in ("box", "mask"):
        print(f"\n{similarity} IoU similarity (TrackEval 1.3; HOTA/IDF1/MOTA in %; sequences pooled by TrackEval)")
        print("| kind | tracker | HOTA | IDF1 | IDSW | Frag | MOTA | DetA | AssA |")
        print("|---|---|---|---|---|---|---|---|---|")
        for group in groups:
            for name in rows:
                r = table[(group, similarity, name)]
                print(f"| {group} | {name} | {r['HOTA']:.1f} | {r['IDF1']:.1f} | {r['IDSW']} | {r['Frag']} | "
                      f"{r['MOTA']:.1f} | {r['DetA']:.1f} | {r['AssA']:.1f} |")

    print("\nper sequence, box IoU: HOTA / IDF1 / IDSW")
    print("| sequence | gaps (frames) | " + " | ".join(rows) + " |")
    print("|---|---|" + "---|" * len(rows))
    for s in seqs:
        cells = [f"{per_seq[(s.name, n)]['HOTA']:.1f} / {per_seq[(s.name, n)]['IDF1']:.1f} / {per_seq[(s.name, n)]['IDSW']}"
                 for n in rows]
        print(f"| {s.name} | {', '.join(map(str, gaps(s))) or '-'} | " + " | ".join(cells) + " |")

    default = "mask-bytetrack"
    if default in makers and "omz" in makers:
        print(f"\n{default} against omz, box IoU (IDF1 points; HOTA points)")
        for group in groups:
            d, o = table[(group, "box", default)], table[(group, "box", "omz")]
            b = table[(group, "box", bound)]
            print(f"  {group}: IDF1 {d['IDF1'] - o['IDF1']:+.1f} ({d['IDF1']:.1f} vs {o['IDF1']:.1f}; at most "
                  f"{b['IDF1'] - o['IDF1']:+.1f} with the ground truth's ids), HOTA {d['HOTA'] - o['HOTA']:+.1f}")
        worst = min(seqs, key=lambda s: per_seq[(s.name, default)]["IDF1"] - per_seq[(s.name, "omz")]["IDF1"])
        print(f"  the smallest margin of one sequence: {worst.name}, IDF1 "
              f"{per_seq[(worst.name, default)]['IDF1'] - per_seq[(worst.name, 'omz')]['IDF1']:+.1f}")

    print(f"\nCPU: {machine()}")
    print("tracking cost per frame, 20 instances, 1920x1080, box-local masks (median of 5 x 60 frames, in turns)")
    stream = synthetic_stream()
    costs = side_by_side_ms(makers, stream)
    print("| tracker | ms / frame | vs the model's own ms / frame |")
    print("|---|---|---|")
    for name in makers:
        print(f"| {name} | {costs[name]:.3f} | {costs[name] / model_ms:.4f} ({model_ms:.0f} ms) |")
    if baseline is not None and default in makers:
        print(f"\n{default} before ({args.baseline}) and now, side by side (in turns, 7 rounds of 60 frames each), "
              "1920x1080, box-local masks")
        print("| instances | before ms / frame | now ms / frame | now / before |")
        print("|---|---|---|---|")
        for n in (5, 20, 50):
            got = side_by_side_ms({"before": makers[before], "now": makers[default]}, synthetic_stream(n=n), rounds=7)
            print(f"| {n} | {got['before']:.3f} | {got['now']:.3f} | {got['now'] / got['before']:.2f} |")
        print(f"CPU: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
