"""Scaled dot-product attention: one fused op, and a memory-efficient (blocked) variant.

Notation, for one batch element (batch dims broadcast, as in matmul):

    Q:(L, E)  K:(S, E)  V:(S, Ev)      L queries, S keys, head dim E, value dim Ev
    S = Q K^T * scale + M              scores (L, S); M is the mask (0 / -inf, or additive)
    P = softmax(S, over keys)          attention weights (L, S), rows sum to 1
    O = P V                            output (L, Ev)

Backward, with dO = dL/dO (L, Ev):

    dL/dV = P^T dO                                                        (S, Ev)
    dP    = dO V^T                                                        (L, S)
    dL/dS = P * (dP - rowsum(dP * P))    the softmax Jacobian diag(p) - p p^T per row (L, S)
    dL/dQ = dL/dS K * scale                                               (L, E)
    dL/dK = dL/dS^T Q * scale                                             (S, E)
    dL/dM = dL/dS (an additive mask is added to S)                        (L, S)

and rowsum(dP * P) = rowsum(dO * O) (FlashAttention's "D"): sum_s P_ls sum_e dO_le V_se =
sum_e dO_le O_le. It costs (L, Ev) instead of (L, S), and it still holds with dropout.
The two are equal only up to rounding, which matters on a saturated row (its largest weight
is exactly 1, e.g. scores far apart, or the first row under a causal mask): there dL/dS at
that key is 1 * (dP - rowsum), a difference of two nearly equal numbers whose true value is
0, and a rounding error left in it is multiplied by |K| and |Q| in dL/dQ and dL/dK. Saturated
rows therefore use the definition (``_exact_rowsum_where_saturated``; the blocked op, which
never holds a whole row, uses the row-sum rule of ``_SaturatedRows``).

Fully masked rows (every key masked for a query, e.g. a boolean mask row of False or an
additive row of -inf): the softmax of such a row is 0 / 0. Both ops define the row of P as 0,
so the output row is 0 and every gradient through it is 0, never NaN. (PyTorch >= 2.5 does
the same in its math backend, ``_safe_softmax``; earlier versions gave NaN.)

``ScaledDotProductAttention`` saves P (L x S per batch element); ``MemoryEfficientAttention``
walks over blocks of keys with an online softmax, saves only O and the log-sum-exp of each
row (L values), and recomputes the blocks of P in backward: its activation memory grows
linearly with the sequence length, not with L x S. Both backwards are raw-array kernels
(once-differentiable).

``attention_reference_backward`` at the end of this file is the backward above in plain
NumPy, recomputing P from q, k and the mask and using rowsum(dP * P) as defined (not the
rowsum(dO * O) shortcut); the tests check both ops against it.
"""

import math
from typing import NamedTuple

import numpy as np

from retrograd._fast import compiled_for
from retrograd.autograd.cost import Cost, call_arg, shape_text, unbroadcast_flops
from retrograd.autograd.function import Function
from retrograd.ops._matmul import matmul
from retrograd.ops.dropout import dropout_mask

__all__ = ["ScaledDotProductAttention", "MemoryEfficientAttention",
           "attention_reference_backward"]


def _swap(x):
    return np.swapaxes(x, -1, -2)


def _scaled(q, scale):
    """Q * scale as a new C-contiguous array (NumPy keeps the memory order of a view, as of
    the heads of a (N, L, H, d) projection, which the compiled softmax does not take: the
    Transformer step's attention forward ran 2.5 ms a call so, 1.2 ms with this)."""
    if not isinstance(q, np.ndarray):
        return q * scale
    return np.multiply(q, scale, out=np.empty(q.shape, dtype=np.result_type(q, scale)))


