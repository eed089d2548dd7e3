"""The declared costs of the reductions (reduce.py), the shape ops (shape.py), the embedding,
the losses and the recurrent steps against brute-force counts (tests/flop_count.py).

For each op, a reference written from its docstring as NumPy on counted arrays costs what the
op declares, forward and backward (all FLOPs, and the GEMM part apart for the recurrent
steps), for the gradients the call needs (none included); and the reference computes what
the op computes, outputs and gradients. Ops that only move data declare ``moves_data`` and no
forward FLOPs; their backward is counted as well (Expand's sum, Index's scatter-add)."""

import numpy as np
import pytest

from retrograd.ops import embedding as emb
from retrograd.ops import loss as L
from retrograd.ops import recurrent as rec
from retrograd.ops import reduce as red
from retrograd.ops import shape as sh
from tests.flop_count import counted
from tests.ops.cost_harness import Gemm, check, needed, run, sum_to

RNG = np.random.default_rng(1)


def _randn(*shape):
    return RNG.standard_normal(shape)


def _plain(a):
    """A counted array as a plain one: a condition formed on it is not counted (a select
    counts one FLOP, its comparison included, as in test_cost_elementwise.py)."""
    return np.asarray(a).view(np.ndarray)


# ---------------------------------------------------------------------------- harness
def _run(op, inputs, needs, attrs):
    """cost_harness.run, backward from every floating output."""
    return run(op, inputs, needs, attrs, _randn, every_output=True)


def _check(op, inputs, needs, attrs, forward, backward):
    """cost_harness.check on every floating output: ``forward`` returns a tuple for several,
    ``backward`` gets the list of their counted gradients."""
    return check(op, inputs, needs, attrs, forward, backward, _randn, every_output=True)


REDUCE_CASES = [((3, 4, 5), None, False), ((3, 4, 5), (1,), False), ((3, 4, 5), (0, 2), True),
                ((6,), (0,), True)]
NEEDS_1 = [(True,), (False,)]


class _Reduction:
    """One reduction call (x, axis, keepdims; n elements per group) and the shape helpers of
    its references, which reduce with keepdims=True."""

    def __init__(self, shape, axis, keepdims):
        self.x, self.axis, self.keepdims, self.shape = _randn(*shape), axis, keepdims, shape
        self.reduced = [axis is None or d in axis for d in range(len(shape))]
        self.n = int(np.prod([s for s, r in zip(shape, self.reduced) if r]))

    def sum(self, a):
        """sum over the axes, keepdims (a 0-d sum stays an array, so its divide is counted)."""
        return a.sum(axis=self.axis, keepdims=True)

    def out(self, a):
        """A keepdims result as the op returns it."""
        return a if self.keepdims else \
            a.reshape(tuple(s for s, r in zip(self.shape, self.reduced) if not r))

    def grad(self, g):
        """dL/dy with its reduced axes back as size-1 axes (as reduce._unsqueeze_reduced)."""
        return g.reshape(tuple(1 if r else s for s, r in zip(self.shape, self.reduced)))

    def centered(self, x):
        """x - mean(x): sum, divide, subtract."""
        return x - self.sum(x) / self.n

    def check(self, op, needs, attrs, forward, backward):
        attrs = dict(axis=self.axis, keepdims=self.keepdims, **attrs)
        return _check(op, (self.x,), needs, attrs, lambda args, gemm: forward(args[0]),
                      lambda grads, gemm: {0: backward(self.grad(grads[0]))})


@pytest.mark.parametrize("needs", NEEDS_1)
@pytest.mark.parametrize("shape, axis, keepdims", REDUCE_CASES)
def test_sum_and_mean(shape, axis, keepdims, needs):
    """sum: n - m adds, backward a broadcast; mean: + m divides, backward dL/dy / n."""
    r = _Reduction(shape, axis, keepdims)
    cost = r.check(red.Sum, needs, {}, lambda x: r.out(r.sum(x)),
                   lambda g: np.broadcast_to(g, shape))
    assert cost.formula.startswith(f"sum x({'x'.join(map(str, shape))}) -> ")
    r.check(red.Mean, needs, {}, lambda x: r.out(r.sum(x) / r.n),
            lambda g: np.broadcast_to(g / r.n, shape))


