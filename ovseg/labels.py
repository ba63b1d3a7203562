"""COCO class names and the map between contiguous class ids and official COCO ids.

The 0033 family numbers its 80 classes contiguously, 1..80, with 0 for background / an empty
slot. COCO's own category ids are sparse, 1..90, in the same order. Data only.
"""

from __future__ import annotations

from .errors import ResultError

__all__ = ["COCO_NAMES", "COCO_CATEGORY_IDS", "NUM_CLASSES", "class_name", "coco_category_id"]

#: Names of the 80 COCO thing classes; ``COCO_NAMES[k - 1]`` is contiguous class ``k``.
COCO_NAMES: tuple[str, ...] = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)

#: Official COCO category id of contiguous class ``k`` at index ``k - 1``.
COCO_CATEGORY_IDS: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 27, 28, 31, 32, 33, 34,
    35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
    46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
    67, 70, 72, 73, 74, 75, 76, 77, 78, 79,
    80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
)


NUM_CLASSES = len(COCO_NAMES)
assert len(COCO_CATEGORY_IDS) == NUM_CLASSES


def class_name(class_id: int) -> str:
    """Name of contiguous class ``class_id`` (1..80); ``"class <id>"`` for any other id."""
    if 1 <= class_id <= NUM_CLASSES:
        return COCO_NAMES[class_id - 1]
    return f"class {class_id}"


def coco_category_id(class_id: int) -> int:
    """Official COCO category id (1..90) of contiguous class ``class_id`` (1..80)."""
    if not 1 <= class_id <= NUM_CLASSES:
        raise ResultError(f"expected a contiguous class id in 1..{NUM_CLASSES}, got {class_id}")
    return COCO_CATEGORY_IDS[class_id - 1]
