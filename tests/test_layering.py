"""The architecture, checked: imports point down the layers, and OpenVINO and pycocotools
are imported only where a model runs or COCO is scored (module-level imports; a function may
import upwards lazily, as ``Result.to_coco`` and ``Segmenter.stream`` do)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ovseg"

# Lower layers never import higher ones at module level.
LAYER = {
    "_version": 0, "errors": 0, "labels": 0,
    "result": 1, "preprocess": 1, "zoo": 1,
    "decode": 2, "coco": 2, "draw": 2, "capture": 2, "model": 2, "synthetic": 2,
    "segmenter": 3,
    "pipeline": 4, "evaluation": 4,
    "bench": 5, "demo": 5, "quantize": 5,
    "commands": 6, "cli": 7, "__main__": 8, "__init__": 8,
}
OPENVINO_ALLOWED = {"model", "segmenter", "pipeline", "bench", "synthetic", "commands", "quantize"}
PYCOCOTOOLS_ALLOWED = {"coco", "evaluation"}


def module_imports(path: Path) -> tuple[set[str], set[str]]:
    """(ovseg modules, third-party top-level packages) imported at module level."""
    tree = ast.parse(path.read_text())
    internal, external = set(), set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = (node.module or "").split(".")[0]
                names = [base] if base else [alias.name for alias in node.names]
                if path.parent.name == "commands" and node.level == 1:
                    names = ["commands"]
                internal.update(names)
            else:
                external.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            external.update(alias.name.split(".")[0] for alias in node.names)
    return internal, external


def layer_of(path: Path) -> str:
    return "commands" if path.parent.name == "commands" else path.stem


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(PACKAGE)) for p in FILES])
def test_imports_point_down(path: Path) -> None:
    me = layer_of(path)
    assert me in LAYER, f"{path.name}: add the module to LAYER"
    internal, external = module_imports(path)
    for name in internal - {me}:
        assert name in LAYER and LAYER[name] < LAYER[me], f"{path.name} imports {name} (layer {LAYER.get(name)})"
    if "openvino" in external:
        assert me in OPENVINO_ALLOWED, f"{path.name} imports openvino"
    if "pycocotools" in external:
        assert me in PYCOCOTOOLS_ALLOWED, f"{path.name} imports pycocotools"
