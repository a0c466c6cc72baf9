"""Smoke test of the benchmark: its figures are produced and well-formed (no timing assertions)."""
import json

from lenet_course import bench
from lenet_course.__main__ import main


def test_bench_produces_every_figure_on_a_small_setting():
    report = bench.run("mnist-sample", device="cpu", small=True, memory=False)
    assert [r.batch_size for r in report.rows][:2] == [64, 64]
    assert [r.pipeline.split(",")[0] for r in report.rows] == ["tutorial DataLoader + PIL transforms", "fit", "fit"]
    assert all(r.images_per_s > 0 and 0 <= r.test_accuracy <= 1 for r in report.rows)
    assert report.rows[0].ratio == 1.0
    assert abs(report.rows[1].ratio - report.rows[1].images_per_s / report.rows[0].images_per_s) < 1e-9
    assert report.train_images == 2000 and report.device == "cpu" and report.threads >= 1
    text = bench.format_report(report)
    assert "images/s" in text and "torch" in text


def test_peak_memory_is_measured_in_a_child_process():
    mb = bench.peak_memory_mb("mnist-sample", "cpu", subset=500)
    assert 50 < mb < 100_000


def test_bench_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--dataset", "mnist-sample", "--small", "--no-memory", "--device", "cpu",
                 "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["dataset"] == "mnist-sample" and len(figures["rows"]) == 3
    assert "tutorial" in capsys.readouterr().out
