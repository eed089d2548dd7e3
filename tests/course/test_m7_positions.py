"""The Module 7 lab (docs/course/m7_positions.py): its reduced form runs in time, writes
readable figures and a results page, and its numbers agree with computations made here
without it: the token rows with a gradient counted from the batches, the first step's row
gradients recomputed by scattering the gradient at the lookup's output, the untouched rows of
the learned position table compared with a fresh initialization, and the sinusoidal table
recomputed from its formula."""

import numpy as np
import pytest

import retrograd as rg
from retrograd.datasets.shakespeare import shakespeare_path
from retrograd.datasets.text import load_text_splits
from retrograd.nn import functional as F
from retrograd.training.common import seeded_batches
from tests.course._lab import assert_outputs, assert_page, lab_fixture, load_lab

FIGURES = ["m7-loss-curves.png", "m7-embedding-gradients.png", "m7-position-tables.png",
           "m7-position-gradients.png"]

lab = lab_fixture("m7_positions")


@pytest.fixture(scope="module")
def batches(lab):
    """The lab's training batches, drawn again here: (train set, list of (x, y))."""
    settings = lab[0]["settings"]
    train_set, _, _ = load_text_splits(shakespeare_path(), settings["train_len"])
    return train_set, list(seeded_batches(train_set, settings["batch"], settings["steps"], 0))


def test_outputs_are_readable(lab):
    result, out = lab
    text = assert_outputs(out, FIGURES, "m7-positions.md")
    assert "| learned |" in text and "| sinusoidal |" in text


def test_rows_with_gradient_are_the_characters_in_each_batch(lab, batches):
    # only the rows of characters present in the batch are looked up, so only they get a
    # gradient: the share per step is (distinct ids in the batch) / V
    result, _ = lab
    _, steps = batches
    expected = [np.unique(x.numpy()).size / result["vocab_size"] for x, _ in steps]
    np.testing.assert_array_equal(result["embedding"]["rows_with_gradient"], expected)
    assert result["same_token_gradients"]


def test_first_step_row_gradients_are_the_scattered_lookup_gradient(lab, batches):
    # dL/dW_tok[v] = sum of dL/dE[b, t] over the positions where token v was looked up
    result, _ = lab
    lab_module = load_lab("m7_positions")
    model = lab_module.build_model("learned", result["settings"], result["vocab_size"])
    x, y = batches[1][0]
    captured = {}

    def keep_output(module, args, output):
        output.retain_grad()
        captured["E"] = output

    model.wte.register_forward_hook(keep_output)
    logits = model(x)
    F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).backward()
    scattered = np.zeros(model.wte.weight.shape)
    np.add.at(scattered, x.numpy(), captured["E"].grad.numpy())
    np.testing.assert_allclose(scattered, model.wte.weight.grad.numpy(), rtol=1e-5, atol=1e-9)
    expected_norms = np.sqrt((scattered ** 2).sum(axis=1))
    np.testing.assert_allclose(result["embedding"]["row_norms"][0], expected_norms,
                               rtol=1e-4, atol=1e-9)


def test_learned_rows_beyond_the_training_length_never_move(lab):
    result, _ = lab
    settings, cut = result["settings"], result["settings"]["train_len"]
    rg.manual_seed(0)
    fresh = load_lab("m7_positions").build_model("learned", settings, result["vocab_size"])
    initial = fresh.wpe.weight.detach().numpy()
    trained = result["variants"]["learned"]["table"]
    np.testing.assert_array_equal(trained[cut:], initial[cut:])
    assert np.all(np.abs(trained[:cut] - initial[:cut]).max(axis=1) > 0)
    assert result["positions"]["max_gradient_beyond"] == 0.0
    assert result["variants"]["learned"]["position_parameters"] == (settings["context"]
                                                                    * settings["d_model"])


def test_the_sinusoidal_table_is_the_formula_and_gets_no_gradient(lab):
    # pe[t, 2i] = sin(t / 10000^(2i/D)), pe[t, 2i+1] = cos(t / 10000^(2i/D))
    result, _ = lab
    settings = result["settings"]
    t = np.arange(settings["context"])[:, None]
    i = np.arange(0, settings["d_model"], 2)[None, :]
    angle = t / 10000.0 ** (i / settings["d_model"])
    table = result["variants"]["sinusoidal"]["table"]
    np.testing.assert_allclose(table[:, 0::2], np.sin(angle), atol=1e-6)
    np.testing.assert_allclose(table[:, 1::2], np.cos(angle), atol=1e-6)
    assert result["variants"]["sinusoidal"]["position_parameters"] == 0
    assert result["sinusoidal_requires_grad"] is False and result["sinusoidal_grad"] is None


def test_both_variants_start_from_the_same_weights():
    lab_module = load_lab("m7_positions")
    settings = lab_module.QUICK
    learned = lab_module.build_model("learned", settings, 63).state_dict()
    sinusoidal = lab_module.build_model("sinusoidal", settings, 63).state_dict()
    assert set(learned) - set(sinusoidal) == {"wpe.weight"}
    for name, value in sinusoidal.items():
        np.testing.assert_array_equal(value.numpy(), learned[name].numpy())


def test_frequent_characters_get_larger_gradients_than_rare_ones(lab):
    result, _ = lab
    rows = sorted((c for c in result["embedding"]["per_char"] if c["count"] > 0),
                  key=lambda c: c["count"])
    assert max(c["mean_norm"] for c in rows[:5]) < min(c["mean_norm"] for c in rows[-5:])
    assert all(c["steps_with_gradient"] == 1.0 for c in rows[-5:])
    assert result["embedding"]["log_log_slope"] > 0


def test_unknown_variant_is_named():
    with pytest.raises(ValueError, match="unknown positional encoding 'rotary'"):
        load_lab("m7_positions").build_model("rotary", load_lab("m7_positions").QUICK, 10)


def test_page_links_every_figure_and_gives_the_command(lab):
    assert_page("m7_positions", lab[1], FIGURES)