def _scores(q_scaled, k, mask, causal, start=0):
    """S = (Q * scale) K^T, masked: (..., L, n) for the n keys of k, which start at key index
    ``start`` (for the causal mask). A boolean mask blocks where it is False; a float mask is
    added. Returns a new array that the caller may overwrite. (Scaling Q, L x E, is cheaper
    than scaling S, L x S, and blocked callers scale Q once for all blocks.)"""
    scores = matmul(q_scaled, _swap(k))
    if mask is not None:
        full = np.broadcast_shapes(scores.shape, mask.shape)
        if full != scores.shape:  # the mask adds batch dims that q and k lack
            scores = np.array(np.broadcast_to(scores, full))
        if mask.dtype == np.bool_:
            np.copyto(scores, -np.inf, where=~mask)
        else:
            scores += mask
    if causal:
        np.copyto(scores, -np.inf, where=_causal_blocked(scores.shape[-2], start, k.shape[-2]))
    return scores


def _causal_blocked(n_queries, start, n_keys):
    """True where key j (j = start .. start + n_keys - 1) comes after query i: the causal
    mask aligned to the top-left corner, like PyTorch's tril(ones(L, S))."""
    keys = np.arange(start, start + n_keys)
    return keys > np.arange(n_queries)[:, None]


def _softmax_(scores):
    """Row softmax of ``scores`` in place: returns (P, the saturated rows (a boolean array of
    the rows' shape) or None when no row is saturated). A row is saturated when its exp-sum is
    exactly 1, i.e. its largest weight is exactly 1 and the others are 0 or below rounding.
    A fully masked row (all -inf) gives zeros: its max is taken as 0, so exp gives 0
    everywhere, and its sum 0 is replaced by 1."""
    row_max = np.max(scores, axis=-1, keepdims=True, initial=-np.inf)
    row_max[row_max == -np.inf] = 0.0
    scores -= row_max
    np.exp(scores, out=scores)
    row_sum = np.sum(scores, axis=-1, keepdims=True)
    saturated = row_sum[..., 0] == 1.0
    row_sum[row_sum == 0.0] = 1.0
    scores /= row_sum
    return scores, (saturated if saturated.any() else None)


_FLOAT32 = (np.dtype(np.float32),)   # what the compiled kernels take


def _attention_weights(q_scaled, k, mask, causal):
    """(P, saturated rows or None): softmax(_scores(...)), by the compiled row kernels
    (retrograd/_numba/attention.py: the causal select and the softmax in one pass per row)
    for float32 scores without a mask array, else by _scores and _softmax_."""
    kernels = None
    if mask is None and k.dtype == np.float32:
        kernels = compiled_for("attention", q_scaled, dtypes=_FLOAT32)
    if kernels is None:
        return _softmax_(_scores(q_scaled, k, mask, causal))
    # K^T copied to C order first: batched products with a transposed second operand ran
    # 1.4-2.4x slower in NumPy's matmul (32x4 heads of 64x32 @ 32x64: 784 or 471 us against
    # 323 us + a 70 us copy)
    return kernels.masked_softmax_(matmul(q_scaled, np.ascontiguousarray(_swap(k))), causal)


def _scores_grad_(grad_s, p, grad_out, out, saturated, grad_weights):
    """dL/dS = P * (dP + dL/dP_out - rowsum(dO * O) - rowsum(dL/dP_out * P)) in place on
    grad_s = dP (ScaledDotProductAttention's docstring), by the compiled row kernel when no
    gradient reaches the weights output and the arrays allow it."""
    if grad_weights is None and grad_s.shape[:-1] == out.shape[:-1]:
        kernels = compiled_for("attention", grad_s, p, grad_out, out, dtypes=_FLOAT32)
        if kernels is not None:
            return kernels.softmax_grad_(grad_s, p, grad_out, out, saturated)
    row = np.sum(grad_out * out, axis=-1, keepdims=True)             # rowsum(dP * P)
    if grad_weights is not None:
        grad_s += grad_weights
        row = row + np.sum(grad_weights * p, axis=-1, keepdims=True)
    _exact_rowsum_where_saturated(row, grad_s, p, saturated)
    grad_s -= row
    grad_s *= p
    return grad_s


