"""``ovseg bench``: the measuring loops, the report, the JSON schema and the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from ovseg.bench import BenchOptions, compile_properties, percentile, run_bench, synthetic_frame
from ovseg.cli import main
from ovseg.errors import ConfigError

JSON_SECTIONS = {"cmd_options", "configuration_setup", "execution_results"}
COMMON_RESULTS = {
    "compile model time (ms)",
    "first inference time (ms)",
    "total execution time (ms)",
    "total number of iterations",
    "latency (ms)",
    "avg latency",
    "min latency",
    "max latency",
    "cpu time per frame (ms)",
    "throughput",
}
E2E_RESULTS = {
    *(f"{stage} latency (ms)" for stage in ("read", "preprocess", "infer", "decode")),
    *(f"{stage} avg latency" for stage in ("read", "preprocess", "infer", "decode")),
    "peak RSS (MB)",
    "instances",
}


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "frame.png"
    cv2.imwrite(str(path), synthetic_frame((270, 480)))
    return path


def test_percentile_matches_benchmark_app() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    # benchmark_app: values[ceil(n * p / 100) - 1]
    assert [percentile(values, p) for p in (1, 50, 90, 95, 100)] == [1.0, 5.0, 9.0, 10.0, 10.0]
    assert math.isnan(percentile([], 50))


def test_compile_properties_spell_openvino_keys(tiny_model: Path) -> None:
    opts = BenchOptions(
        model=tiny_model, hint="latency", nstreams="2", nthreads=1, infer_precision="f32", cache_dir="c"
    )
    assert compile_properties(opts) == {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": "2",
        "INFERENCE_NUM_THREADS": 1,
        "INFERENCE_PRECISION_HINT": "f32",
        "CACHE_DIR": "c",
    }
    assert "PERFORMANCE_HINT" not in compile_properties(BenchOptions(model=tiny_model, hint="none"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "both"}, "expected mode 'infer' or 'e2e'"),
        ({"hint": "fast"}, "expected hint one of"),
        ({"nireq": 0}, "expected nireq >= 1"),
        ({"niter": 0}, "expected niter >= 1"),
        ({"time_s": 0.0}, "expected a time limit > 0"),
        ({"latency_percentile": 101}, r"expected latency_percentile in \[1, 100\]"),
        ({"nstreams": "many"}, "expected nstreams a number or AUTO"),
        ({"infer_precision": "fp64"}, "expected infer_precision one of"),
        ({"mode": "e2e"}, "expected image files"),
        ({"preload": True}, "expected --preload with --mode e2e only"),
        ({"reduced_read": True}, "expected --reduced-read with --mode e2e only"),
    ],
)
def test_bad_options(tiny_model: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BenchOptions(model=tiny_model, **kwargs)


def test_infer_mode_counts_like_benchmark_app(tiny_model: Path) -> None:
    report = run_bench(BenchOptions(model=tiny_model, niter=3, nireq=2, infer_precision="f32"))
    assert report.count == 4  # rounded up to a multiple of nireq, as benchmark_app does
    assert math.isfinite(report.first_inference_ms) and report.cpu_ms_per_frame > 0
    assert report.setup["number of parallel infer requests"] == "2"
    assert report.setup["precision"] == "f32"
    assert report.latency.min <= report.latency.median <= report.latency.max
    assert report.fps > 0 and not report.stages
    doc = report.to_json()
    assert set(doc) == JSON_SECTIONS
    assert set(doc["execution_results"]) == COMMON_RESULTS
    assert all(isinstance(v, str) for section in doc.values() for v in section.values())
    assert doc["execution_results"]["total number of iterations"] == "4"


@pytest.mark.parametrize("preload", [False, True])
def test_e2e_mode_decodes_every_frame(tiny_model: Path, image_file: Path, preload: bool) -> None:
    opts = BenchOptions(
        model=tiny_model, mode="e2e", inputs=(image_file,), preload=preload, niter=5, threshold=0.5,
        infer_precision="f32",
    )
    report = run_bench(opts)
    assert report.count == 5 and math.isfinite(report.first_inference_ms)
    assert report.instances == 5  # the tiny model's person (0.9) passes 0.5, its car (0.4) does not
    assert set(report.stages) == {"read", "preprocess", "infer", "decode"}
    assert report.peak_rss_mb > 0
    doc = report.to_json()
    assert set(doc["execution_results"]) == COMMON_RESULTS | E2E_RESULTS
    assert doc["configuration_setup"]["mode"] == "e2e"
    assert doc["configuration_setup"]["inference_only"] == "False"
    assert doc["configuration_setup"]["preload"] == str(preload)


def test_percentile_option_renames_the_latency_key(tiny_model: Path) -> None:
    report = run_bench(BenchOptions(model=tiny_model, niter=2, nireq=1, latency_percentile=90, warmup=False))
    results = report.to_json()["execution_results"]
    assert "latency (90 percentile) (ms)" in results and "latency (ms)" not in results
    assert results["first inference time (ms)"] == "nan"


def test_cli_prints_a_benchmark_app_report_and_writes_json(
    tiny_model: Path, image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = tmp_path / "stats" / "report.json"
    argv = ["bench", "-m", str(tiny_model), "--mode", "e2e", "-i", str(image_file), "--preload",
            "-niter", "3", "-nireq", "2", "-hint", "throughput", "-infer_precision", "f32",
            "-latency_percentile", "50", "-json_stats", str(stats)]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert all(line.startswith("[ INFO ] ") for line in out)
    text = "\n".join(out)
    for needle in ("Compile model took", "First inference took", "Count:", "Duration:", "Median:", "Average:",
                   "Min:", "Max:", "preprocess:", "decode:", "Peak RSS:", "CPU time:"):
        assert needle in text
    assert out[-1].startswith("[ INFO ] Throughput:") and out[-1].endswith(" FPS")
    doc = json.loads(stats.read_text())
    assert set(doc) == JSON_SECTIONS
    assert doc["cmd_options"]["number_iterations"] == "3"
    assert doc["cmd_options"]["perf_hint"] == "throughput"
    assert float(doc["execution_results"]["throughput"]) > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mode", "e2e"], "expected image files (-i IMAGE_OR_DIR) for --mode e2e"),
        (["-i", "no/such/image.jpg"], "expected image files, got missing path(s)"),
        (["-latency_percentile", "0"], "expected latency_percentile in [1, 100]"),
        (["-nireq", "0"], "expected nireq >= 1"),
        (["-nstreams", "lots"], "expected nstreams a number or AUTO"),
        (["--preload"], "expected --preload with --mode e2e only"),
    ],
)
def test_cli_errors_are_one_line_exit_2(
    tiny_model: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "-m", str(tiny_model), "-niter", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("ovseg: error: ") and message in err


def test_cli_missing_model_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "-m", str(tmp_path / "absent.xml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model file not found" in err


@pytest.mark.parametrize("argv", [["-hint", "fast"], ["-t", "-1"], ["--mode", "all"], ["-niter", "x"]])
def test_cli_usage_errors_exit_2(tiny_model: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "-m", str(tiny_model), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err


def test_e2e_on_the_fixture_standin(standin_model: Path, coco_images: Path) -> None:
    images = tuple(sorted(coco_images.glob("*.jpg"))[:2])
    report = run_bench(
        BenchOptions(model=standin_model, mode="e2e", inputs=images, niter=2, threshold=0.0, infer_precision="f32")
    )
    assert report.count == 2 and report.instances > 0
    assert np.isfinite([report.stages[s].average for s in ("read", "preprocess", "infer", "decode")]).all()


@pytest.mark.parametrize("preload", [False, True])
def test_e2e_reduced_read_maps_back_to_the_full_size(tiny_model: Path, tmp_path: Path, preload: bool) -> None:
    big = tmp_path / "big.jpg"
    cv2.imwrite(str(big), np.full((1080, 1440, 3), 90, np.uint8))
    opts = BenchOptions(model=tiny_model, mode="e2e", inputs=(big,), preload=preload, niter=3, infer_precision="f32",
                        reduced_read=True)
    report = run_bench(opts)
    assert report.count == 3 and report.instances == 3
    assert report.to_json()["configuration_setup"]["reduced_read"] == "True"
