import math
import pickle
import warnings

import pytest
import torch

from lenet_course import data, models, train
from conftest import needs_fashion


def fresh(name="sequential", seed=0, **kw):
    train.set_seed(seed)
    return models.create(name, **kw)


def test_fit_returns_history_per_epoch(tiny_splits):
    tr, te = tiny_splits
    h = train.fit(fresh(), tr, te, epochs=2, batch_size=64, progress=False)
    assert len(h) == 2 and len(h.test_accuracy) == 2 and not h.interrupted
    assert all(s > 0 for s in h.seconds) and all(v > 0 for v in h.images_per_s)
    assert h.rows()[1]["epoch"] == 2 and set(h.rows()[0]) >= {"train_loss", "test_accuracy", "seconds"}
    assert train.History.from_dict(h.to_dict()) == h


def test_same_seed_same_history(tiny_splits):
    tr, te = tiny_splits
    runs = [train.fit(fresh(seed=3), tr, te, epochs=2, batch_size=32, seed=3, progress=False) for _ in range(2)]
    assert runs[0].train_loss == runs[1].train_loss and runs[0].test_accuracy == runs[1].test_accuracy
    other = train.fit(fresh(seed=3), tr, te, epochs=2, batch_size=32, seed=4, progress=False)
    assert other.train_loss != runs[0].train_loss


def test_fit_accepts_a_torchvision_dataloader(tiny_splits):
    tr, te = tiny_splits
    x, y = tr.tensors()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True)
    h = train.fit(fresh(), loader, te, epochs=1, progress=False)
    assert len(h) == 1 and 0 <= h.test_accuracy[0] <= 1


@needs_fashion
def test_short_fit_learns_fashion_mnist():
    tr, te = data.load_splits("fashion-mnist")
    h = train.fit(fresh(), tr.subset(2000), te.subset(1000), epochs=3, progress=False)
    assert h.test_accuracy[-1] > 0.6  # chance is 0.1
    assert h.train_loss[-1] < h.train_loss[0]


def test_short_fit_learns_mnist_sample(tiny_splits):
    tr, te = data.load_splits("mnist-sample")
    h = train.fit(fresh(), tr.subset(2000), te, epochs=3, progress=False)
    assert h.test_accuracy[-1] > 0.8


def test_evaluate_and_predict(tiny_splits):
    tr, te = tiny_splits
    model = fresh()
    scores = train.evaluate(model, te, device="cpu")
    logits, labels = train.predict(model, te, device="cpu")
    assert logits.shape == (256, 10) and torch.equal(labels, te.labels)
    assert math.isclose(scores["accuracy"], (logits.argmax(1) == labels).float().mean().item())
    assert scores["loss"] > 0


def test_non_finite_loss_names_epoch_step_and_lr(tiny_splits):
    tr, te = tiny_splits
    with pytest.raises(FloatingPointError, match=r"at epoch \d+, step \d+ \(learning rate 1e\+06\)"):
        train.fit(fresh("sequential"), tr, te, epochs=3, optimizer="sgd", lr=1e6, batch_size=32, progress=False)


@pytest.mark.parametrize("kwargs,match", [
    ({"lr": 0}, "learning rate must be a positive finite number, got 0"),
    ({"lr": -0.1}, "got -0.1"),
    ({"lr": float("nan")}, "got nan"),
    ({"lr": float("inf")}, "got inf"),
    ({"epochs": 0}, "epochs must be a positive integer, got 0"),
    ({"epochs": -2}, "epochs must be a positive integer, got -2"),
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ({"batch_size": -1}, "batch_size must be a positive integer, got -1"),
    ({"batch_size": 10_000}, "batch_size 10000 is larger than the dataset"),
    ({"optimizer": "lbfgs"}, r"unknown optimizer 'lbfgs'; expected one of \['adam', 'adamw', 'sgd', 'rmsprop'\]"),
    ({"device": "tpu"}, r"unknown device 'tpu'; expected one of \['auto', 'cpu', 'cuda', 'mps'\]"),
    ({"stop_at": 90}, "stop_at must be a test accuracy between 0 and 1, got 90"),
    ({"stop_at": 0.9, "test": None}, "stop_at needs test data"),
])
def test_fit_rejects_bad_hyperparameters(tiny_splits, kwargs, match):
    tr, te = tiny_splits
    with pytest.raises(ValueError, match=match):
        train.fit(fresh(), tr, **{"test": te, "epochs": 1, "progress": False, **kwargs})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_device_is_a_clear_error():
    with pytest.raises(RuntimeError, match="'cuda' was asked for but CUDA is not available"):
        train.pick_device("cuda")
    assert train.pick_device("cpu") == torch.device("cpu")
    assert train.pick_device("auto").type in {"cpu", "mps"}


