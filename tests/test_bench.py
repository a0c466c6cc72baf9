"""Smoke test of the benchmark: its figures are produced and well-formed (no timing assertions)."""
import json
import os
import statistics

import pytest
import torch

from lenet_course import bench
from lenet_course.__main__ import main


def test_bench_produces_every_figure_on_a_small_setting():
    report = bench.run("mnist-sample", device="cpu", small=True, memory=False, repeats=2)
    assert [r.batch_size for r in report.rows][:2] == [64, 64]
    assert [r.pipeline.split(",")[0] for r in report.rows] == ["tutorial DataLoader + PIL transforms", "fit", "fit"]
    assert all(r.images_per_s > 0 and 0 <= r.test_accuracy <= 1 for r in report.rows)
    assert report.repeats == 2 and all(len(r.runs) == len(r.ratios) == 2 for r in report.rows)
    assert report.rows[0].ratio == 1.0 and report.rows[0].ratios == [1.0, 1.0]
    fit64, tutorial = report.rows[1], report.rows[0]
    # each round's ratio is against the tutorial pipeline of the same round; the row gives the medians
    assert fit64.ratios == pytest.approx([a / b for a, b in zip(fit64.runs, tutorial.runs)])
    assert fit64.ratio == pytest.approx(statistics.median(fit64.ratios))
    assert fit64.images_per_s == pytest.approx(statistics.median(fit64.runs))
    assert report.train_images == 2000 and report.device == "cpu" and report.threads >= 1
    text = bench.format_report(report)
    assert "images/s" in text and "torch" in text and "median of 2 rounds" in text
    with pytest.raises(ValueError, match="repeats"):
        bench.run("mnist-sample", device="cpu", small=True, memory=False, repeats=0)


def test_explore_times_every_variant_against_fits_step(monkeypatch):
    def no_compiler(model, *a, **kw):
        raise RuntimeError("no C++ compiler found\nmore detail")

    monkeypatch.setattr(torch, "compile", no_compiler)
    threads = torch.get_num_threads()
    variants = bench.explore("mnist-sample", device="cpu", steps=2, rounds=2, warmup=1, progress=False)
    assert torch.get_num_threads() == threads  # the one-thread variant puts the setting back
    names = [v.name for v in variants]
    assert names[0].startswith("fit's step: fused Adam, batch 256")
    assert "Adam, torch's default (unfused) implementation" in names and "torch.compile" in names
    assert variants[0].ratio == 1.0
    ran = [v for v in variants if v.images_per_s is not None]
    assert len(ran) == len(variants) - 1 and all(len(v.runs) == 2 and v.ratio > 0 for v in ran)
    compiled = variants[names.index("torch.compile")]
    assert compiled.images_per_s is None and compiled.note == (
        "could not run here: RuntimeError: no C++ compiler found")
    text = bench.format_explore(variants)
    assert "could not run here" in text and "batch 1024" in text
    with pytest.raises(ValueError, match="steps"):
        bench.explore("mnist-sample", device="cpu", steps=0)


def test_explore_on_cuda_adds_cuda_graphs_and_a_large_batch():
    """The variants a GPU run needs to choose its defaults; only listed here, as no test needs a GPU."""
    cuda = {s.name: s for s in bench._specs(torch.device("cuda"), compile=True)}
    cpu = {s.name: s for s in bench._specs(torch.device("cpu"), compile=True)}
    graphs = 'torch.compile, mode="reduce-overhead" (CUDA graphs)'
    assert cuda[graphs].compile == "reduce-overhead" and cuda["torch.compile"].compile == "default"
    assert cuda["batch 4096"].batch_size == 4096 and all(s.amp for s in list(cuda.values())[:3])
    assert graphs not in cpu and "batch 4096" not in cpu and cpu["torch.compile"].compile == "default"
    assert not any(s.compile for s in bench._specs(torch.device("cuda"), compile=False))


def test_explore_passes_the_compile_mode_to_torch_compile(monkeypatch):
    modes = []

    def fake_compile(model, mode=None):
        modes.append(mode)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    spec = bench._Spec("torch.compile", 64, compile="default")
    step = bench._stepper(spec, bench.data.load_splits("mnist-sample")[0], torch.device("cpu"), 0)
    step()
    assert modes == ["default"]


def test_peak_memory_is_measured_in_a_child_process():
    mb = bench.peak_memory_mb("mnist-sample", "cpu", subset=500)
    assert 50 < mb < 100_000


def test_bench_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--dataset", "mnist-sample", "--small", "--no-memory", "--device", "cpu",
                 "--repeats", "1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["dataset"] == "mnist-sample" and len(figures["rows"]) == 3 and figures["repeats"] == 1
    assert "explore" not in figures
    assert "tutorial" in capsys.readouterr().out


