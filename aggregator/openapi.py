"""The aggregator's OpenAPI 3.0 document, served at ``/openapi.json``.

Written by hand (the API is small and stable); schemathesis fuzzes the running
service against it in tests/integration/test_aggregator_fuzz.py.
"""

from __future__ import annotations

from typing import Any

from kemi_stats.names import LABEL_PATTERN, METRIC_PATTERN, name_limits, resource_id_expected

__all__ = ["openapi_document"]

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "machine reason, e.g. invalid, unauthorized"},
        "message": {"type": "string", "description": "what is wrong, naming line or JSON path"},
        "line": {"type": "integer", "minimum": 1},
        "path": {"type": "string", "description": "JSON path, e.g. $[3].metrics.cpu_user"},
        "value": {"type": "string", "description": "the offending value (cut to 200 characters)"},
        "expected": {"type": "string"},
        "retry_after": {"type": "integer", "minimum": 1},
    },
}

_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}


def _error(description: str, retry: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if retry:
        doc["headers"] = _RETRY_AFTER
    return doc


_WRITE_RESPONSES: dict[str, Any] = {
    "204": {
        "description": "every sample acknowledged by Kafka",
        "headers": {
            "X-Kemi-Dropped-Fields": {
                "description": "line-protocol string fields dropped (string_fields=drop)",
                "schema": {"type": "integer"},
            }
        },
    },
    "400": _error("invalid body: names the line or JSON path, the value and what was expected"),
    "401": _error("missing or unknown token"),
    "403": _error("a resource outside the token's resource prefix"),
    "413": _error(
        "over a request limit, named in the message: body bytes (compressed or decompressed), "
        "gzip members, lines, samples, resources, or encoded bytes; nothing written"
    ),
    "415": _error("unknown Content-Type or Content-Encoding"),
    "429": _error("in-flight bound reached or token rate limit; nothing written", retry=True),
    "503": _error(
        "Kafka unavailable (nothing written) or acks not in time (outcome unknown)", retry=True
    ),
    "500": _error("a fault of the aggregator, with a request id its log names; nothing written"),
}


def _health_path(summary: str) -> dict[str, Any]:
    json_object = {"application/json": {"schema": {"type": "object"}}}
    return {
        "get": {
            "summary": summary,
            "responses": {
                "200": {"description": "ok", "content": json_object},
                "503": {"description": "not ready", "content": json_object},
            },
        }
    }


def _otlp_error(description: str) -> dict[str, Any]:
    """A refusal of /v1/metrics: a google.rpc.Status, protobuf or JSON like the request."""
    return {
        "description": description,
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
                }
            },
        },
    }


_GZIP = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "enum": ["gzip", "identity"]},
}

_LIMITS = name_limits()
# OpenAPI 3.0 cannot constrain an object's keys: the key rules are schemas of their own,
# referenced from the descriptions
_METRIC_NAME = {
    "type": "string",
    "pattern": f"^{METRIC_PATTERN}$",
    "maxLength": _LIMITS.metric_max_length,
    "example": "cpu_user_pct",
}
_LABEL_NAME = {
    "type": "string",
    "pattern": f"^{LABEL_PATTERN}$",
    "maxLength": _LIMITS.label_max_length,
    "example": "site",
}
_LABELS = {
    "type": "object",
    "additionalProperties": {"type": "string", "maxLength": _LIMITS.label_value_max_length},
    "description": "label name (see LabelName) -> value",
}
_KIND = {"type": "string", "enum": ["gauge", "counter", "counter32", "counter64", "float_counter"]}

_PUSH_OBJECT = {
    "type": "object",
    "required": ["metrics"],
    "additionalProperties": False,
    "properties": {
        "resource_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": _LIMITS.resource_id_max_length,
            "description": resource_id_expected()
            + "; without it, the token's resource template builds it from the labels",
            "example": "host:web-01",
        },
        "time": {
            "description": "unix seconds (< 1e11), unix milliseconds, or RFC 3339; default now",
            "oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}],
        },
        "labels": _LABELS,
        "metrics": {
            "type": "object",
            "description": "metric name (see MetricName) -> value, or {value, kind, labels}",
            "additionalProperties": {
                "oneOf": [
                    {"type": "number"},
                    {
                        "type": "object",
                        "required": ["value"],
                        "additionalProperties": False,
                        "properties": {
                            "value": {"type": "number"},
                            "kind": _KIND,
                            "labels": _LABELS,
                        },
                    },
                ]
            },
            "example": {"cpu_user_pct": 12.5, "net_rx_bytes": {"value": 1234, "kind": "counter"}},
        },
    },
}


