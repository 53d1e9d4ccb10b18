"""Fork safety: a fork waits until no thread of the process is inside SQLite, and OpenBLAS's
workers, started again after each fork, sleep instead of spinning beside the next request."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import text

from dashapp.db import Database, User, database_url
from dashapp.threads import FORK_LOCK, ForkSafeCache

ROOT = Path(__file__).resolve().parents[2]


def _fork_and_query(db: Database, forked: list[float], status: list[int]) -> None:
    pid = os.fork()
    if pid == 0:  # the child uses SQLite at once, as a background job does
        try:
            with db.read() as session:
                code = 0 if session.execute(text("SELECT 1")).scalar() == 1 else 1
        except BaseException:
            code = 2
        os._exit(code)
    forked.append(time.monotonic())
    status.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))


def test_thr001_fork_waits_for_an_open_database_session(tmp_path):
    db = Database(database_url(None, tmp_path))
    db.create_all()
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.write() as session:
            session.add(User(email="a@example.com", password_hash="x"))
            session.flush()
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    forked: list[float] = []
    status: list[int] = []
    forker = threading.Thread(target=_fork_and_query, args=(db, forked, status))
    forker.start()
    forker.join(0.5)
    assert forked == [], "forked while another thread was inside SQLite"
    release.set()
    holder.join(10)
    forker.join(20)
    assert len(forked) == 1 and status == [0]
    with db.read() as session:
        assert session.query(User).count() == 1


def test_thr002_background_cache_calls_hold_the_fork_lock(tmp_path):
    cache = ForkSafeCache(str(tmp_path / "bg"))
    seen = []

    class Probe:
        def __reduce__(self):  # pickled inside cache.set: is the lock held right then?
            seen.append(FORK_LOCK._is_owned())
            return (str, ("probe",))

    cache.set("k", Probe())
    assert seen == [True]
    assert cache.get("k") == "probe"
    with cache.transact():
        assert FORK_LOCK._is_owned()
    assert not FORK_LOCK._is_owned()


#: Run in a fresh interpreter: how long OpenBLAS's worker spins after a fork, as CPU time
#: of the process while its only Python thread sleeps.
_SPIN = r"""
import os, resource, sys, time
{first}
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

np.ones((300, 300)) @ np.ones((300, 300))
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
with threadpool_limits(1):  # sets OpenBLAS's thread count: its workers start again
    pass
before = resource.getrusage(resource.RUSAGE_SELF)
time.sleep(0.4)
after = resource.getrusage(resource.RUSAGE_SELF)
threads = max(i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas")
cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
print(threads, cpu)
"""


def _spin(first: str, env: dict[str, str]) -> tuple[int, float]:
    done = subprocess.run([sys.executable, "-c", _SPIN.format(first=first)], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=60)
    threads, cpu = done.stdout.split()
    return int(threads), float(cpu)


def test_thr003_openblas_workers_sleep_after_a_fork():
    # The web process forks a background job for every stability check and fit; OpenBLAS
    # then starts its workers again, and each spun for about 0.1 s of a core beside the next
    # request unless OPENBLAS_THREAD_TIMEOUT is set before numpy loads it (dashapp does).
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    threads, spun = _spin("", {**env, "OPENBLAS_THREAD_TIMEOUT": "28"})  # OpenBLAS's default
    _, ours = _spin("import dashapp", env)
    assert ours < 0.03, f"{ours:.3f} s of CPU while idle"
    if threads > 1:  # with one thread OpenBLAS has no workers to spin: nothing to compare
        assert spun > 0.05, f"the default spun only {spun:.3f} s: the probe sees no spin"


def test_thr004_the_app_sets_the_timeout_before_numpy_loads():
    probe = (
        "import os, sys\n"
        "seen = []\n"
        "class Hook:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'numpy' and not seen:\n"
        "            seen.append(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hook())\n"
        "import app\n"
        "print(seen[0])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split()[-1] == "16"
