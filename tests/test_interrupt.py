"""Faults and interruption: Ctrl-C during ``fit``, resuming from its checkpoint, a crash while
saving a checkpoint, an interrupted download. Nothing a user made may be lost or left half-written."""
from __future__ import annotations

import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from lenet_course import data, models, train
from conftest import synthetic_digits, write_idx

EPOCHS = 3


def fresh(seed=0, **kw):
    train.set_seed(seed)
    return models.create("sequential", **kw)


def same_numbers(a: train.History, b: train.History) -> bool:
    """Equal per-epoch figures (the wall-clock ones, seconds and images/s, differ between any two runs)."""
    return (a.train_loss == b.train_loss and a.train_accuracy == b.train_accuracy
            and a.test_loss == b.test_loss and a.test_accuracy == b.test_accuracy)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class InterruptAtStep:
    """A loss function that sends SIGINT to this process at a given training step, as Ctrl-C would."""

    def __init__(self, at_step: int | None) -> None:
        self.at_step, self.calls, self.loss = at_step, 0, torch.nn.CrossEntropyLoss()

    def __call__(self, out, y):
        self.calls += 1
        if self.calls == self.at_step:
            signal.raise_signal(signal.SIGINT)
        return self.loss(out, y)


@pytest.mark.parametrize("optimizer, kw", [("adam", {"batchnorm": True}), ("sgd", {})])
def test_ctrl_c_then_resume_gives_the_uninterrupted_result(tiny_splits, tmp_path, optimizer, kw):
    tr, te = tiny_splits  # 512 training images, batch 64: 8 steps an epoch
    settings = dict(epochs=EPOCHS, optimizer=optimizer, batch_size=64, seed=5, device="cpu", progress=False)
    whole = fresh(5, **kw)
    full = train.fit(whole, tr, te, **settings)
    assert len(full) == EPOCHS and not full.interrupted

    # Ctrl-C (a real SIGINT) at step 3 of epoch 2: the first epoch is complete and checkpointed
    ckpt = tmp_path / "run.pt"
    stopped = fresh(5, **kw)
    before = signal.getsignal(signal.SIGINT)
    with pytest.warns(UserWarning, match=r"interrupted after 1 complete epoch.*resume="):
        part = train.fit(stopped, tr, te, checkpoint=ckpt, loss_fn=InterruptAtStep(8 + 3), **settings)
    assert signal.getsignal(signal.SIGINT) is before  # the previous handler is back
    assert part.interrupted and len(part) == 1 and part.train_loss == full.train_loss[:1]
    assert ckpt.is_file() and not list(tmp_path.glob(".*.tmp"))
    _, info = train.load_checkpoint(ckpt)
    assert len(info["history"]["train_loss"]) == 1 and "optimizer" in info and "loader_rng" in info["fit"]

    # a fresh process would build a new model (other initial weights): resume makes them irrelevant
    resumed = fresh(99, **kw)
    rest = train.fit(resumed, tr, te, checkpoint=ckpt, resume=ckpt, **settings)
    assert not rest.interrupted and len(rest) == EPOCHS
    assert same_numbers(rest, full), (rest.train_loss, full.train_loss)
    assert same_weights(resumed, whole)
    # the checkpoint now holds all three epochs; resuming from it again has nothing left to do
    again = train.fit(fresh(7, **kw), tr, te, resume=ckpt, **settings)
    assert same_numbers(again, full)


def test_resume_refuses_other_settings_and_plain_checkpoints(tiny_splits, tmp_path):
    tr, te = tiny_splits
    ckpt = tmp_path / "run.pt"
    train.fit(fresh(), tr, te, epochs=1, batch_size=64, device="cpu", progress=False, checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"cannot resume from .*run\.pt: it was trained with "
                                         r"batch_size=64 \(this call: 128\)"):
        train.fit(fresh(), tr, te, epochs=2, lr=train.default_lr("adam", 64), batch_size=128, device="cpu",
                  progress=False, resume=ckpt)
    plain = train.save_checkpoint(tmp_path / "plain.pt", fresh())
    with pytest.raises(train.CheckpointError, match="cannot be resumed from: it holds weights but no training state"):
        train.fit(fresh(), tr, te, epochs=2, batch_size=64, device="cpu", progress=False, resume=plain)
    with pytest.raises(train.CheckpointError, match="holds a 'sequential' model, not the 'named' model"):
        train.fit(models.create("named"), tr, te, epochs=2, batch_size=64, device="cpu", progress=False,
                  resume=ckpt)


class InterruptedHalfway(torch.optim.SGD):
    """Plain SGD that updates one tensor at a time and receives Ctrl-C after the first tensor of
    step ``at``: without protection the weights would be left half updated."""

    def __init__(self, params, lr, at: int) -> None:
        super().__init__(params, lr=lr)
        self.at, self.calls, self.after = at, 0, []

    @torch.no_grad()
    def step(self, closure=None):
        self.calls += 1
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        for i, p in enumerate(params):
            p.add_(p.grad, alpha=-self.param_groups[0]["lr"])
            if self.calls == self.at and i == 0:
                signal.raise_signal(signal.SIGINT)
        self.after.append([p.detach().clone() for p in params])  # the weights after each whole step


