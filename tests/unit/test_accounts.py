"""The accounts core on a real SQLite file: users, throttling, login sessions, API tokens,
concurrent writers, and the admin commands in a real subprocess."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dashapp import accounts
from dashapp.db import Database, database_url, utcnow

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


@pytest.fixture
def db(metadata_url: str) -> Iterator[Database]:
    """SQLite, then PostgreSQL (``metadata_url`` in tests/postgres_server.py)."""
    database = Database(metadata_url)
    database.create_all()
    yield database
    database.dispose()


def test_acc001_emails_are_normalized_and_checked(db):
    assert accounts.normalize_email("  Ana@Example.COM ") == "ana@example.com"
    for bad in ("", None, "ana", "ana@", "@example.com", "a b@example.com", "x@y",
                "a" * 250 + "@example.com"):
        with pytest.raises(accounts.AccountError):
            accounts.normalize_email(bad)


def test_acc002_registering_twice_keeps_the_first_password(db):
    first = accounts.create_user(db, "ana@example.com", PASSWORD)
    assert first is not None
    assert accounts.create_user(db, "ANA@example.com", "another long password") is None
    assert accounts.user_count(db) == 1
    assert accounts.authenticate(db, "ana@example.com", PASSWORD).user_id == first
    assert accounts.authenticate(db, "ana@example.com", "another long password").user_id \
        is None
    with pytest.raises(accounts.AccountError, match="at least 10"):
        accounts.create_user(db, "bob@example.com", "123456789")
    with pytest.raises(accounts.AccountError, match="limited"):
        accounts.create_user(db, "bob@example.com", "x" * (accounts.PASSWORD_MAX + 1))


def test_acc003_five_failures_throttle_one_account_for_five_minutes(db):
    ana = accounts.create_user(db, "ana@example.com", PASSWORD)
    bob = accounts.create_user(db, "bob@example.com", PASSWORD)
    start = utcnow()
    for minute in range(accounts.THROTTLE_FAILURES):
        outcome = accounts.authenticate(db, "ana@example.com", "wrong",
                                        now=start + timedelta(seconds=minute))
        assert outcome == accounts.LoginOutcome()
    blocked = accounts.authenticate(db, "ana@example.com", PASSWORD,
                                    now=start + timedelta(seconds=10))
    assert blocked.user_id is None and blocked.retry_after == 291
    assert accounts.authenticate(db, "bob@example.com", PASSWORD,
                                 now=start + timedelta(seconds=10)).user_id == bob
    # Once the oldest failure leaves the window, the right password works again.
    later = accounts.authenticate(db, "ana@example.com", PASSWORD,
                                  now=start + timedelta(minutes=5, seconds=1))
    assert later.user_id == ana


def test_acc004_sessions_end_at_logout_and_after_eight_hours(db):
    ana = accounts.create_user(db, "ana@example.com", PASSWORD)
    start = utcnow()
    token = accounts.start_session(db, ana, now=start)
    assert accounts.session_user(db, token, now=start + timedelta(hours=7)) == ana
    assert accounts.session_user(db, token, now=start + timedelta(hours=8)) is None
    other = accounts.start_session(db, ana)
    assert accounts.session_user(db, other) == ana
    accounts.end_session(db, other)
    assert accounts.session_user(db, other) is None
    assert accounts.session_user(db, "forged") is None
    assert accounts.session_user(db, None) is None


def test_acc005_api_tokens_are_kept_as_hashes_and_revocable(db):
    ana = accounts.create_user(db, "ana@example.com", PASSWORD)
    bob = accounts.create_user(db, "bob@example.com", PASSWORD)
    token_id, raw = accounts.create_token(db, ana, "  CRM  ")
    assert raw.startswith(accounts.TOKEN_PREFIX)
    assert accounts.token_user(db, raw) == (ana, token_id)
    listed = accounts.list_tokens(db, ana)
    assert [(t["id"], t["name"], t["prefix"]) for t in listed] == [(token_id, "CRM", raw[:10])]
    assert raw not in repr(listed)
    assert accounts.revoke_token(db, bob, token_id) is False
    assert accounts.token_user(db, raw) == (ana, token_id)
    assert accounts.revoke_token(db, ana, token_id) is True
    assert accounts.token_user(db, raw) is None
    assert accounts.list_tokens(db, ana)[0]["revoked_at"] is not None


def test_acc006_deleting_a_user_removes_their_rows(db):
    ana = accounts.create_user(db, "ana@example.com", PASSWORD)
    token = accounts.start_session(db, ana)
    _, raw = accounts.create_token(db, ana, "x")
    accounts.delete_user(db, ana)
    assert accounts.user_id_of(db, "ana@example.com") is None
    assert accounts.session_user(db, token) is None
    assert accounts.token_user(db, raw) is None


def _writer(url: str, email: str, rounds: int, barrier, errors) -> None:
    db = Database(url)
    user_id = accounts.user_id_of(db, email)
    barrier.wait()
    for n in range(rounds):
        try:
            token = accounts.start_session(db, user_id)
            accounts.authenticate(db, email, PASSWORD if n % 2 else "wrong password")
            accounts.end_session(db, token)
        except Exception as err:  # every failure, "database is locked" included, is reported
            errors.put(f"{type(err).__name__}: {err}")
    db.dispose()


def test_acc007_four_concurrent_writers_never_see_database_is_locked(db):
    emails = [f"user{n}@example.com" for n in range(4)]
    for email in emails:
        accounts.create_user(db, email, PASSWORD)
    fork = multiprocessing.get_context("fork")
    barrier, errors = fork.Barrier(len(emails)), fork.Queue()
    workers = [fork.Process(target=_writer, args=(db.url, email, 12, barrier, errors))
               for email in emails]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert [w.exitcode for w in workers] == [0] * len(workers)
    assert found == []
    # Wrong and right passwords alternate: each success cleared the failures before it.
    for email in emails:
        assert accounts.authenticate(db, email, PASSWORD).user_id is not None


def _cli(*args: str, instance: Path, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dashapp", *args], cwd=instance.parent, input=stdin,
        capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
             "PERSONA_INSTANCE_DIR": str(instance)},
    )


def test_acc008_admin_commands_create_delete_and_issue_tokens(tmp_path):
    instance = tmp_path / "instance"
    short = _cli("users", "create", "ana@example.com", instance=instance, stdin="short\n")
    assert short.returncode == 2
    assert short.stderr.strip() == "error: Choose a password of at least 10 characters."
    made = _cli("users", "create", "Ana@Example.com", instance=instance,
                stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "created ana@example.com (user 1)"
    again = _cli("users", "create", "ana@example.com", instance=instance,
                 stdin=PASSWORD + "\n")
    assert again.returncode == 2 and again.stderr.startswith("error: ")
    assert _cli("users", "create", "not-an-email", instance=instance,
                stdin=PASSWORD + "\n").returncode == 2

    db = Database(database_url(None, instance))
    assert accounts.authenticate(db, "ana@example.com", PASSWORD).user_id == 1

    issued = _cli("tokens", "create", "ana@example.com", "--name", "CRM", instance=instance)
    assert issued.returncode == 0, issued.stderr
    raw = issued.stdout.splitlines()[0]
    assert accounts.token_user(db, raw)[0] == 1
    assert accounts.list_tokens(db, 1)[0]["name"] == "CRM"
    nobody = _cli("tokens", "create", "bob@example.com", instance=instance)
    assert nobody.returncode == 2 and nobody.stderr.strip() == \
        "error: no account for bob@example.com"

    files = instance / "users" / "1" / "datasets"
    files.mkdir(parents=True)
    (files / "0123456789abcdef0123456789abcdef.parquet").write_bytes(b"PAR1")
    keep = instance / "users" / "2"
    keep.mkdir()
    gone = _cli("users", "delete", "ana@example.com", instance=instance)
    assert gone.returncode == 0, gone.stderr
    assert "deleted ana@example.com (user 1)" in gone.stdout
    assert str(instance / "users" / "1") in gone.stdout
    assert not (instance / "users" / "1").exists() and keep.exists()
    assert accounts.user_id_of(db, "ana@example.com") is None
    assert accounts.token_user(db, raw) is None
    missing = _cli("users", "delete", "ana@example.com", instance=instance)
    assert missing.returncode == 2
    usage = _cli("users", instance=instance)
    assert usage.returncode == 2 and usage.stderr.startswith("error: ")
