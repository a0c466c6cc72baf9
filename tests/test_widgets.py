"""The explorers' logic, headless: the shape calculator and the hyperparameter explorer."""
from __future__ import annotations

import dataclasses
import math

import matplotlib
import numpy as np
import pytest

from lenet_course import train, widgets
from lenet_course.widgets import Explorer, RunConfig, RunResult

matplotlib.use("Agg")

# small and quick: 500 images for one epoch learn MNIST digits well above chance (10 %)
QUICK = RunConfig(lr=3e-3, batch_size=32, epochs=1, train_size=500)
# momentum SGD at lr 10 with BatchNorm overflows within a few steps (stops early, so it is cheap)
HUGE = RunConfig(lr=10.0, optimizer="sgd", batchnorm=True, epochs=1, train_size=2000)


@pytest.fixture(scope="module")
def splits():
    from lenet_course import data
    tr, te = data.load_splits("mnist-sample")
    return tr, te.subset(300)


# --- shape calculator -----------------------------------------------------------------------

def test_shape_report_lenet_first_layer():
    assert widgets.shape_report(32, 5, 1, 0) == "(W - K + 2P) / S + 1 = (32 - 5 + 2*0) / 1 + 1 = 28"


def test_shape_report_floors_and_says_what_is_skipped():
    text = widgets.shape_report(32, 5, 2, 0)  # 27 / 2 + 1 = 14.5
    assert text.startswith("(W - K + 2P) / S + 1 = (32 - 5 + 2*0) / 2 + 1 = 14 ")
    assert "floor of 14.50" in text and "last 1 column(s)" in text


def test_shape_report_impossible_kernel():
    assert widgets.shape_report(3, 5).startswith("no output:")


def test_shape_calculator_shows_the_report():
    box = widgets.shape_calculator()
    assert "= 28" in box.children[-1].value
    box.children[1].value = 3  # kernel slider
    assert "= 30" in box.children[-1].value


# --- configuration --------------------------------------------------------------------------

@pytest.mark.parametrize("change, expected, given", [
    ({"lr": 100.0}, "between 1e-05 and 10", "got 100"),
    ({"lr": 0.0}, "between 1e-05 and 10", "got 0"),
    ({"lr": float("nan")}, "between 1e-05 and 10", "got nan"),
    ({"batch_size": 0}, "between 1 and 4096", "got 0"),
    ({"epochs": 0}, "between 1 and 50", "got 0"),
    ({"epochs": 500}, "between 1 and 50", "got 500"),
    ({"train_size": 0}, "at least 1", "got 0"),
    ({"seed": -1}, "at least 0", "got -1"),
    ({"optimizer": "adagrad"}, "one of ['adam', 'adamw', 'sgd', 'rmsprop']", "got 'adagrad'"),
    ({"activation": "gelu"}, "one of ['relu', 'tanh', 'sigmoid']", "got 'gelu'"),
    ({"pooling": "min"}, "one of ['max', 'avg']", "got 'min'"),
])
def test_config_out_of_range_names_expected_and_given(change, expected, given):
    with pytest.raises(ValueError) as info:
        RunConfig(**change)
    assert expected in str(info.value) and given in str(info.value)
    assert str(info.value).startswith(next(iter(change)))


@pytest.mark.parametrize("change", [{"lr": "fast"}, {"batch_size": 64.0}, {"batchnorm": "yes"}, {"epochs": True}])
def test_config_wrong_types(change):
    with pytest.raises(TypeError, match=next(iter(change))):
        RunConfig(**change)


def test_config_defaults_variants_and_numpy_values():
    assert RunConfig().optimizer in train.OPTIMIZERS
    cfg = RunConfig(batch_size=np.int64(128), lr=np.float32(0.5))
    assert type(cfg.batch_size) is int and type(cfg.lr) is float
    with pytest.raises(ValueError, match="got 20"):
        dataclasses.replace(cfg, lr=20.0)  # a variant is checked again


# --- run_experiment, sweep -----------------------------------------------------------------

def test_run_experiment_learns_above_chance(splits):
    result = widgets.run_experiment(QUICK, *splits)
    assert result.ok, result.error
    assert len(result.history) == 1 and result.config is QUICK
    assert result.test_accuracy == result.history.test_accuracy[-1] > 0.3
    assert result.test_loss == result.history.test_loss[-1] < math.log(10)


def test_run_experiment_is_reproducible(splits):
    small = dataclasses.replace(QUICK, train_size=100)
    a, b = widgets.run_experiment(small, *splits), widgets.run_experiment(small, *splits)
    assert a.history.train_loss == b.history.train_loss


