"""Fork safety: a fork waits until no thread of the process is inside SQLite."""

from __future__ import annotations

import os
import threading
import time

from sqlalchemy import text

from dashapp.db import Database, User, database_url
from dashapp.threads import FORK_LOCK, ForkSafeCache


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
