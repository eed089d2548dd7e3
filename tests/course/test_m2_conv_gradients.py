"""The Module 2 lab (docs/course/m2_conv_gradients.py): its reduced form runs in time, writes
readable figures and a results page, and its convolution gradients agree with the definitions
computed here by plain loops."""

import numpy as np

from tests.course._lab import assert_outputs, assert_page, lab_fixture, module_fixture

FIGURES = ["m2-filters.png", "m2-sharing.png", "m2-input-gradient.png"]

lab = lab_fixture("m2_conv_gradients")
module = module_fixture("m2_conv_gradients")


def _padded(x, padding):
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def _weight_gradient_by_loops(x, grad_y, kernel, stride, padding):
    """dL/dW[o, c, i, j] = sum over n, ho, wo of dL/dY[n, o, ho, wo] X_pad[n, c, ho s + i,
    wo s + j]: the definition, one output position at a time."""
    xp = _padded(x, padding)
    n, o, ho, wo = grad_y.shape
    grad_w = np.zeros((o, x.shape[1], kernel, kernel))
    for r in range(ho):
        for c in range(wo):
            patch = xp[:, :, r * stride:r * stride + kernel, c * stride:c * stride + kernel]
            grad_w += np.einsum("no,nckl->ockl", grad_y[:, :, r, c], patch)
    return grad_w


def _reads_by_loops(size, kernel, stride, padding):
    """How many windows read each pixel, counted window by window."""
    out = (size + 2 * padding - kernel) // stride + 1
    reads = np.zeros((size + 2 * padding,) * 2)
    for r in range(out):
        for c in range(out):
            reads[r * stride:r * stride + kernel, c * stride:c * stride + kernel] += 1
    return reads[padding:padding + size, padding:padding + size]


def test_outputs_are_readable(lab):
    _, out = lab
    text = assert_outputs(out, FIGURES, "m2-conv-gradients.md")
    assert "## Parameter sharing" in text and "```text" in text


def test_hand_gradients_equal_autograd_for_every_geometry(lab, module):
    result = lab[0]
    images, _ = module.probe_digits(result["probe"])
    assert [(g["stride"], g["padding"]) for g in result["geometries"]] == \
        [(1, 1), (1, 0), (2, 0), (2, 1)]
    for g in result["geometries"]:
        assert max(g["diff"].values()) < 1e-12, g["diff"]
        by_loops = _weight_gradient_by_loops(images, g["grad_y"], 3, g["stride"], g["padding"])
        np.testing.assert_allclose(g["grad_w"], by_loops, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(g["grad_b"], g["grad_y"].sum(axis=(0, 2, 3)), rtol=1e-12,
                                   atol=1e-15)
        assert g["grad_y"].shape[2:] == tuple(g["output"])


def test_stride_two_leaves_unread_pixels_without_gradient(lab):
    for g in lab[0]["geometries"]:
        reads = _reads_by_loops(8, 3, g["stride"], g["padding"])
        np.testing.assert_array_equal(g["coverage"], reads)
        np.testing.assert_array_equal(g["zero_gradient_pixels"], reads == 0)
    stride2 = next(g for g in lab[0]["geometries"] if (g["stride"], g["padding"]) == (2, 0))
    # windows start at 0, 2, 4 and end at 2, 4, 6: row 7 and column 7 are never read
    unread = np.zeros((8, 8), bool)
    unread[7, :] = unread[:, 7] = True
    np.testing.assert_array_equal(stride2["zero_gradient_pixels"], unread)


def test_filter_gradient_is_the_sum_over_positions(lab):
    share = lab[0]["sharing"]
    np.testing.assert_allclose(share["summed"], share["autograd"], rtol=1e-10, atol=1e-15)
    stride1 = lab[0]["geometries"][0]
    np.testing.assert_allclose(share["autograd"], stride1["grad_w"][share["chosen"], 0])
    for row in share["rows"]:
        assert row["diff"] < 1e-12
        assert row["sum_of_part_norms"] >= row["grad_norm"] - 1e-15  # triangle inequality


def test_real_digit_patch_through_explain(lab):
    from retrograd.datasets import Digits

    patch = lab[0]["patch"]
    assert patch["ok"]
    expected_patch = np.rint(Digits(train=False).data[0, 2:6, 2:6] * 16)
    np.testing.assert_array_equal(patch["patch"], expected_patch)
    grad_y = np.array([[1.0, -1.0], [0.5, 0.5]])[None, None]
    by_loops = _weight_gradient_by_loops(expected_patch[None, None], grad_y, 3, 2, 1)
    np.testing.assert_allclose(patch["ours"]["W"], by_loops)
    assert max(patch["diff"].values()) < 1e-12
    assert patch["ours"]["b"].tolist() == [1.0]


def test_seed_convolution_example(module):
    # seed 002, convolution: X = [[1,2,3],[4,5,6],[7,8,9]], K = [[1,0],[-1,1]], b = 1,
    # dL/dY = [[0.5,-0.5],[1,0]]. The seed prints Y = [[3,3],[-1,-1]]; the correct output is
    # [[3,4],[6,7]]. Its "approximate" dL/dX is wrong too; the full convolution gives the
    # values below, and so does autograd.
    import retrograd as rg
    from retrograd.nn import functional as F

    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    k = np.array([[1.0, 0.0], [-1.0, 1.0]])[None, None]
    grad_y = np.array([[0.5, -0.5], [1.0, 0.0]])[None, None]
    y = module.conv_forward(x, k, np.array([1.0]), 1, 0)
    np.testing.assert_array_equal(y[0, 0], [[3, 4], [6, 7]])
    grad_w = module.weight_gradient(x, grad_y, 2, 1, 0)
    grad_x = module.input_gradient(grad_y, k, x.shape, 1, 0)
    np.testing.assert_allclose(grad_w[0, 0], [[3.5, 4.5], [6.5, 7.5]])
    np.testing.assert_allclose(grad_x[0, 0], [[0.5, -0.5, 0], [0.5, 1, -0.5], [-1, 1, 0]])
    assert module.bias_gradient(grad_y).tolist() == [1.0]
    tx, tk = rg.tensor(x, requires_grad=True), rg.tensor(k, requires_grad=True)
    F.conv2d(tx, tk, rg.tensor(np.array([1.0]))).backward(rg.tensor(grad_y))
    np.testing.assert_allclose(tk.grad.numpy(), grad_w)
    np.testing.assert_allclose(tx.grad.numpy(), grad_x)


def test_training_learned_something(lab):
    training = lab[0]["training"]
    assert training["last_loss"] < training["first_loss"]
    assert training["accuracy"] > 0.2  # ten classes: chance is 0.1


def test_page_links_every_figure_and_gives_the_command(lab):
    assert_page("m2_conv_gradients", lab[1])
