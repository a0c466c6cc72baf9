"""The 1998 LeNet-5 (lenet_course.classic): the paper's numbers, its layers, loss and optimiser."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import lenet_course.classic as classic
from lenet_course import arch, data, models, train
from lenet_course.__main__ import main

PAPER_TABLE = {  # LeCun et al. 1998, section II-B: (trainable parameters, connections)
    "C1": (156, 122_304), "S2": (12, 5_880), "C3": (1_516, 151_600), "S4": (32, 2_000),
    "C5": (48_120, 48_120), "F6": (10_164, 10_164), "OUTPUT": (0, 840),
}


@pytest.fixture
def net():
    torch.manual_seed(0)
    return models.create("classic")


def test_registered():
    assert "classic" in models.names()


@pytest.mark.parametrize("layer", list(PAPER_TABLE))
def test_layer_table_row_matches_the_paper(net, layer):
    rows = {r.name: r for r in arch.layer_table(net)}
    assert (rows[layer].parameters, rows[layer].connections) == PAPER_TABLE[layer]


def test_layer_table_rows_shapes_and_totals(net):
    rows = arch.layer_table(net)
    assert [r.name for r in rows] == list(PAPER_TABLE)
    assert [r.output_shape for r in rows] == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5),
                                             (120, 1, 1), (84,), (10,)]
    assert arch.totals(rows) == (60_000, 340_908)


def test_exactly_60000_trainable_parameters_and_no_masked_full_conv(net):
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 60_000
    assert sum(p.numel() for p in net.C3.parameters()) == 1_516  # a full 6->16 conv would have 2,416
    assert sum(p.numel() for p in net.parameters()) == 60_000    # nothing frozen hides in there
    assert "OUTPUT.prototypes" in net.state_dict() and not any("prototypes" in n for n, _ in net.named_parameters())


def test_c3_is_table_one_and_equals_a_masked_dense_convolution(net):
    w = net.C3.dense_weight()
    assert torch.equal(w.abs().sum((2, 3)).T != 0, arch.c3_matrix())
    x = torch.randn(3, 6, 14, 14, requires_grad=True)
    out = net.C3(x)
    # each map on its own, from its parameter row and only the S2 maps Table I gives it
    rows = {k: iter(getattr(net.C3, f"weight{k}")) for k in (3, 4, 6)}
    by_map = torch.cat([F.conv2d(x[:, list(t)], next(rows[len(t)])[None], net.C3.bias[j:j + 1])
                        for j, t in enumerate(arch.C3_TABLE)], 1)
    assert torch.allclose(out, by_map, atol=1e-5)
    out.square().sum().backward()  # gradients reach only the 1,516 parameters; the zeros are no parameters
    assert sum(p.grad.numel() for p in net.C3.parameters()) == 1_516
    assert all(p.grad.abs().sum() > 0 for p in net.C3.parameters())


def test_subsampling_is_a_scaled_2x2_sum_plus_bias():
    s = classic.Subsampling(2)
    with torch.no_grad():
        s.coefficient.copy_(torch.tensor([0.5, -2.0]))
        s.bias.copy_(torch.tensor([0.1, 0.2]))
    x = torch.arange(32.0).view(1, 2, 4, 4)
    out = s(x)
    assert out[0, 0, 0, 0].item() == pytest.approx(0.5 * (0 + 1 + 4 + 5) + 0.1)
    assert out[0, 1, 1, 1].item() == pytest.approx(-2.0 * (26 + 27 + 30 + 31) + 0.2)


def test_squash_and_initialisation(net):
    assert classic.squash(torch.tensor(1.0)).item() == pytest.approx(1.0, abs=1e-4)
    assert classic.squash(torch.tensor(100.0)).item() == pytest.approx(1.7159)
    a = torch.tensor(0.3, requires_grad=True)
    classic.squash(a).backward()
    assert a.grad.item() == pytest.approx(classic.squash_derivative(torch.tensor(0.3)).item())
    fan_in = {"C1": 25, "S2": 4, "S4": 4, "C5": 400, "F6": 120}
    for name, f in fan_in.items():
        for p in getattr(net, name).parameters():
            assert p.abs().max().item() <= 2.4 / f
    for k in (3, 4, 6):
        assert getattr(net.C3, f"weight{k}").abs().max().item() <= 2.4 / (25 * k)


def test_lecun_initialisation_changes_only_the_weights():
    torch.manual_seed(0)
    net = models.create("classic", init="lecun")
    assert net.config == {"name": "classic", "init": "lecun"}  # a checkpoint rebuilds it
    rows = {r.name: (r.parameters, r.connections) for r in arch.layer_table(net)}
    assert rows == PAPER_TABLE  # same network, other starting point
    weights = {"C1": (net.C1.weight, 25), "C5": (net.C5.weight, 400), "F6": (net.F6.weight, 120),
               "S2": (net.S2.coefficient, 4), "S4": (net.S4.coefficient, 4)}
    weights.update({f"C3.weight{k}": (getattr(net.C3, f"weight{k}"), 25 * k) for k in (3, 4, 6)})
    for name, (w, f) in weights.items():
        assert w.abs().max().item() <= math.sqrt(3 / f), name
        assert w.abs().max().item() > 2.4 / f, name  # wider than the paper's rule
    assert net.C5.weight.std().item() == pytest.approx(400 ** -0.5, rel=0.03)  # 48,000 draws
    for layer, f in (("C1", 25), ("C5", 400), ("F6", 120), ("S2", 4), ("S4", 4)):
        assert getattr(net, layer).bias.abs().max().item() <= 2.4 / f  # biases keep the paper's rule


def _first_steps_test_accuracy(init, steps=600):
    """Test accuracy after ``steps`` single-image SDLM steps at the paper's first rate, 0.0005."""
    tr, te = (data.paper_scaling(s) for s in data.load_splits("mnist-sample"))
    torch.manual_seed(0)
    net = models.create("classic", init=init)
    h = classic.train_paper(net, tr.subset(steps), te.subset(500), passes=1, batch_size=1, curvature_samples=200)
    return h.test_accuracy[0]


