"""Compiled kernels of the 'fast' extra (Numba), one module per family of ops, each kernel
beside (named in the docstring of) the NumPy reference it replaces in retrograd/ops/ or
retrograd/optim/. Only retrograd/_fast.py imports these modules, on first use.

House rules for a kernel:
- it gives the reference path's result to float rounding (bit for bit where it says so), NaN
  and inf included (no ``fastmath`` flags that assume finite values: only "contract",
  "reassoc" where a reduction needs it to vectorize, never "nnan"/"ninf");
- it takes C-contiguous arrays of the dtypes its caller checks (float32, often float64) and
  writes into arrays its caller allocates or returns new ones, never views of its inputs;
- ``cache=True`` (compiled once per machine, then loaded from disk);
- compiled serial and parallel with ``policy.twins`` (``numba.prange`` over a flat index or an
  outer axis: rows, planes, channels), the wrapper picking one with ``.pick(size)`` (the
  parallel one for large arrays where the cores are free: policy.py says when);
- loops that index with a sum of signed values (``x[t + shift]``) index a shifted view with
  an unsigned counter instead: Numba tests signed indexes for wrap-around, and those tests
  keep LLVM from vectorizing the loop.
"""
