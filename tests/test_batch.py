"""``ovseg predict --ray`` (:mod:`ovseg.batch`) on a real local Ray cluster: the plain command's
files, a bad image, a killed actor, resume, ^C, and the install hint without Ray.

One cluster for the module (``ray.init(num_cpus=2)`` on 127.0.0.1, no dashboard), shut down at
the end, after which none of the processes it started may be left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from ovseg.cli import main
from ovseg.synthetic import labels_model, save_model

from .conftest import OVSEG_ANSWERING_SIGINT
from .test_zoo import NAME, Served, publish, server  # noqa: F401 (server: the local HTTP server fixture)
from .videos import frames_of, write_cfr

try:
    import ray
except ImportError:
    ray = None
NO_RAY = 'the ray extra is not installed: pip install "ovseg[ray]"'

WORKER_TITLE = b"ray::MapWorker(MapBatches(_Worker))"


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


def wait_gone(pids: set[int], timeout_s: float = 30.0) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    if ray is None:
        pytest.skip(NO_RAY)
    from ovseg.batch import start_local_cluster

    start_local_cluster(ray, 2, log_to_driver=False)
    try:
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        yield
    finally:
        started = descendants(os.getpid())
        ray.shutdown()
        left = wait_gone(started)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left after ray.shutdown(): {sorted(left)}"


def outputs(folder: Path) -> dict[str, object]:
    """Every file of a results folder, comparable: JSON without speed_ms, other files as bytes."""
    out: dict[str, object] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".json":
            doc = json.loads(path.read_text())
            doc.pop("speed_ms")
            out[path.name] = doc
        else:
            out[path.name] = path.read_bytes()
    return out


def image_list(coco_images: Path, count: int, folder: Path) -> Path:
    listed = folder / "images.txt"
    listed.write_text("".join(f"{p}\n" for p in sorted(coco_images.glob("*.jpg"))[:count]))
    return listed


def test_outputs_identical_to_the_plain_command(
    cluster: None, standin_model: Path, coco_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = image_list(coco_images, 6, tmp_path)
    video = write_cfr(tmp_path / "clip.avi", frames_of(12, (240, 320)))
    common = [str(listed), str(video), "-m", str(standin_model), "--infer-precision", "f32", "--track"]
    assert main(["predict", *common, "-o", str(tmp_path / "plain"), "--coco", str(tmp_path / "plain.json")]) == 0
    plain_out = capsys.readouterr().out
    assert main(["predict", *common, "-o", str(tmp_path / "ray"), "--coco", str(tmp_path / "ray.json"), "--ray"]) == 0
    ray_out = capsys.readouterr().out
    plain, batch = outputs(tmp_path / "plain"), outputs(tmp_path / "ray")
    assert sorted(plain) == sorted(batch) and len(plain) == 2 * 6 + 2  # PNG + JSON per image, JSONL + MP4
    for name in plain:
        assert plain[name] == batch[name], name
    assert (tmp_path / "plain.json").read_bytes() == (tmp_path / "ray.json").read_bytes()
    assert len((tmp_path / "ray" / "clip.jsonl").read_text().splitlines()) == 12
    # The same lines, but the timings and folder names.
    def lines(text: str, folder: str) -> list[str]:
        return [line.rsplit(" [", 1)[0].replace(folder, "OUT") for line in text.splitlines() if " -> " in line]

    assert lines(plain_out, str(tmp_path / "plain")) == lines(ray_out, str(tmp_path / "ray"))
    assert re.search(r"frames per node: 127\.0\.0\.1 \(node [0-9a-f]{8}\) 18\n", ray_out), ray_out


def test_a_bad_image_among_good_ones(cluster: None, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((50, 60, 3), np.uint8))
    (images / "b.png").write_text("this is not a png")
    cv2.imwrite(str(images / "c.png"), np.zeros((70, 20), np.uint8))
    out = tmp_path / "out"
    assert main(["predict", str(images), "-m", str(tiny_model), "-o", str(out), "-t", "0", "--ray"]) == 2
    assert sorted(os.listdir(out)) == ["a.json", "a.png", "c.json", "c.png"]
    err = capsys.readouterr().err
    assert "ovseg: error: " in err and "b.png: expected an image OpenCV can decode" in err
    assert "1 of 3 input(s) failed" in err and "Traceback" not in err


def test_a_killed_actor_is_replaced_and_nothing_is_lost_or_doubled(
    cluster: None, standin_model: Path, coco_images: Path, tmp_path: Path
) -> None:
    from ovseg.batch import predict

    paths = sorted(coco_images.glob("*.jpg"))[:16]
    out = tmp_path / "out"
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["report"] = predict(paths, model=standin_model, output=out, coco=tmp_path / "coco.json",
                                       config={"INFERENCE_PRECISION_HINT": "f32"}, images_per_unit=2)
        except BaseException as error:  # reported by the assertion below
            result["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while not list(out.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [pid for pid in descendants(os.getpid())
               if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(WORKER_TITLE)]
    assert len(workers) == 1, workers
    os.kill(workers[0], signal.SIGKILL)
    thread.join(240)
    assert not thread.is_alive() and "error" not in result, result
    report = result["report"]
    assert report.frames == 16 and not report.failed
    assert report.processes - {workers[0]}, report.processes  # its replacement finished the run
    stems = [p.stem for p in paths]
    assert sorted(os.listdir(out)) == sorted([f"{s}.json" for s in stems] + [f"{s}.png" for s in stems])  # no leftovers
    detections = json.loads((tmp_path / "coco.json").read_text())
    expected = Counter({int(s): len(json.loads((out / f"{s}.json").read_text())["instances"]) for s in stems})
    assert Counter(d["image_id"] for d in detections) == +expected
    assert [d["image_id"] for d in detections] == sorted(d["image_id"] for d in detections)  # input order


def test_skip_existing_resumes_across_runs(cluster: None, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in "abcd":
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((40, 50, 3), 60, np.uint8))
    video = write_cfr(tmp_path / "v.avi", frames_of(5))
    out = tmp_path / "out"
    args = ["predict", *(str(tmp_path / f"{n}.png") for n in "abcd"), str(video), "-m", str(tiny_model), "-o", str(out), "--ray"]
    assert main(args) == 0
    first = outputs(out)
    (out / "b.json").unlink()
    (out / "c.png").unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert main([*args, "--skip-existing"]) == 0
    printed = capsys.readouterr().out
    assert "v.avi: skipped, v.jsonl exists (--skip-existing)" in printed
    assert "2 frames," in printed  # b and c again, nothing else
    assert outputs(out) == first
    assert {n: t for n, t in kept.items() if n not in ("b.png", "c.json")} == {
        p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in kept and p.name not in ("b.png", "c.json")
    }


def test_a_catalogue_name_is_fetched_once_per_node(cluster: None, server: Served, tmp_path: Path) -> None:  # noqa: F811
    """Two actors on the one node, an empty cache: the model is downloaded once (the other
    actor waits for the cache's lock), verified, and used."""
    from ovseg.batch import predict

    ir = save_model(labels_model(labels=[0], scores=[0.9], boxes=[[0, 0, 1, 1]], boxes_relative=True, input_hw=(64, 96)),
                    tmp_path / "ir" / "m.xml")
    files = {f"FP32/{NAME}.bin": ir.with_suffix(".bin").read_bytes(), f"FP32/{NAME}.xml": ir.read_bytes()}
    publish(server, tmp_path, files, resize="stretch")
    for name in "ab":
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((30, 50, 3), 80, np.uint8))
    report = predict([str(tmp_path / "a.png"), str(tmp_path / "b.png")], model=NAME, output=tmp_path / "out",
                     cache_dir=tmp_path / "cache", actors=2, images_per_unit=1, threshold=0.0,
                     runtime_env={"env_vars": {"OVSEG_CATALOG": str(tmp_path / "catalog.json"), "OVSEG_MIRROR": ""}})
    assert report.frames == 2 and not report.failed and report.actors == 2
    assert sorted(p for p, _ in server.requests) == sorted(f"/omz/{NAME}/{rel}" for rel in files)  # each file once
    doc = json.loads((tmp_path / "out" / "a.json").read_text())
    assert doc["model"] == NAME and [i["box"] for i in doc["instances"]] == [[0, 0, 50, 30]]  # stretch: the catalogue's


def test_interrupt_stops_the_run_and_its_cluster(standin_model: Path, coco_images: Path, tmp_path: Path) -> None:
    """^C (SIGINT) in a command that started its own cluster: exit 130, no process left."""
    if ray is None:
        pytest.skip(NO_RAY)
    listed = image_list(coco_images, 40, tmp_path)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*OVSEG_ANSWERING_SIGINT, "predict", str(listed), "-m", str(standin_model), "-o", str(out), "--ray",
         "--no-overlay"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*.json")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        started = descendants(proc.pid)
        assert started, "no cluster processes seen"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert not wait_gone(started), "processes left after ^C"
        assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files
        assert len(list(out.glob("*.json"))) < 40
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_without_ray_the_switch_says_how_to_install_it(tiny_model: Path, tmp_path: Path) -> None:
    code = (
        "import sys\nsys.modules['ray'] = None\nfrom ovseg.cli import main\n"
        f"sys.exit(main(['predict', 'x.jpg', '-m', {str(tiny_model)!r}, '-o', {str(tmp_path / 'out')!r}, '--ray']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ['ovseg: error: expected Ray for --ray, got none installed: pip install "ovseg[ray]"']