def test_paper_rates_stall_from_the_papers_weights_and_train_from_lecuns():
    """The finding chapter 10 reports: the paper's schedule, unscaled, needs the wider initial weights."""
    assert _first_steps_test_accuracy("paper") < 0.2   # saturated: about chance
    assert _first_steps_test_accuracy("lecun") > 0.6


def test_prototypes_are_ten_distinct_plus_minus_one_bitmaps():
    p = classic.rbf_prototypes()
    assert p.shape == (10, 84)
    assert set(p.unique().tolist()) == {-1.0, 1.0}
    d = torch.cdist(p, p)
    assert (d + torch.eye(10) * 100).min() > 0  # all different


def test_forward_returns_negative_penalties(net):
    x = torch.randn(4, 1, 32, 32)
    out = net(x)
    assert out.shape == (4, 10)
    f6 = net.features(x)
    expected = ((f6[:, None, :] - net.OUTPUT.prototypes) ** 2).sum(-1)
    assert torch.allclose(-out, expected, atol=1e-5) and torch.allclose(net.penalties(x), expected, atol=1e-5)
    with pytest.raises(ValueError):
        models.create("classic", num_classes=5)


def test_map_loss_by_hand():
    y = torch.tensor([[3.0, 1.0, 7.0]])   # penalties
    target = torch.tensor([1])
    j = 2.0
    expected = 1.0 + math.log(math.exp(-j) + math.exp(-3) + math.exp(-1) + math.exp(-7))
    assert classic.MAPLoss(j)(-y, target).item() == pytest.approx(expected, rel=1e-6)
    # j -> infinity is the cross-entropy of -y (what train.evaluate reports)
    assert classic.MAPLoss(1e4)(-y, target).item() == pytest.approx(F.cross_entropy(-y, target).item(), rel=1e-6)


def test_paper_schedule():
    rates = [classic.paper_lr(p) for p in range(20)]
    assert rates == [5e-4] * 2 + [2e-4] * 3 + [1e-4] * 3 + [5e-5] * 4 + [1e-5] * 8


def test_sdlm_step_matches_a_hand_computation():
    # E(w) = 0.5 * (a w0^2 + b w1^2 + c w2^2), gradient (a w0, b w1, c w2), Hessian diagonal (a, b, c)
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    h = torch.tensor([4.0, 0.5, 0.0])
    opt = classic.SDLM([w], lr=0.1, mu=0.02)
    opt.set_curvature({w: h})
    loss = 0.5 * (h * w ** 2).sum() + 0.3 * w[2]  # a linear term so the third gradient is not 0
    loss.backward()
    grad = torch.tensor([4.0 * 1.0, 0.5 * -2.0, 0.3])
    opt.step()
    by_hand = torch.tensor([1.0 - 0.1 / (0.02 + 4.0) * grad[0],
                            -2.0 - 0.1 / (0.02 + 0.5) * grad[1],
                            0.5 - 0.1 / (0.02 + 0.0) * grad[2]])
    assert torch.allclose(w.detach(), by_hand, atol=1e-6), (w, by_hand)
    # a new curvature estimate (the next pass) and a new mu take effect at the next step
    opt.set_curvature({w: torch.tensor([1.0, 1.0, 1.0])})
    opt.param_groups[0]["mu"] = 1.0
    before = w.detach().clone()
    opt.step()  # same gradient
    assert torch.allclose(w.detach(), before - 0.1 / (1.0 + 1.0) * grad, atol=1e-6)


