"""The main job: training runs, the run folder, and resume equal to an uninterrupted run."""

import json
import os

import numpy as np
import pytest

from retrograd.training.image import TrainConfig, load_image_data, train
from retrograd.utils.serialization import load

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")


def _quick(tmp_path, name, **kw):
    options = dict(data="digits", model="resnet-digits", epochs=2, batch_size=32,
                   limit_train=192, progress=False, out=str(tmp_path / name))
    options.update(kw)
    return TrainConfig(**options)


def _state(summary):
    return {k: v.numpy().copy() for k, v in summary["model"].state_dict().items()}


def test_run_folder_holds_checkpoint_metrics_curves_and_report(tmp_path):
    summary = train(_quick(tmp_path, "run", epochs=1))
    out = tmp_path / "run"
    for name in ("checkpoint.safetensors", "metrics.json", "curves.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"][0]["epoch"] == 1
    assert 0.0 <= metrics["history"][0]["test_acc"] <= 1.0
    assert summary["test_acc"] == metrics["history"][0]["test_acc"]
    assert "<img" in (out / "report.html").read_text()


def test_resume_continues_bit_identically(tmp_path):
    uninterrupted = _state(train(_quick(tmp_path, "full", epochs=3)))
    train(_quick(tmp_path, "part", epochs=3), stop_after=1)
    resumed = _state(train(TrainConfig(resume=str(tmp_path / "part" / "checkpoint.safetensors"),
                                       progress=False)))
    assert uninterrupted.keys() == resumed.keys()
    for key in uninterrupted:
        assert np.array_equal(uninterrupted[key], resumed[key]), key
    history = load(str(tmp_path / "part" / "checkpoint.safetensors"))["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_a_different_seed_gives_different_weights(tmp_path):
    a = _state(train(_quick(tmp_path, "a", epochs=1, seed=0)))
    b = _state(train(_quick(tmp_path, "b", epochs=1, seed=1)))
    assert any(not np.array_equal(a[k], b[k]) for k in a)


def test_lenet_trains_on_the_mnist_sample(tmp_path):
    summary = train(TrainConfig(data=f"mnist:{DATA_DIR}/mnist", model="lenet", epochs=1,
                                batch_size=20, progress=False, out=str(tmp_path / "mnist")))
    assert summary["history"][0]["train_loss"] < 2.5


def test_unknown_data_and_model_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'svhn'"):
        train(TrainConfig(data="svhn", out=str(tmp_path)))
    with pytest.raises(ValueError, match="mnist needs a directory"):
        train(TrainConfig(data="mnist", out=str(tmp_path)))
    with pytest.raises(ValueError, match="unknown model 'resnet9'"):
        train(TrainConfig(model="resnet9", out=str(tmp_path), progress=False))


def test_digits_data_is_normalized_and_sized():
    train_set, test_set, info = load_image_data("digits")
    assert info == dict(name="digits", in_channels=1, image_size=8, num_classes=10)
    x, _ = train_set.get_batch(np.arange(len(train_set)))
    assert abs(float(x.numpy().mean())) < 1e-3 and abs(float(x.numpy().std()) - 1.0) < 1e-3
