"""Hooks: Tensor.register_hook on leaves and non-leaves, retain_grad, node hooks
(grad_fn.register_hook, register_prehook), their order compared with PyTorch, and errors."""

import numpy as np
import pytest
import torch

import retrograd as rg


def both(fn):
    """fn(lib) on retrograd and on torch; returns the two results."""
    return fn(rg), fn(torch)


def as_lists(value):
    """Tensors (of either library), arrays, tuples and lists to nested Python lists."""
    if isinstance(value, (tuple, list)):
        return [as_lists(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    return np.asarray(value.detach().numpy() if hasattr(value, "detach") else value).tolist()


# ---------------------------------------------------------------- tensor hooks
def test_leaf_hook_observes_replaces_and_is_removed():
    def run(lib):
        log = []
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        h1 = x.register_hook(lambda g: log.append(("seen", g.tolist())))
        h2 = x.register_hook(lambda g: g * 10.0)
        (x * x).sum().backward()
        log.append(("grad", x.grad.tolist()))
        h1.remove()
        h2.remove()
        (x * 3.0).sum().backward()
        log.append(("grad", x.grad.tolist()))
        return log

    ours, theirs = both(run)
    assert ours == theirs
    assert ours[1] == ("grad", [20.0, 40.0])


def test_non_leaf_hook_observes_replaces_and_is_removed():
    def run(lib):
        log = []
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2.0
        y.register_hook(lambda g: log.append(("first", g.tolist())))
        handle = y.register_hook(lambda g: g * 10.0)
        y.register_hook(lambda g: log.append(("third", g.tolist())))
        z = (y * y).sum()
        z.backward(retain_graph=True)
        log.append(("x.grad", x.grad.tolist()))
        handle.remove()
        z.backward()
        log.append(("x.grad", x.grad.tolist()))
        return log

    ours, theirs = both(run)
    assert ours == theirs
    assert ("third", [40.0, 80.0, 120.0]) in ours


def test_handle_works_as_a_context_manager():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    with x.register_hook(lambda g: g * 0.0):
        (x * 1.0).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]
    (x * 1.0).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_hook_returning_a_wrongly_shaped_gradient_names_the_shapes():
    x = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    y.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"hook '<lambda>' on a tensor made by MulBackward of "
                                           r"shape \(3,\) and dtype retrograd.float32 returned "
                                           r"a gradient of shape \(\)"):
        y.sum().backward()
    x.register_hook(lambda g: g[:2])
    with pytest.raises(RuntimeError, match=r"on a leaf tensor of shape \(3,\).* returned a "
                                           r"gradient of shape \(2,\)"):
        (x * 2.0).sum().backward()


def test_hook_returning_another_dtype_or_a_non_tensor_is_an_error():
    # bug: a float64 gradient from a hook ended up in the .grad of a float32 leaf
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g.double())
    with pytest.raises(RuntimeError, match="returned a gradient of shape .* and dtype "
                                           "retrograd.float64"):
        (x * 2.0).sum().backward()
    y = rg.tensor([1.0, 2.0], requires_grad=True)
    y.register_hook(lambda g: g.numpy())
    with pytest.raises(RuntimeError, match="returned a gradient of a ndarray"):
        (y * 2.0).sum().backward()


def test_register_hook_on_a_tensor_not_requiring_grad():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that does not "
                                           "require grad"):
        rg.tensor([1.0]).register_hook(lambda g: g)


def test_hooks_see_tensors_and_run_once_on_the_summed_gradient():
    seen = []
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: seen.append(g))
    (x * 2.0 + x * 3.0 + x).sum().backward()
    assert len(seen) == 1 and isinstance(seen[0], rg.Tensor)
    assert seen[0].tolist() == [6.0, 6.0]