def test_checkpoint_round_trip(tmp_path, tiny_splits):
    tr, te = tiny_splits
    model = fresh("sequential", batchnorm=True)
    h = train.fit(model, tr, te, epochs=1, progress=False, checkpoint=tmp_path / "run.pt")
    path = train.save_checkpoint(tmp_path / "m.pt", model, history=h, data=tr)
    loaded, info = train.load_checkpoint(path)
    assert loaded.config == {"name": "sequential", "batchnorm": True}
    assert info["dataset"] == "mnist-sample" and info["mean"] == list(tr.mean)
    assert train.History.from_dict(info["history"]) == h
    x = te.tensors()[0][:8]
    assert torch.equal(loaded.eval()(x), model.eval()(x))
    per_epoch, info2 = train.load_checkpoint(tmp_path / "run.pt", models.create("sequential", batchnorm=True))
    assert "optimizer" in info2 and len(info2["history"]["train_loss"]) == 1
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_checkpoint_refuses_other_architecture_and_num_classes(tmp_path):
    path = train.save_checkpoint(tmp_path / "m.pt", fresh("named"))
    with pytest.raises(train.CheckpointError, match=r"holds a 'named' model, not the 'sequential' model given"):
        train.load_checkpoint(path, models.create("sequential"))
    with pytest.raises(train.CheckpointError, match=r"not the 'named' \(num_classes=5\) model"):
        train.load_checkpoint(path, models.create("named", num_classes=5))


def test_checkpoint_refuses_garbage_truncated_and_foreign_files(tmp_path):
    good = train.save_checkpoint(tmp_path / "m.pt", fresh())
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(train.CheckpointError, match="not a readable checkpoint"):
        train.load_checkpoint(cut)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(train.CheckpointError, match="not a readable checkpoint"):
        train.load_checkpoint(text)
    plain = tmp_path / "plain.pt"
    torch.save(fresh().state_dict(), plain)
    with pytest.raises(train.CheckpointError, match="not a lenet_course checkpoint"):
        train.load_checkpoint(plain)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        train.load_checkpoint(tmp_path / "missing.pt")


class _RunsCode:
    """Unpickling this calls a function: what a malicious checkpoint would do."""

    def __reduce__(self):
        return (pytest.fail, ("unpickling ran code: weights_only loading was bypassed",))


def test_checkpoint_with_pickled_code_is_refused_not_run(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": train.CHECKPOINT_FORMAT, "model": {"name": "sequential"}, "payload": _RunsCode()}, path)
    with pytest.raises(train.CheckpointError, match="refused"):
        train.load_checkpoint(path)


def test_save_checkpoint_needs_a_registry_model(tmp_path):
    with pytest.raises(ValueError, match="models.create"):
        train.save_checkpoint(tmp_path / "x.pt", models.LeNet5())


def test_keyboard_interrupt_returns_history_so_far(tiny_splits, monkeypatch):
    tr, te = tiny_splits
    model = fresh()
    calls = {"n": 0}
    real = train.evaluate

    def evaluate_then_interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", evaluate_then_interrupt)
    with pytest.warns(UserWarning, match="interrupted after 1 complete epoch"):
        h = train.fit(model, tr, te, epochs=5, progress=False)
    assert h.interrupted and len(h.test_accuracy) == 1


def test_default_learning_rate_scales_with_batch():
    assert train.default_lr("adam", 64) == pytest.approx(1e-3)
    assert train.default_lr("adam", 128) > train.default_lr("adam", 64)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_fused_optimizer_on_cpu_takes_the_same_steps_as_the_plain_one(name):
    """make_optimizer fuses Adam, AdamW and SGD on a CPU; the weights follow the unfused rule."""
    # no BatchNorm: a conv bias just before BN gets a gradient of rounding noise only, which Adam blows up to lr
    nets = [fresh() for _ in range(2)]
    fused = train.make_optimizer(name, nets[0].parameters(), 1e-2, weight_decay=1e-4)
    assert fused.defaults["fused"] is True
    kw = {"momentum": 0.9} if name == "sgd" else {}
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[name]
    plain = cls(nets[1].parameters(), lr=1e-2, weight_decay=1e-4, **kw)
    assert not plain.defaults.get("fused")
    x, y = torch.randn(16, 1, 32, 32), torch.randint(0, 10, (16,))
    for _ in range(5):
        for net, opt in zip(nets, (fused, plain)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    moved = [not torch.equal(p, q) for p, q in zip(nets[0].parameters(), fresh().parameters())]
    assert all(moved)
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_optimizer_is_not_fused_where_torch_cannot_fuse():
    assert "fused" not in train.make_optimizer("rmsprop", fresh().parameters(), 1e-3).defaults
    halves = fresh().half()  # float16 is floating, so Adam still fuses; integer tensors never do
    assert train.make_optimizer("adam", halves.parameters(), 1e-3).defaults["fused"] is True
    assert not train._fusable([torch.zeros(2, dtype=torch.int64)]) and not train._fusable([])


def test_stop_at_ends_training_after_the_first_epoch_that_reaches_it(tiny_splits):
    tr, te = tiny_splits
    full = train.fit(fresh(), tr, te, epochs=4, batch_size=32, progress=False)
    target = full.test_accuracy[1] - 1e-9  # reached after epoch 2 (perhaps already after epoch 1)
    first = next(i for i, a in enumerate(full.test_accuracy) if a >= target) + 1
    stopped = train.fit(fresh(), tr, te, epochs=4, batch_size=32, progress=False, stop_at=target)
    assert len(stopped) == first <= 2 and stopped.test_accuracy == full.test_accuracy[:first]
    never = train.fit(fresh(), tr, te, epochs=2, batch_size=32, progress=False, stop_at=1.0)
    assert len(never) == 2 or never.test_accuracy[-1] == 1.0
