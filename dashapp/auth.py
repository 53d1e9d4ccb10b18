"""Accounts on the web: Flask-Login sessions, the login guard, CSRF and the account pages.

``init_auth(app, services)`` puts all of it on a Dash app's Flask server;
``current_user_id()`` names the logged-in user, in a request or in a background-callback
worker (where there is no request: the signed session cookie travels in the callback context).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dash
from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    has_app_context,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from itsdangerous import BadSignature
from multiprocess import current_process
from werkzeug.middleware.proxy_fix import ProxyFix

from dashapp import accounts
from dashapp.errors import PersonaError
from dashapp.services import Services
from dashapp.settings import Settings

SESSION_COOKIE = "persona_login"
#: Set on ``flask.g`` when the login guard lets a request through as the logged-in user.
_SIGNED_IN = "persona_signed_in"
#: Dash's renderer reads this cookie and sends it back as the ``X-CSRFToken`` header.
CSRF_COOKIE = "_csrf_token"
LIFETIME = accounts.SESSION_LIFETIME
#: Reachable without logging in. The API has bearer tokens of its own.
PUBLIC_PATHS = frozenset({"/login", "/register", "/logout", "/health", "/_favicon.ico"})
PUBLIC_PREFIXES = ("/api/v1/", "/assets/")
#: Pages that answer HTML: anonymous GETs of these are sent to the login page, not a 401.
PAGE_PATHS = frozenset({"/", "/account"})
_EXTENSION = "persona_auth"


class NotAuthenticatedError(PersonaError):
    """Nobody is logged in (or the login session has ended)."""


@dataclass(frozen=True)
class AuthState:
    """What the auth layer keeps on ``server.extensions``."""

    services: Services
    csrf: CSRFProtect


class AccountUser(UserMixin):
    """The logged-in user. Flask-Login keeps :meth:`get_id` (the login-session token, never
    the user id) in the signed session; the token's row decides whether it is still valid."""

    def __init__(self, token: str, user_id: int, email: str) -> None:
        self.token = token
        self.user_id = user_id
        self.email = email

    def get_id(self) -> str:
        return self.token


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its cookie ``Secure`` whenever the request came over
    TLS (directly, or through a proxy trusted with ``PERSONA_PROXY_FIX``)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]
                    or (has_request_context() and request.is_secure))

    def should_set_cookie(self, app: Flask, session) -> bool:
        # Only a request the login guard let through as the logged-in user refreshes the
        # cookie; any other sends one back only if it changed the session. Flask refreshes
        # a permanent session's cookie on every answer, and a request still in flight when
        # the user logs out (a background job's poll, refused; a stylesheet, public) would
        # otherwise put the cookie it was sent with back over the logout's, and with it
        # lose the "You are logged out." message that the logout's cookie carries.
        if has_request_context() and not g.get(_SIGNED_IN):
            return session.modified
        return super().should_set_cookie(app, session)


def instance_secret_key(instance_dir: Path) -> str:
    """The secret kept in ``instance_dir/secret_key`` (mode 0600), generated on first use.

    Every worker that starts at the same time ends up with the same key: each writes its
    candidate to a private temporary file (``O_CREAT | O_EXCL``, mode 0600), and a hard link
    publishes it only where no key exists yet; then everyone reads the one that won. The
    file is never seen half written.
    """
    path = instance_dir / "secret_key"
    if not path.exists():
        instance_dir.mkdir(parents=True, exist_ok=True)
        candidate = instance_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(8)}"
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(candidate, path)
            except FileExistsError:
                pass
        finally:
            candidate.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    key = path.read_text().strip()
    if len(key) < 32:
        raise PersonaError(f"{path} holds no usable secret key: delete it and start again, "
                           "or set SECRET_KEY.")
    return key


def secret_key(settings: Settings) -> str:
    """``SECRET_KEY`` from the environment, else the instance folder's own."""
    return settings.secret_key or instance_secret_key(settings.instance_dir)


def _state(server: Flask) -> AuthState:
    return server.extensions[_EXTENSION]


def services_of(server: Flask) -> Services:
    """The services an app's auth layer was given (tests and admin helpers use it)."""
    return _state(server).services