def test_hook_replacing_the_gradient_under_create_graph_is_differentiated():
    def run(lib):
        x = lib.tensor([0.5, -1.0], dtype=lib.float64, requires_grad=True)
        y = x * x
        y.register_hook(lambda g: g * y)  # a gradient that depends on x
        (gx,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        (g2,) = lib.autograd.grad(gx.sum(), x)
        return gx.tolist(), g2.tolist()

    ours, theirs = both(run)
    np.testing.assert_allclose(ours, theirs, rtol=1e-14)


# ---------------------------------------------------------------- retain_grad
def test_retain_grad_on_a_non_leaf_accumulates_like_torch():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2.0
        y.retain_grad()
        assert y.retains_grad
        z = (y * y).sum()
        z.backward(retain_graph=True)
        first = y.grad.tolist()
        z.backward()
        return first, y.grad.tolist(), x.grad.tolist()

    ours, theirs = both(run)
    assert ours == theirs == ([4.0, 8.0], [8.0, 16.0], [16.0, 32.0])


def test_retain_grad_sees_the_hooked_gradient_whatever_the_registration_order():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2.0
        y.retain_grad()  # registered first, still runs after the hooks (PyTorch >= 2.0)
        y.register_hook(lambda g: g + 1.0)
        y.sum().backward()
        return y.grad.tolist(), x.grad.tolist()

    ours, theirs = both(run)
    assert ours == theirs == ([2.0, 2.0], [4.0, 4.0])


def test_non_leaf_without_retain_grad_has_no_grad():
    x = rg.tensor([1.0], requires_grad=True)
    y = x * 2.0
    y.sum().backward()
    assert y.grad is None and not y.retains_grad


def test_retain_grad_on_leaves_and_constants():
    x = rg.tensor([1.0], requires_grad=True)
    x.retain_grad()  # a no-op on leaves
    assert not x.retains_grad
    with pytest.raises(RuntimeError, match="retain_grad: cannot retain the gradient of a tensor "
                                           "that does not require grad"):
        rg.tensor([1.0]).retain_grad()


def test_retain_grad_of_one_output_of_a_multi_output_op():
    def run(lib):
        x = lib.tensor([[1.0, 5.0], [4.0, 2.0]], requires_grad=True)
        values, _ = x.max(dim=1)
        values.retain_grad()
        (values * values).sum().backward()
        return values.grad.tolist(), x.grad.tolist()

    ours, theirs = both(run)
    assert ours == theirs


# ---------------------------------------------------------------- node hooks
def test_node_prehook_and_posthook_see_tensors_and_can_replace():
    def run(lib):
        log = []
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        y = x.exp()
        node = y.grad_fn

        def prehook(grad_outputs):
            log.append(("pre", type(grad_outputs[0]).__name__, as_lists(grad_outputs)))
            return (grad_outputs[0] * 2.0,)

        def posthook(grad_inputs, grad_outputs):
            log.append(("post", as_lists(grad_inputs), as_lists(grad_outputs)))
            return (grad_inputs[0] + 1.0,)

        node.register_prehook(prehook)
        node.register_hook(posthook)
        y.sum().backward()
        log.append(("grad", as_lists(x.grad)))
        return log

    ours, theirs = both(run)
    assert ours[0][1] == "Tensor"
    assert [entry[2:] if entry[0] == "pre" else entry[1:] for entry in ours] == \
        [entry[2:] if entry[0] == "pre" else entry[1:] for entry in theirs]


def test_node_hook_removal():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    calls = []
    handle = y.grad_fn.register_prehook(lambda go: calls.append("pre"))
    post = y.grad_fn.register_hook(lambda gi, go: calls.append("post"))
    handle.remove()
    post.remove()
    y.sum().backward()
    assert calls == []


def test_node_hook_returning_a_wrong_shape_names_the_op():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    y.grad_fn.register_prehook(lambda go: (go[0].sum(),))
    with pytest.raises(RuntimeError, match=r"ExpBackward: a pre-hook returned a gradient of "
                                           r"shape \(\) and dtype retrograd.float32 where one of "
                                           r"shape \(2,\) and dtype retrograd.float32 was "
                                           r"expected"):
        y.sum().backward()
    z = x.exp()
    z.grad_fn.register_hook(lambda gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="ExpBackward: a hook returned 2 gradients, "
                                           "expected 1"):
        z.sum().backward()
    w = x.exp()
    w.grad_fn.register_hook(lambda gi, go: (gi[0].double(),))
    with pytest.raises(RuntimeError, match="ExpBackward: a hook returned a gradient of shape "
                                           r"\(2,\) and dtype retrograd.float64"):
        w.sum().backward()


def test_hook_order_matches_torch():
    def run(lib):
        log = []
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        x.register_hook(lambda g: log.append(("x hook", g.tolist())))
        h = x * 3.0
        h.register_hook(lambda g: log.append(("h hook 1", g.tolist())))
        h.register_hook(lambda g: log.append(("h hook 2", g.tolist())))
        h.retain_grad()
        h.grad_fn.register_prehook(lambda go: log.append(("h node pre", go[0].tolist())))
        h.grad_fn.register_hook(lambda gi, go: log.append(("h node post", gi[0].tolist())))
        y = h.tanh()
        y.register_hook(lambda g: log.append(("y hook", g.tolist())))
        y.grad_fn.register_hook(lambda gi, go: log.append(("y node post", gi[0].tolist())))
        (y * 2.0).sum().backward()
        log.append(("h.grad", h.grad.tolist()))
        return log

    ours, theirs = both(run)
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    for (name, a), (_, b) in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-11, err_msg=name)