def test_diverging_run_returns_an_error_instead_of_raising(splits):
    result = widgets.run_experiment(HUGE, *splits)
    assert not result.ok and result.error.startswith("diverged:")
    assert "learning rate 10" in result.error and result.test_accuracy is None


def test_non_finite_loss_is_reported(splits, monkeypatch):
    def fit(*args, **kwargs):
        raise FloatingPointError("loss became nan at epoch 1, step 3 (learning rate 0.5); try a smaller learning rate")
    monkeypatch.setattr(train, "fit", fit)
    result = widgets.run_experiment(RunConfig(train_size=100), *splits)
    assert result.error == "diverged: loss became nan at epoch 1, step 3 (learning rate 0.5); try a smaller learning rate"


def test_finite_blow_up_counts_as_divergence(splits, monkeypatch):
    def fit(*args, **kwargs):  # huge weights, dead units: a finite but absurd loss, accuracy at chance
        return train.History(train_loss=[3e12, 2.3], train_accuracy=[0.1, 0.1], test_loss=[2.3, 2.3],
                             test_accuracy=[0.1, 0.1])
    monkeypatch.setattr(train, "fit", fit)
    result = widgets.run_experiment(RunConfig(train_size=100), *splits)
    assert result.error.startswith("diverged: the mean training loss reached 3e+12 in epoch 1")
    assert result.history is not None  # kept for a look


@pytest.mark.parametrize("config, message", [
    ({"lr": 100.0}, "invalid settings: lr must be between 1e-05 and 10, got 100"),
    ({"momentum": 0.9}, "invalid settings: unknown setting(s) ['momentum']"),
    (RunConfig(train_size=10**6), "invalid settings: train_size must be at most 8000"),
    ("adam", "invalid settings: config must be a RunConfig or a mapping"),
])
def test_invalid_inputs_return_an_error(splits, config, message):
    result = widgets.run_experiment(config, *splits)
    assert result.error.startswith(message) and result.history is None


def test_sweep_keeps_failed_runs_in_order(splits):
    results = widgets.sweep([dataclasses.replace(QUICK, train_size=200), {"lr": 99.0}], *splits)
    assert [r.ok for r in results] == [True, False]
    assert "got 99" in results[1].error


# --- table, labels, plot -------------------------------------------------------------------

def _fake(acc: float, loss: float, **settings) -> RunResult:
    h = train.History(train_loss=[1.0, loss], train_accuracy=[0.5, acc], test_loss=[1.1, loss],
                      test_accuracy=[0.5, acc])
    return RunResult(RunConfig(**settings), h, acc, loss)


def test_results_table_rows_and_errors():
    results = [_fake(0.8123, 0.5234), _fake(0.9, 0.3, activation="tanh", pooling="avg", batchnorm=True),
               RunResult(RunConfig(lr=10.0, optimizer="sgd"), error="diverged: loss became nan")]
    lines = widgets.results_table(results).splitlines()
    assert lines[0].split() == ["#", "optimizer", "lr", "batch", "activation", "pooling", "BN", "epochs", "train",
                                "test", "acc", "test", "loss"]
    assert set(lines[1]) == {"-", " "} and len(lines) == 5
    assert lines[2].split() == ["1", "adam", "0.001", "64", "relu", "max", "no", "2", "2000", "81.2", "%", "0.523"]
    assert lines[3].split()[4:7] == ["tanh", "avg", "yes"] and lines[3].split()[-3:] == ["90.0", "%", "0.300"]
    assert lines[4].split()[:3] == ["3", "sgd", "10"] and lines[4].endswith("error: diverged: loss became nan")
    # aligned: every settings column starts at the same place in each line
    starts = [line.index("  2000") for line in (lines[2], lines[3], lines[4])]
    assert len(set(starts)) == 1
    assert widgets.results_table([]) == "no runs yet"
    only_errors = widgets.results_table(results[2:]).splitlines()
    assert len(only_errors) == 3 and only_errors[2].startswith("1  sgd")


def test_results_table_without_test_split():
    lines = widgets.results_table([RunResult(RunConfig(), train.History([1.0], [0.5]))]).splitlines()
    assert lines[2].split()[-2:] == ["-", "-"]


def test_labels_name_only_what_differs():
    results = [_fake(0.8, 0.5), _fake(0.8, 0.5, lr=0.01), _fake(0.8, 0.5, lr=0.01, batchnorm=True)]
    assert widgets.run_labels(results) == ["#1 lr=0.001 no BN", "#2 lr=0.01 no BN", "#3 lr=0.01 BN"]
    assert widgets.run_labels(results[1:], numbers=[2, 3]) == ["#2 no BN", "#3 BN"]
    assert widgets.run_labels(results[:1]) == ["#1"]


