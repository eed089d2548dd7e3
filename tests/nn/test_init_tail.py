"""nn.init.dirac_ and nn.init.sparse_: dirac_ equal to PyTorch's for every supported rank and
groups (and a dirac convolution copying its input); sparse_'s structure and statistics (its
draws come from retrograd's generator), reproducibility, and the errors."""

import numpy as np
import pytest
import torch

import retrograd as rg


@pytest.mark.parametrize("shape, groups", [((4, 2, 3), 1), ((6, 2, 3, 3), 2),
                                           ((4, 4, 3, 2, 5), 2), ((2, 5, 3, 3), 1)])
def test_dirac_equals_torch(shape, groups):
    ours = rg.nn.init.dirac_(rg.empty(*shape), groups).numpy()
    theirs = torch.nn.init.dirac_(torch.empty(*shape), groups).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_a_dirac_convolution_copies_its_input():
    conv = rg.nn.Conv2d(3, 3, 3, padding=1, bias=False)
    rg.nn.init.dirac_(conv.weight)
    x = rg.randn(2, 3, 5, 5)
    np.testing.assert_allclose(conv(x).detach().numpy(), x.numpy(), atol=1e-6)


def test_sparse_zeroes_the_same_count_in_every_column_with_normal_entries():
    rg.manual_seed(0)
    w = rg.nn.init.sparse_(rg.empty(2000, 5), sparsity=0.1, std=0.5).numpy()
    assert ((w == 0).sum(axis=0) == 200).all()
    kept = w[w != 0]
    assert abs(kept.mean()) < 0.03 and abs(kept.std() - 0.5) < 0.02
    zero_rows = [set(np.flatnonzero(w[:, c] == 0)) for c in range(5)]
    assert zero_rows[0] != zero_rows[1]                      # each column draws its own rows
    g = rg.Generator().manual_seed(3)
    a = rg.nn.init.sparse_(rg.empty(6, 3), 0.5, generator=g).numpy()
    b = rg.nn.init.sparse_(rg.empty(6, 3), 0.5, generator=rg.Generator().manual_seed(3))
    np.testing.assert_array_equal(a, b.numpy())


def test_errors():
    with pytest.raises(ValueError, match=r"dirac_: only tensors with 3, 4, or 5 dimensions"):
        rg.nn.init.dirac_(rg.empty(3, 3))
    with pytest.raises(ValueError, match=r"dirac_: dim 0 \(5\) must be divisible by groups"):
        rg.nn.init.dirac_(rg.empty(5, 2, 3), groups=2)
    with pytest.raises(ValueError, match=r"sparse_: only tensors with 2 dimensions"):
        rg.nn.init.sparse_(rg.empty(3), 0.5)
    with pytest.raises(ValueError, match="sparse_: sparsity"):
        rg.nn.init.sparse_(rg.empty(3, 3), 1.5)