def test_grad_captures_a_non_leaf_input_after_its_hooks():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2.0
        y.register_hook(lambda g: g * 100.0)
        y.retain_grad()
        (gy,) = lib.autograd.grad((y * y).sum(), y)
        return gy.tolist(), y.grad.tolist(), x.grad

    ours, theirs = both(run)
    assert ours == theirs == ([400.0, 800.0], [400.0, 800.0], None)


def test_hook_order_on_a_diamond_matches_torch():
    def run(lib):
        log = []
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        a, b, c = x.exp(), x.tanh(), x * 3.0
        for name, t in (("a", a), ("b", b), ("c", c)):
            t.register_hook(lambda g, name=name: log.append(name))
        d = b * c
        d.register_hook(lambda g: log.append("d"))
        ((a + d).sum() + c.sum()).backward()
        return log

    ours, theirs = both(run)
    assert ours == theirs == ["d", "c", "b", "a"]


# ---------------------------------------------------------------- post-accumulate-grad hooks
def test_post_accumulate_grad_hook_sees_the_accumulated_grad_like_torch():
    import torch

    seen, seen_torch = [], []
    w = rg.tensor([1.0, -2.0], requires_grad=True)
    tw = torch.tensor([1.0, -2.0], requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    tw.register_post_accumulate_grad_hook(lambda t: seen_torch.append(t.grad.numpy().copy()))
    for _ in range(2):                     # the second backward accumulates onto the first
        (w * w * 3).sum().backward()
        (tw * tw * 3).sum().backward()
    assert len(seen) == len(seen_torch) == 2
    for ours, theirs in zip(seen, seen_torch):
        np.testing.assert_array_equal(ours, theirs)


def test_post_accumulate_grad_hook_runs_once_per_backward_after_every_contribution():
    w = rg.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.tolist()))
    (w * 2 + w * w).sum().backward()      # two paths into w, one accumulation
    assert calls == [[4.0, 6.0]]
    handle.remove()
    (w * 2).sum().backward()
    assert calls == [[4.0, 6.0]]


def test_post_accumulate_grad_hook_is_not_run_by_autograd_grad():
    w = rg.tensor([1.0], requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(calls.append)
    rg.autograd.grad((w * 3).sum(), [w])
    assert calls == [] and w.grad is None


def test_post_accumulate_grad_hook_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        rg.ones(2).register_post_accumulate_grad_hook(print)
    w = rg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf tensors.*made by Mul"):
        (w * 2).register_post_accumulate_grad_hook(print)


def test_post_accumulate_hooks_are_forgotten_with_their_tensor():
    import gc

    from retrograd.autograd.hooks import POST_ACCUMULATE_HOOKS

    before = len(POST_ACCUMULATE_HOOKS)
    w = rg.ones(2, requires_grad=True)
    w.register_post_accumulate_grad_hook(print)
    assert len(POST_ACCUMULATE_HOOKS) == before + 1
    del w
    gc.collect()
    assert len(POST_ACCUMULATE_HOOKS) == before


# ---------------------------------------------------------------- end-of-backward callbacks
def test_queue_callback_runs_after_every_gradient_of_the_pass():
    from retrograd.autograd.hooks import queue_callback

    a = rg.tensor([1.0], requires_grad=True)
    b = rg.tensor([2.0], requires_grad=True)
    order = []

    def first_hook(t):
        order.append("hook")
        queue_callback(lambda: order.append(("end", a.grad.item(), b.grad.item())))
        queue_callback(lambda: queue_callback(lambda: order.append("queued by a callback")))

    a.register_post_accumulate_grad_hook(first_hook)
    (a * 5 + b * 7).sum().backward()
    assert order == ["hook", ("end", 5.0, 7.0), "queued by a callback"]


def test_queue_callback_outside_backward_is_an_error():
    from retrograd.autograd.hooks import queue_callback

    with pytest.raises(RuntimeError, match="queue_callback: no backward pass is running"):
        queue_callback(print)
