"""retrograd/explain/embedding.py: the lookup y = E[ids] and its scatter-add gradient (repeated
ids accumulate), the fixed sinusoidal positional encoding (no gradient of its own) and the
learned position table (rows summed over the batch, unused rows zero); seed 002's embedding
example reproduced."""

import numpy as np
import pytest

import retrograd
import retrograd.explain.embedding as embedding_example
from retrograd.cli import main
from retrograd.nn.embedding import sinusoidal_table
from tests.explain._check import assert_explains, grad


def _output(ex):
    return ex.printed_outputs()[0].value


def _step(ex, name):
    (step,) = [s for s in ex.steps if s.name == name]
    return step.value


def test_seed_002_embedding_example():
    # seed 002, "embedding": E = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], index 1,
    # dy = [0.1, -0.1, 0.2]: y = [0.4, 0.5, 0.6], dL/dE = [[0, 0, 0], [0.1, -0.1, 0.2]]
    ex = assert_explains("embedding", values={"E": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
                                              "index": 1, "dy": [0.1, -0.1, 0.2]})
    assert _output(ex).reshape(-1).tolist() == [0.4, 0.5, 0.6]
    assert grad(ex, "E").tolist() == [[0, 0, 0], [0.1, -0.1, 0.2]]
    assert "y = E[ids]  (ids' shape + (D,)) = [0.4  0.5  0.6]" in str(ex)


def test_repeated_ids_accumulate():
    # id 1 at tokens 0 and 2: row 1 of dL/dE is dL/dy[0] + dL/dy[2]; id 0 never looked up
    ex = assert_explains("embedding", values={"E": [[1, 2], [3, 4], [5, 6]], "ids": [1, 2, 1],
                                              "dY": [[1, 0.5], [-1, 1], [0.5, 0.5]]})
    assert _output(ex).reshape(3, 2).tolist() == [[3, 4], [5, 6], [3, 4]]
    assert grad(ex, "E").tolist() == [[0, 0], [1.5, 1], [-1, 1]]
    assert _step(ex, "count").tolist() == [0, 2, 1]
    assert "id 1 occurs 2 times (tokens 0, 2" in str(ex)


@pytest.mark.parametrize("batch", [1, 2, 3])
@pytest.mark.parametrize("options", [{}, {"vocab": 2, "dim": 1}, {"vocab": 6, "tokens": 5},
                                     {"repeat": False}])