@pytest.mark.parametrize("needs", NEEDS_1)
@pytest.mark.parametrize("correction", [0, 1])
@pytest.mark.parametrize("shape, axis, keepdims", REDUCE_CASES)
def test_var_and_std(shape, axis, keepdims, correction, needs):
    """var = sum((x - mean)^2) / (n - correction), dL/dx = dL/dy * 2 / dof * (x - mean);
    std = sqrt(var), dL/dx = where(y == 0, 0, dL/dy / (dof y)) * (x - mean)."""
    r = _Reduction(shape, axis, keepdims)
    dof = r.n - correction

    def var(x):
        c = r.centered(x)
        return r.sum(c * c) / dof

    r.check(red.Var, needs, dict(correction=correction), lambda x: r.out(var(x)),
            lambda g: g * (2.0 / dof) * r.centered(counted(r.x)))
    y = _plain(np.sqrt(var(r.x)))

    def std_grad(g):
        per_unit = np.where(y == 0, 0.0, g / (counted(y) * dof))
        return per_unit * r.centered(counted(r.x))

    r.check(red.Std, needs, dict(correction=correction), lambda x: r.out(np.sqrt(var(x))),
            std_grad)


def _norm_references(p, r):
    """(forward(x), backward(g)) of Norm's docstring for the order p (g with size-1 axes)."""
    x = counted(r.x)
    if p == 0:
        return (lambda a: r.out(r.sum(a != 0).astype(float)), lambda g: np.zeros(r.shape))
    if p in (np.inf, -np.inf):
        def forward(a):
            pick = np.abs(a).max if p > 0 else np.abs(a).min
            return pick(axis=r.axis, keepdims=True)

        y = _plain(forward(r.x))

        def backward(g):
            peak = _plain(np.abs(x)) == y
            return np.where(peak, g / r.sum(counted(peak)) * np.sign(x), 0.0)
        return lambda a: r.out(forward(a)), backward
    if p == 1:
        return lambda a: r.out(r.sum(np.abs(a))), lambda g: g * np.sign(x)
    if p == 2:
        y = np.sqrt(r.sum(r.x * r.x))
        return (lambda a: r.out(np.sqrt(r.sum(a * a))),
                lambda g: np.where(y == 0, 0.0, g / counted(y)) * x)
    y = r.sum(np.abs(r.x) ** p) ** (1.0 / p)

    def backward(g):
        per_unit = np.where(y == 0, 0.0, g / counted(y) ** (p - 1))
        return per_unit * np.where(r.x == 0, 0.0, np.sign(x) * np.abs(x) ** (p - 1))
    return lambda a: r.out(r.sum(np.abs(a) ** p) ** (1.0 / p)), backward


@pytest.mark.parametrize("needs", NEEDS_1)
@pytest.mark.parametrize("p", [2.0, 1.0, np.inf, -np.inf, 0.0, 3.0, 0.5])
@pytest.mark.parametrize("shape, axis, keepdims", REDUCE_CASES[:3])
def test_norm(shape, axis, keepdims, p, needs):
    r = _Reduction(shape, axis, keepdims)
    forward, backward = _norm_references(p, r)
    cost = r.check(red.Norm, needs, dict(ord=p), forward, backward)
    assert f": p={p:g}: " in cost.formula


@pytest.mark.parametrize("needs", NEEDS_1)
@pytest.mark.parametrize("op, pick", [(red.MaxDim, "max"), (red.MinDim, "min")])
@pytest.mark.parametrize("shape, axis, keepdims", [((3, 4, 5), 1, False), ((4, 6), 0, True)])
def test_max_dim(shape, axis, keepdims, op, pick, needs):
    """(values, indices) = max(x, axis): n - m compares; backward dL/dvalues scattered to the
    argmax positions: m adds."""
    r = _Reduction(shape, (axis,), keepdims)
    winners = np.expand_dims(getattr(np, f"arg{pick}")(r.x, axis=axis), axis)
    index = tuple(winners if d == axis else np.indices(winners.shape)[d]
                  for d in range(len(shape)))

    def forward(args, gemm):
        values = getattr(args[0], pick)(axis=axis, keepdims=True)
        return r.out(values), r.out(winners)

    def backward(grads, gemm):
        grad = np.zeros(shape)
        np.add.at(grad, index, r.grad(grads[0]))
        return {0: grad}

    _check(op, (r.x,), needs, dict(axis=axis, keepdims=keepdims), forward, backward)


@pytest.mark.parametrize("needs", NEEDS_1)
@pytest.mark.parametrize("op, pick", [(red.Amax, "max"), (red.Amin, "min")])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("shape, axis, keepdims", REDUCE_CASES[:3])
def test_amax(shape, axis, keepdims, ties, op, pick, needs):
    """y = max(x, axis): n - m compares; backward where(x == y, dL/dy / ties, 0): the tie
    count n - m, m divides, n selects."""
    r = _Reduction(shape, axis, keepdims)
    if ties:
        r.x = np.round(r.x)   # many tied maxima
    y = _plain(getattr(r.x, pick)(axis=axis, keepdims=True))

    def backward(g):
        peak = _plain(r.x) == y
        return np.where(peak, g / r.sum(counted(peak)), 0.0)

    r.check(op, needs, {}, lambda x: r.out(getattr(x, pick)(axis=axis, keepdims=True)),
            backward)


