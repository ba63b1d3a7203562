"""Shared test fixtures: the steering team's fixture folder and generated tiny models.

The fixture folder (a stand-in model with the 0033 interface, 100 COCO val2017 images) is found
at ``$OVSEG_FIXTURES`` or ``../shared/fixtures`` beside the repository; tests that need it
skip with the reason when it is absent. Nothing is copied into the repository.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ovseg.synthetic import maskrcnn_model, save_model

REPO = Path(__file__).resolve().parents[1]
F32 = {"INFERENCE_PRECISION_HINT": "f32"}

#: ``python -m ovseg`` for a test that sends it SIGINT: with ^C's usual handler even where the test
#: run inherited SIGINT ignored (a non-interactive shell's background job), which Python would keep.
OVSEG_ANSWERING_SIGINT = [
    sys.executable, "-c",
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('ovseg', run_name='__main__')",
]


def fixtures_root() -> Path:
    return Path(os.environ.get("OVSEG_FIXTURES", REPO.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    root = fixtures_root()
    if not (root / "models" / "standin-yolov5s-seg-0033-interface.xml").is_file():
        pytest.skip(f"fixture folder absent: set OVSEG_FIXTURES or provide {root}")
    return root


@pytest.fixture(scope="session")
def standin_model(fixtures_dir: Path) -> Path:
    """The fixtures' stand-in IR with exactly 0033's interface (YOLOv5s-seg inside)."""
    return fixtures_dir / "models" / "standin-yolov5s-seg-0033-interface.xml"


@pytest.fixture(scope="session")
def coco_images(fixtures_dir: Path) -> Path:
    return fixtures_dir / "coco-val2017-lightly" / "images"


@pytest.fixture(scope="session")
def coco_annotations(fixtures_dir: Path) -> Path:
    return fixtures_dir / "coco-val2017-lightly" / "instances.json"


@pytest.fixture
def make_model(tmp_path: Path) -> Callable[..., Path]:
    """Build a synthetic 0033-interface IR with the given outputs; returns its .xml path.

    Arguments are those of :func:`ovseg.synthetic.maskrcnn_model`, plus ``name``.
    """
    counter = iter(range(1_000_000))

    def build(*args: Any, name: str | None = None, **kwargs: Any) -> Path:
        path = tmp_path / f"{name or 'model'}-{next(counter)}.xml"
        return save_model(maskrcnn_model(*args, **kwargs), path)

    return build


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic model with two detections whose boxes are fractions of the resized image:
    a person covering everything and a car in the bottom-right quarter."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.xml"
    return save_model(
        maskrcnn_model(classes=[1, 3], scores=[0.9, 0.4], boxes=[[0, 0, 1, 1], [0.5, 0.5, 1, 1]], boxes_relative=True),
        path,
    )


@pytest.fixture
def start_serve(tmp_path: Path) -> Any:
    """``start_serve(model, *args)``: a real ``ovseg serve`` on 127.0.0.1 (ports the OS picks)
    for this test, a :class:`tests.servers.Served`; every one started is stopped (its whole
    process group) when the test ends. Needs the serve extra (skips without it)."""
    import contextlib
    import importlib.util

    if importlib.util.find_spec("kserve") is None:  # found, not imported (see tests/test_serve.py)
        pytest.skip('ovseg serve needs the serve extra: pip install "ovseg[serve]"')
    from tests.servers import serve_process

    with contextlib.ExitStack() as stack:
        counter = iter(range(1_000))

        def start(model: str | Path, *args: str) -> Any:
            return stack.enter_context(serve_process(model, *args, log_dir=tmp_path / f"serve-{next(counter)}"))

        yield start