def test_embedding_batches_and_options(batch, options):
    ex = assert_explains("embedding", batch=batch, seed=5, **options)
    table, ids = ex.inputs["E"].value, ex.inputs["ids"].value
    assert ids.shape == (batch, options.get("tokens", 3))
    expected = np.zeros_like(table)
    np.add.at(expected, ids.reshape(-1), ex.upstreams[0][1].reshape(-1, table.shape[1]))
    np.testing.assert_allclose(grad(ex, "E"), expected, atol=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_drawn_ids_repeat_by_default(seed):
    ids = assert_explains("embedding", seed=seed).inputs["ids"].value
    assert np.unique(ids).size < ids.size


def test_repeat_false_keeps_the_ids_as_drawn():
    # seed 0, V = 6 draws [0, 1, 2]; the default repeats the first id in the last place
    assert assert_explains("embedding", vocab=6, repeat=False).inputs["ids"].value.tolist() \
        == [[0, 1, 2]]
    assert assert_explains("embedding", vocab=6).inputs["ids"].value.tolist() == [[0, 1, 0]]


def test_the_seeds_overwriting_sketch_fails_on_a_repeated_id(monkeypatch):
    # seed 002's backward sketch assigns dE[index] = dy: with a repeated id one term is lost,
    # and the check names dL/dE
    def overwriting(grad_rows, ids, vocab):
        grad = np.zeros((vocab, grad_rows.shape[-1]))
        grad[ids.reshape(-1)] = grad_rows.reshape(-1, grad_rows.shape[-1])
        return grad

    monkeypatch.setattr(embedding_example, "_scatter_rows", overwriting)
    ex = retrograd.explain("embedding", values={"E": [[1, 2], [3, 4]], "ids": [1, 1],
                                                "dY": [[1, 1], [1, 1]]})
    assert not ex.ok
    assert [c.name for c in ex.checks if not c.ok] == ["dL/dE"]


def test_embedding_bad_input():
    with pytest.raises(ValueError, match=r"explain embedding: ids must be in \[0, 2\), got "
                                         r"\[\[0, 2\]\]: E \(shape 2x3\) has V = 2 rows"):
        retrograd.explain("embedding", values={"E": [[1, 2, 3], [4, 5, 6]], "ids": [0, 2]})
    with pytest.raises(ValueError, match=r"explain embedding: tokens must be >= 1, got 0"):
        retrograd.explain("embedding", tokens=0)
    with pytest.raises(ValueError, match=r"explain embedding: ids must be integers"):
        retrograd.explain("embedding", values={"ids": [0.5]})


def test_embedding_from_the_command_line(capsys):
    assert main(["explain", "embedding", "--repeat", "no", "--batch", "2"]) == 0
    assert "dL/dE = zeros (V, D); for every token k" in capsys.readouterr().out


@pytest.mark.parametrize("shape", [None, (1, 1), (4, 5), (2, 3, 4), (3, 2, 6)])
def test_positional_encoding_shapes(shape):
    ex = assert_explains("positional_encoding", shape=shape, seed=1)
    x = ex.inputs["X"].value
    length, d_model = x.shape[-2:]
    np.testing.assert_allclose(_step(ex, "PE"), sinusoidal_table(length, d_model), atol=1e-15)
    np.testing.assert_array_equal(grad(ex, "X"), ex.upstreams[0][1])
    assert list(ex.gradients) == ["X"] and "it gets no gradient" in str(ex)


def test_positional_encoding_by_hand():
    # D = 4: omega = [1, 0.01]; position 1 is [sin 1, cos 1, sin 0.01, cos 0.01]; position 0 is
    # [0, 1, 0, 1] (the same numbers as retrograd's SinusoidalPositionalEncoding docstring)
    ex = assert_explains("positional_encoding", values={"X": np.zeros((2, 4))})
    np.testing.assert_allclose(_step(ex, "omega"), [1, 0.01], rtol=1e-15)
    np.testing.assert_allclose(_output(ex), [[0, 1, 0, 1],
                                             [np.sin(1), np.cos(1), np.sin(0.01), np.cos(0.01)]],
                               rtol=1e-15)
    assert "[  0.84147     0.5403  0.0099998    0.99995]]" in str(ex)


def test_positional_encoding_bad_input():
    with pytest.raises(ValueError, match=r"explain positional_encoding: X has shape 4; it "
                                         r"must be \(T, D\) or \(B, T, D\)"):
        retrograd.explain("positional_encoding", values={"X": [1, 2, 3, 4]})


@pytest.mark.parametrize("shape", [(3, 2), (1, 3, 2), (2, 3, 2), (4, 3, 2), (2, 5, 3)])
@pytest.mark.parametrize("max_len", [5, 7])
def test_learned_positional_batch_sizes(shape, max_len):
    ex = assert_explains("learned_positional", shape=shape, max_len=max_len, seed=3)
    g, length = ex.upstreams[0][1], shape[-2]
    expected = np.zeros((max_len, shape[-1]))
    expected[:length] = g.sum(axis=0) if len(shape) == 3 else g
    np.testing.assert_allclose(grad(ex, "P"), expected, atol=1e-15)
    np.testing.assert_array_equal(grad(ex, "X"), g)


def test_learned_positional_by_hand():
    # two sequences of T = 2 positions, D = 1, P with 3 rows: row 0 gets 1 + 0.5, row 1 gets
    # -1 + 1, row 2 (unused) gets 0
    ex = assert_explains("learned_positional", values={
        "X": [[[1], [2]], [[3], [4]]], "P": [[10], [20], [30]],
        "dL/dy": [[[1], [-1]], [[0.5], [1]]]})
    assert _output(ex).reshape(2, 2).tolist() == [[11, 22], [13, 24]]
    assert grad(ex, "P").tolist() == [[1.5], [0], [0]]
    assert "sum_b dL/dy[b] = dL/dy[0] + dL/dy[1]" in str(ex)


def test_learned_positional_bad_input():
    with pytest.raises(ValueError, match=r"explain learned_positional: P has shape 5x2, but X "
                                         r"\(shape 2x6x2\) needs at least T = 6 rows"):
        retrograd.explain("learned_positional", shape=(2, 6, 2))
    with pytest.raises(ValueError, match=r"explain learned_positional: P has shape 2x3, but X "
                                         r"\(shape 2x2\) needs at least T = 2 rows of D = 2"):
        retrograd.explain("learned_positional", values={"X": [[1, 2], [3, 4]],
                                                        "P": [[1, 2, 3], [4, 5, 6]]})
    with pytest.raises(ValueError, match=r"explain learned_positional: max_len must be >= 1"):
        retrograd.explain("learned_positional", max_len=0)
