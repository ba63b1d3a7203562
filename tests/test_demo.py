"""``ovseg demo`` (ovseg.demo, ovseg.capture): headless runs on videos made here, frame sources
that fail on cue, the keys, and the window under Xvfb."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from ovseg.cli import main
from ovseg.controls import Controls
from ovseg.demo import run_demo
from ovseg.draw import Overlay, class_color, draw_status
from ovseg.errors import CaptureError, ConfigError, OutputError
from ovseg.segmenter import Segmenter
from ovseg.sources import CaptureSource, ImageSource, open_source

from .conftest import F32, OVSEG_ANSWERING_SIGINT

# -- helpers ---------------------------------------------------------------------------------


def synthetic_frames(n: int, hw: tuple[int, int] = (240, 320)) -> list[np.ndarray]:
    """Mid-grey frames with a moving bright square and the frame index in pixels (0, 0), (0, 1)."""
    height, width = hw
    frames = []
    for i in range(n):
        frame = np.full((height, width, 3), 110, np.uint8)
        x = 10 + (i * 7) % (width - 60)
        frame[height // 3 : height // 3 + 40, x : x + 40] = (40, 200, 230)
        frame[0, 0], frame[0, 1] = i % 256, i // 256
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


def _numbered(frame: np.ndarray, i: int) -> np.ndarray:
    frame = frame.copy()
    frame[0, 0], frame[0, 1] = i % 256, i // 256
    return frame


class FakeCapture:
    """A VideoCapture look-alike: ``frames``, then ``then``: ``"end"`` (read fails, as at the
    end of a file or when a camera is unplugged), ``"raise"``, or ``"more"`` (new frames without
    end, like a camera). ``delay_s`` paces reads."""

    def __init__(self, frames: list[np.ndarray], *, then: str = "end", opened: bool = True,
                 fps: float = 30.0, delay_s: float = 0.0, frame_count: int = 0) -> None:
        self.frames = list(frames)
        self.then = then
        self.opened = opened
        self.fps = fps
        self.delay_s = delay_s
        self.frame_count = frame_count
        self.reads = 0
        self.released = threading.Event()
        self.requested: dict[int, float] = {}

    def isOpened(self) -> bool:  # noqa: N802 (cv2's spelling)
        return self.opened

    def get(self, prop: int) -> float:
        props = {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_COUNT: float(self.frame_count),
                 cv2.CAP_PROP_FRAME_WIDTH: 320.0, cv2.CAP_PROP_FRAME_HEIGHT: 240.0}
        return props.get(prop, 0.0)

    def set(self, prop: int, value: float) -> bool:
        self.requested[prop] = value
        return True

    def read(self) -> tuple[bool, Any]:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.reads < len(self.frames):
            self.reads += 1
            return True, self.frames[self.reads - 1].copy()
        if self.then == "more":
            self.reads += 1
            return True, _numbered(self.frames[-1], self.reads - 1)
        if self.then == "raise":
            raise OSError("device disconnected")
        return False, None

    def release(self) -> None:
        self.released.set()


@dataclasses.dataclass(frozen=True)
class RecordingOverlay(Overlay):
    """An Overlay that notes the index (pixels (0, 0) and (0, 1)) of every frame it draws."""

    seen: list = dataclasses.field(default_factory=list)

    def __call__(self, image: np.ndarray, result: Any) -> np.ndarray:
        self.seen.append(int(image[0, 0, 0]) + 256 * int(image[0, 1, 0]))
        return super().__call__(image, result)


@pytest.fixture(scope="module")
def tiny_segmenter(tiny_model: Path) -> Segmenter:
    return Segmenter(tiny_model, config=F32)


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated model whose inference takes a few tens of ms (so a live source outruns it)."""
    from ovseg.synthetic import maskrcnn_model, save_model

    model = maskrcnn_model(classes=[1], scores=[0.9], boxes=[[0.1, 0.1, 0.6, 0.6]], boxes_relative=True, work=12)
    return save_model(model, tmp_path_factory.mktemp("slow") / "slow.xml")


# -- headless runs on videos made here ----------------------------------------------------------


