import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from lenet_course import models, plots, train  # noqa: E402


def test_confusion_matrix_counts():
    preds = torch.tensor([0, 1, 1, 2, 2, 2])
    labels = torch.tensor([0, 1, 2, 2, 2, 0])
    m = plots.confusion_matrix(preds, labels, 3)
    assert m.tolist() == [[1, 0, 1], [0, 1, 0], [0, 1, 2]]
    assert m.sum() == 6


def test_every_plot_draws(tiny_splits):
    tr, te = tiny_splits
    h = train.History([1.0, 0.5], [0.5, 0.8], [0.9, 0.6], [0.6, 0.7], [1, 1], [10, 10])
    figs = [
        plots.curves([h, h], labels=["a", "b"]),
        plots.image_grid(tr.images[:10], tr.labels[:10], tr.classes, predictions=tr.labels[:10].flip(0)),
        plots.plot_confusion(plots.confusion_matrix(te.labels, te.labels, 10), te.classes, normalize=True),
        plots.filters(models.create("named").C1.weight),
        plots.feature_maps(torch.rand(6, 28, 28)),
    ]
    for fig in figs:
        assert fig.axes and all(ax.figure is fig for ax in fig.axes)
    curve_axes = figs[0].axes
    assert len(curve_axes[0].lines) == 4 and curve_axes[1].get_ylabel() == "accuracy (%)"
    wrong = [ax.title.get_color() for ax in figs[1].axes if ax.get_title()]
    assert "crimson" in wrong
    assert len([ax for ax in figs[3].axes if ax.images]) == 6
    plt.close("all")


def test_live_curves_outside_a_notebook_is_silent(tiny_splits):
    tr, te = tiny_splits
    h = train.fit(models.create("sequential"), tr, te, epochs=1, progress=False, live=True)
    assert len(h) == 1


def test_connection_table_marks_every_connection():
    from lenet_course import arch
    fig = plots.connection_table(arch.c3_matrix())
    assert sum(t.get_text() == "X" for t in fig.axes[0].texts) == 60
    plt.close(fig)
