"""``ovseg predict`` on videos, folders and mixes: JSONL read back, --coco, --skip-existing,
failing sources, the last line."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest

import ovseg
from ovseg.cli import main

from .conftest import F32, OVSEG_ANSWERING_SIGINT
from .videos import frames_of, write_cfr, write_vfr


def predict(*args: str) -> int:
    return main(["predict", *args, "--infer-precision", "f32"])


def test_video_jsonl_read_back_equals_the_segmenter(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pts = [0, 40, 80, 200, 240, 500, 533]
    video = write_vfr(tmp_path / "gate.mkv", frames_of(len(pts), (240, 320)), pts)
    out = tmp_path / "out"
    assert predict(str(video), "-m", str(tiny_model), "-o", str(out), "-t", "0.3") == 0
    assert sorted(os.listdir(out)) == ["gate.jsonl", "gate.mp4"]
    lines = [json.loads(line) for line in (out / "gate.jsonl").read_text().splitlines()]
    assert [(d["source"], d["frame"], d["timestamp_ms"], d["height"], d["width"]) for d in lines] == [
        (str(video), i, pytest.approx(t), 240, 320) for i, t in enumerate(pts)
    ]
    # The same instances as the segmenter gives on the decoded frames, masks included.
    seg = ovseg.Segmenter(tiny_model, threshold=0.3, config=F32)
    capture = cv2.VideoCapture(str(video))
    for doc in lines:
        ok, image = capture.read()
        assert ok
        res = seg(image)
        assert [i["label"] for i in doc["instances"]] == list(res.labels) == ["person", "car"]
        for inst, mask, box in zip(doc["instances"], res.masks, res.boxes.tolist(), strict=True):
            decoded = mask_util.decode({"size": inst["segmentation"]["size"], "counts": inst["segmentation"]["counts"].encode()})
            np.testing.assert_array_equal(decoded.astype(bool), mask)
            assert inst["box"] == [round(v, 2) for v in box] and inst["track_id"] == -1
    written = cv2.VideoCapture(str(out / "gate.mp4"))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == len(pts)
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].startswith("7 frames, 14 instances, ") and printed[-1].endswith(" FPS, 0 failed")


def test_images_and_a_video_with_coco_results(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pycocotools.coco import COCO

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("000000000139.jpg", "street.png"):
        cv2.imwrite(str(folder / name), np.full((200, 300, 3), 80, np.uint8))
    video = write_cfr(tmp_path / "clip.avi", frames_of(3), fps=5)
    coco_file, out = tmp_path / "results.json", tmp_path / "out"
    assert predict(str(folder), str(video), "-m", str(tiny_model), "-o", str(out), "--coco", str(coco_file),
                   "--no-overlay") == 0
    assert sorted(os.listdir(out)) == ["000000000139.json", "clip.jsonl", "street.json"]
    detections = json.loads(coco_file.read_text())
    assert sorted({d["image_id"] for d in detections}) == [2, 139]  # the file's number, else its position
    gt = COCO()
    gt.dataset = {"images": [{"id": 139, "height": 200, "width": 300}, {"id": 2, "height": 200, "width": 300}],
                  "annotations": [], "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        loaded = gt.loadRes(detections)
    assert len(loaded.getAnnIds()) == len(detections) == 2
    # The per-image JSON holds the same instances as the video's lines, in one schema.
    doc = json.loads((out / "street.json").read_text())
    assert set(doc) == {"image", "height", "width", "model", "device", "speed_ms", "instances"}
    line = json.loads((out / "clip.jsonl").read_text().splitlines()[0])
    assert set(doc["instances"][0]) == set(line["instances"][0]) == {"label", "category_id", "score", "box", "segmentation", "track_id"}
    assert "5 frames, " in capsys.readouterr().out


def test_skip_existing_redoes_only_what_is_missing(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), np.full((60, 80, 3), 80, np.uint8))
    video = write_cfr(tmp_path / "v.avi", frames_of(2), fps=5)
    out = tmp_path / "out"
    assert predict(str(folder), str(video), "-m", str(tiny_model), "-o", str(out)) == 0
    (out / "b.json").unlink()
    (out / "v.jsonl").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert predict(str(folder), str(video), "-m", str(tiny_model), "-o", str(out), "--skip-existing") == 0
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert after["a.json"] == before["a.json"] and after["a.png"] == before["a.png"]  # skipped
    assert "b.json" in after and "v.jsonl" in after and after["v.mp4"] != before["v.mp4"]  # redone
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("3 frames, ")


def test_a_failing_source_does_not_stop_the_others(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_cfr(tmp_path / "good.avi", frames_of(4), fps=5)
    frames = frames_of(40)
    whole = write_vfr(tmp_path / "whole.mkv", frames, [40 * i for i in range(40)])
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 3])  # the index says 1.6 s
    (tmp_path / "text.mp4").write_text("not a video")
    out = tmp_path / "out"
    code = predict(str(tmp_path / "text.mp4"), str(cut), str(good), str(tmp_path / "missing.mp4"),
                   "-m", str(tiny_model), "-o", str(out))
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("text.mp4: expected a video OpenCV can decode" in e for e in err)
    assert any("missing.mp4: expected a camera index, video" in e for e in err)
    assert any("cut.mkv: expected frames up to" in e and "truncated or damaged file" in e for e in err)
    assert err[-1].startswith("ovseg: 3 of 4 input(s) failed: ")
    assert all(e.startswith("ovseg: ") for e in err) and not any("Traceback" in e for e in err)
    names = sorted(os.listdir(out))
    assert "good.jsonl" in names and "good.mp4" in names
    assert "cut.jsonl" not in names and "cut.partial.jsonl" in names  # never under the final name
    assert len((out / "good.jsonl").read_text().splitlines()) == 4


def test_interrupt_keeps_finished_files_and_whole_line_partials(tmp_path: Path) -> None:
    """^C (SIGINT) mid-video: exit 130, the finished image files, the video's lines so far as
    NAME.partial.jsonl (each line whole), no file under a final video name."""
    from ovseg.synthetic import maskrcnn_model, save_model

    slow = save_model(maskrcnn_model(classes=[1], scores=[0.9], boxes=[[0.1, 0.1, 0.6, 0.6]], boxes_relative=True,
                                     work=12), tmp_path / "slow.xml")
    cv2.imwrite(str(tmp_path / "a.png"), np.full((60, 80, 3), 80, np.uint8))
    video = write_cfr(tmp_path / "long.avi", frames_of(400), fps=25)
    out = tmp_path / "out"
    proc = subprocess.Popen([*OVSEG_ANSWERING_SIGINT, "predict", str(tmp_path / "a.png"), str(video), "-m", str(slow),
                             "-o", str(out), "--nireq", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(p.name.startswith(".long.") for p in out.glob(".*")):
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    names = sorted(p.name for p in out.iterdir())
    assert "a.json" in names and "a.png" in names
    assert "long.jsonl" not in names and "long.mp4" not in names and "long.partial.jsonl" in names
    assert not [n for n in names if n.startswith(".")]  # no temporary file left behind
    lines = (out / "long.partial.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["frame"] == i for i, line in enumerate(lines))
    assert "[interrupted]" in stdout and "Traceback" not in stderr


def test_track_gives_ids_in_the_jsonl(tmp_path: Path) -> None:
    """Two objects moving slowly across a video: each keeps one id through the JSONL."""
    pytest.importorskip("scipy", reason="ovseg[track] is not installed: pip install 'ovseg[track]'")
    from ovseg.synthetic import maskrcnn_model, save_model

    model = save_model(maskrcnn_model(classes=[1, 3], scores=[0.9, 0.8], boxes=[[0.05, 0.1, 0.4, 0.6], [0.55, 0.3, 0.9, 0.9]],
                                      boxes_relative=True), tmp_path / "two.xml")
    video = write_cfr(tmp_path / "walk.avi", frames_of(12), fps=15)
    out = tmp_path / "out"
    assert predict(str(video), "-m", str(model), "-o", str(out), "--track", "--no-overlay") == 0
    lines = [json.loads(line) for line in (out / "walk.jsonl").read_text().splitlines()]
    ids = [[i["track_id"] for i in doc["instances"]] for doc in lines]
    assert all(len(frame) == 2 for frame in ids)  # tracking never removes instances
    confirmed = [frame for frame in ids if -1 not in frame]
    assert len(confirmed) >= 8 and len({tuple(f) for f in confirmed}) == 1 and len(set(confirmed[0])) == 2


def test_track_with_images_only_is_a_one_line_error(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 30, 3), np.uint8))
    assert main(["predict", str(tmp_path / "a.png"), "-m", str(tiny_model), "--track", "-o", str(tmp_path / "o")]) == 2
    assert "expected a video, camera or stream to --track, got images only" in capsys.readouterr().err


def test_a_url_that_never_answers_is_one_line_and_the_images_go_on(tiny_model: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((40, 60, 3), 80, np.uint8))
    out = tmp_path / "out"
    started = time.monotonic()
    code = predict("http://127.0.0.1:9/never.mp4", str(tmp_path / "a.png"), "-m", str(tiny_model), "-o", str(out))
    assert code == 2 and time.monotonic() - started < 30  # bounded: FFmpeg's waits are capped
    err = capsys.readouterr().err.strip().splitlines()
    assert any(e.startswith("ovseg: error: http://127.0.0.1:9/never.mp4: expected a stream OpenCV can open") for e in err)
    assert sorted(os.listdir(out)) == ["a.json", "a.png"]


def test_the_same_image_twice_gets_two_names(tiny_model: Path, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((40, 60, 3), 80, np.uint8))
    out = tmp_path / "out"
    assert predict(str(tmp_path / "a.png"), str(tmp_path / "a.png"), "-m", str(tiny_model), "-o", str(out)) == 0
    assert sorted(os.listdir(out)) == ["a-2.json", "a-2.png", "a.json", "a.png"]


def test_files_at_once_gives_the_same_files_and_opens_each_video_when_its_turn_comes(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import ovseg.sources as sources_module

    videos = [write_cfr(tmp_path / f"v{i}.avi", frames_of(3 + i), fps=5) for i in range(5)]
    outs = {}
    for at_once in (5, 2):
        out = tmp_path / f"out{at_once}"
        opened: list[str] = []
        real_open = sources_module.open_source

        def counting_open(spec: Any, *args: Any, opened: list[str] = opened, real_open: Any = real_open, **kw: Any) -> Any:
            opened.append(Path(str(spec)).name)
            return real_open(spec, *args, **kw)

        monkeypatch.setattr(sources_module, "open_source", counting_open)
        assert predict(*map(str, videos), "-m", str(tiny_model), "-o", str(out), "--files-at-once", str(at_once)) == 0
        monkeypatch.setattr(sources_module, "open_source", real_open)
        # each video opened once to check it and once more when read
        assert sorted(opened) == sorted([v.name for v in videos] * 2)
        outs[at_once] = {p.name: p.read_text() for p in out.glob("*.jsonl")}
    assert sorted(outs[2]) == sorted(outs[5]) == [f"v{i}.jsonl" for i in range(5)]
    for name in outs[2]:
        assert [len(json.loads(x)["instances"]) for x in outs[2][name].splitlines()] == \
               [len(json.loads(x)["instances"]) for x in outs[5][name].splitlines()]
        assert len(outs[2][name].splitlines()) == 3 + int(name[1])
    capsys.readouterr()


def test_a_video_gone_before_its_turn_fails_alone(tiny_model: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from ovseg.sources import CaptureSource, DeferredVideo, open_source

    first, second = write_cfr(tmp_path / "a.avi", frames_of(3), fps=5), write_cfr(tmp_path / "b.avi", frames_of(3), fps=5)
    checked = open_source(second)
    assert isinstance(checked, CaptureSource)
    deferred = DeferredVideo(checked, second)
    assert deferred.length == 3 and deferred.fps == 5 and not deferred.live
    second.unlink()  # gone between the check and its turn
    seg = ovseg.Segmenter(tiny_model, config=F32)
    ends: list[Any] = []
    got = [name for name, _, _ in seg.stream_many({"a": open_source(first), "b": deferred}, max_files=1,
                                                   on_end=ends.append)]
    assert got == ["a"] * 3
    by_name = {e.name: e for e in ends}
    assert by_name["a"].error is None
    assert str(by_name["b"].error) == f"{second}: expected a camera index, video, image, folder, glob pattern, " \
        ".txt list or URL, got no such file"


@pytest.mark.parametrize("missing_first", [True, False])
def test_an_input_that_fails_to_open_keeps_its_name_free(tiny_model: Path, tmp_path: Path, missing_first: bool,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # Two videos of one stem: the one that does not open yet keeps the name it will have, so
    # that the other's files keep theirs when a later run (--skip-existing) finds both.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    present = write_cfr(tmp_path / "b" / "x.avi", frames_of(2), fps=5)
    missing = tmp_path / "a" / "x.avi"
    order = [missing, present] if missing_first else [present, missing]
    out = tmp_path / "out"
    assert predict(*map(str, order), "-m", str(tiny_model), "-o", str(out), "--no-overlay") == 2
    present_stem = "x-2" if missing_first else "x"
    assert sorted(p.name for p in out.iterdir()) == [f"{present_stem}.jsonl"]
    first = (out / f"{present_stem}.jsonl").stat().st_mtime_ns
    write_cfr(missing, frames_of(3), fps=5)
    capsys.readouterr()
    assert predict(*map(str, order), "-m", str(tiny_model), "-o", str(out), "--no-overlay", "--skip-existing") == 0
    assert f"x.avi: skipped, {present_stem}.jsonl exists" in capsys.readouterr().out
    assert (out / f"{present_stem}.jsonl").stat().st_mtime_ns == first  # not redone under another name
    other = "x" if missing_first else "x-2"
    assert len((out / f"{other}.jsonl").read_text().splitlines()) == 3
    assert sorted(p.name for p in out.iterdir()) == ["x-2.jsonl", "x.jsonl"]


def test_an_image_that_fails_to_open_keeps_its_name_among_the_images(tiny_model: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    video = write_cfr(tmp_path / "photo.avi", frames_of(2), fps=5)
    image = tmp_path / "photo.png"  # missing in the first run
    out = tmp_path / "out"
    assert predict(str(video), str(image), "-m", str(tiny_model), "-o", str(out), "--no-overlay") == 2
    assert sorted(p.name for p in out.iterdir()) == ["photo-2.jsonl"]  # image stems come first
    cv2.imwrite(str(image), np.full((60, 80, 3), 80, np.uint8))
    capsys.readouterr()
    assert predict(str(video), str(image), "-m", str(tiny_model), "-o", str(out), "--no-overlay", "--skip-existing") == 0
    assert "photo.avi: skipped, photo-2.jsonl exists" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["photo-2.jsonl", "photo.json"]