@pytest.mark.parametrize("needs", NEEDS_1)
@pytest.mark.parametrize("shape, axis, keepdims", REDUCE_CASES)
def test_logsumexp(shape, axis, keepdims, needs):
    """y = m + log(sum(exp(x - m))), m = max(x); dL/dx = dL/dy * exp(x - y)."""
    r = _Reduction(shape, axis, keepdims)

    def forward(x):
        m = x.max(axis=axis, keepdims=True)
        return np.log(r.sum(np.exp(x - m))) + m

    y = _plain(forward(r.x))
    r.check(red.LogSumExp, needs, {}, lambda x: r.out(forward(x)),
            lambda g: g * np.exp(counted(r.x) - y))


# ---------------------------------------------------------------------------- shape ops
def _check_moves(op, inputs, needs, attrs, forward, backward):
    """A data-moving op: it says so, declares no forward FLOPs, and matches the counts."""
    assert op.moves_data
    cost = _check(op, inputs, needs, attrs, forward, backward)
    assert cost.flops == 0
    return cost


@pytest.mark.parametrize("needs", NEEDS_1)
def test_reshape_permute_clone(needs):
    x = _randn(2, 3, 4)
    cost = _check_moves(sh.Reshape, (x,), needs, dict(shape=(6, 4)),
                        lambda args, gemm: args[0].reshape(6, 4),
                        lambda grads, gemm: {0: grads[0].reshape(x.shape)})
    assert (cost.backward_flops, cost.formula) == (0, "reshape 2x3x4 -> 6x4: no arithmetic")
    _check_moves(sh.Permute, (x,), needs, dict(dims=(2, 0, 1)),
                 lambda args, gemm: args[0].transpose(2, 0, 1),
                 lambda grads, gemm: {0: grads[0].transpose(1, 2, 0)})
    _check_moves(sh.Clone, (x,), needs, {}, lambda args, gemm: args[0].copy(),
                 lambda grads, gemm: {0: grads[0]})


@pytest.mark.parametrize("needs", NEEDS_1)
@pytest.mark.parametrize("x_shape, shape", [((3, 1, 4), (2, 3, 5, 4)), ((1,), (6,)),
                                            ((2, 3), (2, 3))])
def test_expand(x_shape, shape, needs):
    """A broadcast view; backward dL/dy summed to x's shape: y.size - x.size adds."""
    x = _randn(*x_shape)
    cost = _check_moves(sh.Expand, (x,), needs, dict(shape=shape),
                        lambda args, gemm: np.broadcast_to(args[0], shape),
                        lambda grads, gemm: {0: sum_to(grads[0], x_shape)})
    assert cost.backward_flops == needs[0] * (int(np.prod(shape)) - x.size)


INDEX_CASES = [
    (slice(1, 3), True),                                      # basic: a view
    ((Ellipsis, 2, None), True),
    (np.array([0, 2, 2, 3, 0]), False),                       # repeated ids: scatter-add
    ((np.array([[1, 1], [0, 3]]), slice(None), np.array([4, 0])), False),
    (np.arange(4 * 3 * 5).reshape(4, 3, 5) % 3 == 0, False),  # a boolean mask
]


@pytest.mark.parametrize("needs", NEEDS_1)
@pytest.mark.parametrize("index, basic", INDEX_CASES)
def test_index_and_its_backward(index, basic, needs):
    """y = x[index]; dL/dx = zeros with dL/dy added at the index (one add per value, none
    for a basic index: an assignment). IndexBackward is that scatter (its adds are
    arithmetic), its backward a gather."""
    x = _randn(4, 3, 5)

    def scatter(values):
        out = np.zeros(x.shape)
        if basic:
            out[index] = values
        else:
            np.add.at(out, index, values)
        return out

    cost = _check_moves(sh.Index, (x,), needs, dict(index=index),
                        lambda args, gemm: args[0][index],
                        lambda grads, gemm: {0: scatter(grads[0])})
    assert cost.backward_flops == (0 if basic else needs[0] * x[index].size)
    picked = _randn(*x[index].shape)
    _check(sh.IndexBackward, (picked,), needs, dict(shape=x.shape, index=index, basic=basic),
           lambda args, gemm: scatter(args[0]), lambda grads, gemm: {0: grads[0][index]})


@pytest.mark.parametrize("needs", [(True, True), (True, False), (False, True), (False, None)])
@pytest.mark.parametrize("index, value_shape", [((slice(1, 3),), (5,)),
                                                ((np.array([0, 3, 3]),), (3, 1)),
                                                ((Ellipsis, np.array([1, 4])), (4, 2))])
