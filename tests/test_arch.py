import pytest
import torchinfo

from lenet_course import arch, models


def test_output_size_formula():
    assert arch.conv_output_size(32, 5) == 28          # C1
    assert arch.conv_output_size(28, 2, stride=2) == 14  # S2
    assert arch.conv_output_size(14, 5) == 10          # C3
    assert arch.conv_output_size(28, 5, padding=2) == 28  # "same" padding
    assert arch.conv_output_size(32, 3, stride=2, padding=1) == 16
    with pytest.raises(ValueError, match="does not fit"):
        arch.conv_output_size(4, 5)
    with pytest.raises(ValueError, match="stride must be an integer >= 1, got 0"):
        arch.conv_output_size(32, 5, stride=0)


def rows_by_name(model):
    return {r.name: r for r in arch.layer_table(model)}


def test_named_model_matches_hand_derived_values():
    rows = rows_by_name(models.create("named"))
    # C1: 6 maps x 28x28 units x (5*5 inputs + bias); parameters 6 x (25 + 1)
    assert (rows["C1"].parameters, rows["C1"].connections) == (156, 122_304)
    assert rows["C1"].output_shape == (6, 28, 28)
    assert rows["S2"].output_shape == (6, 14, 14)
    assert rows["C3"].output_shape == (16, 10, 10)  # 16 maps of 10x10 (a full 6->16 convolution here)
    assert (rows["C3"].parameters, rows["C3"].connections) == (16 * (6 * 25 + 1), 16 * 100 * (150 + 1))
    assert rows["S4"].output_shape == (16, 5, 5)
    assert (rows["C5"].parameters, rows["C5"].connections) == (48_120, 48_120)  # 120 x (16*5*5 = 400 + 1)
    assert (rows["F6"].parameters, rows["F6"].connections) == (10_164, 10_164)  # 84 x (120 + 1)
    assert rows["OUTPUT"].parameters == 850
    assert arch.totals(list(rows.values()))[0] == 61_706


@pytest.mark.parametrize("name,kwargs", [("sequential", {}), ("sequential", {"batchnorm": True}),
                                         ("named", {}), ("blocks", {}), ("tanh-avgpool", {}),
                                         ("cifar", {}), ("functional", {})])
def test_parameters_agree_with_torchinfo(name, kwargs):
    model = models.create(name, **kwargs)
    size = (model.in_channels, 32, 32)
    rows = arch.layer_table(model, size)
    info = torchinfo.summary(model, input_size=(1, *size), verbose=0)
    assert arch.totals(rows)[0] == info.trainable_params
    by_layer = {r.name: r.parameters for r in rows}
    for layer in info.summary_list:
        if layer.is_leaf_layer and layer.trainable_params:
            qualified = [n for n, m in model.named_modules() if m is layer.module][0]
            assert by_layer[qualified] == layer.trainable_params, qualified


def test_pooling_and_batchnorm_connections():
    rows = arch.layer_table(models.create("sequential", batchnorm=True))
    pool = next(r for r in rows if r.kind == "MaxPool2d")
    assert pool.connections == 6 * 14 * 14 * 4 and pool.parameters == 0
    bn = next(r for r in rows if r.kind == "BatchNorm2d")
    assert bn.connections == 6 * 28 * 28 and bn.parameters == 12
    relu = next(r for r in rows if r.kind == "ReLU")
    assert relu.connections == 0


def test_format_table_has_totals_line():
    text = arch.format_table(arch.layer_table(models.create("sequential")))
    assert text.splitlines()[-1].split()[:2] == ["total", "61,706"]


def test_c3_table_is_the_papers_table_one():
    m = arch.c3_matrix()
    assert m.shape == (6, 16)
    assert m.sum(0).tolist() == [3] * 6 + [4] * 9 + [6]
    # C3 with only these connections: sum over maps of (inputs x 5 x 5 + bias) = the paper's 1,516
    assert sum(len(t) * 25 + 1 for t in arch.C3_TABLE) == 1_516
    assert m[:, 12].nonzero().flatten().tolist() == [0, 1, 3, 4]
