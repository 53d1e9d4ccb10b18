"""Accounts on the web through Flask's test client: register, log in and out, the login guard,
CSRF, throttling, cookies, the secret key, the account page and background callbacks."""

from __future__ import annotations

import json
import multiprocessing
import re
import stat
import time

import pytest
from conftest import EMAIL, PASSWORD, AuthClient
from dash import Input, Output
from multiprocess import current_process

from app import create_app
from dashapp import accounts, auth
from dashapp.settings import Settings


def _anonymous(app) -> AuthClient:
    return AuthClient(app.server, app.server.response_class, use_cookies=True)


def _register(client: AuthClient, email: str, password: str, confirm: str | None = None):
    return client.post("/register", data={"email": email, "password": password,
                                          "confirm": password if confirm is None else confirm,
                                          "csrf_token": client.form_token("/register")})


def _login(client: AuthClient, email: str, password: str, **extra):
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": client.form_token("/login"), **extra})


def _echo_callback(app) -> dict:
    """A plain server callback on ``app`` and the body that calls it."""
    @app.callback(Output("auth-test-out", "children"), Input("auth-test-in", "value"))
    def _echo(value):
        return f"echo {value}"

    return {"output": "auth-test-out.children",
            "outputs": {"id": "auth-test-out", "property": "children"},
            "inputs": [{"id": "auth-test-in", "property": "value", "value": 7}],
            "changedPropIds": ["auth-test-in.value"]}