def test_ctrl_c_inside_the_optimizer_step_leaves_whole_steps_only(tiny_splits, monkeypatch):
    tr, te = tiny_splits
    made = []

    def make_optimizer(name, params, lr, weight_decay=0.0):
        made.append(InterruptedHalfway(params, lr, at=5))
        return made[0]

    monkeypatch.setattr(train, "make_optimizer", make_optimizer)
    model = fresh()
    with pytest.warns(UserWarning, match="interrupted after 0 complete epoch"):
        h = train.fit(model, tr, te, epochs=2, optimizer="sgd", batch_size=64, device="cpu", progress=False)
    opt = made[0]
    assert h.interrupted and len(h) == 0 and opt.calls == 5  # stopped right after step 5, nothing more
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), opt.after[-1]))  # step 5 wholly applied

    # the control: the same optimizer outside fit, where nothing holds Ctrl-C back, is left half updated
    control = fresh()
    bare = InterruptedHalfway(control.parameters(), 0.1, at=1)
    control(te.tensors()[0][:8]).sum().backward()
    before = [p.detach().clone() for p in control.parameters()]
    with pytest.raises(KeyboardInterrupt):
        bare.step()
    changed = [not torch.equal(p, q) for p, q in zip(control.parameters(), before)]
    assert changed[0] and not any(changed[1:])


def test_fit_outside_the_main_thread_trains_and_leaves_signals_alone(tiny_splits):
    tr, te = tiny_splits
    before, out = signal.getsignal(signal.SIGINT), {}

    def work():
        out["h"] = train.fit(fresh(), tr, te, epochs=1, batch_size=128, device="cpu", progress=False)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert len(out["h"]) == 1 and signal.getsignal(signal.SIGINT) is before


# same seed, same device, same history: tests/test_train.py::test_same_seed_same_history


# --- checkpoints are written atomically -----------------------------------------------------

def _crashing_save(monkeypatch, exc: BaseException):
    """torch.save that writes part of the file, then fails (disk full, Ctrl-C, power cut...)."""
    real = torch.save

    def save(obj, f, *args, **kwargs):
        import io
        buf = io.BytesIO()
        real(obj, buf, *args, **kwargs)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise exc

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "ctrl-c"])
def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch, exc):
    path = train.save_checkpoint(tmp_path / "m.pt", fresh(1))
    good = path.read_bytes()
    _crashing_save(monkeypatch, exc)
    with pytest.raises(type(exc)):
        train.save_checkpoint(path, fresh(2))
    with pytest.raises(type(exc)):
        train.save_checkpoint(tmp_path / "new.pt", fresh(2))
    assert path.read_bytes() == good and not (tmp_path / "new.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temporary files left
    monkeypatch.undo()
    model, _ = train.load_checkpoint(path)
    assert same_weights(model, fresh(1))


def test_a_crash_while_fit_saves_leaves_the_last_good_epoch(tiny_splits, tmp_path, monkeypatch):
    tr, te = tiny_splits
    ckpt = tmp_path / "run.pt"
    real_save = train.save_checkpoint
    calls = {"n": 0}

    def save_then_crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            _crashing_save(monkeypatch, OSError(28, "No space left on device"))
        return real_save(*args, **kwargs)

    monkeypatch.setattr(train, "save_checkpoint", save_then_crash)
    with pytest.raises(OSError, match="No space left"):
        train.fit(fresh(), tr, te, epochs=3, batch_size=64, device="cpu", progress=False, checkpoint=ckpt)
    monkeypatch.undo()
    _, info = train.load_checkpoint(ckpt)
    assert len(info["history"]["train_loss"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


# --- downloads ------------------------------------------------------------------------------

@pytest.mark.parametrize("exc", [KeyboardInterrupt(), ConnectionResetError("connection reset by peer")],
                         ids=["ctrl-c", "network"])
def test_an_interrupted_download_leaves_no_partial_files(tmp_path, monkeypatch, exc):
    def partial_download(self):  # one whole file, one half written, then the interruption
        raw = Path(self.raw_folder)
        raw.mkdir(parents=True, exist_ok=True)
        images, labels = synthetic_digits(100, 0)
        write_idx(raw / "train-labels-idx1-ubyte", labels)
        write_idx(raw / "train-images-idx3-ubyte", images)
        whole = (raw / "train-images-idx3-ubyte").read_bytes()
        (raw / "train-images-idx3-ubyte").write_bytes(whole[: len(whole) // 2])
        raise exc

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", partial_download)
    root = tmp_path / "root"
    expected = KeyboardInterrupt if isinstance(exc, KeyboardInterrupt) else data.DatasetUnavailable
    with pytest.raises(expected):
        data.load("mnist", root=root)
    assert [p for p in root.rglob("*")] == []  # nothing under the data root, hidden staging folder included
    with pytest.raises(data.DatasetUnavailable, match="is not in .* and download=False"):
        data.load("mnist", root=root, download=False)  # later runs do not mistake a fragment for the dataset


def test_a_completed_download_is_moved_into_place(tmp_path, monkeypatch, mnist_root):
    def fake_download(self):  # copies the fixture's files, as a real download would fetch them
        raw = Path(self.raw_folder)
        raw.mkdir(parents=True, exist_ok=True)
        for f in (mnist_root / "MNIST" / "raw").iterdir():
            (raw / f.name).write_bytes(f.read_bytes())

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    root = tmp_path / "fresh"
    ds = data.load("mnist", root=root)
    assert len(ds) == 600 and np.array_equal(ds.data.numpy(), synthetic_digits(600, 0)[0])
    assert sorted(p.name for p in root.iterdir()) == ["MNIST"]  # the staging folder is gone
