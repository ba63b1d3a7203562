"""The short soak: benchmarks/soak.py's loop over a few hundred frames (the long run is the
benchmark). Nothing lost, nothing reordered, no runaway memory."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .conftest import REPO


def test_short_soak(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("soak", REPO / "benchmarks" / "soak.py")
    assert spec and spec.loader
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    stats = soak.soak(soak.default_model(tmp_path), count=400, threshold=0.0, warmup=100)
    assert stats["frames_out"] == stats["frames_in"] == 400
    assert stats["misordered"] == 0
    # A leak of even a few kB per frame shows here; the 5 MB goal is for the long run.
    assert stats["rss_end_mb"] - stats["rss_start_mb"] < 25


def test_short_video_soak(tmp_path: Path) -> None:
    """benchmarks/video_soak.py's run over a 300-frame 1080p video: every frame a JSONL line,
    in order, exit 0 (the 10,000-frame memory figure is the benchmark's)."""
    spec = importlib.util.spec_from_file_location("video_soak", REPO / "benchmarks" / "video_soak.py")
    assert spec and spec.loader
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    video = soak.make_video(tmp_path / "v.avi", 300)
    stats = soak.soak(soak.default_model(tmp_path), video, tmp_path / "out", warmup_s=5)
    assert (stats["exit"], stats["lines"], stats["misordered"]) == (0, 300, 0)
    assert stats["rss_end_mb"] - stats["rss_start_mb"] < 40
