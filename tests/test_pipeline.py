"""The streaming pipeline: order, back-pressure, errors, early stop, short-long, API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ovseg import Segmenter
from ovseg.errors import ConfigError, ImageError
from ovseg.pipeline import Pipeline, optimal_requests
from ovseg.synthetic import maskrcnn_model, save_model

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
THROUGHPUT = {**F32, "PERFORMANCE_HINT": "THROUGHPUT"}


@pytest.fixture(scope="module")
def seg(tmp_path_factory: pytest.TempPathFactory) -> Segmenter:
    """Boxes are fractions of the resized image, so each frame's boxes tell its size."""
    path = save_model(
        maskrcnn_model(classes=[1, 3], scores=[0.9, 0.4], boxes=[[0, 0, 1, 1], [0.5, 0.5, 1, 1]], boxes_relative=True),
        tmp_path_factory.mktemp("pipe") / "tiny.xml",
    )
    return Segmenter(path, threshold=0.3, config=THROUGHPUT)


def frames_of_heights(heights: list[int], width: int = 640) -> list[np.ndarray]:
    return [np.full((h, width, 3), h % 256, dtype=np.uint8) for h in heights]


def decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ovseg-decode"]


def test_results_in_input_order_and_equal_to_sync_calls(seg: Segmenter) -> None:
    heights = [100 + 7 * i for i in range(24)]
    frames = frames_of_heights(heights)
    results = list(Pipeline(seg, nireq=4).stream(frames))
    assert [r.image_hw for r in results] == [(h, 640) for h in heights]
    for frame, result in zip(frames, results, strict=True):
        expected = seg(frame)
        np.testing.assert_array_equal(result.boxes, expected.boxes)
        np.testing.assert_array_equal(result.class_ids, expected.class_ids)
        assert all(np.array_equal(a, b) for a, b in zip(result.mask_crops, expected.mask_crops, strict=True))
        assert set(result.speed_ms) == {"preprocess", "infer", "decode"}


def test_segmenter_stream_and_map(seg: Segmenter) -> None:
    frames = frames_of_heights([120, 240, 360])
    mapped = seg.map(frames, nireq=2)
    streamed = list(seg.stream(iter(frames), max_in_flight=1))
    assert [r.image_hw for r in mapped] == [r.image_hw for r in streamed] == [(120, 640), (240, 640), (360, 640)]
    assert seg.map([]) == []


def test_default_request_count_is_the_device_optimum(seg: Segmenter) -> None:
    pipe = Pipeline(seg)
    compiled = seg.compiled_models[seg.info.input_hw]
    assert pipe.nireq == optimal_requests(compiled) == int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    assert pipe.max_in_flight == 2 * pipe.nireq
    assert Pipeline(seg, nireq=3).requests_per_size == {(480, 640): 3}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"nireq": 0}, ConfigError), ({"nireq": 1.5}, ConfigError), ({"max_in_flight": 0}, ConfigError)],
)
def test_bad_settings(seg: Segmenter, kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error, match="expected"):
        Pipeline(seg, **kwargs)


@pytest.mark.parametrize(("nireq", "max_in_flight"), [(1, 1), (2, 2), (2, 3), (4, 2)])
def test_back_pressure_bounds_frames_in_flight(seg: Segmenter, nireq: int, max_in_flight: int) -> None:
    counts = {"pulled": 0, "yielded": 0, "peak": 0}

    def source() -> Iterator[np.ndarray]:
        for frame in frames_of_heights([200] * 16):
            counts["pulled"] += 1
            counts["peak"] = max(counts["peak"], counts["pulled"] - counts["yielded"])
            yield frame

    for _ in Pipeline(seg, nireq=nireq, max_in_flight=max_in_flight).stream(source()):
        counts["yielded"] += 1
    assert counts["yielded"] == 16
    assert counts["peak"] <= max_in_flight
    # Before the first result the pipeline fills up to the bound (or to its requests + 1).
    assert counts["peak"] >= min(max_in_flight, nireq)