_INFLUX_ERROR = {
    "description": "refused; InfluxDB's error shape",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}}}
        }
    },
}
_QUERY_RESPONSES = {
    "200": {
        "description": "results, one per statement",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    "400": _INFLUX_ERROR,
    "401": _INFLUX_ERROR,
    "503": _INFLUX_ERROR,
}


def _write_op(summary: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": [{"token": []}],
        "parameters": [*params, _GZIP],
        "requestBody": {
            "required": True,
            "content": {
                "text/plain": {
                    "schema": {"type": "string"},
                    "example": "cpu,host=web-01 usage_user=12.5 1714564800000000000\n",
                }
            },
        },
        "responses": _WRITE_RESPONSES,
    }


def openapi_document(version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the push API."""
    precision_v2 = {
        "name": "precision",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["ns", "us", "ms", "s"], "default": "ns"},
    }
    precision_v1 = {
        "name": "precision",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["n", "ns", "u", "us", "ms", "s", "m", "h"]},
    }
    ignored = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"},
         "description": "accepted for compatibility and ignored"}
        for n in ("org", "bucket", "orgID")
    ]  # fmt: skip
    ignored_v1 = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"},
         "description": "accepted for compatibility and ignored"}
        for n in ("db", "rp", "u")
    ]  # fmt: skip
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "kemi-stats aggregator",
            "version": version,
            "description": (
                "Push endpoint for agents. A request is all-or-nothing: a 204 means Kafka "
                "acknowledged every sample; any 4xx means nothing was written."
            ),
        },
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'Bearer <token>' or 'Token <token>'",
                }
            },
            "schemas": {
                "Error": _ERROR,
                "PushObject": _PUSH_OBJECT,
                "MetricName": _METRIC_NAME,
                "LabelName": _LABEL_NAME,
            },
        },
        "paths": {
            "/api/v1/push": {
                "post": {
                    "summary": "Push samples as JSON (one object or an array)",
                    "security": [{"token": []}],
                    "parameters": [_GZIP],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/PushObject"},
                                        {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/PushObject"},
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {k: v for k, v in _WRITE_RESPONSES.items() if k != "204"}
                    | {"204": {"description": "every sample acknowledged by Kafka"}},
                }
            },
            "/api/v1/write": {
                "post": {
                    "summary": "Prometheus remote_write 1.0 (snappy-compressed protobuf "
                    "WriteRequest); bad series are dropped and counted, the rest written",
                    "security": [{"token": []}],
                    "parameters": [
                        {
                            "name": "Content-Encoding",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "enum": ["snappy"]},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-protobuf": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "responses": {k: v for k, v in _WRITE_RESPONSES.items() if k != "403"},
                }
            },
            "/v1/metrics": {
                "post": {
                    "summary": "OTLP/HTTP metrics (ExportMetricsServiceRequest, protobuf or "
                    "JSON); answers ExportMetricsServiceResponse with partial_success",
                    "security": [{"token": []}],
                    "parameters": [_GZIP],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-protobuf": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                            "application/json": {"schema": {"type": "object"}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "written; partial_success counts and explains "
                            "the data points left out",
                            "content": {
                                "application/x-protobuf": {
                                    "schema": {"type": "string", "format": "binary"}
                                },
                                "application/json": {"schema": {"type": "object"}},
                            },
                        },
                        **{
                            code: _otlp_error(v["description"])
                            for code, v in _WRITE_RESPONSES.items()
                            if code not in ("204", "403")
                        },
                    },
                }
            },
            "/api/v2/write": {
                "post": _write_op("InfluxDB v2 line protocol", [precision_v2, *ignored])
            },
            "/write": {
                "post": _write_op(
                    "InfluxDB v1 line protocol",
                    [
                        precision_v1,
                        *ignored_v1,
                        {
                            "name": "p",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "the token, as InfluxDB 1.x clients send a password",
                        },
                    ],
                )
            },
            "/ping": {
                "get": {
                    "summary": "InfluxDB ping: 204 with X-Influxdb-Version (HEAD too)",
                    "responses": {"204": {"description": "up"}},
                }
            },
            "/health": {
                "get": {
                    "summary": "InfluxDB 2.x health: status pass or fail",
                    "responses": {
                        "200": {
                            "description": "ready for writes",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "503": {
                            "description": "not ready (tokens not read, or Kafka away)",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                    },
                }
            },
            "/query": {
                "get": {
                    "summary": "InfluxQL: CREATE DATABASE and SHOW DATABASES only (do nothing)",
                    "security": [{"token": []}],
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "p",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "the token",
                        },
                    ],
                    "responses": _QUERY_RESPONSES,
                }
            },
            "/healthz": _health_path("Readiness, as /readyz (Kafka's state in the detail)"),
            "/readyz": _health_path("Readiness: 503 while a dependency does not answer"),
            "/livez": _health_path("Liveness: 200 while the process serves requests"),
            "/metrics": {
                "get": {
                    "summary": "Prometheus self-metrics (kemi_aggregator_*)",
                    "responses": {
                        "200": {
                            "description": "text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
    }
