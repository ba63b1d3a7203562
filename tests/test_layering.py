"""The architecture, checked: every import of an ovseg module (module level, inside
functions, under ``TYPE_CHECKING``) points down the layers, so that no import cycle can come
back unseen; OpenVINO and pycocotools are imported only where a model runs or COCO is scored;
optional engines only in the module of their integration; and the command line starts without
loading OpenVINO or pycocotools."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ovseg"

# A module may import only modules of a lower layer.
LAYER = {
    "_version": 0, "errors": 0, "options": 0, "suggest": 0, "remote_url": 1, "ports": 1,
    "labels": 1, "files": 1, "rle": 1, "adapters": 1, "images": 1,
    "result": 2, "preprocess": 2, "catalog": 2, "jpeg": 2,
    "sinks": 4, "uploads": 4, "cache": 3, "decode": 3, "coco": 3, "draw": 3, "controls": 3, "video": 3, "background": 3, "synthetic": 3,
    "sources": 3, "track": 3,
    "capture": 4,
    "window": 4, "download": 4, "model": 4,
    "pipeline": 5, "multi": 5, "quantize": 5, "remote": 5, "export": 5, "runs": 5,
    "segmenter": 6,
    "evaluation": 7, "bench": 7, "serve": 7, "demo": 7, "mosaic": 7, "batch": 7,
    "commands": 8,
    "cli": 9,
    "__main__": 10, "__init__": 10,
}
OPENVINO_ALLOWED = {"export", "model", "pipeline", "segmenter", "bench", "evaluation", "synthetic", "quantize", "serve", "commands"}
PYCOCOTOOLS_ALLOWED = {"coco", "evaluation", "quantize"}
#: Optional engines (extras) and the one module of their integration.
ENGINES = {"kserve": {"serve"}, "uvicorn": {"serve"}, "grpc": {"serve"}, "tritonclient": {"remote"}, "ray": {"batch"}}


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(ovseg modules, third-party top-level packages) of every import statement in the file,
    wherever it stands."""
    tree = ast.parse(path.read_text())
    in_commands = path.parent.name == "commands"
    internal, external = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if not node.level:
                top = (node.module or "").split(".")[0]
                (internal if top == "ovseg" else external).add(
                    (node.module or "").split(".")[1] if top == "ovseg" and "." in (node.module or "") else top
                )
                continue
            package_level = 2 if in_commands else 1  # the level that reaches ovseg/
            if in_commands and node.level == 1:
                internal.add("commands")
            elif node.level == package_level:
                base = (node.module or "").split(".")[0]
                internal.update([base] if base else [alias.name for alias in node.names])
            else:
                raise AssertionError(f"{path.name}: relative import above the package: {ast.unparse(node)}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                (internal.add(parts[1]) if parts[0] == "ovseg" and len(parts) > 1 else external.add(parts[0]))
    return internal - {"ovseg"}, external


def layer_of(path: Path) -> str:
    return "commands" if path.parent.name == "commands" else path.stem


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(PACKAGE)) for p in FILES])
def test_imports_point_down(path: Path) -> None:
    me = layer_of(path)
    assert me in LAYER, f"{path.name}: add the module to LAYER"
    internal, external = imports(path)
    for name in internal - {me}:
        assert name in LAYER, f"{path.name} imports {name}, which LAYER does not list"
        assert LAYER[name] < LAYER[me], f"{path.name} (layer {LAYER[me]}) imports {name} (layer {LAYER[name]})"
    if "openvino" in external:
        assert me in OPENVINO_ALLOWED, f"{path.name} imports openvino"
    if "pycocotools" in external:
        assert me in PYCOCOTOOLS_ALLOWED, f"{path.name} imports pycocotools"
    for engine, allowed in ENGINES.items():
        if engine in external:
            assert me in allowed, f"{path.name} imports {engine}, which only {sorted(allowed)} may"


def test_the_walk_sees_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .segmenter import Segmenter\n"
        "def f():\n    from .pipeline import Pipeline\n    import openvino\n"
    )
    internal, external = imports(module)
    assert internal == {"segmenter", "pipeline"}
    assert {"openvino", "typing"} <= external


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["predict", "--help"], ["demo", "--help"], ["serve", "--help"]])
def test_the_command_line_starts_without_openvino_or_pycocotools(argv: list[str]) -> None:
    code = (
        "import sys\nimport ovseg.cli\n"
        f"try:\n    ovseg.cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('openvino', 'pycocotools', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_import_ovseg_is_light_and_its_names_load_on_use() -> None:
    code = (
        "import sys, ovseg\nassert 'openvino' not in sys.modules\n"
        "ovseg.Segmenter, ovseg.draw.Overlay, ovseg.pipeline.Pipeline\nprint('openvino' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "True"
