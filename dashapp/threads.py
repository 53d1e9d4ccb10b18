"""Thread pools and fork: the web process never starts an OpenMP pool, so forked workers
cannot hang in one.

Dash's background callbacks run in processes forked from the web process. GNU OpenMP (under
scikit-learn's K-Means, also its ``predict``) is not fork-safe: once the parent has started
its thread pool, a forked child's first parallel region can hang for ever (seen here: a test
process that had fitted K-Means, then forked a background job). With one OpenMP thread a
parallel region runs on the calling thread and no pool is ever made.
"""

from __future__ import annotations

import os

from multiprocess import current_process
from threadpoolctl import threadpool_limits


def is_web_process() -> bool:
    """True in the process that forks background workers (gunicorn's workers included:
    Dash's DiskcacheManager starts its jobs with ``multiprocess``, whose main process it is)."""
    return current_process().name == "MainProcess"


def web_process_openmp() -> None:
    """Limit OpenMP to one thread for the rest of this process, when it is a web process.

    Called by the app factory before anything computes, so K-Means fitted or scored in a
    request (the scoring API, the new-customer form, a cache miss) never starts a pool.
    """
    if is_web_process():
        threadpool_limits(limits=1, user_api="openmp")


def worker_openmp():
    """In a background worker: a context with OpenMP on every core again (the limit the
    worker inherited from the web process is one thread, and it has no pool to inherit)."""
    return threadpool_limits(limits=os.cpu_count() or 1, user_api="openmp")