def test_cli_headless_video_every_frame_annotated(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = synthetic_frames(12)
    video = write_video(tmp_path / "in.avi", frames, fps=10)
    out = tmp_path / "out" / "annotated.mp4"

    code = main(["demo", "-m", str(tiny_model), "-i", str(video), "--no-show", "-o", str(out)])

    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "12 frame(s)" in printed.out and "mean" in printed.out and "FPS" in printed.out and "latency" in printed.out
    assert f"wrote {out}" in printed.out
    written, fps = read_video(out)
    assert len(written) == 12
    assert written[0].shape == (240, 320, 3)
    assert fps == pytest.approx(10, abs=0.01)
    source, _ = read_video(video)
    # The tiny model's person covers the whole picture: the mid-grey turns towards its colour.
    person = np.array(class_color(1), np.float32)
    for before, after in zip(source, written, strict=True):
        centre_before = before[200, 160].astype(np.float32)
        centre_after = after[200, 160].astype(np.float32)
        assert np.abs(centre_after - (centre_before + person) / 2).max() < 20
        # The status line darkens the bottom band.
        assert after[-12:-2, 100:300].mean() < before[-12:-2, 100:300].mean() * 0.6


def test_cli_limit(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = write_video(tmp_path / "in.avi", synthetic_frames(12), fps=15)
    out = tmp_path / "five.avi"
    assert main(["demo", "-m", str(tiny_model), "-i", str(video), "--no-show", "-o", str(out), "--limit", "5"]) == 0
    assert "5 frame(s)" in capsys.readouterr().out
    written, fps = read_video(out)
    assert len(written) == 5 and fps == pytest.approx(15, abs=0.01)


def test_standin_model_on_fixture_images(standin_model: Path, coco_images: Path, tmp_path: Path) -> None:
    """The real pipeline end to end: a video of fixture pictures, the stand-in model, every
    frame out, with instances drawn (so the overlays change pixels outside the status band)."""
    names = ["000000007281.jpg", "000000008762.jpg"]
    pictures = [cv2.resize(cv2.imread(str(coco_images / name)), (640, 360)) for name in names]
    video = write_video(tmp_path / "coco.avi", [pictures[i % 2] for i in range(6)], fps=5)
    segmenter = Segmenter(standin_model, config=F32, threshold=0.4)
    drawn: list[np.ndarray] = []
    counts: list[int] = []

    def keep(frame: np.ndarray, result: Any) -> None:
        drawn.append(frame)
        counts.append(len(result))

    summary = run_demo(segmenter, open_source(video), show=False, output=tmp_path / "out.mp4", on_frame=keep)

    assert (summary.frames, summary.dropped, summary.ended) == (6, 0, "end")
    assert summary.output_hw == (360, 640) and summary.output_fps == pytest.approx(5)
    assert summary.mean_latency_ms > 0 and summary.mean_infer_ms > 0 and summary.mean_fps > 0
    written, _ = read_video(tmp_path / "out.mp4")
    assert len(written) == 6 and written[0].shape == (360, 640, 3)
    source, _ = read_video(video)
    assert min(counts) >= 1
    for before, after in zip(source, drawn, strict=True):
        changed = np.abs(after[:-40].astype(np.int16) - before[:-40]).max(axis=2) > 40
        assert changed.mean() > 0.02
    assert segmenter.threshold == 0.4


def test_image_folder_frames_fit_first_size(tiny_segmenter: Segmenter, tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    for i, hw in enumerate([(240, 320), (300, 200), (100, 400)]):
        cv2.imwrite(str(folder / f"{i}.png"), synthetic_frames(1, hw)[0])
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"not a png")

    source = open_source(folder, image_fps=2)
    summary = run_demo(tiny_segmenter, source, show=False, output=tmp_path / "pics.avi")

    assert summary.frames == 3  # the broken file is skipped with a warning
    written, fps = read_video(tmp_path / "pics.avi")
    assert len(written) == 3 and {f.shape for f in written} == {(240, 320, 3)} and fps == pytest.approx(2)


# -- live sources drop stale frames, files drop none -----------------------------------------


class _GatedSegmenter(Segmenter):
    """Segments a frame only after its camera has delivered two more: the frame read first of
    those two is certainly stale when the second arrives, so dropping is deterministic."""

    capture: FakeCapture

    def __call__(self, image: np.ndarray) -> Any:
        reads = self.capture.reads
        deadline = time.monotonic() + 10
        # Read k + 1 starts only once frame k is in the slot: 3 reads begun = 2 frames delivered.
        while self.capture.reads < reads + 3 and time.monotonic() < deadline:
            time.sleep(0.001)
        return super().__call__(image)


def test_live_source_processes_the_newest_frame(tiny_model: Path) -> None:
    segmenter = _GatedSegmenter(tiny_model)
    capture = FakeCapture(synthetic_frames(10), then="more", delay_s=0.002)
    segmenter.capture = capture
    overlay = RecordingOverlay()

    summary = run_demo(segmenter, CaptureSource(capture, name="fake camera", live=True), show=False,
                       limit=6, overlay=overlay)

    assert summary.frames == 6 and summary.ended == "limit"
    assert summary.dropped >= 5  # at least one stale frame while each of frames 2..6 was segmented
    seen = overlay.seen
    assert seen == sorted(set(seen)) and all(b - a >= 2 for a, b in zip(seen, seen[1:], strict=False))  # in order, with gaps
    # Never a queue: what was read is what was processed, dropped, or the one frame in the slot.
    assert capture.reads - summary.frames - summary.dropped <= 2
    assert capture.released.is_set()


def test_file_read_live_plays_in_real_time_and_ends_cleanly(slow_model: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.avi", synthetic_frames(20), fps=40)
    source = open_source(video, live=True)
    assert source.live and source.finite

    started = time.perf_counter()
    summary = run_demo(Segmenter(slow_model), source, show=False)

    assert time.perf_counter() - started >= 19 / 40  # paced at the file's rate, not read at once
    assert summary.ended == "end" and summary.frames >= 2
    assert summary.frames + summary.dropped <= 20


def test_file_source_drops_nothing(slow_model: Path) -> None:
    segmenter = Segmenter(slow_model)
    capture = FakeCapture(synthetic_frames(15))
    overlay = RecordingOverlay()

    summary = run_demo(segmenter, CaptureSource(capture, name="fake.mp4", live=False), show=False, overlay=overlay)

    assert (summary.frames, summary.dropped, summary.ended) == (15, 0, "end")
    assert overlay.seen == list(range(15))


# -- failures: one clear error, everything released ----------------------------------------


def test_camera_absent_cli(tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if Path("/dev/video97").exists():
        pytest.skip("this machine has a /dev/video97")
    code = main(["demo", "-m", str(tiny_model), "-i", "97", "--no-show"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "camera 97" in err and "Traceback" not in err


def test_camera_absent_releases_capture() -> None:
    capture = FakeCapture([], opened=False)
    with pytest.raises(CaptureError, match="camera 3: expected a camera at index 3"):
        open_source(3, open_capture=lambda index: capture)
    assert capture.released.is_set()


def test_camera_stops_mid_stream(tiny_segmenter: Segmenter, tmp_path: Path) -> None:
    capture = FakeCapture(synthetic_frames(5), delay_s=0.01)
    source = CaptureSource(capture, name="camera 0", live=True)
    out = tmp_path / "partial.avi"

    with pytest.raises(CaptureError, match=r"^camera 0 stopped delivering frames: none for 0\.3 s after frame \d"):
        run_demo(tiny_segmenter, source, show=False, output=out, stall_timeout_s=0.3)

    assert capture.released.is_set()
    written, _ = read_video(out)  # the writer was released: what was written is a valid video
    assert 1 <= len(written) <= 5


def test_video_read_fails_mid_stream(tiny_segmenter: Segmenter, tmp_path: Path) -> None:
    capture = FakeCapture(synthetic_frames(5), then="raise")
    out = tmp_path / "partial.avi"

    with pytest.raises(CaptureError, match="^clip.mp4: reading frame 6 failed: OSError: device disconnected$"):
        run_demo(tiny_segmenter, CaptureSource(capture, name="clip.mp4", live=False), show=False, output=out)

    assert capture.released.is_set()
    assert len(read_video(out)[0]) == 5


def test_cli_camera_stops_mid_stream(tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    captures: list[FakeCapture] = []

    def fake_camera(index: Any) -> FakeCapture:
        captures.append(FakeCapture(synthetic_frames(3), delay_s=0.01))
        return captures[-1]

    monkeypatch.setattr(cv2, "VideoCapture", fake_camera)
    code = main(["demo", "-m", str(tiny_model), "-i", "0", "--no-show", "--timeout", "0.3"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ovseg: error: camera 0 stopped delivering frames") and err.count("\n") == 1
    assert captures[0].released.is_set()


def test_ctrl_c_stops_like_a_quit_key(tiny_segmenter: Segmenter, tmp_path: Path) -> None:
    capture = FakeCapture(synthetic_frames(10))
    out = tmp_path / "stopped.avi"

    seen = []

    def interrupt_after_three(frame: np.ndarray, result: Any) -> None:
        seen.append(frame)
        if len(seen) == 3:
            raise KeyboardInterrupt

    summary = run_demo(tiny_segmenter, CaptureSource(capture, name="x", live=False), show=False, output=out,
                       on_frame=interrupt_after_three)

    assert summary.ended == "interrupted" and summary.frames == 3
    assert capture.released.is_set()
    assert len(read_video(out)[0]) == 2  # the third frame was interrupted before it was written


def test_cli_camera_resolution(tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                               caplog: pytest.LogCaptureFixture) -> None:
    captures: list[FakeCapture] = []

    def fake_camera(index: Any) -> FakeCapture:
        captures.append(FakeCapture(synthetic_frames(3), then="more", delay_s=0.005))
        return captures[-1]

    monkeypatch.setattr(cv2, "VideoCapture", fake_camera)
    code = main(["demo", "-m", str(tiny_model), "-i", "0", "--no-show", "--resolution", "1280x720", "--limit", "3"])

    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert captures[0].requested == {cv2.CAP_PROP_FRAME_WIDTH: 1280, cv2.CAP_PROP_FRAME_HEIGHT: 720}
    assert "camera 0: requested 1280x720, the camera gives 320x240" in caplog.text  # its nearest mode
    assert "3 frame(s)" in printed.out and "[--limit 3]" in printed.out
    assert captures[0].released.is_set()


@pytest.mark.parametrize(
    ("source", "extra", "hint"),
    [("video", [], "THROUGHPUT"), ("camera", [], "LATENCY"), ("video", ["--config", "PERFORMANCE_HINT=LATENCY"], "LATENCY")],
)
def test_cli_performance_hint(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              source: str, extra: list[str], hint: str) -> None:
    import ovseg.commands.demo as command

    configs: list[dict] = []
    real = command.segmenter_from_args

    def recording(args: Any, **overrides: Any) -> Segmenter:
        configs.append(overrides["config"])
        return real(args, **overrides)

    monkeypatch.setattr(command, "segmenter_from_args", recording)
    if source == "camera":
        monkeypatch.setattr(cv2, "VideoCapture", lambda index: FakeCapture(synthetic_frames(2), then="more"))
    spec = str(write_video(tmp_path / "in.avi", synthetic_frames(2), fps=5)) if source == "video" else "0"
    assert main(["demo", "-m", str(tiny_model), "-i", spec, "--no-show", "--limit", "2", *extra]) == 0
    assert configs[0]["PERFORMANCE_HINT"] == hint


@pytest.mark.parametrize("bad", ["1280", "1280x", "0x720", "wide"])
def test_cli_bad_resolution(tiny_model: Path, capsys: pytest.CaptureFixture[str], bad: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "-m", str(tiny_model), "--resolution", bad])
    assert exit_info.value.code == 2
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err


def test_segmenter_error_reaches_the_caller(tiny_model: Path, tmp_path: Path) -> None:
    """An error raised while segmenting (on the segmenting thread) is raised by run_demo, as
    it is, after everything is released."""

    class Failing(Segmenter):
        calls = 0

        def __call__(self, image: np.ndarray) -> Any:
            Failing.calls += 1
            if Failing.calls == 3:
                raise OutputError("expected outputs of shape [100], got [7]")
            return super().__call__(image)

    capture = FakeCapture(synthetic_frames(2), then="more")
    out = tmp_path / "partial.avi"
    with pytest.raises(OutputError, match="expected outputs of shape"):
        run_demo(Failing(tiny_model), CaptureSource(capture, name="camera 0", live=True), show=False, output=out)
    assert capture.released.is_set()
    assert len(read_video(out)[0]) == 2


def test_video_without_frames(tiny_segmenter: Segmenter, tmp_path: Path) -> None:
    capture = FakeCapture([])
    with pytest.raises(CaptureError, match="empty.mp4: expected frames, got none that could be decoded"):
        run_demo(tiny_segmenter, CaptureSource(capture, name="empty.mp4", live=False), show=False)
    assert capture.released.is_set()


@pytest.mark.parametrize(
    ("spec", "make", "error"),
    [
        ("missing.mp4", None, "missing.mp4: expected a camera index, video, image, folder, glob pattern, .txt list or URL, got no such file"),
        ("empty", "dir", "expected a folder with images"),
        ("text.mp4", "text", "text.mp4: expected a video OpenCV can decode"),
    ],
)
def test_open_source_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, make: str | None, error: str) -> None:
    monkeypatch.chdir(tmp_path)
    if make == "dir":
        Path(spec).mkdir()
    elif make == "text":
        Path(spec).write_text("not a video")
    with pytest.raises(CaptureError, match=error):
        open_source(spec)


def test_open_source_kinds(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), synthetic_frames(1)[0])
    cv2.imwrite(str(tmp_path / "b.jpg"), synthetic_frames(1)[0])
    video = write_video(tmp_path / "v.avi", synthetic_frames(3), fps=7)
    still = open_source(tmp_path / "a.png")
    assert isinstance(still, ImageSource) and still.still and not still.live
    clip = open_source(video)
    assert isinstance(clip, CaptureSource) and not clip.live and clip.fps == pytest.approx(7)
    clip.release()
    folder = open_source(tmp_path, live=True)
    assert isinstance(folder, ImageSource) and folder.live and not folder.still
    stream = open_source("rtsp://camera.example/live", open_capture=lambda url: FakeCapture([]))
    assert stream.live and not stream.finite and stream.name == "rtsp://camera.example/live"
    served = open_source("http://files.example/clip.mp4", open_capture=lambda url: FakeCapture([], frame_count=90))
    assert not served.live and served.finite  # a file over HTTP: it ends, and loses nothing
    camera = open_source("0", open_capture=lambda index: FakeCapture([]))
    assert camera.live and not camera.finite and camera.name == "camera 0" and camera.fps == 30
    with pytest.raises(CaptureError, match="rtsp://x/y: expected a stream OpenCV can open"):
        open_source("rtsp://x/y", open_capture=lambda url: FakeCapture([], opened=False))


def test_show_without_display_is_a_clear_error(tiny_segmenter: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is for X11/Wayland")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    capture = FakeCapture(synthetic_frames(2))
    with pytest.raises(ConfigError, match="expected a display"):
        run_demo(tiny_segmenter, CaptureSource(capture, name="x", live=False), show=True)
    assert capture.released.is_set()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"limit": 0}, "frame limit >= 1, got 0"), ({"output": "out.gif"}, "output video ending in .mp4"),
     ({"output_fps": 0.0}, "frame rate > 0")],
)
def test_bad_settings_release_the_source(tiny_segmenter: Segmenter, kwargs: dict, error: str) -> None:
    capture = FakeCapture(synthetic_frames(1))
    with pytest.raises(ConfigError, match=error):
        run_demo(tiny_segmenter, CaptureSource(capture, name="x", live=False), show=False, **kwargs)
    assert capture.released.is_set()


# -- keys and status line ------------------------------------------------------------------


def test_cli_output_checked_before_work(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for output, error in [(tmp_path / "x.gif", "expected an output video ending in .mp4"),
                          (blocker / "sub" / "x.mp4", "expected a folder that can hold the video")]:
        assert main(["demo", "-m", str(tiny_model), "-i", "97", "--no-show", "-o", str(output)]) == 2
        err = capsys.readouterr().err
        assert error in err and err.count("\n") == 1 and "camera" not in err


def test_keys() -> None:
    controls = Controls(threshold=0.5)
    assert controls.handle_key(-1) is None
    assert controls.handle_key(ord("q")) == "quit" and controls.handle_key(27) == "quit"
    assert controls.handle_key(ord(" ")) == "pause" and controls.paused
    assert controls.handle_key(ord(" ")) == "pause" and not controls.paused
    assert controls.handle_key(ord("+")) == "threshold" and controls.threshold == 0.55
    assert controls.handle_key(ord("=")) == "threshold" and controls.threshold == 0.6
    for _ in range(20):
        controls.handle_key(ord("-"))
    assert controls.threshold == 0.05 and controls.handle_key(ord("-")) is None
    assert controls.handle_key(ord("m")) == "draw" and not controls.masks
    assert controls.handle_key(ord("b")) == "draw" and not controls.boxes
    assert controls.handle_key(ord("x")) is None


def test_status_line_fits_and_darkens() -> None:
    image = np.full((120, 200, 3), 200, np.uint8)
    draw_status(image, "12.3 FPS | infer 45 ms (total 60) | CPU | a-long-model-name | thr 0.50")
    assert image[-1, 100].max() < 100  # band darkened
    assert image[:60].min() == 200  # the rest untouched
    assert (image[-20:] == 255).any()  # white text


# -- the window, under Xvfb --------------------------------------------------------------------


@pytest.fixture
def xvfb() -> Any:
    """An Xvfb display for the test (DISPLAY string), stopped afterwards."""
    binary = shutil.which("Xvfb")
    if binary is None:
        pytest.skip("Xvfb is absent (Debian: apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        [binary, "-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    server.terminate()
    server.wait(10)


def screenshot(display: str, path: Path) -> np.ndarray | None:
    """The whole X screen as BGR (ImageMagick's ``import``), or None where it is absent."""
    if shutil.which("import") is None:
        return None
    subprocess.run(["import", "-display", display, "-window", "root", str(path)], check=True, timeout=20,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cv2.imread(str(path))


def wait_for(check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value is not None:
            return value
        time.sleep(0.3)
    return None


def demo_process(display: str, *args: str) -> subprocess.Popen:
    # PYTHONFAULTHANDLER: a demo that hangs is sent SIGABRT and prints every thread's stack.
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen([*OVSEG_ANSWERING_SIGINT, "demo", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_window_under_xvfb(xvfb: str, tiny_model: Path, tmp_path: Path) -> None:
    """A single picture stays in the window until a quit key; the screenshot shows the
    picture with the overlay and the status line. Set OVSEG_SCREENSHOT_DIR to keep it."""
    picture = np.full((300, 400, 3), 110, np.uint8)
    cv2.imwrite(str(tmp_path / "still.png"), picture)
    # -t 0.3 shows the car too: its box, unlike the person's, has edges inside the picture.
    proc = demo_process(xvfb, "-m", str(tiny_model), "-i", str(tmp_path / "still.png"), "-t", "0.3")
    try:
        shot_path = tmp_path / "window.png"

        def window_up() -> np.ndarray | None:
            if proc.poll() is not None:
                pytest.fail(f"the demo exited early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
            shot = screenshot(xvfb, shot_path)
            drawn = shot is not None and np.count_nonzero((shot == 110).all(axis=2)) > 10_000  # the picture is up
            return shot if drawn else None

        if shutil.which("import") is None:
            time.sleep(4)
        else:
            shot = wait_for(window_up, 90)  # generous: a loaded CI machine starts the demo slowly
            if shot is None:
                # Seen once in many runs (CI, load ~1): no window and nothing on stderr. Its
                # stacks go to the report; a second start tells a rare hang from a broken demo.
                proc.send_signal(signal.SIGABRT)
                first = proc.communicate(timeout=30)[1][-3000:]
                warnings.warn(f"the demo showed no window in 90 s (retrying once); its threads: {first}", stacklevel=1)
                proc = demo_process(xvfb, "-m", str(tiny_model), "-i", str(tmp_path / "still.png"), "-t", "0.3")
                shot = wait_for(window_up, 90)
            if shot is None:
                proc.send_signal(signal.SIGABRT)
                pytest.fail(f"no window appeared on the Xvfb screen in 90 s, twice; demo stderr: {proc.communicate()[1][-3000:]}")
            if os.environ.get("OVSEG_SCREENSHOT_DIR"):
                shutil.copy(shot_path, Path(os.environ["OVSEG_SCREENSHOT_DIR"]) / "demo-window.png")
            # In the window, the grey picture is tinted with the person's colour where its disc
            # mask is (the tiny model's masks are discs) ...
            person = np.array(class_color(1), np.float32)
            ys, xs = np.nonzero(np.abs(shot.astype(np.float32) - (110 + person) / 2).max(axis=2) < 12)
            assert 0.3 * 300 * 400 < len(ys) < 0.7 * 300 * 400
            # ... above a dark status band with white text, at the bottom of the picture.
            grey = np.nonzero((shot == 110).all(axis=2))
            bottom = grey[0].max() + 1
            band = shot[bottom : bottom + 14, grey[1].min() : grey[1].min() + 300]
            assert (band == 255).any() and np.median(band) < 60
        if shutil.which("xdotool"):
            # Keys go to the focused window: "m" takes the masks off, "b" the boxes, "q" quits.
            env = {**os.environ, "DISPLAY": xvfb}

            def key(name: str) -> None:
                subprocess.run(["xdotool", "search", "--name", "ovseg demo", "windowfocus", "--sync", "key", name],
                               env=env, check=True, timeout=20, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            if shutil.which("import") is not None:
                person = np.array(class_color(1), np.float32)

                def count(shot: np.ndarray, color: np.ndarray) -> int:
                    return int(np.count_nonzero(np.abs(shot.astype(np.float32) - color).max(axis=2) < 12))

                car = np.array(class_color(3), np.float32)
                tinted, outlined, boxed = count(shot, (110 + person) / 2), count(shot, person), count(shot, car)
                assert outlined > 200 and boxed > 200  # contours, boxes and tags in the class colours
                key("m")
                def shot_where(condition: Callable[[np.ndarray], bool]) -> Callable[[], np.ndarray | None]:
                    def check() -> np.ndarray | None:
                        s = screenshot(xvfb, shot_path)
                        return s if s is not None and condition(s) else None

                    return check

                after_m = wait_for(shot_where(lambda s: count(s, (110 + person) / 2) < 0.01 * tinted), 20)
                assert after_m is not None, "the masks stayed after the m key"
                assert count(after_m, person) < outlined  # the person's contour went with its mask
                key("b")
                # The box outlines are thin anti-aliased lines (blends, not the class colour): what
                # "b" changes is their pixels, the car box's two inner edges at the least (~350 px).
                def changed(s: np.ndarray) -> int:
                    return int(np.count_nonzero(np.abs(s.astype(np.int16) - after_m.astype(np.int16)).max(axis=2) > 20))

                after_b = wait_for(shot_where(lambda s: changed(s) > 250), 20)
                assert after_b is not None, "the boxes stayed after the b key"
            key("q")
            assert proc.wait(20) == 0
        else:
            proc.send_signal(signal.SIGINT)  # what ^C does: the window is released in `finally`
            assert proc.wait(20) == 130
        assert "1 frame(s)" in proc.stdout.read() or proc.returncode == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_video_in_window_ends_cleanly(xvfb: str, tiny_model: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.avi", synthetic_frames(8), fps=10)
    out = tmp_path / "shown.mp4"
    proc = demo_process(xvfb, "-m", str(tiny_model), "-i", str(video), "-o", str(out))
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "8 frame(s)" in stdout
    assert len(read_video(out)[0]) == 8