def test_auth001_register_then_log_in_then_log_out(settings):
    app = create_app(settings)
    client = _anonymous(app)
    first = client.get("/")
    assert first.status_code == 302 and first.headers["Location"] == "/register"
    assert client.get("/login").headers["Location"] == "/register"
    registered = _register(client, EMAIL, PASSWORD)
    assert registered.status_code == 302 and registered.headers["Location"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert "If that address was not registered yet, the account is ready: log in." in page
    assert client.get("/").headers["Location"] == "/login?next=/"

    wrong = _login(client, EMAIL, "not the password")
    assert wrong.status_code == 401
    assert "Wrong email or password." in wrong.get_data(as_text=True)
    unknown = _login(client, "nobody@example.com", PASSWORD)
    assert unknown.status_code == 401
    assert "Wrong email or password." in unknown.get_data(as_text=True)

    done = _login(client, EMAIL.upper(), PASSWORD, next="/")
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    layout = client.get("/_dash-layout")
    assert layout.status_code == 200 and EMAIL in layout.get_data(as_text=True)

    out = client.post("/logout", data={"csrf_token": client.get_cookie(auth.CSRF_COOKIE).value})
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert "You are logged out." in client.get("/login").get_data(as_text=True)
    assert client.get("/_dash-layout").status_code == 401
    assert client.get("/").headers["Location"] == "/login?next=/"


def test_auth002_registering_a_taken_email_answers_exactly_the_same(settings):
    app = create_app(settings)
    client = _anonymous(app)
    new = _register(client, EMAIL, PASSWORD)
    new_flash = client.get("/login").get_data(as_text=True)
    taken = _register(client, EMAIL, "another long password")
    taken_flash = client.get("/login").get_data(as_text=True)
    assert (new.status_code, new.headers["Location"]) == \
        (taken.status_code, taken.headers["Location"]) == (302, "/login")
    assert new.get_data() == taken.get_data()
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", new_flash) == strip.sub("", taken_flash)
    db = auth.services_of(app.server).db
    assert accounts.user_count(db) == 1
    assert accounts.authenticate(db, EMAIL, PASSWORD).user_id is not None
    assert accounts.authenticate(db, EMAIL, "another long password").user_id is None


def test_auth003_short_or_mismatched_passwords_are_refused(settings):
    app = create_app(settings)
    client = _anonymous(app)
    short = _register(client, EMAIL, "nine char")
    assert short.status_code == 400
    assert "at least 10 characters" in short.get_data(as_text=True)
    differ = _register(client, EMAIL, PASSWORD, confirm=PASSWORD + "!")
    assert differ.status_code == 400 and "differ" in differ.get_data(as_text=True)
    bad_email = _register(client, "not-an-email", PASSWORD)
    assert bad_email.status_code == 400
    assert accounts.user_count(auth.services_of(app.server).db) == 0


def test_auth004_anonymous_requests_are_redirected_or_refused(settings, make_user):
    app = create_app(settings)
    make_user(app)
    client = _anonymous(app)
    assert client.get("/").headers["Location"] == "/login?next=/"
    assert client.get("/account").headers["Location"] == "/login?next=/account"
    assert client.get("/somewhere?x=1", headers={"Accept": "text/html"}) \
        .headers["Location"] == "/login?next=/somewhere?x%3D1"
    for path in ("/_dash-layout", "/_dash-dependencies", "/_reload-hash",
                 "/_dash-component-suites/dash/dcc/dash_core_components.js", "/somewhere"):
        answer = client.get(path)
        assert answer.status_code == 401, path
        assert answer.get_json() == {"error": "Log in first."}
    update = client.post("/_dash-update-component", json=_echo_callback(app))
    assert update.status_code == 401
    assert client.get("/login").status_code == 200
    assert client.get("/register").status_code == 200
    assert client.get("/assets/vendor/bootstrap.min.css").status_code == 200


def test_auth005_dash_callbacks_need_the_csrf_header(settings, login_client):
    app = create_app(settings)
    body = _echo_callback(app)
    client = login_client(app)
    refused = client.post("/_dash-update-component", json=body, csrf=False)
    assert refused.status_code == 400
    assert "CSRF" in refused.get_json()["error"]
    forged = client.post("/_dash-update-component", json=body, csrf=False,
                         headers={"X-CSRFToken": "forged"})
    assert forged.status_code == 400
    accepted = client.post("/_dash-update-component", json=body,
                           headers=client.csrf_headers(), csrf=False)
    assert accepted.status_code == 200
    assert accepted.get_json()["response"]["auth-test-out"]["children"] == "echo 7"
    # The dispatch view is protected, not exempt.
    assert "dash.dash.dispatch" not in app.server.extensions["csrf"]._exempt_views


def test_auth006_the_sixth_bad_login_is_throttled_for_that_account_only(settings, make_user):
    app = create_app(settings)
    make_user(app, EMAIL)
    make_user(app, "bob@example.com")
    client = _anonymous(app)
    for _ in range(accounts.THROTTLE_FAILURES):
        assert _login(client, EMAIL, "wrong password").status_code == 401
    throttled = _login(client, EMAIL, PASSWORD)
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 300
    assert "Too many failed attempts" in throttled.get_data(as_text=True)
    other = _anonymous(app)
    assert _login(other, "bob@example.com", PASSWORD).status_code == 302


def test_auth007_logout_ends_the_session_even_for_a_copied_cookie(settings, login_client):
    app = create_app(settings)
    client = login_client(app)
    cookie = client.get_cookie(auth.SESSION_COOKIE).value
    copy = _anonymous(app)
    copy.set_cookie(auth.SESSION_COOKIE, cookie)
    assert copy.get("/_dash-layout").status_code == 200
    # "strong" session protection: the same cookie from another browser is nobody.
    stranger = _anonymous(app)
    stranger.environ_base["HTTP_USER_AGENT"] = "Another browser"
    stranger.set_cookie(auth.SESSION_COOKIE, cookie)
    assert stranger.get("/_dash-layout").status_code == 401
    assert client.post("/logout").status_code == 302
    assert copy.get("/_dash-layout").status_code == 401
    assert copy.get("/").status_code == 302


def _set_cookie(answer, name: str) -> str:
    found = [c for c in answer.headers.getlist("Set-Cookie") if c.startswith(name + "=")]
    assert found, f"no {name} cookie set"
    return found[-1]


def test_auth008_cookie_flags_over_http_and_https(settings, make_user):
    app = create_app(settings)
    make_user(app)
    plain = _anonymous(app)
    answer = _login(plain, EMAIL, PASSWORD)
    session = _set_cookie(answer, auth.SESSION_COOKIE)
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Secure" not in session
    assert "Expires=" in session  # permanent: the 8 hours run from the login
    csrf = _set_cookie(answer, auth.CSRF_COOKIE)
    assert "SameSite=Lax" in csrf and "HttpOnly" not in csrf and "Secure" not in csrf
    assert app.server.permanent_session_lifetime.total_seconds() == 8 * 3600
    assert app.server.config["WTF_CSRF_TIME_LIMIT"] == 8 * 3600

    tls = _anonymous(app)
    base = "https://localhost"
    page = tls.get("/login", base_url=base)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
    assert "Secure" in _set_cookie(page, auth.SESSION_COOKIE)
    answer = tls.post("/login", base_url=base, headers={"Referer": f"{base}/login"},
                      data={"email": EMAIL, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 302
    session = _set_cookie(answer, auth.SESSION_COOKIE)
    assert "Secure" in session and "HttpOnly" in session and "SameSite=Lax" in session
    assert "Secure" in _set_cookie(answer, auth.CSRF_COOKIE)


def test_auth009_behind_a_proxy_the_forwarded_scheme_makes_cookies_secure(tmp_path):
    app = create_app(Settings(instance_dir=tmp_path / "instance", proxy_fix=True))
    answer = _anonymous(app).get("/register", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in _set_cookie(answer, auth.SESSION_COOKIE)


def _key_of(folder, queue) -> None:
    queue.put(auth.instance_secret_key(folder))


def test_auth010_the_secret_key_is_generated_once_with_mode_0600(settings, tmp_path):
    app = create_app(settings)
    path = settings.instance_dir / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = create_app(settings)
    assert app.server.secret_key == again.server.secret_key == path.read_text().strip()
    # Dash signs background-callback handles with the server's key: the same in every worker.
    assert app._get_signing_secret() == again._get_signing_secret() == \
        app.server.secret_key.encode()
    given = create_app(Settings(instance_dir=tmp_path / "other", secret_key="k" * 40))
    assert given.server.secret_key == "k" * 40
    assert not (tmp_path / "other" / "secret_key").exists()

    # Four workers starting together agree on one key.
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()
    folder = tmp_path / "race"
    workers = [fork.Process(target=_key_of, args=(folder, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    keys = {queue.get(timeout=60) for _ in workers}
    for worker in workers:
        worker.join(timeout=60)
    assert len(keys) == 1
    assert [p.name for p in folder.iterdir()] == ["secret_key"]


def test_auth011_next_goes_only_to_local_paths(settings, make_user):
    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil.example",
                "javascript:alert(1)", "http:/evil", "", None, "relative"):
        assert auth.safe_next(bad) == "/", bad
    assert auth.safe_next("/account?tab=tokens") == "/account?tab=tokens"
    app = create_app(settings)
    make_user(app)
    client = _anonymous(app)
    answer = _login(client, EMAIL, PASSWORD, next="https://evil.example/phish")
    assert answer.headers["Location"] == "/"
    client = _anonymous(app)
    assert _login(client, EMAIL, PASSWORD, next="/account").headers["Location"] == "/account"


def test_auth012_account_page_creates_a_token_shown_once_and_revokes_it(settings,
                                                                        login_client):
    app = create_app(settings)
    db = auth.services_of(app.server).db
    client = login_client(app)
    page = client.get("/account")
    assert page.status_code == 200 and EMAIL in page.get_data(as_text=True)
    token = client.form_token("/account")
    created = client.post("/account", data={"action": "create", "name": "CRM import",
                                            "csrf_token": token})
    assert created.status_code == 201
    raw = re.search(r'id="account-new-token">([^<]+)<', created.get_data(as_text=True))[1]
    owner = accounts.user_id_of(db, EMAIL)
    assert accounts.token_user(db, raw)[0] == owner
    again = client.get("/account").get_data(as_text=True)
    assert raw not in again and "CRM import" in again and raw[:10] in again

    other = login_client(app, "bob@example.com")
    token_id = accounts.list_tokens(db, owner)[0]["id"]
    refused = other.post("/account", data={"action": "revoke", "token_id": str(token_id),
                                           "csrf_token": other.form_token("/account")})
    assert refused.status_code == 302
    assert "No such token." in other.get("/account").get_data(as_text=True)
    assert accounts.token_user(db, raw) is not None
    revoked = client.post("/account", data={"action": "revoke", "token_id": str(token_id),
                                            "csrf_token": token})
    assert revoked.status_code == 302
    assert accounts.token_user(db, raw) is None


def _find(node, wanted):
    """The props of the first component under ``node`` (layout JSON) that ``wanted`` accepts."""
    if isinstance(node, list):
        for item in node:
            found = _find(item, wanted)
            if found is not None:
                return found
    elif isinstance(node, dict):
        props = node.get("props", node)
        if "props" in node and wanted(props):
            return props
        for value in props.values():
            found = _find(value, wanted)
            if found is not None:
                return found
    return None


def test_auth013_the_navbar_shows_the_user_and_a_working_logout_form(settings, login_client):
    app = create_app(settings)
    client = login_client(app)
    layout = client.get("/_dash-layout").get_json()
    text = json.dumps(layout)
    assert EMAIL in text and "/account" in text
    form = _find(layout, lambda props: props.get("action") == "/logout")
    assert form["method"] == "POST"
    hidden = _find(form, lambda props: props.get("name") == "csrf_token")
    out = client.post("/logout", data={"csrf_token": hidden["value"]}, csrf=False)
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert client.get("/_dash-layout").status_code == 401


def _end_id(client: AuthClient) -> str:
    page = client.get("/").get_data(as_text=True)
    config = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>',
                       page, re.S)
    return json.loads(config[1])["end_id"]


def test_auth014_a_background_job_knows_whose_it_is(settings, login_client):
    # Two users post the same background callback with identical inputs at the same time;
    # each job, in its own worker process, reads its user from the session cookie.
    app = create_app(settings)

    # No cache_by of its own: the app's manager keys every background result by user.
    @app.callback(Output("auth-bg-out", "children"), Input("auth-bg-in", "value"),
                  background=True)
    def _whose(value):
        return f"{auth.current_user_id()} {current_process().name} {value}"

    body = {"output": "auth-bg-out.children",
            "outputs": {"id": "auth-bg-out", "property": "children"},
            "inputs": [{"id": "auth-bg-in", "property": "value", "value": 1}],
            "changedPropIds": ["auth-bg-in.value"]}
    db = auth.services_of(app.server).db
    clients = {email: login_client(app, email) for email in (EMAIL, "bob@example.com")}
    urls, handles = {}, {}
    for email, client in clients.items():
        urls[email] = f"/_dash-update-component?endId={_end_id(client)}"
        started = client.post(urls[email], json=body)
        assert started.status_code == 200, started.get_data(as_text=True)
        handles[email] = started.get_json()
    answers = {}
    deadline = time.monotonic() + 60
    while len(answers) < len(clients):
        assert time.monotonic() < deadline, "background jobs did not answer"
        for email, client in clients.items():
            if email in answers:
                continue
            data = handles[email]
            polled = client.post(f"{urls[email]}&cacheKey={data['cacheKey']}&job={data['job']}",
                                 json=body)
            assert polled.status_code in (200, 204)
            if polled.status_code == 200 and "response" in (polled.get_json() or {}):
                answers[email] = polled.get_json()["response"]["auth-bg-out"]["children"]
        time.sleep(0.05)
    for email, answer in answers.items():
        user_id, process, value = answer.split()
        assert int(user_id) == accounts.user_id_of(db, email)
        assert process != "MainProcess" and value == "1"


def test_auth015_current_user_id_outside_a_login_raises(settings, login_client):
    app = create_app(settings)
    with app.server.test_request_context("/"):
        with pytest.raises(auth.NotAuthenticatedError):
            auth.current_user_id()
    with pytest.raises(auth.NotAuthenticatedError):
        auth.current_user_id()


def test_auth016_a_request_in_flight_at_logout_does_not_undo_it(settings, make_user):
    """A background job's poll or a stylesheet sent with the login cookie and answered after
    the logout sets no cookie: Flask refreshes a permanent session's cookie on every answer,
    which put the old cookie back over the logout's and lost its message."""
    app = create_app(settings)
    make_user(app, EMAIL, PASSWORD)
    client = _anonymous(app)
    assert _login(client, EMAIL, PASSWORD).status_code == 302
    assert client.get("/").status_code == 200
    before_logout = client.get_cookie(auth.SESSION_COOKIE).value
    body = _echo_callback(app)
    assert client.post("/_dash-update-component", json=body).status_code == 200

    out = client.post("/logout", data={"csrf_token": client.get_cookie(auth.CSRF_COOKIE).value})
    assert out.status_code == 302
    after_logout = client.get_cookie(auth.SESSION_COOKIE).value
    assert after_logout != before_logout

    late = _anonymous(app)
    late.set_cookie(auth.SESSION_COOKIE, before_logout)
    for answer, status in ((late.post("/_dash-update-component", json=body), 401),
                           (late.get("/"), 302), (late.get("/assets/app.css"), 200)):
        assert answer.status_code == status
        assert not [c for c in answer.headers.getlist("Set-Cookie")
                    if c.startswith(auth.SESSION_COOKIE + "=")]
    assert late.get_cookie(auth.SESSION_COOKIE).value == before_logout
    assert "You are logged out." in client.get("/login").get_data(as_text=True)
    # A request answered as the logged-in user still refreshes the cookie (it slides).
    assert _login(client, EMAIL, PASSWORD).status_code == 302
    fresh = client.get("/")
    assert fresh.status_code == 200
    assert [c for c in fresh.headers.getlist("Set-Cookie")
            if c.startswith(auth.SESSION_COOKIE + "=")]
