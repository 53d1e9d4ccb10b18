"""Persona Engine: customer segmentation from upload to personas (the Dash-free core)."""

import os

import pyarrow as _pa

__version__ = "0.1.0"

# Arrow's allocator for the whole process: the C library's, unless ARROW_DEFAULT_MEMORY_POOL
# names one. With Arrow's default here (mimalloc) the first conversions after a large DuckDB
# query stalled: the fast path's customer columns to numpy and into a DataFrame took 90-160
# and 105-125 ms at 500,000 customers, 6-28 and 8-14 ms with the system allocator (pandas'
# text columns are Arrow arrays, so every one of them allocates here too).
if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
    _pa.set_memory_pool(_pa.system_memory_pool())
