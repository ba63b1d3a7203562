"""Checks of a served model against the same model run here, for any KServe v2 server (Triton in
``tests/test_remote.py``; ``ovseg serve`` once it is merged): give the URL and the local IR."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ovseg import Segmenter
from ovseg.result import Result

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def assert_same_result(local: Result, remote: Result, where: str = "") -> None:
    """Identical boxes, scores, classes and masks (the server runs the model in f32 too)."""
    assert len(local) == len(remote), f"{where}: {len(local)} instances here, {len(remote)} remotely"
    np.testing.assert_array_equal(local.boxes, remote.boxes, err_msg=where)
    np.testing.assert_array_equal(local.scores, remote.scores, err_msg=where)
    np.testing.assert_array_equal(local.class_ids, remote.class_ids, err_msg=where)
    assert local.image_hw == remote.image_hw
    assert (local.masks == remote.masks).all(), f"{where}: masks differ"


def check_same_as_local(
    url: str, local_model: str | Path, images: Sequence[np.ndarray], *, nireq: int = 3, **settings: Any
) -> Segmenter:
    """``Segmenter(url)`` against ``Segmenter(local_model)`` (f32) on ``images``: one call, then a
    stream with ``nireq`` requests in flight, each result identical and in order. ``settings``
    (threshold, paste, ...) apply to both. Returns the remote segmenter."""
    local = Segmenter(local_model, config=F32, **settings)
    remote = Segmenter(url, **settings)
    assert remote.info.family == local.info.family and remote.info.input_hw == local.info.input_hw
    expected = [local(image) for image in images]
    assert_same_result(expected[0], remote(images[0]), f"{url} call")
    streamed = list(remote.stream(images, nireq=nireq))
    assert len(streamed) == len(images)
    for i, (a, b) in enumerate(zip(expected, streamed, strict=True)):
        assert_same_result(a, b, f"{url} stream frame {i}")
        assert b.speed_ms["infer"] > 0
    return remote
