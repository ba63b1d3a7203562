"""ovseg.sources: every input kind as frames with their metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import ovseg
from ovseg.errors import CaptureError
from ovseg.sources import CaptureSource, ImageSource, image_paths, open_source, open_sources, safe_name

from .videos import frames_of, write_cfr, write_vfr


def write_images(folder: Path, names: list[str]) -> list[Path]:
    paths = []
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.full((20, 30, 3), 10 * i, np.uint8))
        paths.append(path)
    return paths


def test_image_inputs_of_every_kind(tmp_path: Path) -> None:
    write_images(tmp_path, ["b.png", "a.jpg", "sub/c.png", "sub/deeper/d.jpg", ".hidden/e.png"])
    (tmp_path / "notes.txt").write_text("# a list\nb.png\n\nsub/c.png\n")
    assert image_paths(tmp_path) == [tmp_path / "a.jpg", tmp_path / "b.png"]  # sorted, not recursive
    assert image_paths(tmp_path, recursive=True) == [
        tmp_path / "a.jpg", tmp_path / "b.png", tmp_path / "sub" / "c.png", tmp_path / "sub" / "deeper" / "d.jpg",
    ]
    assert image_paths(f"{tmp_path}/**/*.png") == [tmp_path / "b.png", tmp_path / "sub" / "c.png"]
    assert image_paths(tmp_path / "notes.txt") == [tmp_path / "b.png", tmp_path / "sub" / "c.png"]
    assert image_paths(tmp_path / "a.jpg") == [tmp_path / "a.jpg"]
    assert image_paths("0") is None and image_paths("rtsp://cam/1") is None


@pytest.mark.parametrize(
    "make, spec, message",
    [
        ("empty-dir", "{t}/empty", r"expected a folder with images .* \(not recursive: --recursive looks in subfolders\), got none"),
        ("none", "{t}/*.jpg", r"expected a pattern that matches image files, got 0 match\(es\)"),
        ("bad-list", "{t}/list.txt", r"list.txt:2: expected an image file, got no such file 'missing.png'"),
        ("none", "{t}/nothing.mp4", r"expected a camera index, video, image, folder, glob pattern, .txt list or URL"),
        ("text-video", "{t}/fake.mp4", r"fake.mp4: expected a video OpenCV can decode"),
    ],
)
def test_source_errors_are_one_line_naming_the_input(tmp_path: Path, make: str, spec: str, message: str) -> None:
    if make == "empty-dir":
        (tmp_path / "empty").mkdir()
    elif make == "bad-list":
        write_images(tmp_path, ["a.png"])
        (tmp_path / "list.txt").write_text("a.png\nmissing.png\n")
    elif make == "text-video":
        (tmp_path / "fake.mp4").write_text("not a video")
    with pytest.raises(CaptureError, match=message):
        open_source(spec.format(t=tmp_path))


def test_images_come_as_frames_with_their_paths(tmp_path: Path) -> None:
    paths = write_images(tmp_path, ["a.png", "b.png"])
    (tmp_path / "c.png").write_text("broken")
    failed: list[Path] = []
    source = ImageSource([*paths, tmp_path / "c.png"], name="imgs", on_error=lambda p, e: failed.append(p))
    frames = list(source)
    assert [(f.source, f.index, f.path, f.timestamp_ms) for f in frames] == [("imgs", 0, paths[0], None), ("imgs", 1, paths[1], None)]
    assert failed == [tmp_path / "c.png"] and frames[1].image[0, 0].tolist() == [10, 10, 10]


def test_video_timestamps_come_from_the_container(tmp_path: Path) -> None:
    """A variable-frame-rate file: the timestamps are its presentation times, not index / fps."""
    pts = [0, 40, 80, 200, 240, 500, 533]
    video = write_vfr(tmp_path / "vfr.mkv", frames_of(len(pts)), pts)
    frames = list(ovseg.sources.open_source(video))
    assert [f.index for f in frames] == list(range(len(pts)))
    assert [f.timestamp_ms for f in frames] == pytest.approx(pts)
    assert {f.source for f in frames} == {str(video)} and frames[0].image.shape == (120, 160, 3)


def test_constant_rate_video(tmp_path: Path) -> None:
    source = open_source(write_cfr(tmp_path / "v.avi", frames_of(5), fps=10))
    assert (source.kind, source.live, source.finite, source.length, source.fps) == ("video", False, True, 5, 10)
    assert [f.timestamp_ms for f in source] == pytest.approx([0, 100, 200, 300, 400])


class FakeCapture:
    def __init__(self, frames: int, count: float = 0.0, opened: bool = True) -> None:
        self.left, self.count, self.opened, self.released = frames, count, opened, False

    def isOpened(self) -> bool:  # noqa: N802
        return self.opened

    def read(self) -> tuple[bool, Any]:
        if self.left == 0:
            return False, None
        self.left -= 1
        return True, np.zeros((4, 6, 3), np.uint8)

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FRAME_COUNT: self.count, cv2.CAP_PROP_FPS: 30.0}.get(prop, 0.0)

    def release(self) -> None:
        self.released = True


def test_cameras_and_urls() -> None:
    camera = open_source(0, open_capture=lambda *a: FakeCapture(3))
    assert (camera.name, camera.kind, camera.live, camera.finite, camera.length) == ("camera 0", "camera", True, False, None)
    frame = camera.read_frame()
    assert frame is not None and (frame.source, frame.index, frame.timestamp_ms) == ("camera 0", 0, None)
    stream = open_source("rtsp://user:pw@cam.local:554/live?x=1", open_capture=lambda *a: FakeCapture(3))
    assert (stream.kind, stream.live, stream.finite) == ("stream", True, False)
    served = open_source("http://host/clip.mp4", open_capture=lambda *a: FakeCapture(3, count=3))
    assert (served.kind, served.live, served.finite, served.length) == ("video", False, True, 3)
    with pytest.raises(CaptureError, match="camera 7: expected a camera at index 7"):
        open_source("7", open_capture=lambda *a: FakeCapture(0, opened=False))


def test_safe_names() -> None:
    assert safe_name("/data/clips/gate 1.mp4") == "gate-1"
    assert safe_name("3") == "camera-3"
    assert safe_name("rtsp://user:secret@10.0.0.5:554/stream1?tcp") == "10.0.0.5-554-stream1"


def test_open_sources_groups_the_images(tmp_path: Path) -> None:
    paths = write_images(tmp_path, ["a.png", "b.png"])
    video = write_cfr(tmp_path / "v.avi", frames_of(2))
    sources = open_sources([str(video), str(paths[0]), str(tmp_path / "b.png")])
    assert [type(s).__name__ for s in sources] == ["CaptureSource", "ImageSource"]
    assert isinstance(sources[1], ImageSource) and sources[1].paths == paths
    for s in sources:
        s.release()
    with pytest.raises(CaptureError, match="nothing.mp4"):
        open_sources([str(video), str(tmp_path / "nothing.mp4")])


def test_stream_frames_carries_the_metadata(tiny_model: Path, tmp_path: Path) -> None:
    seg = ovseg.Segmenter(tiny_model, config={"INFERENCE_PRECISION_HINT": "f32"})
    source = open_source(write_cfr(tmp_path / "v.avi", frames_of(6), fps=5))
    pairs = list(seg.stream_frames(source))
    assert [f.index for f, _ in pairs] == list(range(6))
    assert [f.timestamp_ms for f, _ in pairs] == pytest.approx([0, 200, 400, 600, 800, 1000])
    assert all(r.image_hw == f.image_hw for f, r in pairs)
    assert isinstance(source, CaptureSource)
