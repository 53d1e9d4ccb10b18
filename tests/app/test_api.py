"""The scoring API through Flask's test client on a real app: every status code, isolation
between users, scores equal to the fitted model, and the OpenAPI document against behaviour."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pytest
from werkzeug.test import EnvironBuilder

from app import create_app
from dashapp import accounts, api, auth, saved
from dashapp.db import Database
from dashapp.openapi import MAX_BODY_BYTES, MAX_CUSTOMERS
from dashapp.pipeline import prepare_file, run
from dashapp.segment import SegmentParams

SALES = ("sales_data_sample", "sales_data_sample.csv")
MALL = ("mall_customers", "Mall_Customers.csv")


@pytest.fixture(scope="module")
def sales_result(shared_data):
    prepared = prepare_file(shared_data.joinpath(*SALES))
    return run(prepared, SegmentParams(features=prepared.default_features, k=4))


@pytest.fixture(scope="module")
def mall_result(shared_data):
    prepared = prepare_file(shared_data.joinpath(*MALL))
    return run(prepared, SegmentParams(features=prepared.default_features, k=5))


@dataclass
class World:
    """A running app with two users, their tokens and A's saved segmentations."""

    app: object
    services: object
    client: object
    a: int
    b: int
    token_a: str
    token_b: str
    sales_id: str
    mall_id: str

    def token(self, user: int | None = None) -> str:
        """A fresh token, so a test's calls never use up another's rate limit."""
        return accounts.create_token(self.services.db, user or self.a, "test")[1]

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token_a}"}


def _services(server):
    state = server.extensions.get(api._EXTENSION)
    return state["services"] if state else auth.services_of(server)


def _build(settings, sales_result, mall_result, limit: str) -> World:
    app = create_app(replace(settings, api_rate_limit=limit))
    server = app.server
    assert {"api_v1", "api_doc", "health"} <= set(server.blueprints)  # create_app wires it
    services = _services(server)
    db = services.db
    a = accounts.create_user(db, "ana@example.com", "ana's long password")
    b = accounts.create_user(db, "bo@example.com", "bo's long password")
    store = services.segmentations
    sales_id = store.save(a, None, "Sales RFM k=4", saved.from_result(sales_result))
    mall_id = store.save(a, None, "Mall attributes", saved.from_result(mall_result))
    return World(app, services, server.test_client(), a, b,
                 accounts.create_token(db, a, "ana")[1], accounts.create_token(db, b, "bo")[1],
                 sales_id, mall_id)


@pytest.fixture
def world(settings, sales_result, mall_result) -> World:
    return _build(settings, sales_result, mall_result, "10000 per minute")


def _error(answer, status: int, field: str | None = None) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.mimetype == "application/json"
    body = answer.get_json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status and body["error"]["message"]
    assert "Traceback" not in answer.get_data(as_text=True)
    if field is not None:
        assert body["error"]["field"] == field
    return body["error"]


def _predict(world: World, segmentation_id: str, body, token: str | None = None, **kwargs):
    if not kwargs:
        kwargs = {"data": json.dumps(body), "content_type": "application/json"}
    return world.client.post(f"/api/v1/segmentations/{segmentation_id}/predict",
                             headers=world.auth(token), **kwargs)


# ---- answers -----------------------------------------------------------------------------


def test_api001_health_and_document_need_no_token(world):
    answer = world.client.get("/health")
    assert answer.status_code == 200 and answer.get_json() == {"status": "ok"}
    document = world.client.get("/api/v1/openapi.json")
    assert document.status_code == 200 and document.get_json()["openapi"].startswith("3.1")


def test_api002_list_and_detail_of_ones_own(world, sales_result):
    listed = world.client.get("/api/v1/segmentations", headers=world.auth())
    assert listed.status_code == 200
    entries = {e["id"]: e for e in listed.get_json()["segmentations"]}
    assert set(entries) == {world.sales_id, world.mall_id}
    assert entries[world.sales_id]["kind"] == "rfm"
    assert entries[world.mall_id]["kind"] == "attributes"
    detail = world.client.get(f"/api/v1/segmentations/{world.sales_id}", headers=world.auth())
    body = detail.get_json()
    assert detail.status_code == 200
    assert body["features"] == ["recency", "frequency", "monetary"]
    assert [f["name"] for f in body["fields"]] == ["recency", "frequency", "monetary"]
    assert body["accepts_transactions"] is True and body["rfm"]["reference_date"] == "2005-06-01"
    assert [(p["segment"], p["name"], p["strategy"]) for p in body["personas"]] == \
        [(p.segment, p.name, p.strategy) for p in sales_result.personas]
    assert body["metrics"]["silhouette"] == pytest.approx(0.4945, abs=5e-5)
    assert body["created_at"] and body["updated_at"] and body["format_version"] == 1