def test_gauss_newton_diagonal_by_hand_for_the_top_layer(net):
    x = torch.randn(5, 1, 32, 32)
    h = classic.gauss_newton_diagonal(net, x, torch.zeros(5, dtype=torch.long))
    assert set(h) == {n for n, _ in net.named_parameters()}
    assert all((v >= 0).all() and v.shape == p.shape for (n, p), v in zip(net.named_parameters(), h.values()))
    with torch.no_grad():  # F6: d2E/da^2 = f'(a)^2 * 2; bias input 1, weight input x_C5^2
        z = x
        for layer in net.stages()[:-1]:
            z = classic.squash(layer(z))
        z = z.flatten(1)
        d2a = 2 * classic.squash_derivative(net.F6(z)) ** 2
    assert torch.allclose(h["F6.bias"], d2a.mean(0), rtol=1e-4)
    assert torch.allclose(h["F6.weight"], (d2a[:, :, None] * z[:, None, :] ** 2).mean(0), rtol=1e-4, atol=1e-9)


def test_paper_scaling_levels():
    tr = data.load_split("mnist-sample").subset(50)
    x, _ = data.paper_scaling(tr).tensors()
    assert x.min().item() == pytest.approx(-0.1) and x.max().item() == pytest.approx(1.175)


def test_trains_with_fit_and_with_the_paper_schedule():
    tr, te = (data.paper_scaling(s) for s in data.load_splits("mnist-sample"))
    tr, te = tr.subset(512), te.subset(256)
    torch.manual_seed(0)
    net = models.create("classic")
    h = train.fit(net, tr, te, epochs=1, optimizer="adam", lr=2e-3, batch_size=32, device="cpu",
                  progress=False, loss_fn=classic.MAPLoss())
    assert math.isfinite(h.train_loss[0]) and 0 <= h.test_accuracy[0] <= 1
    torch.manual_seed(0)
    net = models.create("classic")
    h = classic.train_paper(net, tr, te, passes=2, batch_size=16, curvature_samples=100, lr_scale=0.02)
    assert len(h) == 2 and all(math.isfinite(v) for v in h.train_loss)


def test_cli_paper_schedule_rejects_other_models_and_lr(capsys):
    assert main(["train", "--model", "sequential", "--schedule", "paper", "--epochs", "1"]) == 1
    assert "--model classic" in capsys.readouterr().err
    assert main(["train", "--model", "classic", "--schedule", "paper", "--lr", "0.1", "--epochs", "1"]) == 1
    assert "--lr-scale" in capsys.readouterr().err


def test_recorded_runs_read_the_cli_json(tmp_path, capsys, monkeypatch):
    """The book's table of 20-pass runs comes from the CLI's own JSON, checked against its command."""
    name, what, command = classic.RECORDED_RUNS[0]
    assert command.split()[:5] == ["OMP_NUM_THREADS=1", "python", "-m", "lenet_course", "train"]
    assert "--epochs 20" in command and "--batch-size 1 " in command
    short = command.replace("--epochs 20", "--epochs 1").replace("--batch-size 1 ", "--batch-size 64 ")
    monkeypatch.setattr(classic, "RECORDED_RUNS", ((name, what, short),))
    assert main(short.split()[4:] + ["--no-progress"]) == 0  # the command itself, after the environment and "python -m"
    (tmp_path / name).write_text(capsys.readouterr().out)
    rows = classic.recorded_runs(tmp_path)
    assert [r["file"] for r in rows] == [name] and rows[0]["passes"] == 1 and rows[0]["what"] == what
    assert 0 <= rows[0]["test_error"] <= 100 and rows[0]["seconds_per_pass"] > 0
    table = classic.recorded_table(rows)
    assert table.count("\n") == 2 and f"{rows[0]['test_error']:.2f}" in table
    assert classic.recorded_runs(tmp_path / "absent") == []
    (tmp_path / name).write_text((tmp_path / name).read_text().replace('"init": "lecun"', '"init": "paper"'))
    with pytest.raises(ValueError, match=r"does not match the command said to produce it"):
        classic.recorded_runs(tmp_path)  # a file from another run is refused, not shown under this command


def test_the_books_recorded_runs_match_their_commands():
    rows = classic.recorded_runs(Path(__file__).parent.parent / "book" / "results")
    assert len(rows) >= 4 and all(r["passes"] == 20 for r in rows)
