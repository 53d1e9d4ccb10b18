"""The JSON scoring API (``/api/v1``, bearer tokens, rate limited per token) and ``/health``.

Every answer is JSON, errors included: ``{"error": {"status", "message", "field"?}}``, never
a traceback or an HTML page.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from dashapp import accounts, openapi
from dashapp.openapi import MAX_BODY_BYTES, MAX_CUSTOMERS
from dashapp.saved import (
    SavedModel,
    SavedModelError,
    ScoringInputError,
    SegmentationNotFoundError,
)

PREFIX = "/api/v1"
_EXTENSION = "persona_api"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class ApiError(Exception):
    """An error answer: HTTP ``status``, a message for the caller and the field concerned."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_response(status: int, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None):
    body: dict[str, Any] = {"status": status, "message": message}
    if field is not None:
        body["field"] = field
    response = jsonify(error=body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


_MESSAGES = {
    400: "The request is malformed.",
    401: "Send a valid API token as 'Authorization: Bearer <token>'.",
    404: "Nothing is here: see /api/v1/openapi.json for the endpoints.",
    405: "This method is not allowed here: see /api/v1/openapi.json.",
    413: f"The request body is larger than {MAX_BODY_BYTES // 1024} KB: send fewer customers "
         "per call.",
    415: "Send the body as JSON with 'Content-Type: application/json'.",
    422: "The request is well-formed JSON but its content is not valid.",
    429: "Too many requests for this token: wait and retry.",
    500: "The server failed to answer; the error is logged.",
}


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _rate_key() -> str:
    """The token's SHA-256 (as stored in the database), so each token has its own budget;
    a call without one is counted by address."""
    token = _bearer()
    if token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()
    return "addr:" + (request.remote_addr or "")


def read_json_body() -> Any:
    """The request's JSON, with the API's own checks: 415 unless the content type is JSON,
    413 past MAX_BODY_BYTES (from Content-Length, and from the stream itself), 400 when the
    bytes are not UTF-8 JSON. ``NaN`` and ``Infinity`` parse to floats that validation then
    refuses, naming the field."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not (mimetype.startswith("application/")
                                               and mimetype.endswith("+json")):
        raise ApiError(415, _MESSAGES[415])
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError(415, "Send the JSON body encoded as UTF-8.")
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise ApiError(413, _MESSAGES[413])
    data = request.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise ApiError(413, _MESSAGES[413])
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "The body is not valid UTF-8 text.") from None
    if not raw.strip():
        raise ApiError(400, "The body is empty; send a JSON object.")
    try:
        return json.loads(raw)
    except RecursionError:
        # The C parser stops nesting at the interpreter's recursion limit, safely.
        raise ApiError(400, "The JSON is nested too deeply.") from None
    except ValueError as err:
        raise ApiError(400, f"The body is not valid JSON: {err}.") from None


def _customers(body: Any) -> list:
    if not isinstance(body, dict):
        raise ApiError(422, 'The body must be a JSON object such as {"customers": [...]}.')
    if "customers" not in body:
        raise ApiError(422, "customers is missing: send the customers to score as a list.",
                       "customers")
    customers = body["customers"]
    if not isinstance(customers, list):
        raise ApiError(422, "customers must be a list of customer objects.", "customers")
    if not 1 <= len(customers) <= MAX_CUSTOMERS:
        raise ApiError(422, f"customers must hold 1 to {MAX_CUSTOMERS:,} customers; it holds "
                            f"{len(customers):,}.", "customers")
    return customers


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def detail(meta: dict[str, Any], model: SavedModel) -> dict[str, Any]:
    """What ``GET /api/v1/segmentations/<id>`` answers."""
    fields = []
    for name in model.score_fields:
        low, high = model.bounds(name)
        seen = model.doc["feature_ranges"].get(name)
        fields.append({"name": name, "minimum": low, "maximum": high,
                       "training_min": seen["min"] if seen else None,
                       "training_max": seen["max"] if seen else None})
    rfm = model.doc.get("rfm")
    return {
        **summary(meta),
        "fields": fields,
        "accepts_transactions": model.is_rfm,
        "scaling": model.scaling,
        "pca": model.doc["pca"]["n_components"] if model.doc["pca"] else None,
        "personas": [
            {"segment": s["segment"], "name": s["persona"], "strategy": s["strategy"],
             "description": s.get("description"), "size": s.get("size"),
             "customer_share": s.get("customer_share"),
             "revenue_share": s.get("revenue_share"),
             "centroid": {k: _json_number(v) for k, v in (s.get("centroid") or {}).items()}}
            for s in model.segments
        ],
        "metrics": {k: _json_number(v) for k, v in model.metrics.items()},
        "rfm": None if not rfm else {"reference_date": rfm["reference_date"],
                                     "cuts": rfm["cuts"],
                                     "order_ids": rfm["order_ids"]},
        "dataset_hash": meta["dataset_hash"],
        "format_version": meta["format_version"],
    }


def summary(meta: dict[str, Any]) -> dict[str, Any]:
    """One entry of ``GET /api/v1/segmentations``."""
    facts = meta.get("summary") or {}
    return {
        "id": meta["id"],
        "name": meta["name"],
        "kind": meta["kind"],
        "algorithm": facts.get("algorithm"),
        "k": facts.get("k"),
        "features": list(facts.get("features") or []),
        "created_at": meta["created_at"],
        "updated_at": meta["updated_at"],
    }


def _register_errors(target: Blueprint | Flask, only_api: bool) -> None:
    """JSON for every error of the API: on the blueprints for errors in their views, and on
    the app (``only_api``) for what happens before a view is known — no route (404), a method
    the route lacks (405) — on ``/api/`` paths only; other paths keep their own handling."""

    def _wants(path: str) -> bool:
        return not only_api or path.startswith("/api/") or path == "/health"

    @target.errorhandler(HTTPException)
    def _http(err: HTTPException):
        if not _wants(request.path):
            return err
        status = err.code or 500
        headers = {}
        allowed = getattr(err, "valid_methods", None)
        if status == 405 and allowed:
            headers["Allow"] = ", ".join(allowed)
        return error_response(status, _MESSAGES.get(status, err.description or ""),
                              headers=headers)

    if only_api:
        return

    @target.errorhandler(ApiError)
    def _api(err: ApiError):
        return error_response(err.status, err.message, err.field, err.headers)

    @target.errorhandler(RateLimitExceeded)
    def _limited(err: RateLimitExceeded):
        limiter = request_limiter()
        retry = 60
        current = limiter.current_limit if limiter is not None else None
        if current is not None:
            retry = max(1, int(math.ceil(current.window[0] - time.time())))
        return error_response(429, f"{_MESSAGES[429]} The limit is {err.description}.",
                              headers={"Retry-After": str(retry)})

    @target.errorhandler(Exception)
    def _crash(err: Exception):
        current_app.logger.exception("API request %s %s failed", request.method, request.path)
        return error_response(500, _MESSAGES[500])


def request_limiter() -> Limiter | None:
    state = current_app.extensions.get(_EXTENSION)
    return state["limiter"] if state else None


def init_api(server: Flask, services, csrf) -> Blueprint:
    """Register ``/api/v1`` (bearer tokens, exempt from CSRF, rate limited per token) and
    ``GET /health`` on ``server``."""
    settings = services.settings
    api = Blueprint("api_v1", __name__, url_prefix=PREFIX)
    # The document and the health check are not rate limited, so they have blueprints of
    # their own (a route exemption does not lift a blueprint's limit).
    doc = Blueprint("api_doc", __name__, url_prefix=PREFIX)
    health = Blueprint("health", __name__)

    # Retry-After is set on 429 answers only (the limiter's own headers go on every answer).
    limiter = Limiter(_rate_key, app=server, storage_uri=settings.ratelimit_storage_uri,
                      headers_enabled=False, default_limits=[], key_prefix="persona-api")
    server.extensions[_EXTENSION] = {"limiter": limiter, "services": services}

    def store():
        return services.segmentations

    @api.before_request
    def _authenticate():
        found = accounts.token_user(services.db, _bearer())
        if found is None:
            return error_response(401, _MESSAGES[401],
                                  headers={"WWW-Authenticate": 'Bearer realm="api"'})
        g.api_user_id, g.api_token_id = found
        return None

    @doc.get("/openapi.json")
    def openapi_json():
        return jsonify(openapi.document())

    @api.get("/segmentations")
    def list_segmentations():
        return jsonify(segmentations=[summary(m) for m in store().list(g.api_user_id)])

    @api.get("/segmentations/<segmentation_id>")
    def get_segmentation(segmentation_id: str):
        meta, model = _owned(segmentation_id)
        return jsonify(detail(meta, model))

    @api.post("/segmentations/<segmentation_id>/predict")
    def predict(segmentation_id: str):
        meta, model = _owned(segmentation_id)
        customers = _customers(read_json_body())
        try:
            results = model.predict(customers, path="customers")
        except ScoringInputError as err:
            raise ApiError(422, err.message, err.field) from None
        return jsonify(results=results)

    def _owned(segmentation_id: str) -> tuple[dict, SavedModel]:
        try:
            return store().get(g.api_user_id, segmentation_id)
        except SegmentationNotFoundError as err:
            raise ApiError(404, err.message) from None
        except SavedModelError as err:
            current_app.logger.error("Saved segmentation %s of user %s: %s", segmentation_id,
                                     g.api_user_id, err.message)
            raise ApiError(500, err.message) from None

    endpoints = ("api_doc.openapi_json", "api_v1.list_segmentations",
                 "api_v1.get_segmentation", "api_v1.predict")

    # Without this, the Dash app's catch-all page route would answer any other /api/ path
    # with the dashboard's HTML. A path that another method would reach is a 405.
    @api.route("/", defaults={"rest": ""}, methods=_METHODS)
    @api.route("/<path:rest>", methods=_METHODS)
    def unknown(rest: str):
        adapter = server.url_map.bind_to_environ(request.environ)
        allowed = []
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            try:
                endpoint, _ = adapter.match(request.path, method=method)
            except HTTPException:
                continue
            if endpoint in endpoints:
                allowed.append(method)
        if allowed:
            return error_response(405, _MESSAGES[405], headers={"Allow": ", ".join(allowed)})
        return error_response(404, _MESSAGES[404])

    @health.get("/health")
    def health_check():
        try:
            with services.db.read() as session:
                session.execute(text("SELECT 1"))
        except Exception:
            server.logger.exception("Health check: the database does not answer")
            return error_response(503, "The database does not answer.")
        return jsonify(status="ok")

    for blueprint in (api, doc, health):
        _register_errors(blueprint, only_api=False)
        csrf.exempt(blueprint)
    # One budget per token across every endpoint of the API.
    limiter.shared_limit(settings.api_rate_limit, scope="api-v1")(api)
    server.register_blueprint(api)
    server.register_blueprint(doc)
    server.register_blueprint(health)
    _register_errors(server, only_api=True)
    return api
