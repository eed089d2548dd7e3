"""Worked example of (inverted) dropout (retrograd/ops/dropout.py): the keep mask, the scale
1 / (1 - p), y = x * mask / (1 - p) and dL/dx = dL/dy * mask / (1 - p).

The mask is an input of the arithmetic, not a gradient, so the example draws it exactly as
retrograd's F.dropout does (``retrograd.manual_seed(seed)``, then one uniform draw U per
element from retrograd's generator, kept where U >= p) and does the arithmetic itself. The
reference reseeds before every call (the check calls it again for finite differences), inside
``retrograd.random.fork_rng()`` so the caller's random stream is left where it was.

With ``values={"mask": [...]}`` the mask is the user's. F.dropout cannot take a mask (it draws
its own), so the reference is then retrograd's Tensor arithmetic x * mask / (1 - p), the
product Dropout.forward computes once its mask is drawn: the check confirms the formula and
its gradient, not retrograd's draw.
"""

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError

__all__ = []


def _check_probability(p):
    if not 0.0 <= p <= 1.0:
        raise ExplainError(f"explain dropout: p must be in [0, 1], got {p:g}")


def _mask_given(ex):
    """Whether ``values=`` gives a mask."""
    return ex.is_given("mask", ("keep",))


def _given_mask(ex, x, p):
    """The user's keep mask (1 kept, 0 dropped) of x's shape, checked against p."""
    keep = ex.input("mask", x.shape, differentiable=False, aliases=("keep",),
                    doc="1 where x is kept, 0 where dropped")
    if keep.shape != x.shape:
        raise ExplainError(f"explain dropout: the mask has shape {_shape(keep.shape)} but x "
                           f"has shape {_shape(x.shape)}; they must be equal")
    if not np.all((keep == 0) | (keep == 1)):
        raise ExplainError(f"explain dropout: the mask must hold 0 (dropped) or 1 (kept), got "
                           f"{keep.tolist()}")
    if p == 1.0 and keep.any():
        raise ExplainError(f"explain dropout: p = 1 drops every element, but the mask keeps "
                           f"{int(keep.sum())}")
    return keep


def _shape(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def _drawn_uniforms(seed, shape):
    """The uniform draws F.dropout makes right after retrograd.manual_seed(seed): one per
    element, in float64 (the example's dtype), from retrograd's generator."""
    from retrograd.random import Generator

    return Generator().manual_seed(seed).numpy_generator().random(shape, dtype=np.float64)


def _scaled_mask(keep, p):
    """m = keep / (1 - p); all zeros when p = 1 (retrograd's mask, no division by 0)."""
    return np.zeros_like(keep) if p == 1.0 else keep / (1.0 - p)


def _drawn_reference(seed, p):
    """F.dropout with the mask of retrograd.manual_seed(seed), every call the same mask."""
    import retrograd
    from retrograd.nn import functional as F

    def reference(x):
        with retrograd.random.fork_rng():
            retrograd.manual_seed(seed)
            return F.dropout(x, p=p, training=True)
    return reference


@explains("dropout", family="dropout",
          summary="inverted dropout y = x * mask / (1 - p); the same mask scales dL/dy",
          options=(Option("p", float, 0.5, "probability of dropping an element"),
                   Option("training", bool, True, "training mode (else dropout is the identity)")))
def dropout(ex, p, training):
    from retrograd.nn import functional as F

    _check_probability(p)
    x = ex.input("x", (2, 3), primary=True, max_ndim=4, doc="input (any shape)")
    if not training or p == 0.0:
        if _mask_given(ex):
            raise ExplainError(f"explain dropout: a mask was given, but with training={training}"
                               f" and p = {p:g} dropout is the identity and uses none")
        (shape,) = ex.reference(lambda x: F.dropout(x, p=p, training=training), "x")
        _identity(ex, x, shape, training)
        return
    if _mask_given(ex):
        keep = _given_mask(ex, x, p)
        (shape,) = ex.reference(lambda x, mask: x * mask / (1.0 - p) if p < 1.0 else x * mask,
                                "x", "mask")
        ex.section("The mask")
        ex.say("The mask is given: the reference is retrograd's Tensor arithmetic "
               "x * mask / (1 - p) (F.dropout draws its own mask and takes none).")
    else:
        (shape,) = ex.reference(_drawn_reference(ex.seed, p), "x")
        keep = _drawn_mask(ex, x.shape, p)
    _dropped(ex, x, shape, keep, p)


def _drawn_mask(ex, shape, p):
    ex.section("The mask")
    ex.say(f"retrograd.manual_seed({ex.seed}), then F.dropout draws one uniform number U in "
           f"[0, 1) per element from retrograd's generator and keeps the element where "
           f"U >= p = {p:g} (probability 1 - p).")
    uniforms = ex.show("U", _drawn_uniforms(ex.seed, shape),
                       f"uniform draws after retrograd.manual_seed({ex.seed})")
    return ex.show("mask", (uniforms >= p).astype(np.float64), f"1 where U >= {p:g}, else 0")


def _dropped(ex, x, shape, keep, p):
    ex.section("Forward")
    if p == 1.0:
        ex.say("p = 1 drops every element: m = 0 (there is no 1 / (1 - p) to apply).")
        m = ex.show("m", _scaled_mask(keep, p), "0")
    else:
        scale = ex.show("scale", 1.0 / (1.0 - p), f"1 / (1 - p) = 1 / {1.0 - p:g}")
        ex.say(f"Kept elements are multiplied by {scale:.4g}, so the expected value of y is x: "
               f"E[m] = (1 - p) / (1 - p) = 1, and evaluation (training=False) needs no "
               "rescaling.")
        m = ex.show("m", _scaled_mask(keep, p), "mask / (1 - p)")
    ex.output("y", x * m, "x * m")
    ex.section("Backward")
    g = ex.upstream(shape, "dL/dy", aliases=("dY",))
    ex.say("y = x * m with m a constant: dy/dx = diag(m), so the gradient goes through the "
           "same mask.")
    ex.gradient("x", g * m, "dL/dy * m: dropped elements get 0, kept ones dL/dy / (1 - p)")


def _identity(ex, x, shape, training):
    ex.section("Forward")
    why = "training=False (evaluation)" if not training else "p = 0"
    ex.say(f"{why}: dropout is the identity; no mask is drawn and nothing is scaled.")
    ex.output("y", x.copy(), "x")
    ex.section("Backward")
    g = ex.upstream(shape, "dL/dy", aliases=("dY",))
    ex.gradient("x", g.copy(), "dL/dy  (dy/dx = I)")