def test_index_put(index, value_shape, needs):
    """y = x with x[index] = v; dL/dx = where(overwritten, 0, dL/dy) (a select per
    element), dL/dv = dL/dy[index] summed to v's shape."""
    x, v = _randn(4, 5), _randn(*value_shape)
    kept = np.ones(x.shape, dtype=bool)
    kept[index] = False

    def forward(args, gemm):
        y = args[0].copy()
        y[index] = args[1]
        return y

    def backward(grads, gemm):
        return needed(needs, {0: lambda: np.where(kept, grads[0], 0.0),
                               1: lambda: sum_to(grads[0][index], value_shape)})

    _check_moves(sh.IndexPut, (x, v), needs, dict(index=index), forward, backward)


NEEDS_PIECES = [(True, True, True), (False, True, False), (False, False, False)]


@pytest.mark.parametrize("needs", NEEDS_PIECES)
def test_cat_and_stack(needs):
    pieces = (_randn(2, 3), _randn(2, 1), _randn(2, 4))
    bounds = np.cumsum([0, 3, 1, 4])
    cost = _check_moves(sh.Cat, pieces, needs, dict(axis=1),
                        lambda args, gemm: np.concatenate(args, axis=1),
                        lambda grads, gemm: needed(needs, {
                            i: (lambda i=i: grads[0][:, bounds[i]:bounds[i + 1]])
                            for i in range(3)}))
    assert (cost.backward_flops, cost.formula) == (0, "cat 2x3, 2x1, 2x4 -> 2x8: no arithmetic")
    same = (_randn(2, 3), _randn(2, 3), _randn(2, 3))
    _check_moves(sh.Stack, same, needs, dict(axis=1),
                 lambda args, gemm: np.stack(args, axis=1),
                 lambda grads, gemm: needed(needs, {i: (lambda i=i: grads[0][:, i])
                                                     for i in range(3)}))


@pytest.mark.parametrize("needs", NEEDS_1)
def test_unbind_and_split(needs):
    """Views of slices; backward stacks or concatenates the dL/dy_i: no arithmetic."""
    x = _randn(3, 4, 2)
    _check_moves(rec.Unbind, (x,), needs, dict(axis=1),
                 lambda args, gemm: tuple(args[0][:, t] for t in range(4)),
                 lambda grads, gemm: {0: np.stack(grads, axis=1)})
    cost = _check_moves(sh.Split, (x,), needs, dict(axis=1, bounds=(0, 1, 4)),
                        lambda args, gemm: (args[0][:, :1], args[0][:, 1:]),
                        lambda grads, gemm: {0: np.concatenate(grads, axis=1)})
    assert cost.formula == "split 3x4x2 -> 2 outputs: no arithmetic"


# ---------------------------------------------------------------------------- embedding
@pytest.mark.parametrize("needs", [(None, True), (None, False)])
@pytest.mark.parametrize("padding_idx, by_freq", [(None, False), (1, False), (None, True),
                                                  (2, True)])
def test_embedding(padding_idx, by_freq, needs):
    """y = W[ids], no arithmetic; dL/dW = scatter-add of s_k dL/dy[k] (N D adds; N D products
    when s is given; N divides for s = 1 / count)."""
    ids, weight = np.array([[1, 2, 1, 4], [0, 2, 2, 1]]), _randn(6, 3)
    counts = np.bincount(ids.reshape(-1), minlength=6)

    def scale():
        if not by_freq:
            return (ids != padding_idx).astype(float)[..., None]   # a constant
        s = 1.0 / counted(counts[ids][..., None].astype(float))
        if padding_idx is not None:
            s[ids == padding_idx] = 0.0
        return s

    def backward(grads, gemm):
        rows = grads[0] * scale() if padding_idx is not None or by_freq else grads[0]
        grad = np.zeros(weight.shape)
        np.add.at(grad, ids, rows)
        return {1: grad}

    cost = _check_moves(emb.Embedding, (ids, weight), needs,
                        dict(padding_idx=padding_idx, scale_grad_by_freq=by_freq),
                        lambda args, gemm: args[1][ids], backward)
    assert cost.formula.startswith("embedding ids(2x4) w(6x3) -> 2x4x3: ")


@pytest.mark.parametrize("needs", NEEDS_1)
@pytest.mark.parametrize("scaled", [False, True])
def test_embedding_backward(scaled, needs):
    """Y = scatter-add of s_k X[k] (N D adds, + N D products with s); dL/dX = s_k dL/dY[ids]
    (a gather, + N D products with s)."""
    ids, x = np.array([3, 0, 3, 1, 3]), _randn(5, 2)
    s = RNG.random((5, 1)) if scaled else None

    def forward(args, gemm):
        rows = args[0] * s if scaled else args[0]
        y = np.zeros((4, 2))
        np.add.at(y, ids, rows)
        return y

    _check(emb.EmbeddingBackward, (x,), needs, dict(indices=ids, num_embeddings=4, scale=s),
           forward, lambda grads, gemm: {0: grads[0][ids] * s if scaled else grads[0][ids]})


