"""The OpenAPI 3.1 document of the scoring API, served at ``/api/v1/openapi.json``.

A test walks every (path, method, status) below against the running app; keep them in step.
"""

from __future__ import annotations

import copy
from typing import Any

#: Largest request body the API reads; the dashboard's uploads have their own limit.
MAX_BODY_BYTES = 1024 * 1024
MAX_CUSTOMERS = 1000

_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_TIMESTAMP = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response = _json(_ref("Error"), description)
    if headers:
        response["headers"] = headers
    return response


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "Where the problem is, such as "
                                                          "customers[3].frequency."},
            },
        }},
    },
    "Health": {
        "type": "object", "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
    },
    "SegmentationSummary": {
        "type": "object",
        "required": ["id", "name", "kind", "algorithm", "k", "features", "created_at",
                     "updated_at"],
        "properties": {
            "id": _ID,
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": ["rfm", "attributes"],
                     "description": "rfm: fitted on a transaction log, scores transactions "
                                    "too and returns RFM scores; attributes: a customer "
                                    "table."},
            "algorithm": {"type": "string",
                          "enum": ["kmeans", "minibatch", "dbscan", "hierarchical", "gmm"]},
            "k": {"type": "integer"},
            "features": {"type": "array", "items": {"type": "string"}},
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
        },
    },
    "SegmentationList": {
        "type": "object", "required": ["segmentations"],
        "properties": {"segmentations": {"type": "array",
                                         "items": _ref("SegmentationSummary")}},
    },
    "Field": {
        "type": "object",
        "required": ["name", "minimum", "maximum"],
        "properties": {
            "name": {"type": "string"},
            "minimum": {"type": "number"},
            "maximum": {"type": "number"},
            "training_min": _NULLABLE_NUMBER,
            "training_max": _NULLABLE_NUMBER,
        },
    },
    "Persona": {
        "type": "object",
        "required": ["segment", "name", "strategy"],
        "properties": {
            "segment": {"type": "integer", "description": "-1: DBSCAN noise (Unclustered)."},
            "name": {"type": "string"},
            "strategy": {"type": "string"},
            "description": {"type": ["string", "null"]},
            "size": {"type": ["integer", "null"]},
            "customer_share": _NULLABLE_NUMBER,
            "revenue_share": _NULLABLE_NUMBER,
            "centroid": {"type": "object", "additionalProperties": _NULLABLE_NUMBER},
        },
    },
    "RFMInfo": {
        "type": "object",
        "required": ["reference_date", "cuts", "order_ids"],
        "properties": {
            "reference_date": {"type": "string", "format": "date",
                               "description": "Recency is counted in days to this date."},
            "cuts": {"type": "object",
                     "description": "Per feature, the edge of each of the five score bins.",
                     "additionalProperties": {"type": "array", "items": {"type": "number"},
                                              "minItems": 5, "maxItems": 5}},
            "order_ids": {"type": "boolean",
                          "description": "Transactions need an order_id (frequency counts "
                                         "distinct orders); false: distinct order days."},
        },
    },
    "SegmentationDetail": {
        "allOf": [_ref("SegmentationSummary"), {
            "type": "object",
            "required": ["fields", "accepts_transactions", "scaling", "pca", "personas",
                         "metrics", "rfm", "dataset_hash", "format_version"],
            "properties": {
                "fields": {"type": "array", "items": _ref("Field"),
                           "description": "What a customer given as feature values needs."},
                "accepts_transactions": {"type": "boolean"},
                "scaling": {"type": "string",
                            "enum": ["standard", "robust", "log", "minmax", "none"]},
                "pca": {"type": ["integer", "null"]},
                "personas": {"type": "array", "items": _ref("Persona")},
                "metrics": {"type": "object", "additionalProperties": _NULLABLE_NUMBER},
                "rfm": {"oneOf": [_ref("RFMInfo"), {"type": "null"}]},
                "dataset_hash": {"type": "string"},
                "format_version": {"type": "integer"},
            },
        }],
    },
    "Transaction": {
        "type": "object",
        "required": ["order_date", "amount"],
        "properties": {
            "order_id": {"type": ["string", "integer"],
                         "description": "Required when the segmentation's rfm.order_ids is "
                                        "true. An id starting with C is a cancellation."},
            "order_date": {"type": "string",
                           "description": "ISO 8601 date or date-time; the time of day is "
                                          "ignored."},
            "amount": {"type": "number",
                       "description": "Negative for a return: it does not count as an order "
                                      "and subtracts from monetary."},
            "quantity": {"type": "number", "description": "Optional; negative is a return."},
        },
    },
    "FeatureCustomer": {
        "type": "object",
        "description": "A customer by feature values: every name in the segmentation's "
                       "fields, each a finite number within its minimum and maximum.",
        "properties": {"customer_id": {"type": ["string", "integer"]}},
        "additionalProperties": {"type": "number"},
    },
    "TransactionCustomer": {
        "type": "object",
        "description": "A customer by transactions (rfm segmentations only).",
        "required": ["transactions"],
        "properties": {
            "customer_id": {"type": ["string", "integer"]},
            "transactions": {"type": "array", "minItems": 1, "items": _ref("Transaction")},
        },
    },
    "PredictRequest": {
        "type": "object",
        "required": ["customers"],
        "properties": {"customers": {
            "type": "array", "minItems": 1, "maxItems": MAX_CUSTOMERS,
            "items": {"anyOf": [_ref("TransactionCustomer"), _ref("FeatureCustomer")]},
        }},
    },
    "Result": {
        "type": "object",
        "required": ["segment", "persona", "strategy"],
        "properties": {
            "customer_id": {"type": ["string", "integer"]},
            "segment": {"type": "integer"},
            "persona": {"type": "string"},
            "strategy": {"type": "string"},
            "r_score": {"type": "integer", "minimum": 1, "maximum": 5},
            "f_score": {"type": "integer", "minimum": 1, "maximum": 5},
            "m_score": {"type": "integer", "minimum": 1, "maximum": 5},
            "rfm_segment": {"type": "string"},
        },
        "additionalProperties": {"type": "number",
                                 "description": "The features used, computed from the "
                                                "transactions when those were sent."},
    },
    "PredictResponse": {
        "type": "object", "required": ["results"],
        "properties": {"results": {"type": "array", "items": _ref("Result")}},
    },
}

