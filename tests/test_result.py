"""The Result type: validation, immutability, indexing, full-resolution views."""

from __future__ import annotations

import numpy as np
import pytest

from ovseg.result import Result


def make_result() -> Result:
    crops = (np.ones((2, 3), bool), np.array([[True, False], [False, True]]), np.zeros((0, 0), bool))
    return Result(
        boxes=np.array([[1, 1, 4, 3], [0, 0, 2, 2], [5, 5, 5, 5]], np.float32),
        scores=np.array([0.9, 0.6, 0.3], np.float32),
        class_ids=np.array([1, 17, 3], np.int32),
        image_hw=(6, 8),
        mask_crops=crops,
        mask_offsets=np.array([[1, 1], [0, 0], [5, 5]], np.int32),
    )


def test_views() -> None:
    res = make_result()
    assert len(res) == 3 and res.labels == ("person", "dog", "car")
    assert res.masks.shape == (3, 6, 8) and res.masks.dtype == bool
    assert res.masks[0].sum() == 6 and res.masks[0][1:3, 1:4].all()
    np.testing.assert_array_equal(res.mask(1), res.masks[1])
    assert res.areas().tolist() == [6, 2, 0]


def test_label_map_highest_score_on_top() -> None:
    res = make_result()
    lm = res.label_map()
    assert lm.shape == (6, 8) and lm.dtype == np.int32
    assert lm[1, 1] == 0  # covered by instance 0 (0.9) and 1 (0.6): 0 wins
    assert lm[0, 0] == 1 and lm[5, 7] == -1


@pytest.mark.parametrize(
    "index, expected_scores",
    [
        (np.array([True, False, True]), [0.9, 0.3]),
        (1, [0.6]),
        (-1, [0.3]),
        (slice(0, 2), [0.9, 0.6]),
        ([2, 0], [0.3, 0.9]),
        (np.array([], dtype=np.int64), []),
    ],
)
def test_indexing(index: object, expected_scores: list[float]) -> None:
    res = make_result()
    sub = res[index]  # type: ignore[index]
    assert isinstance(sub, type(res))
    assert sub.scores.tolist() == pytest.approx(expected_scores)
    assert sub.masks.shape == (len(expected_scores), 6, 8)


def test_filter_by_score() -> None:
    res = make_result()
    assert res[res.scores > 0.5].labels == ("person", "dog")


@pytest.mark.parametrize(
    "index, error",
    [(3, IndexError), (np.array([True]), IndexError), ([0, 5], IndexError), (np.zeros((1, 3)), IndexError)],
)
def test_bad_indexing(index: object, error: type) -> None:
    with pytest.raises(error, match="expected"):
        make_result()[index]  # type: ignore[index]


def test_immutable() -> None:
    res = make_result()
    with pytest.raises(ValueError):
        res.boxes[0, 0] = 5
    with pytest.raises(ValueError):
        res.masks[0, 0, 0] = True
    with pytest.raises(AttributeError):
        res.boxes = np.zeros((0, 4))  # type: ignore[misc]


def test_callers_arrays_untouched_and_copied() -> None:
    boxes = np.array([[0, 0, 1, 1]], np.float32)
    crop = np.ones((1, 1), bool)
    res = Result(boxes, np.array([0.5], np.float32), np.array([1]), (2, 2), (crop,), np.zeros((1, 2), int))
    assert boxes.flags.writeable and crop.flags.writeable
    boxes[0, 0] = 9
    assert res.boxes[0, 0] == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"boxes": np.zeros((1, 5))}, r"expected boxes of shape \(N, 4\), got \(1, 5\)"),
        ({"scores": np.zeros(2)}, r"expected scores of shape \(1,\), got \(2,\)"),
        ({"class_ids": np.zeros((1, 1))}, r"expected class_ids of shape \(1,\), got \(1, 1\)"),
        ({"mask_crops": ()}, r"expected 1 mask crops, got 0"),
        ({"mask_offsets": np.array([[2, 2]])}, r"expected mask crop 0 inside the 2x2 image"),
        ({"image_hw": (0, 2)}, r"expected image_hw"),
    ],
)
def test_validation(kwargs: dict, message: str) -> None:
    base = {
        "boxes": np.zeros((1, 4)),
        "scores": np.zeros(1),
        "class_ids": np.ones(1),
        "image_hw": (2, 2),
        "mask_crops": (np.ones((1, 1), bool),),
        "mask_offsets": np.zeros((1, 2)),
    }
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Result(**base)


def test_iteration_and_empty() -> None:
    insts = list(make_result())
    assert [i.label for i in insts] == ["person", "dog", "car"] and insts[0].mask_offset == (1, 1)
    empty = Result.empty((4, 5))
    assert len(empty) == 0 and empty.masks.shape == (0, 4, 5) and list(empty) == []
    assert (empty.label_map() == -1).all()


def test_supervision_round_trip() -> None:
    sv = pytest.importorskip("supervision", reason='supervision is not installed: pip install "ovseg[supervision]"')
    crop = np.zeros((4, 5), bool)
    crop[1:3, 1:4] = True
    res = Result(
        boxes=np.array([[2, 3, 7, 7], [0, 0, 3, 2]], np.float32), scores=np.array([0.9, 0.4], np.float32),
        class_ids=np.array([1, 3], np.int32), image_hw=(10, 12), mask_crops=(crop, np.ones((2, 3), bool)),
        mask_offsets=np.array([[2, 3], [0, 0]], np.int32), track_ids=np.array([7, -1], np.int32),
    )
    dets = res.to_supervision()
    assert isinstance(dets, sv.Detections) and len(dets) == 2
    np.testing.assert_array_equal(dets.mask, res.masks)
    np.testing.assert_allclose(dets.xyxy, res.boxes)
    assert dets.class_id.tolist() == [1, 3] and dets.tracker_id.tolist() == [7, -1]
    assert dets.data["class_name"].tolist() == ["person", "car"]
    back = Result.from_supervision(dets)
    np.testing.assert_array_equal(back.masks, res.masks)
    assert back.track_ids.tolist() == [7, -1] and back.labels == res.labels and back.image_hw == (10, 12)