# ---------------------------------------------------------------------------- losses
def _to_rows(a):
    """(M, C) rows with the class axis last, and the moved shape (loss.py's layout)."""
    moved = np.moveaxis(a, 0 if a.ndim == 1 else 1, -1)
    return moved.reshape(-1, moved.shape[-1]), moved.shape


def _from_rows(d2, moved_shape):
    return np.moveaxis(d2.reshape(moved_shape), -1, 0 if len(moved_shape) == 1 else 1)


def _reduced(loss, reduction, normalizer, shape):
    """'none': the losses in the targets' shape; 'sum' / 'mean': their sum (kept an array so
    that the divide by the normalizer is counted)."""
    if reduction == "none":
        return loss.reshape(shape)
    total = loss.sum(keepdims=True).reshape(())
    return total / normalizer if reduction == "mean" else total


def _row_scale(gy, reduction, normalizer, m):
    """dL/dloss per row as an (M, 1) counted array for 'none', else a plain scalar (a scalar
    made of constants: free)."""
    if reduction == "none":
        return gy.reshape(m, 1)
    return float(_plain(gy)) / (normalizer if reduction == "mean" else 1.0)


REDUCTIONS = ["mean", "sum", "none"]
X_SHAPES = [(6, 5), (2, 5, 3), (5,)]


class _ClassTargets:
    """Logits x of ``shape``, class-index targets with a few ignored samples, and the
    constants of the call (module docstring of loss.py): w_t and the target distribution q
    (M, C), zero for ignored samples."""

    def __init__(self, shape, weighted, eps, ignore=-100):
        c = shape[0 if len(shape) == 1 else 1]
        self.x = _randn(*shape)
        self.target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
        self.target = RNG.integers(0, c, self.target_shape)
        t = self.target.reshape(-1)
        if t.size > 2:
            t[[0, -1]] = ignore
        self.valid, self.t = t != ignore, np.where(t != ignore, t, 0)
        self.weight = RNG.random(c) + 0.5 if weighted else None
        w = self.weight if weighted else np.ones(c)
        self.w_t = w[self.t] * self.valid
        onehot = np.eye(c)[self.t]
        self.q = w * ((1 - eps) * onehot + eps / c) * self.valid[:, None]
        self.c, self.m, self.w = c, t.size, w


def _log_softmax(x):
    """(z = x - max, log-sum (M,), p = exp(z) / sum) per row: 5MC - M FLOPs."""
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    total = e.sum(axis=1, keepdims=True)
    return z, np.log(total)[:, 0], e / total


@pytest.mark.parametrize("needs", [(True, None, None), (False, None, None)])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", X_SHAPES)
def test_cross_entropy(shape, reduction, weighted, eps, needs):
    """p = softmax(x) (kept), loss = (1 - eps) w_t (-log p_t) + (eps / C) sum_c w_c (-log
    p_c) with -log p_c = log-sum - z_c; dL/dx = dL/dloss * (p * sum(q) - q), q and sum(q)
    constants (sum(q) = 1 unweighted). Ignored samples are bookkeeping: selected on plain
    arrays."""
    k = _ClassTargets(shape, weighted, eps)
    normalizer = k.w_t.sum()
    moved = _to_rows(k.x)[1]
    kept = {}

    def forward(args, gemm):
        z, log_sum, kept["p"] = _log_softmax(_to_rows(args[0])[0])
        loss = log_sum - z[np.arange(k.m), k.t]
        if weighted or eps > 0:
            loss = loss * ((1 - eps) * k.w_t)
        if eps > 0:
            z_w = (z * k.weight).sum(axis=1) if weighted else z.sum(axis=1)
            loss = loss + (eps / k.c) * (k.w.sum() * log_sum - z_w)
        loss = counted(np.where(k.valid, _plain(loss), 0.0))
        return _reduced(loss, reduction, normalizer, k.target_shape)

    def backward(grads, gemm):
        p = counted(np.where(k.valid[:, None], _plain(kept["p"]), 0.0))
        scaled = p * k.q.sum(axis=1, keepdims=True) if weighted else p
        dx = (scaled - k.q) * _row_scale(grads[0], reduction, normalizer, k.m)
        return {0: _from_rows(dx, moved)}

    cost = _check(L.CrossEntropy, (k.x, k.target, k.weight), needs,
                  dict(reduction=reduction, label_smoothing=eps), forward, backward)
    if not weighted and not eps and reduction == "mean" and needs[0]:
        # docs/cost-model.md's row: 5MC + M forward, 2MC backward
        assert (cost.flops, cost.backward_flops) == (5 * k.m * k.c + k.m, 2 * k.m * k.c)


NEEDS_PROBS = [(True, True, True), (True, False, None), (False, True, False),
               (False, False, True), (False, False, None)]