def current_user_id() -> int:
    """The id of the logged-in user, else :class:`NotAuthenticatedError`.

    In a request: Flask-Login's user. In a background callback's worker process there is no
    request; the session cookie that the callback's request carried is in
    ``dash.callback_context.cookies``: its signature and age are checked with the app's key,
    and the login-session token inside is looked up again (so a logout ends running jobs'
    access too).
    """
    # A worker forked from the web process inherits a copy of the request context; it is a
    # snapshot, not a request, so workers always take the cookie path.
    if has_request_context() and current_process().name == "MainProcess":
        user = current_user
        if user is not None and user.is_authenticated:
            return user.user_id
        raise NotAuthenticatedError("Your session has ended: log in again.")
    return _user_from_callback_cookies()


def _user_from_callback_cookies() -> int:
    try:
        cookies = dash.callback_context.cookies or {}
    except dash.exceptions.MissingCallbackContextException:
        cookies = {}
    try:
        server = current_app._get_current_object() if has_app_context() else \
            dash.get_app().server
        state = _state(server)
    except (dash.exceptions.AppNotFoundError, KeyError):
        raise NotAuthenticatedError("No app with accounts is running.") from None
    raw = cookies.get(server.config["SESSION_COOKIE_NAME"])
    serializer = server.session_interface.get_signing_serializer(server)
    user_id = None
    if raw and serializer is not None:
        try:
            data = serializer.loads(raw, max_age=int(server.permanent_session_lifetime
                                                     .total_seconds()))
        except BadSignature:
            data = {}
        token = data.get("_user_id") if isinstance(data, dict) else None
        user_id = accounts.session_user(state.services.db, token if isinstance(token, str)
                                        else None)
    if user_id is None:
        raise NotAuthenticatedError("Your session has ended: log in again.")
    return user_id


def background_scope() -> str:
    """For a background callback's ``cache_by``: results are cached per user, so two users
    sending identical inputs never receive each other's result."""
    return str(current_user_id())