def _exact_rowsum_where_saturated(row, grad_p, p, saturated):
    """Replace the shortcut rowsum(dO * O) by its definition rowsum(dP * P) on the saturated
    rows (module docstring), in place. The two are equal up to rounding; where the largest
    weight is exactly 1, dL/dS = 1 * (dP - row) at that key is a difference of two nearly
    equal numbers, and the shortcut's rounding would survive it (then grow with |Q| and |K|
    in dL/dK and dL/dQ), while the definition gives exactly 0, as the softmax Jacobian
    diag(p) - p p^T of a one-hot p is 0."""
    if saturated is None:
        return
    rows = np.broadcast_to(saturated, grad_p.shape[:-1])
    p_rows = np.broadcast_to(p, grad_p.shape)[rows]
    row[rows] = np.einsum("ns,ns->n", grad_p[rows], p_rows)[:, None]


class _Sizes(NamedTuple):
    """What an attention call's cost is made of (B: the scores' batch, B_o: the output's)."""

    scores: int       # B*L*S, the full score matrix (a causal mask is a select, not a skip)
    rows: int         # B*L
    q_grad: int       # B*L*E
    k_grad: int       # B*S*E
    out: int          # B_o*L*Ev
    out_rows: int     # B_o*L
    qk: int           # 2*B*L*S*E, one product of Q K^T's shape
    pv: int           # 2*B_o*L*S*Ev, one product of P V's shape
    masking: int      # B*L*S per term: scale, mask (add or select), causal select


def _operands(call):
    """(q, k, v, mask) of an attention call, as ArrayInfo (mask None when absent)."""
    return (*call.inputs[:3], call_arg(call, 3, "mask"))


def _sizes(call):
    q, k, v, mask = _operands(call)
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2],
                                mask.shape[:-2] if mask is not None else ())
    rows, n_keys = math.prod(batch) * q.shape[-2], k.shape[-2]
    out = call.outputs[0]
    terms = 1 + (mask is not None) + bool(call_arg(call, 5, "causal", False))
    return _Sizes(rows * n_keys, rows, rows * q.shape[-1], math.prod(batch) * n_keys * k.shape[-1],
                  out.size, out.size // max(v.shape[-1], 1), 2 * rows * n_keys * q.shape[-1],
                  2 * out.size * n_keys, terms * rows * n_keys)


