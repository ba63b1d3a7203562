"""Several sources through one model: each in its own order, one failing or slow source does
not stop or slow the others."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

import ovseg
from ovseg.sources import CaptureSource, open_source

from .conftest import F32
from .videos import frames_of, write_cfr


class Scripted:
    """A capture: ``count`` frames, each after ``delay_s``, then the end or an exception."""

    def __init__(self, count: int, *, delay_s: float = 0.0, then: str = "end") -> None:
        self.count, self.delay_s, self.then, self.reads, self.released = count, delay_s, then, 0, False

    def read(self) -> tuple[bool, Any]:
        time.sleep(self.delay_s)
        if self.reads >= self.count:
            if self.then == "raise":
                raise OSError("device unplugged")
            return False, None
        self.reads += 1
        return True, np.full((48, 64, 3), self.reads % 256, np.uint8)  # an endless one passes 255

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        self.released = True


def test_each_source_in_order_failures_and_slowness_stay_with_their_source(tiny_model: Path, tmp_path: Path) -> None:
    seg = ovseg.Segmenter(tiny_model, config={**F32, "PERFORMANCE_HINT": "THROUGHPUT"})
    unplugged, slow = Scripted(3, then="raise"), Scripted(4, delay_s=0.3)
    sources = {
        "file": open_source(write_cfr(tmp_path / "a.avi", frames_of(8), fps=10)),
        "unplugged": CaptureSource(unplugged, name="cam", live=False, finite=True, kind="camera"),
        "slow": CaptureSource(slow, name="slow", live=False, finite=True),
    }
    ends: list[Any] = []
    seen: dict[str, list[int]] = {name: [] for name in sources}
    arrival: dict[str, list[float]] = {name: [] for name in sources}
    started = time.perf_counter()
    for name, frame, result in seg.stream_many(sources, on_end=ends.append):
        seen[name].append(frame.index)
        arrival[name].append(time.perf_counter() - started)
        assert result.image_hw == frame.image_hw
    assert seen == {"file": list(range(8)), "unplugged": [0, 1, 2], "slow": [0, 1, 2, 3]}
    by_name = {end.name: end for end in ends}
    assert by_name["file"].error is None and by_name["slow"].error is None
    error = by_name["unplugged"].error
    assert error is not None and "cam: reading frame 4 failed: OSError: device unplugged" in str(error)
    # The slow source (1.2 s of reading) did not hold the file back: all 8 file frames were done
    # before the slow source's last frame.
    assert arrival["file"][-1] < arrival["slow"][-1]
    assert unplugged.released and slow.released


def test_demo_with_two_sources_writes_a_mosaic(tiny_model: Path, tmp_path: Path, capsys: Any) -> None:
    import cv2

    from ovseg.cli import main

    a = write_cfr(tmp_path / "a.avi", frames_of(5), fps=10)
    b = write_cfr(tmp_path / "b.avi", frames_of(3, (240, 320)), fps=10)
    out = tmp_path / "mosaic.mp4"
    assert main(["demo", "-i", str(a), "-i", str(b), "-i", str(tmp_path / "a.avi"), "-m", str(tiny_model), "--no-show",
                 "-o", str(out), "--infer-precision", "f32"]) == 0
    printed = capsys.readouterr().out
    assert f"{a}: 5 frame(s)" in printed and f"{b}: 3 frame(s)" in printed and f"{a} (2): 5 frame(s)" in printed
    video = cv2.VideoCapture(str(out))
    ok, frame = video.read()
    assert ok and frame.shape == (720, 1280, 3)  # 3 tiles: 2 x 2 of 360 x 640
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 13


def test_demo_track_colours_by_id_and_draws_trails(tmp_path: Path, capsys: Any) -> None:
    import cv2
    import pytest

    pytest.importorskip("scipy", reason="ovseg[track] is not installed: pip install 'ovseg[track]'")
    from ovseg.cli import main
    from ovseg.draw import class_color, track_color
    from ovseg.synthetic import maskrcnn_model, save_model

    model = save_model(maskrcnn_model(classes=[1], scores=[0.9], boxes=[[0.1, 0.1, 0.5, 0.6]], boxes_relative=True),
                       tmp_path / "one.xml")
    video = write_cfr(tmp_path / "v.avi", frames_of(10, (240, 320)), fps=10)
    out = tmp_path / "tracked.avi"
    for extra in ([], ["-i", str(video)]):
        assert main(["demo", "-i", str(video), *extra, "-m", str(model), "--no-show", "-o", str(out), "--track"]) == 0
        capture, frames = cv2.VideoCapture(str(out)), []
        while (got := capture.read())[0]:
            frames.append(got[1])
        assert frames
        # The last frame shows the instance in its track's colour (its label tag, its box), not the person's.
        last = frames[-1].astype(np.float32)
        assert np.count_nonzero(np.abs(last - np.array(track_color(0), np.float32)).max(axis=2) < 40) > 50
        assert np.count_nonzero(np.abs(last - np.array(class_color(1), np.float32)).max(axis=2) < 10) < 20
    capsys.readouterr()


def test_limit_ends_an_endless_source(tiny_model: Path) -> None:
    seg = ovseg.Segmenter(tiny_model, config=F32)
    endless = Scripted(10**9)
    ends: list[Any] = []
    got = [f.index for _, f, _ in seg.stream_many({"cam": CaptureSource(endless, name="cam", live=True)}, limit=5,
                                                   on_end=ends.append)]
    assert got == sorted(got) and len(got) == 5
    assert ends[0].stopped is False and ends[0].error is None and endless.released


def test_a_stopped_stream_says_so_to_every_source(tiny_model: Path, tmp_path: Path) -> None:
    seg = ovseg.Segmenter(tiny_model, config=F32)
    ends: list[Any] = []
    stream = seg.stream_many({"a": open_source(write_cfr(tmp_path / "a.avi", frames_of(30), fps=10))}, on_end=ends.append)
    next(stream)
    stream.close()  # the caller stops (break, ^C)
    assert [(e.name, e.stopped) for e in ends] == [("a", True)]


def test_max_files_reads_that_many_files_at_once_in_order_and_cameras_at_once() -> None:
    from ovseg.multi import merge

    files = {f"f{i}": CaptureSource(Scripted(4 + i, delay_s=0.002), name=f"f{i}", live=False, finite=True)
             for i in range(5)}
    camera = Scripted(30, delay_s=0.002)
    sources = {**files, "cam": CaptureSource(camera, name="cam", live=True, finite=True)}
    started: list[str] = []
    running: set[str] = set()
    most = 0
    ends: list[Any] = []

    def on_start(name: str) -> None:
        nonlocal most
        started.append(name)
        running.add(name)
        most = max(most, len(running - {"cam"}))

    def on_end(end: Any) -> None:
        running.discard(end.name)
        ends.append(end)

    seen: dict[str, list[int]] = {name: [] for name in sources}
    for name, frame in merge(sources, max_files=2, on_start=on_start, on_end=on_end):
        assert name in running  # frames only from started sources
        seen[name].append(frame.index)
    assert started[:3] == ["f0", "f1", "cam"] and started[3:] == ["f2", "f3", "f4"]  # files in order, the camera at once
    assert most == 2
    assert all(seen[f"f{i}"] == list(range(4 + i)) for i in range(5))  # every file whole, in order
    assert {e.name for e in ends} == set(sources) and all(e.error is None and not e.stopped for e in ends)
    assert all(s.capture.released for s in sources.values())


def test_files_never_started_end_stopped_with_nothing_read_and_are_released() -> None:
    from ovseg.multi import merge

    captures = [Scripted(50, delay_s=0.002) for _ in range(4)]
    sources = {f"f{i}": CaptureSource(c, name=f"f{i}", live=False, finite=True) for i, c in enumerate(captures)}
    ends: list[Any] = []
    started: list[str] = []
    stream = merge(sources, max_files=1, on_start=started.append, on_end=ends.append)
    next(stream)
    stream.close()  # ^C while the first file is read
    assert started == ["f0"]
    assert [(e.name, e.frames, e.stopped) for e in ends][1:] == [("f1", 0, True), ("f2", 0, True), ("f3", 0, True)]
    assert ends[0].name == "f0" and ends[0].stopped
    assert all(c.released for c in captures) and [c.reads for c in captures[1:]] == [0, 0, 0]


def test_stream_many_with_max_files_holds_that_many_videos_open(tiny_model: Path, tmp_path: Path,
                                                                monkeypatch: Any) -> None:
    import ovseg.sources as sources_module

    paths = {f"v{i}": write_cfr(tmp_path / f"v{i}.avi", frames_of(4), fps=10) for i in range(3)}
    real_open = sources_module.open_source
    state = {"open": 0, "most": 0}

    def counting_open(spec: Any, *args: Any, **kwargs: Any) -> Any:
        source = real_open(spec, *args, **kwargs)
        state["open"] += 1
        state["most"] = max(state["most"], state["open"])
        release = source.release

        def counted_release() -> None:
            state["open"] -= 1
            release()
            source.release = release  # once

        source.release = counted_release
        return source

    monkeypatch.setattr(sources_module, "open_source", counting_open)
    seg = ovseg.Segmenter(tiny_model, config=F32)
    got: dict[str, list[int]] = {name: [] for name in paths}
    for name, frame, _ in seg.stream_many({name: str(p) for name, p in paths.items()}, max_files=1):
        got[name].append(frame.index)
    assert got == {name: [0, 1, 2, 3] for name in paths}
    assert state["most"] == 1 and state["open"] == 0  # one decoder at a time, each closed


def test_a_start_that_fails_releases_and_ends_every_source() -> None:
    from ovseg.multi import merge

    captures = [Scripted(5) for _ in range(4)]
    sources = {f"f{i}": CaptureSource(c, name=f"f{i}", live=False, finite=True) for i, c in enumerate(captures)}
    camera = Scripted(10**6, delay_s=0.01)
    sources["cam"] = CaptureSource(camera, name="cam", live=True)
    ends: list[Any] = []

    def on_start(name: str) -> None:
        if name == "f1":
            raise OSError("cannot create f1's files")

    try:
        list(merge(sources, max_files=2, on_start=on_start, on_end=ends.append))
    except OSError as error:
        assert "f1" in str(error)
    else:
        raise AssertionError("the failing start did not stop the stream")
    assert sorted(e.name for e in ends) == sorted(sources)  # each told, once
    assert all(e.stopped for e in ends)
    assert all(c.released for c in captures) and camera.released and camera.reads == 0


def test_max_files_below_one_is_refused_and_releases_everything(tiny_model: Path) -> None:
    from ovseg.multi import merge

    capture = Scripted(3)
    try:
        list(merge({"a": CaptureSource(capture, name="a", live=False, finite=True)}, max_files=0))
    except ValueError as error:
        assert "expected max_files >= 1" in str(error)
    assert capture.released
    seg = ovseg.Segmenter(tiny_model, config=F32)
    other = Scripted(3)
    try:
        next(seg.stream_many({"b": CaptureSource(other, name="b", live=False, finite=True)}, max_files=0))
    except ValueError as error:
        assert "expected max_files >= 1 or None, got 0" in str(error)
    assert other.reads == 0