def test_api003_scores_equal_the_fitted_model_for_features_and_transactions(world,
                                                                           sales_result):
    prepared, seg = sales_result.prepared, sales_result.segmentation
    customers = prepared.customers
    records = customers[["customer_id", "recency", "frequency", "monetary"]].to_dict("records")
    answer = _predict(world, world.sales_id, {"customers": records})
    assert answer.status_code == 200
    results = answer.get_json()["results"]
    assert [r["customer_id"] for r in results] == customers["customer_id"].tolist()
    np.testing.assert_array_equal([r["segment"] for r in results], seg.labels)
    names = sales_result.persona_names
    assert [r["persona"] for r in results] == [names[s] for s in seg.labels]
    cuts = prepared.cuts
    assert [(r["r_score"], r["f_score"], r["m_score"]) for r in results] == [
        cuts.score(*row) for row in
        customers[["recency", "frequency", "monetary"]].itertuples(index=False)]

    lines = prepared.ingested.canonical()
    by_tx = []
    for customer, group in lines.groupby("customer_id", sort=True):
        by_tx.append({"customer_id": customer, "transactions": [
            {"order_id": r.order_id, "order_date": r.order_date.isoformat(),
             "amount": r.amount, "quantity": r.quantity} for r in group.itertuples()]})
    answer = _predict(world, world.sales_id, {"customers": by_tx})
    assert answer.status_code == 200
    from_tx = answer.get_json()["results"]
    assert [r["recency"] for r in from_tx] == customers["recency"].tolist()
    assert [r["monetary"] for r in from_tx] == customers["monetary"].tolist()
    for key in ("segment", "persona", "r_score", "f_score", "m_score", "rfm_segment"):
        assert [r[key] for r in from_tx] == [r[key] for r in results], key


def test_api004_attribute_table_scores_by_its_columns(world, mall_result):
    customers = mall_result.prepared.customers.head(50)
    records = customers[list(mall_result.segmentation.features)].to_dict("records")
    answer = _predict(world, world.mall_id, {"customers": records})
    assert answer.status_code == 200
    results = answer.get_json()["results"]
    np.testing.assert_array_equal([r["segment"] for r in results],
                                  mall_result.segmentation.labels[:50])
    assert all("r_score" not in r for r in results)


# ---- errors ------------------------------------------------------------------------------


def test_api010_no_bad_or_revoked_token_is_401(world):
    token_id, token = accounts.create_token(world.services.db, world.a, "soon revoked")
    accounts.revoke_token(world.services.db, world.a, token_id)
    for headers in ({}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer "},
                    {"Authorization": "Bearer pe_not-a-token"},
                    {"Authorization": world.token_a}, {"Authorization": f"Bearer {token}"}):
        for path in ("/api/v1/segmentations", f"/api/v1/segmentations/{world.sales_id}"):
            answer = world.client.get(path, headers=headers)
            _error(answer, 401)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        answer = world.client.post(f"/api/v1/segmentations/{world.sales_id}/predict",
                                   headers=headers, json={"customers": [{}]})
        _error(answer, 401)


def test_api011_someone_elses_id_is_404_exactly_as_a_missing_one(world):
    listed = world.client.get("/api/v1/segmentations", headers=world.auth(world.token_b))
    assert listed.status_code == 200 and listed.get_json() == {"segmentations": []}
    bodies = []
    for segmentation_id in (world.sales_id, "0" * 32, "not-an-id", "%2E%2E"):
        answer = world.client.get(f"/api/v1/segmentations/{segmentation_id}",
                                  headers=world.auth(world.token_b))
        bodies.append(_error(answer, 404))
        answer = _predict(world, segmentation_id, {"customers": [{"recency": 1}]},
                          token=world.token_b)
        bodies.append(_error(answer, 404))
    assert all(body == bodies[0] for body in bodies)
    _error(world.client.get("/api/v1/segmentations/..%2F..%2F1", headers=world.auth()), 404)
    # B's own segmentation never shows in A's list, and A's key opens only A's.
    own = world.services.segmentations.save(world.b, None, "Bo's", world.services
                                            .segmentations.get(world.a, world.mall_id)[1])
    assert [e["id"] for e in world.client.get("/api/v1/segmentations",
                                              headers=world.auth(world.token_b))
            .get_json()["segmentations"]] == [own]
    mine = world.client.get("/api/v1/segmentations", headers=world.auth()).get_json()
    assert own not in {e["id"] for e in mine["segmentations"]}
    _error(world.client.get(f"/api/v1/segmentations/{own}", headers=world.auth()), 404)


