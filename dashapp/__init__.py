"""Persona Engine: customer segmentation from upload to personas (the Dash-free core)."""

import os

# OpenBLAS (numpy's and scipy's) stops its worker threads before every fork and starts them
# again at the next call that sets its thread count, as threadpoolctl's limits do (scikit-
# learn's K-Means enters them on every fit, so does segmentation here). A new worker that gets
# no work spins for 2^28 cycles, about 0.1 s of a core, before it sleeps. The web process
# forks for every background job (stability, a sweep, a silhouette), so its next request had
# up to two threads spinning beside it on two cores: the mixture at 50,000 customers took
# 165-170 ms there, 114-120 ms with the workers sleeping at once. 2^16 cycles is about 25 us.
# Read when numpy loads OpenBLAS, so set before pyarrow (which imports numpy) is imported.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

import pyarrow as _pa  # noqa: E402

__version__ = "0.1.0"

# Arrow's allocator for the whole process: the C library's, unless ARROW_DEFAULT_MEMORY_POOL
# names one. With Arrow's default here (mimalloc) the first conversions after a large DuckDB
# query stalled: the fast path's customer columns to numpy and into a DataFrame took 90-160
# and 105-125 ms at 500,000 customers, 6-28 and 8-14 ms with the system allocator (pandas'
# text columns are Arrow arrays, so every one of them allocates here too).
if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
    _pa.set_memory_pool(_pa.system_memory_pool())