def test_bench_cli_explore_adds_the_variants_to_the_json(tmp_path, monkeypatch, capsys):
    asked = {}

    def fake_explore(dataset, device, seed, compile, progress):
        asked.update(dataset=dataset, compile=compile)
        return [bench.Variant("fit's step", 256, 1000.0, 1.0, [1000.0]), bench.Variant("torch.compile", 256,
                                                                                      note="could not run here: X")]

    monkeypatch.setattr(bench, "explore", fake_explore)
    out = tmp_path / "bench.json"
    monkeypatch.setattr(bench, "time_to_accuracy", lambda dataset, device, target, seed, progress: bench.TimeToAccuracy(
        device, "cpu", dataset, target, True, 2, 1.5, 2.0, [0.8, 0.91], 256))
    monkeypatch.setattr(bench, "breakdown", lambda dataset, device, seed: bench.Breakdown(
        device, "cpu", 256, 20, 10.0, {"convolutions": 6.0, "batch norm": 3.0, "other": 1.0}))
    assert main(["bench", "--dataset", "mnist-sample", "--small", "--no-memory", "--device", "cpu", "--repeats", "1",
                 "--explore", "--no-compile", "--breakdown", "--time-to", "0.9", "--json", str(out)]) == 0
    assert asked == {"dataset": "mnist-sample", "compile": False}
    figures = json.loads(out.read_text())
    assert [v["name"] for v in figures["explore"]] == ["fit's step", "torch.compile"]
    assert figures["time_to_accuracy"]["target"] == 0.9 and figures["time_to_accuracy"]["epochs"] == 2
    assert figures["breakdown"]["parts"] == {"convolutions": 6.0, "batch norm": 3.0, "other": 1.0}
    printed = capsys.readouterr().out
    assert "could not run here: X" in printed and "90 % test accuracy on mnist-sample: 1.5 s of training" in printed
    assert "convolutions          6.00 ms   60.0 %" in printed


def test_time_to_accuracy_stops_at_the_target():
    t = bench.time_to_accuracy("mnist-sample", device="cpu", target=0.5, max_epochs=3)
    assert t.reached and 1 <= t.epochs <= 3 and t.test_accuracy[-1] >= 0.5
    assert all(a < 0.5 for a in t.test_accuracy[:-1]) and len(t.test_accuracy) == t.epochs
    assert 0 < t.train_seconds < t.wall_seconds and t.batch_size == 256 and t.dataset == "mnist-sample"
    assert "50 % test accuracy on mnist-sample:" in bench.format_time_to_accuracy(t)
    missed = bench.time_to_accuracy("mnist-sample", device="cpu", target=1.0, max_epochs=1)
    assert not missed.reached and missed.epochs == 1
    assert "not reached in 1 epochs" in bench.format_time_to_accuracy(missed)


def test_breakdown_adds_up_the_step_by_kind_of_layer(capfd):
    b = bench.breakdown("mnist-sample", device="cpu", steps=2, warmup=1, batch_size=64)
    os.write(2, b"stderr is back\n")
    err = capfd.readouterr().err
    assert "stderr is back" in err and "profiler_start" not in err  # the profiler's own log is kept out
    assert b.batch_size == 64 and b.steps == 2 and b.step_ms > 0 and b.measures == "host"
    kinds = list(b.parts)
    assert {"convolutions", "batch norm", "max-pooling", "ReLU", "linear layers", "loss", "optimizer",
            "taking the batch"} <= set(kinds)
    assert kinds[-1] == "other" and all(ms >= 0 for ms in b.parts.values())
    named = [b.parts[k] for k in kinds[:-1]]
    assert named == sorted(named, reverse=True)
    assert sum(b.share(k) for k in kinds) == pytest.approx(1.0)
    text = bench.format_breakdown(b)
    assert "batch 64" in text and "convolutions" in text and "mean of 2 steps" in text
    with pytest.raises(ValueError, match="steps"):
        bench.breakdown("mnist-sample", device="cpu", steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        bench.breakdown("mnist-sample", device="cpu", batch_size=0)


@pytest.mark.parametrize("op, kind", [
    ("aten::convolution_backward", "convolutions"),
    ("autograd::engine::evaluate_function: ConvolutionBackward0", "convolutions"),
    ("aten::native_batch_norm_backward", "batch norm"),
    ("NativeBatchNormBackward0", "batch norm"),
    ("aten::max_pool2d_with_indices", "max-pooling"),
    ("aten::threshold_backward", "ReLU"),
    ("aten::clamp_min", "ReLU"),
    ("aten::addmm", "linear layers"),
    ("aten::mm", "linear layers"),
    ("aten::t", "linear layers"),
    ("aten::to", "other"),  # a whole name: aten::t must not take aten::to, aten::threshold... or aten::mmm
    ("aten::_log_softmax", "loss"),
    ("Optimizer.step#Adam.step", "optimizer"),
    ("aten::_fused_adam_", "optimizer"),
    ("aten::index", "taking the batch"),
    ("aten::index_select", "other"),
    ("aten::fill_", "other"),
])
def test_breakdown_sorts_operators_by_layer(op, kind):
    assert bench._kind(op) == kind
