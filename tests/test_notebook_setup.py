import torch

from lenet_course import notebook


def test_setup_falls_back_to_the_embedded_sample_with_one_line(capsys):
    course = notebook.setup("mnist", seed=1)
    out = capsys.readouterr().out.strip().splitlines()
    # in this test's empty data root, full MNIST is never there and its download address is closed
    assert course.dataset == "mnist-sample" and course.substituted
    assert len(out) == 1 and out[0].startswith("NOTE: mnist is not available here") and "mnist-sample" in out[0]
    assert len(course.train) == 8000 and course.device == torch.device(course.device.type)


def test_setup_cifar_falls_back_to_three_channels(capsys):
    course = notebook.setup("cifar10", channels=3, quiet=True)
    assert course.dataset in {"fashion-mnist", "mnist-sample"}
    assert course.train.images.shape[1] == 3 and capsys.readouterr().out == ""


def test_setup_without_data_and_unknown_names():
    assert notebook.setup(None) is None
    import pytest
    with pytest.raises(ValueError, match="unknown dataset 'emnist'"):
        notebook.setup("emnist")
