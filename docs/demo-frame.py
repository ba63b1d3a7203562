"""Render docs/demo-frame.png: one frame of the demo on a fixture picture, through the stand-in.

    python docs/demo-frame.py [FIXTURES_DIR]

The picture is COCO val2017 image 7281 (Flickr, CC BY 2.0; see README.md), scaled to 560 px
wide so the PNG stays under 300 KB. It goes through the demo 8 times, as a still camera would
deliver it, and the last frame is kept, so the status line shows a frame rate.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2

from ovseg import Segmenter
from ovseg.sources import ImageSource
from ovseg.demo import run_demo

REPO = Path(__file__).resolve().parents[1]
fixtures = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "fixtures"
picture = cv2.imread(str(fixtures / "coco-val2017-lightly" / "images" / "000000007281.jpg"))
height, width = picture.shape[:2]
small = cv2.resize(picture, (560, round(height * 560 / width)), interpolation=cv2.INTER_AREA)

with tempfile.TemporaryDirectory() as tmp:
    still = Path(tmp) / "000000007281-560.png"
    cv2.imwrite(str(still), small)
    segmenter = Segmenter(fixtures / "models" / "standin-yolov5s-seg-0033-interface.xml", threshold=0.5)
    frames = []
    run_demo(segmenter, ImageSource([still] * 8), show=False, on_frame=lambda frame, result: frames.append(frame))

out = REPO / "docs" / "demo-frame.png"
cv2.imwrite(str(out), frames[-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
print(f"wrote {out} ({out.stat().st_size} bytes)")
