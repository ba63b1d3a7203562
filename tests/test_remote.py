"""Remote inference against a real KServe v2 server: Triton (nvidia-pytriton, its own NumPy < 2
environment under /tmp, see tests/triton.py) serving IRs run by OpenVINO in f32.

Results over gRPC and HTTP are identical to the local model's, original and slim export; every
command takes the URL; every fault is one line and bounded in time. Skips with the reason where
the Triton environment cannot be made or Triton cannot start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tritonclient", reason='the remote tests need the client: pip install "ovseg[remote]"')

import ovseg  # noqa: E402
from ovseg.cli import main  # noqa: E402
from ovseg.errors import InferenceError, InterfaceError, ModelError  # noqa: E402
from ovseg.export import export_slim  # noqa: E402
from ovseg.images import read_image  # noqa: E402
from ovseg.synthetic import constant_model, maskrcnn_model, save_model  # noqa: E402

from .conftest import F32, fixtures_root  # noqa: E402
from .remote_check import assert_same_result, check_same_as_local  # noqa: E402
from .test_export import all_channels_model  # noqa: E402
from .triton import TritonServer, TritonUnavailable, free_ports, triton_python  # noqa: E402
from .videos import frames_of, write_cfr  # noqa: E402

STANDIN = fixtures_root() / "models" / "standin-yolov5s-seg-0033-interface.xml"
IMAGES = fixtures_root() / "coco-val2017-lightly" / "images"


@pytest.fixture(scope="session")
def triton_env() -> Path:
    try:
        return triton_python()
    except TritonUnavailable as error:
        pytest.skip(str(error))


def bad_boxes_model() -> object:
    """The 0033 inputs, but boxes [100, 5]: another interface."""
    im = ([1, 3, 480, 640], ovseg_type("f32"))
    return constant_model(
        {"im_data": im, "im_info": ([1, 3], ovseg_type("f32"))},
        {"classes": np.zeros(100, np.int32), "scores": np.zeros(100, np.float32), "boxes": np.zeros((100, 5), np.float32),
         "raw_masks": np.zeros((100, 81, 28, 28), np.float32)},
    )


def ovseg_type(name: str) -> object:
    import openvino as ov

    return {"f32": ov.Type.f32}[name]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("served")
    found = {
        "channels": all_channels_model(root / "channels.xml"),
        "tiny": save_model(
            maskrcnn_model(classes=[1, 3], scores=[0.9, 0.4], boxes=[[0, 0, 1, 1], [0.5, 0.5, 1, 1]], boxes_relative=True),
            root / "tiny.xml",
        ),
        "bad-boxes": save_model(bad_boxes_model(), root / "bad-boxes.xml"),
        "other": save_model(
            constant_model({"input": ([1, 3, 224, 224], ovseg_type("f32"))}, {"logits": np.zeros((1, 1000), np.float32)}),
            root / "other.xml",
        ),
    }
    found["channels-slim"] = export_slim(found["channels"], root / "channels-slim.xml").output
    if STANDIN.is_file():
        found["standin"] = STANDIN
        found["standin-slim"] = export_slim(STANDIN, root / "standin-slim.xml").output
    return found


@pytest.fixture(scope="module")
def server(triton_env: Path, models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> TritonServer:
    specs = [{"name": name, "xml": str(path)} for name, path in models.items()]
    tiny = str(models["tiny"])
    specs += [
        {"name": "wrong-shape", "xml": tiny, "reply": {"raw_masks": [None, [100, 81, 14, 14]]}},
        {"name": "wrong-dtype", "xml": tiny, "declare": {"scores": ["FP64", None]}},
        {"name": "slow", "xml": tiny, "delay_s": 4},
    ]
    srv = TritonServer(specs, tmp_path_factory.mktemp("triton"))
    try:
        srv.start()
    except TritonUnavailable as error:
        pytest.skip(str(error))
    yield srv
    srv.stop()


def urls(server: TritonServer, name: str) -> list[str]:
    return [server.grpc_url(name), server.http_url(name)]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((480, 640), (600, 900), (300, 500), (720, 1280))]


# -- the same results as here ---------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("name", ["channels", "channels-slim"])
def test_served_model_gives_the_local_results(server: TritonServer, models: dict[str, Path], frames, protocol: str, name: str):
    url = server.grpc_url(name) if protocol == "grpc" else server.http_url(name)
    # Both exports against the *original* run here: the slim one must not change a mask.
    remote = check_same_as_local(url, models["channels"], frames, threshold=0.0)
    assert remote.info.family == "maskrcnn" and remote.device == url and remote.compiled_models == {}
    check_same_as_local(url, models["channels"], frames[:2], threshold=0.3, paste="legacy")


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("name", ["standin", "standin-slim"])
def test_fixture_model_over_the_network(server: TritonServer, models: dict[str, Path], protocol: str, name: str):
    if name not in models:
        pytest.skip(f"fixture folder absent: {fixtures_root()}")
    url = server.grpc_url(name) if protocol == "grpc" else server.http_url(name)
    images = [read_image(p) for p in sorted(IMAGES.glob("*.jpg"))[:6]]
    check_same_as_local(url, STANDIN, images, threshold=0.0)


def test_version_in_the_url(server: TritonServer, models: dict[str, Path], frames):
    check_same_as_local(f"{server.grpc_url('tiny')}/versions/1", models["tiny"], frames[:2])
    check_same_as_local(f"{server.http_url('tiny')}/versions/1", models["tiny"], frames[:2])
    with pytest.raises(ModelError, match=r"versions/7: reading the model's metadata failed: .*"):
        ovseg.Segmenter(f"{server.grpc_url('tiny')}/versions/7")


def test_several_sources_with_tracking_over_the_network(server: TritonServer, models: dict[str, Path], tmp_path: Path):
    videos = [write_cfr(tmp_path / f"cam{i}.avi", frames_of(8, (240, 320)), 10) for i in range(2)]
    local = ovseg.Segmenter(models["tiny"], config=F32)
    remote = ovseg.Segmenter(server.grpc_url("tiny"))
    got = {}
    for seg in (local, remote):
        got[seg.device] = [(name, frame.index, res.boxes.tolist(), res.scores.tolist())
                           for name, frame, res in seg.stream_many({"a": videos[0], "b": videos[1]}, nireq=3)]
    a, b = got.values()
    assert sorted(a) == sorted(b) and len(a) == 16


# -- every command takes the URL ----------------------------------------------------------------


def _records(folder: Path) -> dict[str, list]:
    docs = {}
    for path in sorted(folder.glob("*.json*")):
        lines = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        docs[path.name] = [[{k: v for k, v in inst.items()} for inst in json.loads(line)["instances"]] for line in lines]
    return docs


def test_predict_over_the_network_writes_the_local_files(server: TritonServer, models: dict[str, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]):
    images = sorted(IMAGES.glob("*.jpg"))[:3] if "standin" in models else []
    model = "standin" if images else "tiny"
    if images:  # a video of the same picture, so that tracks form
        import cv2

        shots = [cv2.resize(read_image(images[0]), (640, 480))] * 5
    else:
        shots = frames_of(6, (240, 320))
    video = write_cfr(tmp_path / "gate.avi", shots, 10)
    inputs = [str(p) for p in images] + [str(video)]
    local_out, remote_out = tmp_path / "local", tmp_path / "remote"
    assert main(["predict", *inputs, "-m", str(models[model]), "--infer-precision", "f32", "-o", str(local_out),
                 "--no-overlay", "--track"]) == 0
    for url in urls(server, model):
        assert main(["predict", *inputs, "-m", url, "-o", str(remote_out), "--no-overlay", "--track", "--nireq", "3"]) == 0
        assert _records(remote_out) == _records(local_out)
        last = json.loads(next(remote_out.glob("*.jsonl")).read_text().splitlines()[-1])
        assert last["instances"] and all(inst["track_id"] >= 0 for inst in last["instances"])
    capsys.readouterr()


def test_eval_bench_and_demo_over_the_network(server: TritonServer, models: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]):
    if "standin" in models:
        annotations = str(fixtures_root() / "coco-val2017-lightly" / "instances.json")
        common = ["--images", str(IMAGES), "--annotations", annotations, "--limit", "4"]
        assert main(["eval", "-m", str(models["standin"]), "--infer-precision", "f32", *common]) == 0
        local_line = capsys.readouterr().out.strip().splitlines()[-1]
        assert main(["eval", "-m", server.grpc_url("standin-slim"), *common]) == 0
        remote_line = capsys.readouterr().out.strip().splitlines()[-1]
        assert local_line.split("| 4 images")[0] == remote_line.split("| 4 images")[0]
    image = tmp_path / "frame.png"
    import cv2

    cv2.imwrite(str(image), frames_of(1, (240, 320))[0])
    for mode in ("e2e", "infer"):
        assert main(["bench", "-m", server.http_url("tiny"), "--mode", mode, "-i", str(image), "-niter", "6", "-nireq", "3"]) == 0
        out = capsys.readouterr().out
        assert "Throughput:" in out and "infer requests 3" in out and server.http_url("tiny") in out
    video = write_cfr(tmp_path / "in.avi", frames_of(5, (240, 320)), 10)
    assert main(["demo", "-m", server.grpc_url("tiny"), "-i", str(video), "--no-show", "-o", str(tmp_path / "out.avi")]) == 0
    assert "5 frame(s)" in capsys.readouterr().out


# -- faults: one line each, never a hang --------------------------------------------------------


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and len(text) < 400, text
    return text


def test_server_down():
    port = free_ports(1)[0]
    for url in (f"grpc://127.0.0.1:{port}/m", f"http://127.0.0.1:{port}/v2/models/m"):
        start = time.monotonic()
        with pytest.raises(ModelError, match=r"reading the model's metadata failed: .*[Cc]onnect") as caught:
            ovseg.Segmenter(url, remote_timeout_s=5)
        one_line(caught.value)
        assert time.monotonic() - start < 10


def test_wrong_model_name(server: TritonServer):
    for url in urls(server, "no-such-model"):
        with pytest.raises(ModelError, match=r"no-such-model: reading the model's metadata failed: .*not found") as caught:
            ovseg.Segmenter(url)
        one_line(caught.value)


def test_another_interface_gives_the_local_irs_error(server: TritonServer, models: dict[str, Path]):
    for name, local_message in (
        ("other", r"expected the inputs of the instance-segmentation-security-0033 family \(im_data, im_info\), got \['input'\]"),
        ("bad-boxes", r"output boxes: expected f32 \[S,4\] with S static, got f32 \[100,5\]"),
    ):
        with pytest.raises(InterfaceError, match=local_message) as here:
            ovseg.Segmenter(models[name])
        for url in urls(server, name):
            with pytest.raises(InterfaceError) as there:
                ovseg.Segmenter(url)
            # The same words after the model's name (the file here, the URL there).
            assert one_line(there.value) == f"{url}: " + str(here.value).split(": ", 1)[1]


def test_metadata_with_a_wrong_datatype(server: TritonServer):
    for url in urls(server, "wrong-dtype"):
        with pytest.raises(InterfaceError, match=r"output scores: expected f32 \[S\] with S static, got f64 \[100\]") as caught:
            ovseg.Segmenter(url)
        one_line(caught.value)


def test_a_reply_of_the_wrong_shape_fails_the_frame(server: TritonServer, frames):
    for url in urls(server, "wrong-shape"):
        seg = ovseg.Segmenter(url)
        message = r"output raw_masks: expected FP32 \[100,81,28,28\] \(the model's metadata\), got FP32 \[100,81,14,14\]"
        with pytest.raises(InferenceError, match=message) as caught:
            seg(frames[0])
        one_line(caught.value)
        stream = seg.stream(frames * 3, nireq=3)
        with pytest.raises(InferenceError, match=message):
            next(stream)
        assert next(stream, None) is None  # the stream has ended


def test_a_slow_server_times_out(server: TritonServer, frames, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    for url in urls(server, "slow"):
        seg = ovseg.Segmenter(url, remote_timeout_s=1)
        start = time.monotonic()
        with pytest.raises(InferenceError, match=r"inference timed out after 1 s \(--remote-timeout\)") as caught:
            seg(frames[0])
        one_line(caught.value)
        with pytest.raises(InferenceError, match=r"timed out after 1 s"):
            list(seg.stream(frames, nireq=2))
        assert time.monotonic() - start < 15
    image = tmp_path / "frame.png"
    import cv2

    cv2.imwrite(str(image), frames[0])
    code = main(["predict", str(image), "-m", server.grpc_url("slow"), "--remote-timeout", "1", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "timed out after 1 s (--remote-timeout)" in err and "Traceback" not in err


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_server_stopping_mid_stream_fails_the_frames_in_flight(triton_env: Path, models: dict[str, Path], tmp_path: Path,
                                                               protocol: str):
    srv = TritonServer([{"name": "tiny", "xml": str(models["tiny"]), "delay_s": 0.3, "instances": 2}], tmp_path)
    try:
        srv.start()
    except TritonUnavailable as error:
        pytest.skip(str(error))
    try:
        url = srv.grpc_url("tiny") if protocol == "grpc" else srv.http_url("tiny")
        seg = ovseg.Segmenter(url, remote_timeout_s=30)
        seg(frames_of(1, (240, 320))[0])  # the server answers (a loaded machine makes the first call slow)
        done = 0
        start = time.monotonic()
        with pytest.raises(InferenceError) as caught:
            for _ in seg.stream(frames_of(200, (240, 320)), nireq=3):
                done += 1
                if done == 3:
                    srv.kill_now()
        assert url in one_line(caught.value)
        assert 3 <= done < 20 and time.monotonic() - start < 60, (done, str(caught.value))
    finally:
        srv.stop()


def test_the_command_line_refuses_local_compile_options_with_a_url(tiny_model: Path, tmp_path: Path):
    url = "grpc://127.0.0.1:9/m"
    cases = [
        (["predict", "x.jpg", "-m", url, "--device", "GPU"], "expected no --device with a served model"),
        (["predict", "x.jpg", "-m", url, "--config", "NUM_STREAMS=2"], "expected no --config"),
        (["eval", "-m", url, "--images", ".", "--annotations", "a.json", "--infer-precision", "f32"], "expected no --infer-precision"),
        (["demo", "-m", url, "-i", "0", "--cache-dir", "c"], "expected no --cache-dir"),
        (["bench", "-m", url, "-nstreams", "2"], "expected no -nstreams"),
        (["bench", "-m", url, "-hint", "latency", "-d", "CPU"], "expected no -d, -hint"),
        (["predict", "x.jpg", "-m", "grpc://host/m"], "expected a model URL grpc://HOST:PORT/MODEL[/versions/V] or http://"),
    ]
    for argv, message in cases:
        out = subprocess.run([sys.executable, "-m", "ovseg", *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert out.returncode == 2, (argv, out.stderr)
        assert out.stderr.count("\n") == 1 and message in out.stderr, (argv, out.stderr)


def test_results_are_the_same_type_and_order_when_remote(server: TritonServer, models: dict[str, Path], frames):
    remote = ovseg.Segmenter(server.grpc_url("tiny"), threshold=0.3)
    local = ovseg.Segmenter(models["tiny"], threshold=0.3, config=F32)
    for a, b in zip(local.map(frames, nireq=2), remote.map(frames, nireq=4), strict=True):
        assert_same_result(a, b)
    remote.close()
    assert_same_result(local(frames[0]), remote(frames[0]))  # reconnects after close


def test_a_request_too_large_for_the_server(tmp_path: Path):
    """A v2 gRPC server that takes messages up to 2 MB (gRPC's default is 4 MB; KServe's and
    OVMS's are limits of the same kind): a 320x240 model's 0.9 MB request goes through, a
    480x640 one's 3.7 MB request is refused, that frame fails in one line, the stream ends."""
    from . import v2_grpc

    small = save_model(maskrcnn_model([1], [0.9], [[0, 0, 1, 1]], boxes_relative=True, input_hw=(240, 320), num_channels=2),
                       tmp_path / "small.xml")
    large = save_model(maskrcnn_model([1], [0.9], [[0, 0, 1, 1]], boxes_relative=True, num_channels=2), tmp_path / "large.xml")
    image = frames_of(1, (480, 640))[0]
    for name, xml in (("small", small), ("large", large)):
        server, port = v2_grpc.start(name, xml, max_receive_bytes=2 * 1024 * 1024)
        try:
            seg = ovseg.Segmenter(f"grpc://127.0.0.1:{port}/{name}", remote_timeout_s=20)
            if name == "small":
                assert_same_result(ovseg.Segmenter(small, config=F32)(image), seg(image))
                continue
            with pytest.raises(InferenceError, match=r"large: inference failed: .*(larger than max|RESOURCE_EXHAUSTED)") as caught:
                seg(image)
            one_line(caught.value)
            stream = seg.stream([image] * 6, nireq=3)
            with pytest.raises(InferenceError, match=r"larger than max|RESOURCE_EXHAUSTED"):
                next(stream)
            assert next(stream, None) is None
        finally:
            server.stop(0)