_RESPONSES: dict[str, Any] = {
    "Unauthorized": _error("No token, or an unknown or revoked one.", {
        "WWW-Authenticate": {"schema": {"type": "string"}}}),
    "NotFound": _error("No segmentation of yours has this id (someone else's answers the "
                       "same)."),
    "TooManyRequests": _error("This token's rate limit is used up.", {
        "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}),
    "ServerError": _error("The server failed; nothing of the traceback is sent."),
}


def _use(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


_ID_PARAMETER = {"name": "segmentation_id", "in": "path", "required": True, "schema": _ID}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict each call)."""
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {
            "title": "Persona Engine scoring API",
            "version": "1",
            "description": (
                "Score new customers with your saved segmentations. Authenticate with an API "
                "token from your account page: 'Authorization: Bearer <token>'. Each token "
                "is rate limited. Every error is JSON with the shape of Error; a method that "
                "a path does not list answers 405 with that body."),
        },
        "security": [{"bearer": []}],
        "paths": {
            "/health": {"get": {
                "summary": "Liveness: the app and its database answer.",
                "security": [],
                "responses": {
                    "200": _json(_ref("Health"), "The app and its database answer."),
                    "503": _error("The database does not answer."),
                },
            }},
            "/api/v1/openapi.json": {"get": {
                "summary": "This document.",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI document.",
                                      "content": {"application/json": {}}}},
            }},
            "/api/v1/segmentations": {"get": {
                "summary": "Your saved segmentations, newest first.",
                "responses": {
                    "200": _json(_ref("SegmentationList"), "Your saved segmentations."),
                    "401": _use("Unauthorized"),
                    "429": _use("TooManyRequests"),
                    "500": _use("ServerError"),
                },
            }},
            "/api/v1/segmentations/{segmentation_id}": {
                "parameters": [_ID_PARAMETER],
                "get": {
                    "summary": "One saved segmentation: its fields, personas with strategies, "
                               "metrics and RFM reference.",
                    "responses": {
                        "200": _json(_ref("SegmentationDetail"), "The segmentation."),
                        "401": _use("Unauthorized"),
                        "404": _use("NotFound"),
                        "429": _use("TooManyRequests"),
                        "500": _use("ServerError"),
                    },
                },
            },
            "/api/v1/segmentations/{segmentation_id}/predict": {
                "parameters": [_ID_PARAMETER],
                "post": {
                    "summary": f"Score 1 to {MAX_CUSTOMERS} customers, by feature values or "
                               "(rfm segmentations) by their transactions.",
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": _ref("PredictRequest")}}},
                    "responses": {
                        "200": _json(_ref("PredictResponse"),
                                     "One result per customer, in the order sent."),
                        "400": _error("The body is not valid UTF-8 JSON."),
                        "401": _use("Unauthorized"),
                        "404": _use("NotFound"),
                        "413": _error(f"The body is larger than {MAX_BODY_BYTES // 1024} KB."),
                        "415": _error("The content type is not application/json."),
                        "422": _error("A field is missing or not a finite number, customers is "
                                      f"not a list of 1 to {MAX_CUSTOMERS}; error.field names "
                                      "it."),
                        "429": _use("TooManyRequests"),
                        "500": _use("ServerError"),
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _SCHEMAS,
            "responses": _RESPONSES,
        },
    })