def test_error_in_callback_reaches_the_caller_in_order(seg: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    gather = seg.gather

    def failing_gather(outputs):  # the frame of height 300 fails inside the request callback
        if float(np.asarray(outputs["boxes"])[0, 3]) == 300.0:
            raise RuntimeError("boom in callback")
        return gather(outputs)

    monkeypatch.setattr(seg, "gather", failing_gather)
    pipe = Pipeline(seg, nireq=2)
    got = []
    with pytest.raises(RuntimeError, match="boom in callback"):
        for result in pipe.stream(frames_of_heights([100, 200, 250, 300, 350, 400])):
            got.append(result.image_hw[0])
    assert got == [100, 200, 250]  # everything before the failing frame, in order
    assert not decode_threads()
    monkeypatch.undo()
    assert len(list(pipe.stream(frames_of_heights([100, 300])))) == 2  # usable again


def test_error_in_decode_reaches_the_caller(seg: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_decode(dets, transform, speed_ms=None):
        raise ValueError("boom in decode")

    monkeypatch.setattr(seg, "decode", failing_decode)
    with pytest.raises(ValueError, match="boom in decode"):
        list(Pipeline(seg, nireq=2).stream(frames_of_heights([100, 200, 300])))
    assert not decode_threads()


def test_errors_from_the_source_and_preprocessing_propagate(seg: Segmenter) -> None:
    pipe = Pipeline(seg, nireq=2)

    def source() -> Iterator[np.ndarray]:
        yield from frames_of_heights([100, 200])
        raise OSError("camera unplugged")

    with pytest.raises(OSError, match="camera unplugged"):
        list(pipe.stream(source()))
    bad = [np.zeros((100, 100, 3), np.uint8), np.zeros((100, 100, 3), np.float32)]
    with pytest.raises(ImageError, match="expected a uint8 or uint16 image"):
        list(pipe.stream(bad))
    assert not decode_threads()
    assert len(list(pipe.stream(frames_of_heights([100, 200])))) == 2


def test_early_stop_shuts_down_cleanly(seg: Segmenter) -> None:
    pipe = Pipeline(seg, nireq=2, max_in_flight=3)
    pulled = []

    def source() -> Iterator[np.ndarray]:
        for i, frame in enumerate(frames_of_heights([100 + i for i in range(100)])):
            pulled.append(i)
            yield frame

    stream = pipe.stream(source())
    first = [next(stream).image_hw[0] for _ in range(2)]
    stream.close()
    assert first == [100, 101]
    assert len(pulled) <= 2 + 3  # nothing read beyond the bound
    assert not decode_threads()
    # Abandoned without close(): garbage collection closes it.
    stream = pipe.stream(frames_of_heights([100] * 10))
    next(stream)
    del stream
    assert not decode_threads()
    assert [r.image_hw[0] for r in pipe.stream(frames_of_heights([150, 160]))] == [150, 160]


def test_one_stream_at_a_time(seg: Segmenter) -> None:
    pipe = Pipeline(seg, nireq=2)
    first = pipe.stream(frames_of_heights([100] * 4))
    next(first)
    with pytest.raises(ConfigError, match="expected one open stream"):
        next(pipe.stream(frames_of_heights([100])))
    assert len(list(first)) == 3


def test_short_long_streams_portrait_and_landscape(tmp_path: Path) -> None:
    path = save_model(
        maskrcnn_model(classes=[1], scores=[0.9], boxes=[[0, 0, 1, 1]], boxes_relative=True), tmp_path / "m.xml"
    )
    seg = Segmenter(path, threshold=0.3, config=THROUGHPUT, resize="short-long")
    pipe = Pipeline(seg, nireq=1)
    assert pipe.requests_per_size == {(480, 640): 1, (640, 480): 1}
    shapes = [(480, 640), (640, 480), (900, 300), (300, 900), (640, 480), (100, 100)]
    frames = [np.full((*hw, 3), 50, np.uint8) for hw in shapes]
    results = list(pipe.stream(frames))
    assert [r.image_hw for r in results] == shapes
    for frame, result in zip(frames, results, strict=True):
        np.testing.assert_array_equal(result.boxes, seg(frame).boxes)
    # A portrait 640x480 frame goes through the 640x480 network unscaled: box = the whole image.
    np.testing.assert_allclose(results[1].boxes[0], [0, 0, 480, 640])


def test_newer_family_with_dynamic_outputs_streams_too(tmp_path: Path) -> None:
    """The newer OMZ interface (``image`` -> ``labels``, ``boxes``, ``masks``, N dynamic)."""
    from ovseg.synthetic import labels_model

    path = save_model(
        labels_model(labels=[0, 2], scores=[0.9, 0.6], boxes=[[0, 0, 1, 1], [0.5, 0.5, 1, 1]], boxes_relative=True),
        tmp_path / "labels.xml",
    )
    seg = Segmenter(path, threshold=0.3, config=THROUGHPUT)
    frames = [np.full((h, 2 * h, 3), 90, np.uint8) for h in (100, 300, 200, 150)]
    results = list(Pipeline(seg, nireq=2).stream(frames))
    assert [r.image_hw for r in results] == [f.shape[:2] for f in frames]
    for frame, result in zip(frames, results, strict=True):
        expected = seg(frame)
        assert len(result) == len(expected) == 2
        np.testing.assert_array_equal(result.boxes, expected.boxes)
        np.testing.assert_array_equal(result.class_ids, expected.class_ids)


def test_a_reduced_frame_gets_results_in_its_full_size(seg: Segmenter) -> None:
    """A frame read at 1/3 (``full_hw`` three times its size): boxes and masks come back in
    the full size's coordinates, the sync result of the small image scaled by the factor."""
    from ovseg.sources import Frame

    small = np.full((200, 300, 3), 77, np.uint8)
    frame = Frame(small, "images", 0, full_hw=(600, 900))
    (item, result), = list(Pipeline(seg).stream_frames([frame]))
    sync = seg(small)
    assert item is frame and result.image_hw == (600, 900) and len(result) == len(sync) == 2
    np.testing.assert_allclose(result.boxes, sync.boxes * 3, rtol=1e-6, atol=1e-3)
    assert result.masks.shape == (2, 600, 900)
    np.testing.assert_array_equal(result.scores, sync.scores)
    assert abs(result.masks[0].mean() - sync.masks[0].mean()) < 0.01
