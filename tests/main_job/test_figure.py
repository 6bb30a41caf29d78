"""rq_demo.figure: the Figure-2-style picture is drawn from shipped or computed data."""

import pytest
import torch

pytest.importorskip("matplotlib")

from rq_demo import figure as viz  # noqa: E402


def test_sample_data_shapes_and_ranges():
    img = viz.sample_image(64)
    assert img.shape == (1, 3, 64, 64) and 0 <= float(img.min()) and float(img.max()) <= 1
    mel = viz.sample_log_mel()
    assert mel.shape[:3] == (1, 1, 64) and torch.isfinite(mel).all()
    pts = viz.sample_point_cloud(800)
    assert pts.shape[1] == 3 and pts.abs().max() <= 1


def test_cli_writes_a_png(tmp_path):
    out = tmp_path / "fig.png"
    assert viz.main(["--out", str(out), "--views", "1"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
