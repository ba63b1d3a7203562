"""Track ids and low-score candidates in the result: validation, indexing, COCO dicts, and the
segmenter's box-only candidates (``candidate_threshold``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ovseg import Segmenter
from ovseg.decode import decode, gather_labels_boxes_masks, gather_maskrcnn
from ovseg.errors import ConfigError
from ovseg.preprocess import Transform
from ovseg.result import Candidates, Result
from tests.conftest import F32


def three(track_ids: list[int] | None = None) -> Result:
    crops = tuple(np.ones((2 + i, 3), bool) for i in range(3))
    return Result(
        boxes=np.array([[0, 0, 3, 2], [1, 1, 4, 4], [5, 5, 8, 9]], np.float32),
        scores=np.array([0.9, 0.8, 0.7], np.float32),
        class_ids=np.array([1, 2, 1], np.int32),
        image_hw=(20, 30),
        mask_crops=crops,
        mask_offsets=np.array([[0, 0], [1, 1], [5, 5]], np.int32),
        track_ids=None if track_ids is None else np.array(track_ids),
    )


def test_track_ids_default_to_untracked() -> None:
    res = three()
    assert res.track_ids.dtype == np.int32 and res.track_ids.tolist() == [-1, -1, -1]
    assert not res.track_ids.flags.writeable
    assert Result.empty((4, 5)).track_ids.shape == (0,)
    assert [inst.track_id for inst in res] == [-1, -1, -1]


@pytest.mark.parametrize(
    ("track_ids", "message"),
    [
        ([1, 2], r"expected track_ids of shape \(3,\), got \(2,\)"),
        ([1.5, 2, 3], "expected integer track_ids, got float64"),
        ([1, -2, 3], r"expected track_ids >= -1 \(-1: untracked\), got -2"),
    ],
)
def test_track_ids_are_validated(track_ids: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        three(track_ids)


def test_track_ids_follow_indexing() -> None:
    res = three([7, -1, 3])
    assert res[0].track_ids.tolist() == [7]
    assert res[-1].track_ids.tolist() == [3]
    assert res[1:].track_ids.tolist() == [-1, 3]
    assert res[[2, 0]].track_ids.tolist() == [3, 7]
    assert res[res.class_ids == 1].track_ids.tolist() == [7, 3]
    assert [inst.track_id for inst in res] == [7, -1, 3]
    assert [d["track_id"] for d in res.to_coco(1)] == [7, -1, 3]
    replaced = dataclasses.replace(res, track_ids=np.array([1, 2, 3]))
    assert replaced.track_ids.tolist() == [1, 2, 3] and res.track_ids.tolist() == [7, -1, 3]
    assert replaced.mask_crops[2] is res.mask_crops[2]


def test_candidates_are_not_instances() -> None:
    cand = Candidates(np.array([[1, 1, 5, 5]], np.float32), np.array([0.3], np.float32), np.array([4], np.int32))
    res = dataclasses.replace(three(), candidates=cand)
    assert len(res) == 3 and len(res.to_coco(5)) == 3 and len(res.candidates) == 1
    assert res[1:].candidates is cand and res[res.scores > 2].candidates is cand
    assert len(three().candidates) == 0 and not cand.boxes.flags.writeable
    with pytest.raises(ValueError, match=r"expected candidate scores of shape \(1,\), got \(2,\)"):
        Candidates(np.zeros((1, 4)), np.zeros(2), np.zeros(1, int))
    with pytest.raises(ValueError, match="expected candidates of type Candidates, got tuple"):
        dataclasses.replace(three(), candidates=())


def outputs_0033(scores: list[float]) -> dict[str, np.ndarray]:
    n = len(scores)
    boxes = np.array([[10 * i, 10, 10 * i + 40, 60] for i in range(n)], np.float32)
    raw = np.zeros((n, 81, 28, 28), np.float32)
    raw[:, :, 4:24, 4:24] = 0.9
    return {"classes": np.arange(1, n + 1, dtype=np.int32), "scores": np.array(scores, np.float32),
            "boxes": boxes, "raw_masks": raw}


def test_gather_splits_candidates_box_only() -> None:
    out = outputs_0033([0.9, 0.6, 0.4, 0.2, 0.05])
    dets = gather_maskrcnn(out, 0.5, candidate_threshold=0.1)
    assert dets.scores.tolist() == pytest.approx([0.9, 0.6]) and dets.mask_probs.shape == (2, 28, 28)
    assert dets.candidate_scores.tolist() == pytest.approx([0.4, 0.2])
    assert dets.candidate_class_ids.tolist() == [3, 4]
    assert dets.candidate_boxes.tolist() == out["boxes"][2:4].tolist()
    plain = gather_maskrcnn(out, 0.5)
    assert len(plain) == 2 and plain.candidate_scores.shape == (0,)
    zero = gather_maskrcnn(out, 0.5, candidate_threshold=0.0)
    assert zero.candidate_scores.tolist() == pytest.approx([0.4, 0.2, 0.05])

    five = {"labels": np.array([0, 1, 2]), "boxes": np.array([[0, 0, 9, 9, 0.8], [1, 1, 5, 5, 0.3], [2, 2, 3, 3, 0.01]],
            np.float32), "masks": np.full((3, 28, 28), 0.9, np.float32)}
    dets2 = gather_labels_boxes_masks(five, 0.5, candidate_threshold=0.1)
    assert len(dets2) == 1 and dets2.candidate_class_ids.tolist() == [2] and dets2.candidate_scores.tolist() == pytest.approx([0.3])


def test_decode_maps_candidates_to_the_image() -> None:
    dets = gather_maskrcnn(outputs_0033([0.9, 0.4, 0.3]), 0.5, candidate_threshold=0.1)
    transform = Transform(image_hw=(960, 1280), resized_hw=(480, 640), input_hw=(480, 640), scale=0.5)
    res = decode(dets, transform, paste="aligned")
    assert len(res) == 1 and len(res.candidates) == 2
    np.testing.assert_allclose(res.candidates.boxes, dets.candidate_boxes * 2)
    assert res.candidates.scores.tolist() == pytest.approx([0.4, 0.3])
    none_kept = gather_maskrcnn(outputs_0033([0.4]), 0.5, candidate_threshold=0.1)
    empty = decode(none_kept, transform)
    assert len(empty) == 0 and empty.candidates.scores.tolist() == pytest.approx([0.4])


def test_segmenter_candidates(make_model) -> None:
    xml = make_model(classes=[1, 2, 3], scores=[0.9, 0.3, 0.05], boxes=[[10, 10, 100, 100], [50, 50, 200, 150], [0, 0, 9, 9]])
    image = np.zeros((480, 640, 3), np.uint8)
    res = Segmenter(xml, threshold=0.5, config=F32, candidate_threshold=0.1)(image)
    assert len(res) == 1 and res.candidates.class_ids.tolist() == [2]
    np.testing.assert_allclose(res.candidates.boxes, [[50, 50, 200, 150]], atol=1e-4)
    assert len(Segmenter(xml, threshold=0.5, config=F32)(image).candidates) == 0
    for bad in (0.6, -0.1, True, "0.2"):
        with pytest.raises(ConfigError, match=r"expected a candidate_threshold in \[0, 0.5\] or None"):
            Segmenter(xml, threshold=0.5, candidate_threshold=bad)
