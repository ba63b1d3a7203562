"""ovseg's client against ovseg's own server: ``Segmenter("grpc://...")`` and ``"http://..."`` on a
real ``ovseg serve`` (a subprocess on 127.0.0.1; this process never imports kserve, whose protobuf
package clashes with tritonclient's), original and slim export, results identical to the local
model's; every command takes the URL; a server stopped mid-stream fails the frames in flight."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tritonclient", reason='the client tests need the client: pip install "ovseg[remote]"')

from ovseg import Segmenter  # noqa: E402
from ovseg.cli import main  # noqa: E402
from ovseg.errors import InferenceError  # noqa: E402
from ovseg.export import export_slim  # noqa: E402
from ovseg.images import read_image  # noqa: E402

from .remote_check import check_same_as_local  # noqa: E402
from .servers import stop_group  # noqa: E402
from .test_export import all_channels_model  # noqa: E402

SERVE_F32 = ("--infer-precision", "f32")


def url(server: object, protocol: str) -> str:
    if protocol == "grpc":
        return f"grpc://{server.grpc_url}/{server.name}"  # type: ignore[attr-defined]
    return f"http://{server.http_url}/v2/models/{server.name}"  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((480, 640), (600, 900), (300, 500))]


@pytest.mark.parametrize("slim", [False, True], ids=["original", "slim"])
def test_client_on_ovseg_serve_gives_the_local_results(start_serve, frames, tmp_path: Path, slim: bool) -> None:  # noqa: ANN001
    """A generated model whose 81 mask channels all differ: a wrong channel anywhere (server
    side, slim gather, client decode) would change the masks."""
    model = all_channels_model(tmp_path / "channels.xml")
    if slim:
        model = export_slim(model, tmp_path / "channels-slim.xml").output
    server = start_serve(model, *SERVE_F32)
    for protocol in ("grpc", "http"):
        remote = check_same_as_local(url(server, protocol), model, frames, threshold=0.0)
        assert remote.device == url(server, protocol)
        remote.close()


def test_fixture_model_and_its_slim_export_on_ovseg_serve(start_serve, standin_model: Path, coco_images: Path,
                                                          tmp_path: Path) -> None:  # noqa: ANN001
    images = [read_image(p) for p in sorted(coco_images.glob("*.jpg"))[:3]]
    slim = export_slim(standin_model, tmp_path / "standin-slim.xml").output
    for model in (standin_model, slim):
        server = start_serve(model, *SERVE_F32)
        check_same_as_local(url(server, "grpc"), model, images, threshold=0.3).close()


def test_predict_over_ovseg_serve_writes_the_local_files(start_serve, tiny_model: Path, tmp_path: Path) -> None:  # noqa: ANN001
    import cv2

    image = tmp_path / "street.png"
    cv2.imwrite(str(image), np.full((300, 400, 3), 90, np.uint8))
    server = start_serve(tiny_model, *SERVE_F32)
    docs = {}
    for where, model, extra in (("local", str(tiny_model), ["--infer-precision", "f32"]),
                                ("remote", url(server, "grpc"), [])):
        out = tmp_path / where
        assert main(["predict", str(image), "-m", model, "-o", str(out), "--no-overlay", *extra]) == 0
        docs[where] = json.loads((out / "street.json").read_text())
    for doc in docs.values():
        doc.pop("speed_ms"), doc.pop("model"), doc.pop("device")
    assert docs["local"] == docs["remote"] and docs["local"]["instances"]


def test_ovseg_serve_stopping_mid_stream_fails_the_frames_in_flight(start_serve, tiny_model: Path) -> None:  # noqa: ANN001
    server = start_serve(tiny_model, *SERVE_F32)
    remote = Segmenter(url(server, "grpc"), remote_timeout_s=10)
    remote(np.zeros((480, 640, 3), np.uint8))  # connected and warm

    def frames():  # noqa: ANN202
        for i in range(10_000):
            if i == 20:
                stop_group(server.process, signal.SIGTERM)
            yield np.full((480, 640, 3), i % 256, np.uint8)

    start, done = time.monotonic(), 0
    with pytest.raises(InferenceError) as info:
        for _ in remote.stream(frames(), nireq=2):
            done += 1
    assert 15 <= done < 10_000 and time.monotonic() - start < 60
    print(info.value)
    assert "\n" not in str(info.value) and url(server, "grpc") in str(info.value)
    remote.close()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_request_too_large_for_ovseg_serve_is_one_line(start_serve, tiny_model: Path, protocol: str) -> None:  # noqa: ANN001
    """im_data alone is 3.7 MB: over a 1 MB --max-request-mb, refused by the server (HTTP 413,
    gRPC RESOURCE_EXHAUSTED), one line naming the URL, no hang."""
    server = start_serve(tiny_model, *SERVE_F32, "--max-request-mb", "1")
    remote = Segmenter(url(server, protocol), remote_timeout_s=20)
    start = time.monotonic()
    with pytest.raises(InferenceError) as info:
        remote(np.zeros((480, 640, 3), np.uint8))
    message = str(info.value)
    print(message)
    assert "\n" not in message and url(server, protocol) in message and time.monotonic() - start < 20
    remote.close()