@pytest.mark.parametrize("needs", NEEDS_PROBS)
@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", X_SHAPES[:2])
def test_cross_entropy_probs(shape, reduction, eps, needs):
    """q = w ((1 - eps) P + eps / C), loss = -sum_c q_c log p_c, p = exp(log p) kept;
    dL/dx = dL/dloss (p sum(q) - q), dL/dP = -dL/dloss (1 - eps) w log p,
    dL/dw = -sum over rows of dL/dloss ((1 - eps) P + eps / C) log p."""
    c = shape[1]
    x, target = _randn(*shape), RNG.random(shape)
    weight = RNG.random(c) + 0.5 if needs[2] is not None else None
    m = x.size // c
    moved = _to_rows(x)[1]
    z, log_sum = _log_softmax(_to_rows(x)[0])[:2]
    saved_log_p = z - log_sum[:, None]

    def smoothed(p2d):
        return p2d * (1.0 - eps) + eps / c if eps > 0 else p2d

    def forward(args, gemm):
        x2d = _to_rows(args[0])[0]
        z = x2d - x2d.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        q = smoothed(_to_rows(args[1])[0])
        q_w = q * args[2] if weight is not None else q
        loss = -(q_w * log_p).sum(axis=1)
        np.exp(log_p)   # p, kept for backward
        return _reduced(loss, reduction, float(m), shape[:1] + shape[2:])

    def backward(grads, gemm):
        scale = _row_scale(grads[0], reduction, float(m), m)
        lp, p2d = counted(saved_log_p), counted(_to_rows(target)[0])
        w = counted(weight) if weight is not None else None
        q = smoothed(p2d) if needs[0] or needs[2] else None

        def grad_x():
            q_w = q * w if w is not None else q
            return _from_rows((np.exp(saved_log_p) * q_w.sum(axis=1, keepdims=True) - q_w)
                              * scale, moved)

        def grad_p():
            g = lp * (scale * -(1.0 - eps))
            return _from_rows(g * w if w is not None else g, moved)

        return needed(needs, {0: grad_x, 1: grad_p,
                               2: lambda: -(q * lp * scale).sum(axis=0)})

    _check(L.CrossEntropyProbs, (x, target, weight), needs,
           dict(reduction=reduction, label_smoothing=eps), forward, backward)


