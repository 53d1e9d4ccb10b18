"""Accounts without Flask: users and passwords, login throttling, login sessions, API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from dashapp.db import ApiToken, Database, LoginFailure, LoginSession, User, aware, utcnow
from dashapp.errors import PersonaError

PASSWORD_MIN = 10
#: Longer passwords are refused: hashing megabytes on every login attempt would be a DoS.
PASSWORD_MAX = 1024
#: Failed logins for one account within THROTTLE_WINDOW before further attempts get 429.
THROTTLE_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=5)
SESSION_LIFETIME = timedelta(hours=8)
TOKEN_PREFIX = "pe_"
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
# Compared against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = generate_password_hash("not a password of anyone", method="scrypt")


class AccountError(PersonaError):
    """An email or password that breaks the rules; the message says which rule."""


def normalize_email(email: str | None) -> str:
    """``email`` stripped and lower-cased, or :class:`AccountError` if it is not one."""
    text = (email or "").strip().lower()
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        raise AccountError("Enter an email address such as name@example.com.")
    return text


def check_password_rule(password: str | None) -> str:
    """The password when it is at least PASSWORD_MIN characters, else AccountError."""
    password = password or ""
    if len(password) < PASSWORD_MIN:
        raise AccountError(f"Choose a password of at least {PASSWORD_MIN} characters.")
    if len(password) > PASSWORD_MAX:
        raise AccountError(f"Passwords are limited to {PASSWORD_MAX} characters.")
    return password


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def user_count(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(User)) or 0)


def create_user(db: Database, email: str, password: str) -> int | None:
    """Register ``email``; its id, or ``None`` when that email is already registered.

    The password is hashed either way, so the answer takes as long for both.
    """
    email = normalize_email(email)
    hashed = generate_password_hash(check_password_rule(password), method="scrypt")
    with db.write() as s:
        if s.scalar(select(User.id).where(User.email == email)) is not None:
            return None
        user = User(email=email, password_hash=hashed)
        s.add(user)
        s.flush()
        return user.id


def user_id_of(db: Database, email: str) -> int | None:
    with db.read() as s:
        return s.scalar(select(User.id).where(User.email == normalize_email(email)))


def email_of(db: Database, user_id: int) -> str | None:
    with db.read() as s:
        return s.scalar(select(User.email).where(User.id == user_id))


def delete_user(db: Database, user_id: int) -> None:
    """Remove the user's rows (sessions, tokens, datasets, segmentations cascade).

    Files under the instance folder are the caller's: see ``Storage.delete_user_files``.
    """
    with db.write() as s:
        for model in (LoginSession, ApiToken):
            s.execute(delete(model).where(model.user_id == user_id))
        s.execute(delete(User).where(User.id == user_id))


@dataclass(frozen=True)
class LoginOutcome:
    """``user_id`` on success; ``retry_after`` (seconds) when the account is throttled."""

    user_id: int | None = None
    retry_after: int | None = None


def authenticate(db: Database, email: str, password: str,
                 now: datetime | None = None) -> LoginOutcome:
    """Check a login attempt, counting failures per account in the database.

    After THROTTLE_FAILURES failures within THROTTLE_WINDOW every attempt for that account,
    right or wrong, is refused with the seconds until the oldest failure leaves the window;
    other accounts are unaffected. A success clears the account's failures.
    """
    now = now or utcnow()
    try:
        email = normalize_email(email)
    except AccountError:
        return LoginOutcome()
    since = now - THROTTLE_WINDOW
    # Read, verify, then write: scrypt (about 0.1 s) must not hold SQLite's write lock, or
    # every login of every worker would queue behind it. Attempts running at the same moment
    # can each pass the check, so the limit may be passed by the number of workers at most.
    with db.read() as s:
        failures = s.scalars(
            select(LoginFailure.at).where(LoginFailure.email == email, LoginFailure.at > since)
            .order_by(LoginFailure.at)
        ).all()
        user = None
        if len(failures) < THROTTLE_FAILURES:
            user = s.execute(select(User.id, User.password_hash)
                             .where(User.email == email)).first()
    if len(failures) >= THROTTLE_FAILURES:
        oldest = aware(failures[-THROTTLE_FAILURES])
        wait = (oldest + THROTTLE_WINDOW - now).total_seconds()
        return LoginOutcome(retry_after=max(1, int(wait) + 1))
    candidate = (password or "")[:PASSWORD_MAX]
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, candidate)
    with db.write() as s:
        if user is not None and ok:
            s.execute(delete(LoginFailure).where(LoginFailure.email == email))
            return LoginOutcome(user_id=user.id)
        s.add(LoginFailure(email=email, at=now))
        s.execute(delete(LoginFailure).where(LoginFailure.at <= since))
    return LoginOutcome()


def start_session(db: Database, user_id: int, now: datetime | None = None) -> str:
    """A new login session for ``user_id``; returns the random token the cookie carries."""
    now = now or utcnow()
    raw = secrets.token_urlsafe(32)
    with db.write() as s:
        s.add(LoginSession(token_hash=_digest(raw), user_id=user_id, created_at=now,
                           expires_at=now + SESSION_LIFETIME))
        s.execute(delete(LoginSession).where(LoginSession.expires_at <= now))
    return raw


def session_user(db: Database, raw: str | None, now: datetime | None = None) -> int | None:
    """The user of a live session token, or ``None`` (unknown, ended or expired)."""
    if not raw or len(raw) > 200:
        return None
    now = now or utcnow()
    with db.read() as s:
        row = s.execute(select(LoginSession.user_id, LoginSession.expires_at)
                        .where(LoginSession.token_hash == _digest(raw))).first()
    if row is None or aware(row.expires_at) <= now:
        return None
    return row.user_id


def end_session(db: Database, raw: str | None) -> None:
    """Log out: the token stops working everywhere at once."""
    if raw:
        with db.write() as s:
            s.execute(delete(LoginSession).where(LoginSession.token_hash == _digest(raw)))


def create_token(db: Database, user_id: int, name: str) -> tuple[int, str]:
    """A new API token: its row id and the raw token, which is never stored or shown again."""
    name = (name or "").strip()[:100] or "token"
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.write() as s:
        row = ApiToken(user_id=user_id, name=name, token_hash=_digest(raw),
                       prefix=raw[:10])
        s.add(row)
        s.flush()
        return row.id, raw


def token_user(db: Database, raw: str | None) -> tuple[int, int] | None:
    """``(user_id, token_id)`` of a live (not revoked) token, else ``None``."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    with db.read() as s:
        row = s.execute(select(ApiToken.user_id, ApiToken.id, ApiToken.last_used_at)
                        .where(ApiToken.token_hash == _digest(raw),
                               ApiToken.revoked_at.is_(None))).first()
    if row is None:
        return None
    now = utcnow()
    last = aware(row.last_used_at)
    if last is None or now - last > timedelta(minutes=1):  # one write a minute, not a call
        with db.write() as s:
            token = s.get(ApiToken, row.id)
            if token is not None:
                token.last_used_at = now
    return row.user_id, row.id


def list_tokens(db: Database, user_id: int) -> list[dict]:
    """The user's tokens, newest first: id, name, prefix, created, last used, revoked."""
    with db.read() as s:
        rows = s.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                         .order_by(ApiToken.id.desc())).all()
    return [{"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": aware(t.created_at),
             "last_used_at": aware(t.last_used_at), "revoked_at": aware(t.revoked_at)}
            for t in rows]


def revoke_token(db: Database, user_id: int, token_id: int) -> bool:
    """Revoke one of the user's own tokens; ``False`` when it is not theirs or not found."""
    with db.write() as s:
        token = s.get(ApiToken, token_id)
        if token is None or token.user_id != user_id:
            return False
        if token.revoked_at is None:
            token.revoked_at = utcnow()
        return True
