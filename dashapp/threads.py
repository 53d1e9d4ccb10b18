"""Thread pools and fork: the web process never starts an OpenMP pool, so forked workers
cannot hang in one.

Dash's background callbacks run in processes forked from the web process. GNU OpenMP (under
scikit-learn's K-Means, also its ``predict``) is not fork-safe: once the parent has started
its thread pool, a forked child's first parallel region can hang for ever (seen here: a test
process that had fitted K-Means, then forked a background job). With one OpenMP thread a
parallel region runs on the calling thread and no pool is ever made.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading

import diskcache
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


#: Held around every SQLite call of this process (the metadata database, the background-job
#: cache) and across every fork. A thread inside SQLite holds its allocator's mutex; a child
#: forked at that moment inherits the mutex locked and hangs at its first SQLite call (seen
#: here: background workers stuck in ``sqlite3Malloc`` while request threads looked up
#: login sessions). Forking waits until no thread is inside SQLite.
FORK_LOCK = threading.RLock()


def _release_in_child() -> None:
    with contextlib.suppress(RuntimeError):
        FORK_LOCK.release()


os.register_at_fork(before=FORK_LOCK.acquire, after_in_parent=FORK_LOCK.release,
                    after_in_child=_release_in_child)


def _under_fork_lock(name: str):
    method = getattr(diskcache.Cache, name)

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with FORK_LOCK:
            return method(self, *args, **kwargs)

    return locked


class ForkSafeCache(diskcache.Cache):
    """The background-job cache (diskcache, on SQLite), each call under :data:`FORK_LOCK`."""

    get = _under_fork_lock("get")
    set = _under_fork_lock("set")
    add = _under_fork_lock("add")
    delete = _under_fork_lock("delete")
    touch = _under_fork_lock("touch")

    @contextlib.contextmanager
    def transact(self, retry=False):
        with FORK_LOCK, super().transact(retry):
            yield