def test_api012_unknown_paths_and_methods(world):
    _error(world.client.get("/api/v1/nothing", headers=world.auth()), 404)
    _error(world.client.post("/api/v1/segmentations/x/y/z", headers=world.auth()), 404)
    for method, path, allowed in (
            ("get", f"/api/v1/segmentations/{world.sales_id}/predict", "POST"),
            ("post", "/api/v1/segmentations", "GET"),
            ("delete", f"/api/v1/segmentations/{world.sales_id}", "GET"),
            ("put", "/api/v1/openapi.json", "GET"),
            ("post", "/health", "GET")):
        answer = getattr(world.client, method)(path, headers=world.auth())
        _error(answer, 405)
        assert allowed in answer.headers["Allow"]


def test_api013_content_type_and_malformed_bodies(world):
    for kwargs in ({"data": "{}", "content_type": "text/plain"},
                   {"data": "customers=1", "content_type": "application/x-www-form-urlencoded"},
                   {"data": "{}"},
                   {"data": "{}", "content_type": "application/json; charset=latin-1"}):
        _error(_predict(world, world.sales_id, None, **kwargs), 415)
    for data in ("{bad", "", "   ", b"\xff\xfe{}", '{"customers": [1, 2,]}',
                 "[" * 100_000 + "]" * 100_000,
                 '{"customers": [{"recency": 1' + "0" * 5000 + "}]}"):
        _error(_predict(world, world.sales_id, None, data=data,
                        content_type="application/json"), 400)


def test_api014_bodies_over_the_limit_are_413(world):
    big = json.dumps({"customers": [{"recency": 1}], "pad": "x" * MAX_BODY_BYTES})
    _error(_predict(world, world.sales_id, None, data=big, content_type="application/json"), 413)
    # Without a Content-Length (chunked), the stream itself is cut at the limit.
    environ = EnvironBuilder(
        path=f"/api/v1/segmentations/{world.sales_id}/predict", method="POST",
        headers=world.auth(), input_stream=io.BytesIO(big.encode()),
        content_type="application/json").get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    _error(world.client.open(environ), 413)
    fits = json.dumps({"customers": [{"recency": 1, "frequency": 2, "monetary": 3}],
                       "pad": "x" * (MAX_BODY_BYTES - 200)})
    assert _predict(world, world.sales_id, None, data=fits,
                    content_type="application/json").status_code == 200


CONTENT_422 = [
    ("[]", None),
    ('"customers"', None),
    ("{}", "customers"),
    ('{"customers": {"recency": 1}}', "customers"),
    ('{"customers": []}', "customers"),
    ('{"customers": [{"recency": 1, "frequency": 2}]}', "customers[0].monetary"),
    ('{"customers": [{"recency": "1", "frequency": 2, "monetary": 3}]}',
     "customers[0].recency"),
    ('{"customers": [{"recency": 1, "frequency": 2, "monetary": 3}, '
     '{"recency": NaN, "frequency": 2, "monetary": 3}]}', "customers[1].recency"),
    ('{"customers": [{"recency": 1, "frequency": Infinity, "monetary": 3}]}',
     "customers[0].frequency"),
    ('{"customers": [{"recency": 1, "frequency": 2, "monetary": -Infinity}]}',
     "customers[0].monetary"),
    ('{"customers": [{"recency": 1, "frequency": 2, "monetary": 1e999}]}',
     "customers[0].monetary"),
    ('{"customers": [{"recency": null, "frequency": 2, "monetary": 3}]}',
     "customers[0].recency"),
    ('{"customers": [{"recency": false, "frequency": 2, "monetary": 3}]}',
     "customers[0].recency"),
    ('{"customers": [{"transactions": [{"order_id": "1", "order_date": "2005-13-01", '
     '"amount": 1}]}]}', "customers[0].transactions[0].order_date"),
    ('{"customers": ["x"]}', "customers[0]"),
]


@pytest.mark.parametrize(("body", "field"), CONTENT_422)
def test_api015_invalid_content_is_422_naming_the_field(world, body, field):
    answer = _predict(world, world.sales_id, None, data=body, content_type="application/json")
    error = _error(answer, 422)
    assert error.get("field") == field


