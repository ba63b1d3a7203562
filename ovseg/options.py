"""The names of the choices a user makes, each defined once: paste algorithms, resize
policies, inference precisions, and their defaults.

No imports beyond the standard library: the command line builds its ``--help`` from this
module without loading OpenVINO, OpenCV or pycocotools.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "PasteMode",
    "PASTE_MODES",
    "DEFAULT_PASTE",
    "CARD_PASTE",
    "ResizePolicy",
    "RESIZE_POLICIES",
    "INFER_PRECISIONS",
    "HINTS",
    "DEFAULT_BENCH_S",
    "BoxConvention",
    "BOX_CONVENTIONS",
    "IGNORED_SCOPES",
    "QUANTIZE_INSTALL_HINT",
    "RAY_INSTALL_HINT",
    "TRACK_CANDIDATES",
    "SERVE_INSTALL_HINT",
    "SERVE_HTTP_PORT",
    "SERVE_GRPC_PORT",
    "SERVE_MAX_UPLOAD_MB",
    "SERVE_MAX_PIXELS",
    "SERVE_MAX_REQUEST_MB",
    "REMOTE_INSTALL_HINT",
    "DEFAULT_REMOTE_TIMEOUT_S",
]

#: ``legacy``: Detectron1 / OMZ ``segm_postprocess`` (the protocol behind the card's AP);
#: ``aligned``: detectron2 / mmdetection 2.x (float boxes, pixel centres).
PasteMode = Literal["legacy", "aligned"]
PASTE_MODES: tuple[str, ...] = ("legacy", "aligned")
#: The library's and every command's default, except ``ovseg eval``: +1.0 mask AP on the
#: fixture set, the same box AP.
DEFAULT_PASTE: PasteMode = "aligned"
#: ``ovseg eval``'s default, so that its numbers compare with the card's.
CARD_PASTE: PasteMode = "legacy"

#: ``fit``: every image into the model's own window, aspect kept, zero padding (480x640 for
#: 0033: "max height 480, max width 640"). ``short-long``: portrait images go through the
#: network reshaped to the transposed window ("max short side 480, max long side 640"; 0033
#: family only). ``stretch``: plain resize to the window, aspect ratio not kept (0228, 1039,
#: 1040, person-0007 were trained and evaluated so).
ResizePolicy = Literal["fit", "short-long", "stretch"]
RESIZE_POLICIES: tuple[str, ...] = ("fit", "short-long", "stretch")

#: Values of OpenVINO's ``INFERENCE_PRECISION_HINT`` that ovseg offers (``--infer-precision``).
INFER_PRECISIONS: tuple[str, ...] = ("f32", "bf16", "f16")

#: ``ovseg bench -hint``: benchmark_app's values (``none``: no PERFORMANCE_HINT set).
HINTS: tuple[str, ...] = ("throughput", "latency", "cumulative_throughput", "none")
#: benchmark_app's run time on CPU and GPU when neither ``-t`` nor ``-niter`` is given.
DEFAULT_BENCH_S = 60.0

#: ``coco``: boxes scored as COCO gives them (``w = x2 - x1``), what pycocotools and detectron2
#: report. ``omz``: OMZ's Accuracy Checker ``coco_orig_precision`` with its default
#: ``include_boundaries: True`` (AC 2021.2 to 2024.6): each *predicted* box ``x2 - x1 + 1`` wide
#: and ``y2 - y1 + 1`` high, the ground truth left as it is; the cards' box AP was made so.
BoxConvention = Literal["coco", "omz"]
BOX_CONVENTIONS: tuple[str, ...] = ("coco", "omz")

#: ``ovseg quantize --ignored-scope``: ``heads`` keeps each output's last layers and the
#: post-processing after them in float; ``none`` quantizes everything NNCF can.
IGNORED_SCOPES: tuple[str, ...] = ("heads", "none")
QUANTIZE_INSTALL_HINT = 'pip install "ovseg[quantize]"'
#: ``ovseg predict --ray`` and :mod:`ovseg.batch`: Ray Data.
RAY_INSTALL_HINT = 'pip install "ovseg[ray]"'

#: With ``--track``, detections down to this score reach the tracker (box only) for ByteTrack's
#: second, low-score association; they never reach the output.
TRACK_CANDIDATES = 0.1

#: ``ovseg serve`` (KServe's model server): the extra, KServe's default ports, and the limits on
#: what a request may bring. An upload is the encoded image sent to the pipeline model; 40 MP
#: takes an 8K frame (33 MP) and costs 120 MB decoded (BGR). A request is any REST body or gRPC
#: message, both ways (one frame's raw_masks reply is 25 MB; as JSON numbers several times that).
SERVE_INSTALL_HINT = 'pip install "ovseg[serve]"'
SERVE_HTTP_PORT = 8080
SERVE_GRPC_PORT = 8081
SERVE_MAX_UPLOAD_MB = 32.0
SERVE_MAX_PIXELS = 40_000_000
SERVE_MAX_REQUEST_MB = 128.0
#: A model URL (grpc://, http://) needs the KServe v2 client library.
REMOTE_INSTALL_HINT = 'pip install "ovseg[remote]"'
#: Bound of every call to a served model (its metadata, each inference), seconds.
DEFAULT_REMOTE_TIMEOUT_S = 60.0