@pytest.mark.parametrize("needs", [(True, None, None), (False, None, None)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", X_SHAPES)
def test_nll_loss(shape, reduction, weighted, needs):
    """loss = -w_t x_t (M products by a constant); dL/dx = dL/dloss times the constant
    (-w_t one-hot), densely (MC)."""
    k = _ClassTargets(shape, weighted, 0.0)
    normalizer = k.w_t.sum()
    moved = _to_rows(k.x)[1]
    picked = np.zeros((k.m, k.c))
    picked[np.arange(k.m), k.t] = -k.w_t

    def forward(args, gemm):
        loss = _to_rows(args[0])[0][np.arange(k.m), k.t] * -k.w_t
        return _reduced(loss, reduction, normalizer, k.target_shape)

    def backward(grads, gemm):
        scale = _row_scale(grads[0], reduction, normalizer, k.m)
        return {0: _from_rows(counted(picked) * scale, moved)}

    _check(L.NllLoss, (k.x, k.target, k.weight), needs, dict(reduction=reduction), forward,
           backward)


NEEDS_BCE = [(True, True, True, True), (True, False, False, False), (False, True, False, False),
             (False, False, True, False), (False, False, False, True),
             (False, False, False, False)]


@pytest.mark.parametrize("needs", NEEDS_BCE)
@pytest.mark.parametrize("w_shape, pw_shape", [(None, None), ((4,), None), (None, (4,)),
                                               ((3, 1), (4,))])
def test_binary_cross_entropy_with_logits(w_shape, pw_shape, needs):
    """sp = log(1 + exp(-x)), l = (1 - t) x + lw sp with lw = 1 + (pw - 1) t, y = w l;
    dL/dx = g ((1 - t) - lw sigmoid(-x)), g = dL/dy w, sigmoid(-x) = 1 / (1 + exp(x));
    dL/dt = g ((pw - 1) sp - x); dL/dw = dL/dy l; dL/dpw = g t sp; each summed to its input's
    shape."""
    x, t = _randn(3, 4), RNG.random((3, 4))
    w = RNG.random(w_shape) + 0.5 if w_shape else None
    pw = RNG.random(pw_shape) + 0.5 if pw_shape else None
    needs = tuple(n if a is not None else None for n, a in zip(needs, (x, t, w, pw)))

    def softplus_neg(x):
        return np.log(1.0 + np.exp(-x))

    def lw(pw, t):
        return 1.0 + (pw - 1.0) * t

    def loss(x, t, pw, sp):
        return (1.0 - t) * x + (lw(pw, t) * sp if pw is not None else sp)

    def forward(args, gemm):
        y = loss(args[0], args[1], args[3], softplus_neg(args[0]))
        return y * args[2] if w is not None else y

    def backward(grads, gemm):
        cx, ct, cw, cpw = (counted(a) if a is not None else None for a in (x, t, w, pw))
        gy = grads[0]
        needs_sp = (needs[1] and pw is not None) or needs[2] or needs[3]
        sp = softplus_neg(cx) if needs_sp else None
        g = gy * cw if w is not None and (needs[0] or needs[1] or needs[3]) else gy

        def grad_x():
            sigmoid = 1.0 / (1.0 + np.exp(cx))
            weighted = lw(cpw, ct) * sigmoid if pw is not None else sigmoid
            return g * ((1.0 - ct) - weighted)

        grads = needed(needs, {
            0: grad_x,
            1: lambda: g * ((cpw - 1.0) * sp - cx) if pw is not None else g * -cx,
            2: lambda: gy * loss(cx, ct, cpw, sp),
            3: lambda: g * ct * sp})
        return {i: sum_to(grad, (x, t, w, pw)[i].shape) for i, grad in grads.items()}

    _check(L.BinaryCrossEntropyWithLogits, (x, t, w, pw), needs, {}, forward, backward)


# ---------------------------------------------------------------------------- recurrent
def _sigmoid(a):
    """1 / (1 + exp(-a)): 4 FLOPs per element."""
    return 1.0 / (1.0 + np.exp(-a))


class _Step:
    """A cell step's inputs (B = 3, H = 4, G gates): gx, h, W_hh, b_hh, with h or b_hh None
    when not given, and the hidden gradients of the module docstring."""

    def __init__(self, gates, has_h, has_b):
        b, self.size = 3, 4
        self.gx = _randn(b, gates * self.size)
        self.h = _randn(b, self.size) if has_h else None
        self.w = _randn(gates * self.size, self.size)
        self.b = _randn(gates * self.size) if has_b else None

    def gh(self, args_h, args_w, args_b, gemm):
        """h W_hh^T + b_hh; b_hh alone (or 0) for a zero state."""
        if self.h is None:
            return np.broadcast_to(args_b, self.gx.shape) if self.b is not None else 0.0
        gh = gemm.mm(args_h, args_w.T)
        return gh + args_b if self.b is not None else gh

    def hidden(self, da, gemm, positions):
        """{position: part} for dL/dh (+ extra), dL/dW_hh, dL/db_hh from dL/da."""
        h_pos, w_pos, b_pos = positions
        h, w = counted(self.h) if self.h is not None else None, counted(self.w)
        return {h_pos: lambda: gemm.mm(da(), w),
                w_pos: lambda: gemm.mm(da().T, h) if h is not None else np.zeros(self.w.shape),
                b_pos: lambda: da().sum(axis=0)}


def _step_needs(needs, step, h_pos, b_pos):
    needs = list(needs)
    if step.h is None:
        needs[h_pos] = None
    if step.b is None:
        needs[b_pos] = None
    return tuple(needs)


NEEDS_STEP = [(True, True, True, True), (True, False, False, False), (False, True, False, False),
              (False, False, True, True), (False, False, False, False)]
STATES = [(True, True), (True, False), (False, True), (False, False)]


@pytest.mark.parametrize("needs", NEEDS_STEP)
@pytest.mark.parametrize("has_h, has_b", STATES)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_step(nonlinearity, has_h, has_b, needs):
    """a = gx + h W_hh^T + b_hh, h' = act(a); dL/da = dL/dh' (1 - h'^2) or where(h' > 0)."""
    step = _Step(1, has_h, has_b)
    needs = _step_needs(needs, step, 1, 3)
    act = np.tanh if nonlinearity == "tanh" else (lambda a: np.maximum(a, 0.0))

    def forward(args, gemm):
        a = args[0]
        if has_h:
            a = a + gemm.mm(args[1], args[2].T)
        return act(a + args[3] if has_b else a)

    y = _plain(forward([counted(a) if a is not None else None
                        for a in (step.gx, step.h, step.w, step.b)], Gemm()))

    def backward(grads, gemm):
        cache = {}

        def da():
            if "da" not in cache:
                g = grads[0]
                tanh = nonlinearity == "tanh"
                cache["da"] = g * (1.0 - counted(y) * y) if tanh else np.where(y > 0, g, 0.0)
            return cache["da"]

        return needed(needs, {0: da, **step.hidden(da, gemm, (1, 2, 3))})

    cost = _check(rec.RNNStep, (step.gx, step.h, step.w, step.b), needs,
                  dict(nonlinearity=nonlinearity), forward, backward)
    assert cost.gemm_flops == 2 * 3 * 4 * 4 * has_h


NEEDS_LSTM = [(True, True, True, True, True), (True, False, False, False, False),
              (False, False, True, False, False), (False, True, False, True, False),
              (False, False, False, False, True), (False, False, False, False, False)]


@pytest.mark.parametrize("needs", NEEDS_LSTM)
@pytest.mark.parametrize("has_h, has_b", STATES)
@pytest.mark.parametrize("has_c", [True, False])
def test_lstm_step(has_c, has_h, has_b, needs):
    """The LSTM step of the docstring: gates, c' = f c + i g, h' = o tanh(c'), and its
    backward from dL/dh' and dL/dc'."""
    step = _Step(4, has_h, has_b)
    c = _randn(3, 4) if has_c else None
    needs = _step_needs(needs, step, 1, 4)
    needs = needs[:2] + ((needs[2] if has_c else None),) + needs[3:]
    n = step.size
    saved = {}

    def forward(args, gemm):
        a = args[0] + step.gh(args[1], args[3], args[4], gemm) if has_h or has_b else args[0]
        i, f, o = (_sigmoid(a[:, k * n:(k + 1) * n]) for k in (0, 1, 3))
        g = np.tanh(a[:, 2 * n:3 * n])
        c_new = f * args[2] + i * g if has_c else i * g
        tc = np.tanh(c_new)
        saved.update(i=_plain(i), f=_plain(f), g=_plain(g), o=_plain(o), tc=_plain(tc))
        return o * tc, c_new

    def backward(grads, gemm):
        gh_new, gc_new = grads
        i, f, g, o, tc = (counted(saved[k]) for k in ("i", "f", "g", "o", "tc"))
        cache = {}

        def dc():
            if "dc" not in cache:
                cache["dc"] = gc_new + gh_new * o * (1.0 - tc * tc)
            return cache["dc"]

        def da():
            if "da" not in cache:
                d_i = dc() * g * (i * (1.0 - i))
                d_f = dc() * counted(c) * (f * (1.0 - f)) if has_c else np.zeros((3, n))
                d_g = dc() * i * (1.0 - g * g)
                d_o = gh_new * tc * (o * (1.0 - o))
                cache["da"] = np.concatenate([d_i, d_f, d_g, d_o], axis=1)
            return cache["da"]

        return needed(needs, {0: da, 2: lambda: dc() * f, **step.hidden(da, gemm, (1, 3, 4))})

    _check(rec.LSTMStep, (step.gx, step.h, c, step.w, step.b), needs, {}, forward, backward)


@pytest.mark.parametrize("needs", NEEDS_STEP)
@pytest.mark.parametrize("has_h, has_b", STATES)
def test_gru_step(has_h, has_b, needs):
    """The GRU step of the docstring: r, z, n = tanh(gx_n + r gh_n), h' = (1 - z) n + z h;
    dL/dgx = [da_r, da_z, da_n], dL/dgh = [da_r, da_z, da_n r], dL/dh = dL/dh' z + dL/dgh
    @ W_hh."""
    step = _Step(3, has_h, has_b)
    needs = _step_needs(needs, step, 1, 3)
    n = step.size
    saved = {}

    def forward(args, gemm):
        gh = step.gh(args[1], args[2], args[3], gemm)
        gh = gh if has_h or has_b else np.zeros(step.gx.shape)
        r = _sigmoid(args[0][:, :n] + gh[:, :n])
        z = _sigmoid(args[0][:, n:2 * n] + gh[:, n:2 * n])
        gh_n = gh[:, 2 * n:]
        new = np.tanh(args[0][:, 2 * n:] + r * gh_n)
        saved.update(r=_plain(r), z=_plain(z), n=_plain(new), gh_n=_plain(gh_n))
        h_new = (1.0 - z) * new
        return h_new + z * args[1] if has_h else h_new

    def backward(grads, gemm):
        g = grads[0]
        r, z, new, gh_n = (counted(saved[k]) for k in ("r", "z", "n", "gh_n"))
        cache = {}

        def parts():
            if "parts" not in cache:
                da_n = g * (1.0 - z) * (1.0 - new * new)
                dz = g * (counted(step.h) - new) if has_h else g * -new
                da_r = da_n * gh_n * (r * (1.0 - r))
                cache["parts"] = da_r, dz * (z * (1.0 - z)), da_n
            return cache["parts"]

        def dgh():
            if "dgh" not in cache:
                da_r, da_z, da_n = parts()
                cache["dgh"] = np.concatenate([da_r, da_z, da_n * r], axis=1)
            return cache["dgh"]

        hidden = step.hidden(dgh, gemm, (1, 2, 3))
        grad_h = hidden[1]
        hidden[1] = lambda: g * z + grad_h()
        return needed(needs, {0: lambda: np.concatenate(parts(), axis=1), **hidden})

    cost = _check(rec.GRUStep, (step.gx, step.h, step.w, step.b), needs, {}, forward, backward)
    if all(n for n in needs if n is not None) and has_h:
        assert cost.backward_gemm_flops == 2 * cost.gemm_flops