def test_plot_runs_draws_runs_that_finished():
    import matplotlib.pyplot as plt
    blown_up = _fake(0.1, 1e12, lr=10.0, optimizer="sgd")
    blown_up.error = "diverged: the mean training loss reached 1e+12"
    results = [_fake(0.8, 0.5), RunResult(RunConfig(lr=10.0), error="diverged"), _fake(0.9, 0.4, lr=0.01), blown_up]
    fig = widgets.plot_runs(results)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["#1 lr=0.001", "#3 lr=0.01"]
    assert len(fig.axes[0].get_lines()) == 4 and max(fig.axes[0].get_lines()[0].get_ydata()) < 2  # train + test each
    plt.close(fig)
    assert widgets.plot_runs(results[1:2]) is None and widgets.plot_runs([]) is None


# --- the panel, headless --------------------------------------------------------------------

def _texts(explorer) -> list[str]:
    return [o["text"] for o in explorer.output.outputs if o["output_type"] == "stream"]


def _has_figure(explorer) -> bool:
    return any("image/png" in o.get("data", {}) for o in explorer.output.outputs)


def test_explorer_widgets_start_at_the_config(splits):
    ex = Explorer(*splits, config=HUGE)
    assert ex.config() == HUGE
    assert (ex.lr.value, ex.optimizer.value, ex.batchnorm.value, ex.train_size.value) == (10.0, "sgd", True, 2000)
    assert 8000 in ex.train_size.options  # the whole split is offered
    assert _texts(ex) == ["no runs yet\n"] and not _has_figure(ex)
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()
    ex.optimizer.value = "adam"
    assert "usual for adam at batch 64: 1.0e-03" in ex.hint.value


def test_explorer_runs_shows_errors_and_stays_usable(splits):
    ex = Explorer(*splits)
    ex.lr.value, ex.batch_size.value, ex.epochs.value, ex.train_size.value = 3e-3, 32, 1, 500
    first = ex.train_clicked()
    assert first.ok and ex.results == [first] and first.config == QUICK
    assert "run #1: test accuracy" in ex.status.value
    assert _has_figure(ex) and "\n1  adam" in _texts(ex)[0]

    # a diverging run: an error line in the panel, no exception, the button usable again
    ex.optimizer.value, ex.lr.value, ex.batchnorm.value, ex.train_size.value = "sgd", 10.0, True, 2000
    ex.batch_size.value = 64
    failed = ex.train_clicked()
    assert not failed.ok and "run #2 failed: diverged" in ex.status.value and "crimson" in ex.status.value
    assert "error: diverged" in _texts(ex)[0].splitlines()[3]
    assert not ex.train_button.disabled

    # a good run after it still works, and the figure draws the two runs that trained
    ex.optimizer.value, ex.lr.value, ex.batchnorm.value, ex.train_size.value = "adam", 3e-3, False, 500
    ex.batch_size.value = 32
    ex.pooling.value = "avg"
    third = ex.train_clicked()
    assert third.ok and len(ex.results) == 3 and third.test_accuracy > 0.2
    table = _texts(ex)[0].splitlines()
    assert len(table) == 5 and table[4].split()[:6] == ["3", "adam", "0.003", "32", "relu", "avg"]
    assert _has_figure(ex)

    ex.clear_button.click()  # the buttons are wired to the handlers
    assert ex.results == [] and _texts(ex) == ["no runs yet\n"] and not _has_figure(ex) and ex.status.value == ""


def test_explorer_train_button_calls_the_handler(splits, monkeypatch):
    ex = Explorer(*splits, results=[_fake(0.8, 0.5)])
    assert _has_figure(ex) and _texts(ex)[0].splitlines()[2].startswith("1  adam")
    calls = []
    monkeypatch.setattr(ex, "train_clicked", lambda: calls.append(1))
    ex.train_button.click()
    assert calls == [1]


def test_explorer_shows_an_unexpected_failure_and_stays_usable(splits, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")
    monkeypatch.setattr(widgets, "run_experiment", boom)
    ex = Explorer(*splits)
    result = ex.train_clicked()
    assert result.error == "RuntimeError: CUDA out of memory" and result.config == ex.config()
    assert "run #1 failed: RuntimeError" in ex.status.value and not ex.train_button.disabled
    assert "error: RuntimeError: CUDA out of memory" in _texts(ex)[0] and not _has_figure(ex)
    ex.lr.value = 100.0  # clamped by the slider to its maximum, 10
    assert ex.config().lr == 10.0