def page_account() -> dict | None:
    """What the dashboard's navbar shows: ``{"email", "csrf_token"}``, or ``None`` outside a
    request or when nobody is logged in (Dash also builds the layout once at start-up)."""
    if not has_request_context() or not current_user.is_authenticated:
        return None
    return {"email": current_user.email, "csrf_token": generate_csrf()}


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this site, else ``default`` (no open redirect)."""
    if not target or len(target) > 2000 or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _is_page_request(path: str) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    if path in PAGE_PATHS:
        return True
    # Dash answers every other GET path with its page too (multi-page routing).
    return not path.startswith("/_") and request.accept_mimetypes.accept_html


def _blueprint(services: Services, asset_url) -> Blueprint:
    db = services.db
    bp = Blueprint("auth", __name__, template_folder="templates")

    def render(template: str, status: int = 200, **context):
        response = current_app.make_response(
            (render_template(template, asset_url=asset_url, **context), status))
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.route("/login", methods=["GET", "POST"])
    def login():
        target = safe_next(request.values.get("next"))
        if request.method == "GET":
            if current_user.is_authenticated:
                return redirect(target)
            if accounts.user_count(db) == 0:
                return redirect(url_for("auth.register"))
            return render("login.html", next=target, email="")
        email = request.form.get("email", "")
        outcome = accounts.authenticate(db, email, request.form.get("password", ""))
        if outcome.retry_after is not None:
            minutes = max(1, round(outcome.retry_after / 60))
            response = render(
                "login.html", 429, next=target, email=email,
                error=f"Too many failed attempts for this account. Try again in about "
                      f"{minutes} minute{'s' if minutes > 1 else ''}.")
            response.headers["Retry-After"] = str(outcome.retry_after)
            return response
        if outcome.user_id is None:
            return render("login.html", 401, next=target, email=email,
                          error="Wrong email or password.")
        if current_user.is_authenticated:
            accounts.end_session(db, current_user.token)
        token = accounts.start_session(db, outcome.user_id)
        # A fresh session: nothing (a CSRF token, flashes) carries over from before login.
        session.clear()
        login_user(AccountUser(token, outcome.user_id, accounts.email_of(db, outcome.user_id)))
        session.permanent = True
        return redirect(target)

    @bp.route("/register", methods=["GET", "POST"])
    def register():
        if current_user.is_authenticated:
            return redirect("/")
        first = accounts.user_count(db) == 0
        if request.method == "GET":
            return render("register.html", email="", first=first)
        email = request.form.get("email", "")
        password = request.form.get("password", "")
        try:
            accounts.normalize_email(email)
            accounts.check_password_rule(password)
            if password != request.form.get("confirm", ""):
                raise accounts.AccountError("The two passwords differ: type the same twice.")
            # Whether the email was free or taken, the answer is the same (and the password
            # is hashed either way, so it takes as long).
            accounts.create_user(db, email, password)
        except accounts.AccountError as err:
            return render("register.html", 400, email=email, first=first, error=str(err))
        flash("If that address was not registered yet, the account is ready: log in.",
              "success")
        return redirect(url_for("auth.login"))

    @bp.route("/logout", methods=["POST"])
    def logout():
        if current_user.is_authenticated:
            accounts.end_session(db, current_user.token)
        logout_user()
        session.clear()
        flash("You are logged out.", "info")
        return redirect(url_for("auth.login"))

    @bp.route("/account", methods=["GET", "POST"])
    def account():
        user_id = current_user_id()
        new_token = None
        if request.method == "POST":
            action = request.form.get("action")
            if action == "create":
                _, new_token = accounts.create_token(db, user_id, request.form.get("name", ""))
            elif action == "revoke":
                token_id = request.form.get("token_id", "")
                revoked = token_id.isdigit() and len(token_id) < 12 and \
                    accounts.revoke_token(db, user_id, int(token_id))
                flash("Token revoked." if revoked else "No such token.",
                      "info" if revoked else "warning")
                return redirect(url_for("auth.account"))
            else:
                return render("account.html", 400, email=current_user.email,
                              tokens=accounts.list_tokens(db, user_id),
                              error="Unknown action.")
        return render("account.html", 201 if new_token else 200, email=current_user.email,
                      tokens=accounts.list_tokens(db, user_id), new_token=new_token)

    return bp


def init_auth(app: dash.Dash, services: Services) -> CSRFProtect:
    """Accounts, login guard and CSRF on ``app.server``; returns the CSRF object, so the API
    can exempt its blueprint (it authenticates with bearer tokens instead of cookies)."""
    server = app.server
    settings = services.settings
    key = secret_key(settings)
    # The server's secret also signs Dash's background-callback handles (dash 4.4's
    # Dash._get_signing_secret prefers it), so every worker accepts every worker's handles.
    server.secret_key = key
    server.config.update(
        SECRET_KEY=key,
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=LIFETIME,
        REMEMBER_COOKIE_DURATION=timedelta(0),
        WTF_CSRF_TIME_LIMIT=int(LIFETIME.total_seconds()),
    )
    server.session_interface = _SessionInterface()
    if settings.proxy_fix:
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=1, x_proto=1, x_host=1,
                                   x_prefix=1)

    manager = LoginManager()
    manager.session_protection = "strong"
    manager.init_app(server)

    @manager.user_loader
    def _load(token: str) -> AccountUser | None:
        # Flask-Login relaxes "strong" to "basic" for permanent sessions (ours are), so the
        # browser check it would make is made here: another address or browser, no user.
        if session.get("_id") != manager._session_identifier_generator():
            return None
        user_id = accounts.session_user(services.db, token)
        email = accounts.email_of(services.db, user_id) if user_id is not None else None
        return AccountUser(token, user_id, email) if email else None

    server.register_blueprint(_blueprint(services, app.get_asset_url))

    # Registered before CSRFProtect's own hook: an anonymous request is a 401, not a 400.
    @server.before_request
    def _guard():
        path = request.path
        if _public(path):
            return None
        if current_user.is_authenticated:
            g.setdefault(_SIGNED_IN, True)
            return None
        if _is_page_request(path):
            if accounts.user_count(services.db) == 0:
                return redirect(url_for("auth.register"))
            return redirect(url_for("auth.login", next=safe_next(request.full_path
                                                                 .rstrip("?"))))
        return jsonify(error="Log in first."), 401

    csrf = CSRFProtect(server)

    @server.errorhandler(CSRFError)
    def _csrf_failed(err: CSRFError):
        if request.path in PUBLIC_PATHS or request.path in PAGE_PATHS:
            flash("The form had expired: please try again.", "warning")
            return redirect(request.path if request.path != "/logout" else "/login")
        return jsonify(error=f"{err.description} Reload the page."), 400

    @server.after_request
    def _headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        path = request.path
        if not path.startswith(PUBLIC_PREFIXES) and path != "/health" and \
                response.status_code < 400 and current_user.is_authenticated:
            response.set_cookie(CSRF_COOKIE, generate_csrf(), max_age=int(LIFETIME
                                                                          .total_seconds()),
                                secure=request.is_secure, httponly=False, samesite="Lax")
        return response

    server.extensions[_EXTENSION] = AuthState(services, csrf)
    return csrf