def test_api016_one_to_a_thousand_customers(world):
    row = {"recency": 1, "frequency": 2, "monetary": 3}
    assert _predict(world, world.sales_id, {"customers": [row] * MAX_CUSTOMERS}) \
        .status_code == 200
    _error(_predict(world, world.sales_id, {"customers": [row] * (MAX_CUSTOMERS + 1)}), 422,
           "customers")
    _error(_predict(world, world.mall_id, {"customers": [{"transactions": []}]}), 422,
           "customers[0].transactions")


def test_api017_rate_limit_per_token_with_retry_after(settings, sales_result, mall_result):
    world = _build(settings, sales_result, mall_result, "3 per minute")
    token = world.token()
    for _ in range(3):
        assert world.client.get("/api/v1/segmentations", headers=world.auth(token)) \
            .status_code == 200
    answer = world.client.get("/api/v1/segmentations", headers=world.auth(token))
    _error(answer, 429)
    assert 0 < int(answer.headers["Retry-After"]) <= 60
    _error(_predict(world, world.sales_id, {"customers": [{}]}, token=token), 429)
    # Another token of the same user has its own budget; the document and health have none.
    assert world.client.get("/api/v1/segmentations", headers=world.auth(world.token())) \
        .status_code == 200
    for _ in range(5):
        assert world.client.get("/api/v1/openapi.json").status_code == 200
        assert world.client.get("/health").status_code == 200


def test_api018_server_failures_are_json_without_a_traceback(world):
    folder = world.services.segmentations.folder(world.a, world.sales_id)
    (folder / "arrays.npz").write_bytes(b"not a zip at all")
    error = _error(world.client.get(f"/api/v1/segmentations/{world.sales_id}",
                                    headers=world.auth()), 500)
    assert "arrays" in error["message"]
    _error(_predict(world, world.sales_id, {"customers": [{"recency": 1}]}), 500)
    healthy = world.services.db
    world.services.db = Database("sqlite:////nonexistent-folder/persona.db")
    try:
        _error(world.client.get("/api/v1/segmentations", headers=world.auth()), 500)
        _error(world.client.get("/health"), 503)
    finally:
        world.services.db = healthy
    assert world.client.get("/health").status_code == 200


def test_api019_other_paths_keep_their_own_error_pages(world):
    answer = world.client.put("/login")
    assert answer.status_code == 405 and answer.mimetype == "text/html"


# ---- the OpenAPI document against the live app -------------------------------------------


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        node = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool,
          "null": type(None)}


def _is_type(value, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def conforms(document: dict, value, schema: dict, where: str = "$") -> list[str]:
    """The subset of JSON Schema the document uses; the problems found, empty when none."""
    schema = _resolve(document, schema)
    problems: list[str] = []
    for part in schema.get("allOf", []):
        problems += conforms(document, value, part, where)
    for key in ("anyOf", "oneOf"):
        if key in schema and all(conforms(document, value, option, where)
                                 for option in schema[key]):
            problems.append(f"{where}: matches none of {key}")
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, name) for name in names):
            return problems + [f"{where}: {value!r:.60} is not {names}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"],
                                                                        value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: above {schema['maximum']}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where}: {name} is missing")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                problems += conforms(document, item, properties[name], f"{where}.{name}")
            elif isinstance(extra, dict):
                problems += conforms(document, item, extra, f"{where}.{name}")
            elif extra is False:
                problems.append(f"{where}: unexpected {name}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems",
                                                                              len(value)):
            problems.append(f"{where}: {len(value)} items")
        for i, item in enumerate(value):
            if "items" in schema:
                problems += conforms(document, item, schema["items"], f"{where}[{i}]")
    return problems