def _unbroadcast_grads(call, sizes):
    """Adds that sum each needed gradient's broadcast batch dims back to its input's shape
    (the scores' batch for q, k and the mask, the output's for v)."""
    q, k, v, mask = _operands(call)
    batch = (sizes.rows // max(q.shape[-2], 1),)
    out_batch = (sizes.out_rows // max(q.shape[-2], 1),)
    shapes = [(q, batch + q.shape[-2:]), (k, batch + k.shape[-2:]),
              (v, out_batch + v.shape[-2:]), (mask, batch + (q.shape[-2], k.shape[-2]))]
    return sum(unbroadcast_flops(grad, info.shape) for i, (info, grad) in enumerate(shapes)
               if call.needs(i) and info is not None)


def _gradient_flops(call, sizes):
    """(FLOPs, GEMM FLOPs) of the attention gradients shared by both ops, given dL/dS:
    dL/dV = P^T dO, dL/dQ = dL/dS K * scale, dL/dK = dL/dS^T Q * scale (each when needed),
    dP = dO V^T and dL/dS = P * (dP - rowsum(dO * O)) when any of dL/dQ, dL/dK, dL/dM is."""
    need_q, need_k, need_v, need_mask = (call.needs(i) for i in range(4))
    need_scores = need_q or need_k or need_mask
    gemm = (need_v + need_scores) * sizes.pv + (need_q + need_k) * sizes.qk
    rowsum = 2 * sizes.out - sizes.out_rows
    other = (need_scores * (rowsum + 2 * sizes.scores) + need_q * sizes.q_grad
             + need_k * sizes.k_grad + _unbroadcast_grads(call, sizes))
    return other + gemm, gemm


class ScaledDotProductAttention(Function):
    """O = softmax(Q K^T * scale + M) V, fused, returning (O, P).

    Inputs: q:(..., L, E), k:(..., S, E), v:(..., S, Ev), mask: None, bool (True = take part)
    or float (added to the scores), broadcastable to (..., L, S). Attributes: scale (float),
    causal (bool: key j is masked for query i when j > i), dropout_p (dropout on P).
    Outputs: O:(..., L, Ev) and P:(..., L, S), the attention weights before dropout (the
    functional API drops P; it is an output so that layers can return the weights).

    Derivation in the module docstring. With dropout, O = (P * R) V for the mask R (0 or
    1 / (1 - p)), so dP = (dO V^T) * R, and rowsum(dP * P) is still rowsum(dO * O). A
    gradient reaching the weights output, dL/dP_out, adds to dP:
        dL/dS = P * (dP + dL/dP_out - rowsum(dO * O) - rowsum(dL/dP_out * P))
    Fully masked rows have P = 0, hence O = 0 and dL/dS = 0 (no NaN).

    Saves: P (an output; recomputing it would cost a second Q K^T and softmax, while keeping
    it costs L x S per batch element, the memory that MemoryEfficientAttention avoids), O
    (for rowsum(dO * O)), and q, k, v where a gradient needs them. The dropout mask R is
    kept on ctx. Once-differentiable: the backward is a raw-array kernel.
    Reference: attention_reference_backward, the same rule without the speed paths.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, q, k, v, mask, scale=1.0, causal=False, dropout_p=0.0):
        p, ctx.saturated = _attention_weights(_scaled(q, scale), k, mask, causal)
        ctx.dropout = dropout_mask(p.shape, p.dtype, dropout_p) if dropout_p > 0.0 else None
        out = matmul(p if ctx.dropout is None else p * ctx.dropout, v)
        need_q, need_k, need_v, need_mask = ctx.needs_input_grad[:4]
        need_scores = need_q or need_k or need_mask
        ctx.save_for_backward(q if need_k else None, k if need_q else None,
                              v if need_scores else None, out, p)
        ctx.scale = scale
        ctx.set_materialize_grads(False)
        return out, p

    @staticmethod
    def backward(ctx, grad_out, grad_weights):
        q, k, v, out, p = ctx.saved_tensors
        need_q, need_k, need_v, need_mask = ctx.needs_input_grad[:4]
        if grad_out is None:  # only the weights output received a gradient
            grad_out = np.zeros_like(out)
        # dO in C order (it arrives as a view of the heads' permute, or a broadcast): P^T dO
        # ran 1.3x faster so, and dO V^T 1.2x with V^T copied to C order too
        grad_out = np.ascontiguousarray(grad_out)
        grad_v = None
        if need_v:
            used = p if ctx.dropout is None else p * ctx.dropout
            grad_v = matmul(_swap(used), grad_out)
        if not (need_q or need_k or need_mask):
            return None, None, grad_v, None
        grad_s = matmul(grad_out, np.ascontiguousarray(_swap(v)))          # dP (..., L, S)
        if ctx.dropout is not None:
            grad_s *= ctx.dropout
        grad_s = _scores_grad_(grad_s, p, grad_out, out, ctx.saturated, grad_weights)
        grad_q = matmul(grad_s, k) if need_q else None
        grad_k = matmul(_swap(grad_s), q) if need_k else None
        for grad in (grad_q, grad_k):
            if grad is not None:
                grad *= ctx.scale
        return grad_q, grad_k, grad_v, (grad_s if need_mask else None)

    @staticmethod
    def cost(call):
        """Forward: Q K^T and P V (2*B*L*S*(E + Ev)), the scale, mask and causal terms (B*L*S
        each), the row softmax (max, subtract, exp, sum, divide: 5*B*L*S - 2*B*L) and the
        dropout multiply (B*L*S). Backward: _gradient_flops (dP * R adds B*L*S with dropout).
        Not counted: a gradient reaching the weights output P (known only in backward)."""
        sizes = _sizes(call)
        dropout = call_arg(call, 6, "dropout_p", 0.0) > 0.0
        softmax = 5 * sizes.scores - 2 * sizes.rows
        gemm = sizes.qk + sizes.pv
        backward, backward_gemm = _gradient_flops(call, sizes)
        need_scores = call.needs(0) or call.needs(1) or call.needs(3)
        return Cost(gemm + sizes.masking + softmax + dropout * sizes.scores,
                    backward + dropout * need_scores * sizes.scores,
                    _attention_text("sdpa", call, "5*B*L*S - 2*B*L softmax"),
                    gemm_flops=gemm, backward_gemm_flops=backward_gemm)


def _attention_text(name, call, softmax):
    q, k, v = call.inputs[:3]
    return (f"{name} q({shape_text(q)}) k({shape_text(k)}) v({shape_text(v)}): "
            f"2*B*L*S*(E + Ev) + {softmax}")


class MemoryEfficientAttention(Function):
    """O = softmax(Q K^T * scale + M) V, computed over blocks of keys; returns (O, lse).

    Inputs and attributes as ScaledDotProductAttention (no dropout), plus block_size: the
    number of keys per block. lse:(..., L) is the log-sum-exp of each row of scores,
    lse = log(sum_s exp(S_ls)) (-inf for a fully masked row).

    Forward (online softmax): for each block b of keys, with running max m, running sum l
    and running unnormalized output A (all start at -inf, 0, 0):
        m' = max(m, rowmax(S_b))        alpha = exp(m - m')        P_b = exp(S_b - m')
        l  = l * alpha + rowsum(P_b)    A = A * alpha + P_b V_b    m = m'
    then O = A / l and lse = m + log(l). A row whose max is still -inf uses 0 as its shift,
    so exp gives 0, never NaN; a fully masked row ends with l = 0 and O = 0.
    Backward: per block, P_b = exp(S_b - lse) is recomputed (exact: it is the final softmax),
    and with D = rowsum(dO * O) - dL/dlse (d lse / d S = P, so a gradient of lse adds
    P * dL/dlse to dL/dS):
        dL/dV_b = P_b^T dO      dL/dS_b = P_b * (dO V_b^T - D)
        dL/dQ += dL/dS_b K_b * scale      dL/dK_b = dL/dS_b^T Q * scale
    Saves: O and lse (outputs, L x (Ev + 1)), q, k and the mask (to recompute the blocks of
    P), and v when dL/dS is needed; no L x S array is kept (only a float mask that requires
    grad gets its full L x S gradient). Peak memory inside forward and backward is
    L x block_size per batch element. Once-differentiable.
    Reference: attention_reference_backward, the same rule without the blocks.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, q, k, v, mask, scale=1.0, causal=False, block_size=128):
        n_queries = q.shape[-2]
        shape = _score_batch(q, k, mask) + (n_queries,)
        running_max = np.full(shape, -np.inf, dtype=q.dtype)
        shift = np.zeros(shape, dtype=q.dtype)
        total = np.zeros(shape, dtype=q.dtype)
        acc = np.zeros(np.broadcast_shapes(shape[:-1], v.shape[:-2]) + (n_queries, v.shape[-1]),
                       dtype=q.dtype)
        q_scaled = q * scale
        for start, stop in _blocks(k.shape[-2], block_size, n_queries if causal else None):
            block = _scores(q_scaled, k[..., start:stop, :], _mask_block(mask, start, stop),
                            causal, start)
            new_max = np.maximum(running_max, np.max(block, axis=-1))
            shift = np.where(new_max == -np.inf, 0.0, new_max)
            alpha = np.exp(running_max - shift)
            block -= shift[..., None]
            p = np.exp(block, out=block)
            total = total * alpha + np.sum(p, axis=-1)
            acc *= alpha[..., None]
            acc += matmul(p, v[..., start:stop, :])
            running_max = new_max
        out = acc / np.where(total == 0.0, 1.0, total)[..., None]
        lse = np.log(total) + shift   # -inf for a fully masked row
        need_q, need_k, _, need_mask = ctx.needs_input_grad[:4]
        ctx.save_for_backward(q, k, v if (need_q or need_k or need_mask) else None, out, lse,
                              mask)
        saturated = total == 1.0  # as in _softmax_: the row's largest weight is exactly 1
        ctx.saturated = saturated if saturated.any() else None
        ctx.scale, ctx.causal, ctx.block_size = scale, causal, block_size
        ctx.set_materialize_grads(False)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, grad_lse):
        q, k, v, out, lse, mask = ctx.saved_tensors
        if grad_out is None:  # only the lse output received a gradient
            grad_out = np.zeros_like(out)
        row = np.sum(grad_out * out, axis=-1)                                   # D
        if grad_lse is not None:
            row = row - grad_lse
        lse = np.where(lse == -np.inf, 0.0, lse)  # fully masked rows: exp(-inf - 0) = 0
        return _blocked_grads(ctx, q, k, v, mask, grad_out, row, lse, grad_lse)

    @staticmethod
    def cost(call):
        """Forward, over n_b = ceil(S / block_size) blocks and the full L x S scores: Q K^T
        and P V (2*B*L*S*(E + Ev)), scale, mask and causal terms (B*L*S each), m' (B*L*S),
        alpha (2*B*L per block), P_b (2*B*L*S), l (B*L*S + B*L per block), A (2*B*L*Ev per
        block), O = A / l (B*L*Ev), lse (2*B*L). Backward: D (B*L*(2*Ev - 1)), P_b recomputed
        (Q K^T again, scale and mask terms, exp(S_b - lse): 2*B*L*S), the gradients of
        _gradient_flops, and dL/dQ's adds over blocks (B*L*E per block). Not counted: a
        gradient reaching lse (known only in backward)."""
        sizes = _sizes(call)
        blocks = -(-call.inputs[1].shape[-2] // call_arg(call, 6, "block_size", 128))
        gemm = sizes.qk + sizes.pv
        online = (4 * sizes.scores + 3 * sizes.rows * blocks + 2 * sizes.out * blocks
                  + sizes.out + 2 * sizes.rows)
        grads, grads_gemm = _gradient_flops(call, sizes)
        recompute = sizes.qk + sizes.masking + 2 * sizes.scores
        backward = call.any_grad * recompute + grads + call.needs(0) * sizes.q_grad * blocks
        return Cost(gemm + sizes.masking + online, backward,
                    _attention_text("memory_efficient_attention", call, "online softmax"),
                    gemm_flops=gemm, backward_gemm_flops=grads_gemm + call.any_grad * sizes.qk)


def _blocked_grads(ctx, q, k, v, mask, grad_out, row, lse, grad_lse):
    """The backward loop of MemoryEfficientAttention over blocks of keys."""
    need_q, need_k, need_v, need_mask = ctx.needs_input_grad[:4]
    batch = grad_out.shape[:-2]
    n_queries, n_keys = q.shape[-2], k.shape[-2]
    grad_q = np.zeros(batch + q.shape[-2:], q.dtype) if need_q else None
    grad_k = np.zeros(batch + k.shape[-2:], k.dtype) if need_k else None
    grad_v = np.zeros(batch + (n_keys, grad_out.shape[-1]), q.dtype) if need_v else None
    grad_mask = np.zeros(batch + (n_queries, n_keys), q.dtype) if need_mask else None
    need_scores = need_q or need_k or need_mask
    q_scaled = q * ctx.scale
    saturated = None
    if need_scores and ctx.saturated is not None:
        saturated = _SaturatedRows(np.broadcast_to(ctx.saturated, batch + (n_queries,)),
                                   q.dtype, grad_lse)
    for start, stop in _blocks(n_keys, ctx.block_size, n_queries if ctx.causal else None):
        p = _scores(q_scaled, k[..., start:stop, :], _mask_block(mask, start, stop),
                    ctx.causal, start)
        p -= lse[..., None]
        np.exp(p, out=p)
        if need_v:
            grad_v[..., start:stop, :] = matmul(_swap(p), grad_out)
        if not need_scores:
            continue
        grad_s = matmul(grad_out, _swap(v[..., start:stop, :]))
        grad_s -= row[..., None]
        grad_s *= p
        if saturated is not None:
            saturated.take_out(grad_s, p, start)
        if need_q:
            grad_q += matmul(grad_s, k[..., start:stop, :])
        if need_k:
            grad_k[..., start:stop, :] = matmul(_swap(grad_s), q_scaled)     # dS^T Q * scale
        if need_mask:
            grad_mask[..., start:stop] = grad_s
    if need_q:
        grad_q *= ctx.scale
    if saturated is not None:
        saturated.put_back(grad_q, grad_k, grad_mask, q_scaled, k, ctx.scale)
    return grad_q, grad_k, grad_v, grad_mask


class _SaturatedRows:
    """dL/dS at the weight-1 key of each saturated row, for the blocked backward.

    The blocks compute dL/dS = P * (dP - D) with D = rowsum(dO * O) - dL/dlse, equal to
    rowsum(dP * P) - dL/dlse only up to rounding; at a weight of exactly 1 that rounding
    survives the difference (ScaledDotProductAttention, which holds the whole row, uses the
    definition instead). Here no block holds the whole row, so the entry at the weight-1 key
    j comes from a rule that holds for every row: with the exact D and sum_s P_s = 1,
    sum_s dL/dS_s = sum_s P_s (dP_s - D) = dL/dlse, so
        dL/dS_j = dL/dlse - sum over s != j of dL/dS_s
    (exactly 0 when the other weights are 0 and lse gets no gradient). ``take_out`` zeroes
    the entry in each block and adds up the row's other entries; ``put_back`` adds the
    entry's terms to dL/dQ, dL/dK and dL/dM once the row is complete.
    """

    def __init__(self, rows, dtype, grad_lse):
        self.rows = rows                              # (batch..., L) bool
        self.others = np.zeros(rows.shape, dtype)     # sum of the other entries - dL/dlse
        if grad_lse is not None:
            self.others -= grad_lse
        self.where = []                         # index tuples (batch..., l, j) of weight 1

    def take_out(self, grad_s, p, start):
        at_one = (p == 1.0) & self.rows[..., None]
        grad_s[at_one] = 0.0
        self.others[self.rows] += np.sum(grad_s[self.rows], axis=-1)
        index = np.nonzero(at_one)
        self.where.append(index[:-1] + (index[-1] + start,))

    def put_back(self, grad_q, grad_k, grad_mask, q_scaled, k, scale):
        index = tuple(np.concatenate(parts) for parts in zip(*self.where))
        *batch, rows, keys = index
        value = -self.others[tuple(batch) + (rows,)]                   # dL/dS_j per row
        if grad_q is not None:
            k_full = np.broadcast_to(k, self.rows.shape[:-1] + k.shape[-2:])
            grad_q[tuple(batch) + (rows,)] += value[:, None] * k_full[tuple(batch) + (keys,)] \
                * scale
        if grad_k is not None:
            q_full = np.broadcast_to(q_scaled, self.rows.shape[:-1] + q_scaled.shape[-2:])
            np.add.at(grad_k, tuple(batch) + (keys,),
                      value[:, None] * q_full[tuple(batch) + (rows,)])
        if grad_mask is not None:
            grad_mask[index] = value


def _score_batch(q, k, mask):
    """The batch shape of the scores: q's and k's batch dims, broadcast with the mask's."""
    shapes = [q.shape[:-2], k.shape[:-2]]
    if mask is not None:
        shapes.append(mask.shape[:-2])
    return np.broadcast_shapes(*shapes)


def _blocks(n_keys, block_size, causal_queries):
    """(start, stop) of each block of keys. Under the causal mask, a block whose first key
    comes after the last query is masked for every query and is skipped."""
    stop_at = n_keys if causal_queries is None else min(n_keys, causal_queries)
    return [(start, min(start + block_size, n_keys)) for start in range(0, stop_at, block_size)]


def _mask_block(mask, start, stop):
    if mask is None or mask.shape[-1] == 1:
        return mask
    return mask[..., start:stop]


# ---------------------------------------------------------------- the reference backward
def attention_reference_backward(q, k, v, mask, grad_out, scale=1.0, causal=False,
                                 dropout=None):
    """The backward of attention from the module docstring's formulas, all at once, with
    P recomputed from q, k and the mask:

        S  = Q K^T * scale + M      P = softmax(S)      O = (P * R) V          (R = 1: no dropout)
        dL/dV = (P * R)^T dO        dP = (dO V^T) * R
        dL/dS = P * (dP - rowsum(dP * P))
        dL/dQ = dL/dS K * scale     dL/dK = dL/dS^T Q * scale     dL/dM = dL/dS

    q:(..., L, E), k:(..., S, E), v:(..., S, Ev), mask None, bool (True = take part) or float
    (added to S), broadcastable to (..., L, S); grad_out = dO:(..., L, Ev); scale and causal
    as the ops' attributes; dropout: the mask R the forward multiplied P by (0 or 1/(1 - p)),
    or None. A fully masked row has P = 0 (the ops' convention).
    Returns (dL/dq, dL/dk, dL/dv, dL/dmask), computed in q's dtype; dL/dmask is None unless
    the mask is a float one. Each has its input's trailing dims and the broadcast batch dims
    of the scores, as the ops' own backwards: the engine sums broadcast dims back to each
    input's shape (``retrograd.autograd.engine.sum_to_shape``).
    """
    scores = q @ _swap(k) * scale
    if mask is not None and mask.dtype == np.bool_:
        scores = np.where(mask, scores, -np.inf)
    elif mask is not None:
        scores = scores + mask
    if causal:
        n_queries, n_keys = scores.shape[-2:]
        scores = np.where(np.triu(np.ones((n_queries, n_keys), dtype=bool), 1), -np.inf, scores)
    p = _reference_softmax(scores)
    kept = p if dropout is None else p * dropout
    grad_v = _swap(kept) @ grad_out
    grad_p = grad_out @ _swap(v) if dropout is None else (grad_out @ _swap(v)) * dropout
    grad_s = p * (grad_p - np.sum(grad_p * p, axis=-1, keepdims=True))
    grad_q = grad_s @ k * scale
    grad_k = _swap(grad_s) @ q * scale
    float_mask = mask is not None and mask.dtype != np.bool_
    return grad_q, grad_k, grad_v, (grad_s if float_mask else None)


def _reference_softmax(scores):
    """The textbook row softmax exp(s - max) / sum(exp(s - max)), then the rows of -inf only
    (every key masked, where it gives 0 / 0) set to 0."""
    fully_masked = np.all(scores == -np.inf, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):   # -inf - (-inf) = NaN on the fully masked rows
        e = np.exp(scores - np.max(scores, axis=-1, keepdims=True, initial=-np.inf))
        p = e / np.sum(e, axis=-1, keepdims=True)
    return np.where(fully_masked, 0.0, p)