def _recipes(world: World) -> dict[tuple[str, str, str], Callable[[], object]]:
    """For every (path, method, status) the document lists, a request that causes it."""
    detail = "/api/v1/segmentations/{segmentation_id}"
    predict = detail + "/predict"
    c = world.client
    sales = world.sales_id
    good = {"customers": [{"recency": 3, "frequency": 2, "monetary": 50_000}]}

    def over_limit(call):
        def run_it():
            token = world.token()
            for _ in range(3):
                call(token)
            return call(token)
        return run_it

    def broken_db(call):
        def run_it():
            token = world.token()
            healthy = world.services.db
            world.services.db = Database("sqlite:////nonexistent-folder/persona.db")
            try:
                return call(token)
            finally:
                world.services.db = healthy
        return run_it

    def broken_files(call):
        def run_it():
            model = world.services.segmentations.get(world.a, sales)[1]
            broken = world.services.segmentations.save(world.a, None, "broken", model)
            folder = world.services.segmentations.folder(world.a, broken)
            (folder / "model.json").write_text('{"format_version": 1}')
            return call(broken)
        return run_it

    def get_list(token):
        return c.get("/api/v1/segmentations", headers=world.auth(token))

    def get_detail(token, segmentation_id=sales):
        return c.get(f"/api/v1/segmentations/{segmentation_id}", headers=world.auth(token))

    def post(token, body=good, segmentation_id=sales, **kwargs):
        if not kwargs:
            kwargs = {"json": body}
        return c.post(f"/api/v1/segmentations/{segmentation_id}/predict",
                      headers=world.auth(token), **kwargs)

    return {
        ("/health", "get", "200"): lambda: c.get("/health"),
        ("/health", "get", "503"): broken_db(lambda token: c.get("/health")),
        ("/api/v1/openapi.json", "get", "200"): lambda: c.get("/api/v1/openapi.json"),
        ("/api/v1/segmentations", "get", "200"): lambda: get_list(world.token()),
        ("/api/v1/segmentations", "get", "401"): lambda: c.get("/api/v1/segmentations"),
        ("/api/v1/segmentations", "get", "429"): over_limit(get_list),
        ("/api/v1/segmentations", "get", "500"): broken_db(get_list),
        (detail, "get", "200"): lambda: get_detail(world.token()),
        (detail, "get", "401"): lambda: get_detail("pe_wrong"),
        (detail, "get", "404"): lambda: get_detail(world.token(world.b)),
        (detail, "get", "429"): over_limit(get_detail),
        (detail, "get", "500"): broken_files(lambda i: get_detail(world.token(), i)),
        (predict, "post", "200"): lambda: post(world.token()),
        (predict, "post", "400"): lambda: post(world.token(), data="{",
                                               content_type="application/json"),
        (predict, "post", "401"): lambda: post("pe_wrong"),
        (predict, "post", "404"): lambda: post(world.token(world.b)),
        (predict, "post", "413"): lambda: post(world.token(), data="[" + " " * MAX_BODY_BYTES
                                               + "]", content_type="application/json"),
        (predict, "post", "415"): lambda: post(world.token(), data="{}",
                                               content_type="text/csv"),
        (predict, "post", "422"): lambda: post(world.token(), {"customers": [{"recency": 1}]}),
        (predict, "post", "429"): over_limit(post),
        (predict, "post", "500"): broken_files(lambda i: post(world.token(),
                                                              segmentation_id=i)),
    }


def test_api020_every_documented_status_happens_and_matches_its_schema(settings, sales_result,
                                                                       mall_result):
    world = _build(settings, sales_result, mall_result, "3 per minute")
    document = world.client.get("/api/v1/openapi.json").get_json()
    documented = {(path, method, status)
                  for path, item in document["paths"].items()
                  for method, operation in item.items() if method != "parameters"
                  for status in operation["responses"]}
    recipes = _recipes(world)
    assert documented == set(recipes), (
        f"documented without a recipe: {sorted(documented - set(recipes))}; "
        f"produced but undocumented: {sorted(set(recipes) - documented)}")
    for (path, method, status), recipe in sorted(recipes.items()):
        answer = recipe()
        assert str(answer.status_code) == status, (path, method, status,
                                                   answer.get_data(as_text=True)[:300])
        spec = _resolve(document, document["paths"][path][method]["responses"][status])
        for header in spec.get("headers", {}):
            assert header in answer.headers, (path, method, status, header)
        schema = spec.get("content", {}).get("application/json", {}).get("schema")
        assert answer.mimetype == "application/json"
        if schema:
            problems = conforms(document, answer.get_json(), schema)
            assert not problems, (path, method, status, problems[:5])


def test_api021_requests_the_document_describes_are_accepted(world):
    document = world.client.get("/api/v1/openapi.json").get_json()
    request_schema = document["components"]["schemas"]["PredictRequest"]
    bodies = [
        {"customers": [{"customer_id": "a", "recency": 3, "frequency": 2, "monetary": 5.5}]},
        {"customers": [{"customer_id": 9, "transactions": [
            {"order_id": 1, "order_date": "2005-05-01", "amount": 10.0},
            {"order_id": "C2", "order_date": "2005-05-02T10:00:00", "amount": 3,
             "quantity": -1}]}]},
    ]
    for body in bodies:
        assert not conforms(document, body, request_schema)
        answer = _predict(world, world.sales_id, body)
        assert answer.status_code == 200
        assert not conforms(document, answer.get_json(),
                            document["components"]["schemas"]["PredictResponse"])
    # And the documented limits are the enforced ones.
    schema = document["components"]["schemas"]["PredictRequest"]["properties"]["customers"]
    assert (schema["minItems"], schema["maxItems"]) == (1, MAX_CUSTOMERS)
