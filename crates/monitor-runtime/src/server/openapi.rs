//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of the server's API.
//!
//! Written by hand, next to the handlers; the crate's tests call every path
//! it lists on a running server and check each answer's status and JSON
//! shape against it.

use axum::response::{IntoResponse, Response};
use monitor_core::record::{MAX_NAME_BYTES, MAX_SIGNALS_PER_RECORD, MAX_TEXT_BYTES};
use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// Answers every endpoint may give besides its own.
fn common(mut responses: Value, guarded: bool) -> Value {
    if let Some(map) = responses.as_object_mut() {
        map.insert("503".into(), error_response("The server is shutting down, or the engine cannot answer."));
        if guarded {
            map.insert("401".into(), error_response("The bearer token is missing or wrong."));
        }
    }
    responses
}

/// A record, with every rule of the contract that JSON Schema can state,
/// so that what the schema admits the server accepts, and the reverse.
/// A `null` field counts as absent. Two rules it cannot state are in the
/// description: the limits are in bytes of UTF-8 where the schema counts
/// characters (the same for ASCII), and features and metrics together are
/// at most 4096.
fn record_schema() -> Value {
    let name = json!({"type": "string", "minLength": 1, "maxLength": MAX_NAME_BYTES});
    let text = json!({"type": "string", "maxLength": MAX_TEXT_BYTES});
    let value = json!({"oneOf": [{"type": ["number", "boolean", "null"]}, text]});
    let present = |field: &str| json!({"required": [field], "properties": {field: {"not": {"type": "null"}}}});
    json!({
        "type": "object",
        "description": format!(
            "One record; see the README for every field. Names are at most {MAX_NAME_BYTES} bytes and classes \
             {MAX_TEXT_BYTES} bytes of UTF-8; features and metrics together at most {MAX_SIGNALS_PER_RECORD}. \
             A field given as null counts as absent."
        ),
        "required": ["model"],
        "additionalProperties": false,
        "properties": {
            "model": name,
            "version": {"oneOf": [name, {"type": "null"}]},
            "ts": {"type": ["string", "null"], "format": "date-time"},
            "id": {"oneOf": [name, {"type": ["integer", "null"], "minimum": i64::MIN, "maximum": u64::MAX}]},
            "latency_ms": {"type": ["number", "null"], "minimum": 0},
            "prediction": value,
            "label": value,
            "features": {
                "type": ["object", "null"],
                "maxProperties": MAX_SIGNALS_PER_RECORD,
                "propertyNames": name,
                "additionalProperties": value
            },
            "metrics": {
                "type": ["object", "null"],
                "maxProperties": MAX_SIGNALS_PER_RECORD,
                "propertyNames": name,
                "additionalProperties": {"type": ["number", "null"]}
            }
        },
        "allOf": [
            // At least one signal; a label alone is one.
            {"anyOf": [
                present("latency_ms"),
                present("prediction"),
                present("label"),
                {"required": ["features"], "properties": {"features": {"type": "object", "minProperties": 1}}},
                {"required": ["metrics"], "properties": {"metrics": {
                    "type": "object", "minProperties": 1, "not": {"additionalProperties": {"type": "null"}}
                }}}
            ]},
            // A label has the type of the prediction: a number, or a class.
            {
                "if": {"required": ["prediction"], "properties": {"prediction": {"type": "number"}}},
                "then": {"properties": {"label": {"type": ["number", "null"]}}}
            },
            {
                "if": {"required": ["prediction"], "properties": {"prediction": {"type": ["string", "boolean"]}}},
                "then": {"properties": {"label": {"type": ["string", "boolean", "null"]}}}
            },
            // A label without its prediction needs the id that joins them.
            {"if": {"allOf": [present("label"), {"not": present("prediction")}]}, "then": present("id")}
        ]
    })
}

fn schemas() -> Value {
    let nullable_string = json!({"type": ["string", "null"]});
    let nullable_number = json!({"type": ["number", "null"]});
    let count = json!({"type": "integer", "minimum": 0});
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": false,
            "properties": {"error": {"type": "string", "description": "What went wrong and what to do."}}
        },
        "Record": record_schema(),
        "LineError": {
            "type": "object",
            "required": ["line", "field", "value", "reason"],
            "properties": {
                "line": {"type": "integer", "minimum": 1, "description": "The NDJSON line, or the element of a JSON array, from 1."},
                "field": nullable_string,
                "value": nullable_string,
                "reason": {"type": "string"}
            }
        },
        "IngestAnswer": {
            "type": "object",
            "required": ["accepted", "rejected", "errors", "errors_not_listed"],
            "properties": {
                "accepted": count,
                "rejected": count,
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/LineError"}},
                "errors_not_listed": count,
                "error": {"type": "string"}
            }
        },
        "Event": {
            "type": "object",
            "description": "An event as `replay --format json` prints it: `finding`, `recovered`, `retrain_requested` or `job_status`, with the fields of its type.",
            "required": ["id", "type", "model", "version", "ts", "seq"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "type": {"type": "string", "enum": ["finding", "recovered", "retrain_requested", "job_status"]},
                "model": {"type": "string"},
                "version": {"type": "string"},
                "ts": {"type": "string", "format": "date-time"},
                "seq": count,
                "signal": {"type": "string"},
                "detector": {"type": "string"},
                "severity": {"type": "string", "enum": ["warning", "drift"]},
                "statistic": nullable_number,
                "threshold": nullable_number,
                "p_value": {"type": "number"},
                "realised": {"type": "number", "description": "On an `estimated.<metric>` finding: the realised `perf.<metric>` of the same window, when known."},
                "message": {"type": "string"},
                "job_id": {"type": "string", "format": "uuid"},
                "reasons": {"type": "array", "items": {"type": "object"}},
                "status": {"type": "string"},
                "dispatcher": {"type": "string"},
                "detail": {"type": "string"}
            }
        },
        "VersionSummary": {
            "type": "object",
            "required": ["version", "records", "signals", "open_findings"],
            "properties": {"version": {"type": "string"}, "records": count, "signals": count, "open_findings": count}
        },
        "ModelSummary": {
            "type": "object",
            "required": ["model", "records", "open_findings", "versions"],
            "properties": {
                "model": {"type": "string"},
                "records": count,
                "open_findings": count,
                "versions": {"type": "array", "items": {"$ref": "#/components/schemas/VersionSummary"}}
            }
        },
        "Models": {
            "type": "object",
            "required": ["models", "versions_listed", "versions_total"],
            "properties": {
                "models": {"type": "array", "items": {"$ref": "#/components/schemas/ModelSummary"}},
                "versions_listed": count,
                "versions_total": count
            }
        },
        "DetectorState": {
            "type": "object",
            "required": ["signal", "detector", "monitor", "status", "statistic", "threshold", "p_value", "open"],
            "properties": {
                "signal": {"type": "string"},
                "detector": {"type": "string"},
                "monitor": {"type": "integer", "minimum": 0, "description": "The index of the [[monitors]] entry."},
                "status": {"type": "string", "enum": ["stable", "warning", "drift"]},
                "statistic": nullable_number,
                "threshold": nullable_number,
                "p_value": nullable_number,
                "open": {"type": ["object", "null"], "description": "The open finding: signal, detector, severity, statistic, threshold, p_value, message."}
            }
        },
        "VersionDetail": {
            "type": "object",
            "required": ["model", "version", "records", "signals", "open_findings", "last_retrain_request", "detectors", "detectors_not_listed"],
            "properties": {
                "model": {"type": "string"},
                "version": {"type": "string"},
                "records": count,
                "signals": count,
                "open_findings": count,
                "last_retrain_request": {"type": ["string", "null"], "format": "date-time"},
                "detectors": {"type": "array", "items": {"$ref": "#/components/schemas/DetectorState"}},
                "detectors_not_listed": count
            }
        },
        "Job": {
            "type": "object",
            "required": ["job_id", "version", "status", "dispatcher", "detail", "requested_at", "updated_at"],
            "properties": {
                "job_id": {"type": "string", "format": "uuid"},
                "version": {"type": "string"},
                "status": {"type": "string", "enum": ["requested", "queued", "dispatched", "succeeded", "failed", "merged"]},
                "dispatcher": nullable_string,
                "detail": nullable_string,
                "requested_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"}
            }
        },
        "Model": {
            "type": "object",
            "required": ["model", "versions", "recent_findings", "jobs"],
            "properties": {
                "model": {"type": "string"},
                "versions": {"type": "array", "items": {"$ref": "#/components/schemas/VersionDetail"}},
                "recent_findings": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}
            }
        },
        "EventsPage": {
            "type": "object",
            "required": ["events", "next_since", "oldest", "newest", "missed"],
            "properties": {
                "events": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["seq", "event"],
                        "properties": {
                            "seq": {"type": "integer", "minimum": 1, "description": "The event's number in the ring."},
                            "event": {"$ref": "#/components/schemas/Event"}
                        }
                    }
                },
                "next_since": count,
                "oldest": count,
                "newest": count,
                "missed": count
            }
        },
        "JournalJob": {
            "type": "object",
            "required": ["id", "model", "version", "reasons", "status", "attempts", "created_at", "updated_at", "dispatcher", "answer"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "model": {"type": "string"},
                "version": {"type": "string"},
                "reasons": {"type": "array", "items": {"type": "object"}},
                "status": {"type": "string", "enum": ["requested", "queued", "dispatched", "succeeded", "failed", "merged", "cancelled"]},
                "attempts": count,
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "dispatcher": nullable_string,
                "answer": nullable_string
            }
        },
        "Jobs": {
            "type": "object",
            "required": ["jobs"],
            "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/JournalJob"}}}
        },
        "OutboxRow": {
            "type": "object",
            "required": ["id", "receiver", "key", "event_type", "model", "version", "seq", "status", "attempts", "next_attempt_at", "created_at", "last_error"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "receiver": {"type": "string"},
                "key": {"type": "string", "description": "What orders deliveries: `alert:<dedup key>` or `job:<id>`."},
                "event_type": {"type": "string", "enum": ["finding", "recovered", "retrain_requested", "job_status"]},
                "model": {"type": "string"},
                "version": {"type": "string"},
                "seq": count,
                "status": {"type": "string", "enum": ["pending", "delivered", "skipped", "failed"]},
                "attempts": count,
                "next_attempt_at": {"type": "string", "format": "date-time"},
                "created_at": {"type": "string", "format": "date-time"},
                "last_error": nullable_string
            }
        },
        "Outbox": {
            "type": "object",
            "required": ["rows"],
            "properties": {"rows": {"type": "array", "items": {"$ref": "#/components/schemas/OutboxRow"}}}
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok"]}}
        },
        "Readiness": {
            "type": "object",
            "required": ["ready", "draining", "shards", "shards_running", "observers"],
            "properties": {
                "ready": {"type": "boolean"},
                "draining": {"type": "boolean"},
                "shards": count,
                "shards_running": count,
                "journal": {
                    "type": "object",
                    "description": "With `engine.state_dir`: whether the journal's last write succeeded, and the failed writes.",
                    "required": ["ok", "errors"],
                    "properties": {"ok": {"type": "boolean"}, "errors": count, "last_error": {"type": "string"}}
                },
                "observers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "running", "queued"],
                        "properties": {"name": {"type": "string"}, "running": {"type": "boolean"}, "queued": count}
                    }
                }
            }
        }
    })
}

/// The OpenAPI 3.1 document of the API that `model-monitor serve` answers.
pub fn document() -> Value {
    let read_security = json!([{}, {"bearerAuth": []}]);
    // A larger `limit` is taken and capped; the maximum is what the query
    // string parses into, so that the document admits all the server takes.
    let limit = |description: &str| json!({"name": "limit", "in": "query", "required": false, "description": description, "schema": {"type": "integer", "minimum": 0, "maximum": usize::MAX}});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "model-monitor",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Records in; models' state, events and metrics out. Write endpoints need the bearer token when `[server] token_env` is set; read endpoints too when `[server] protect_reads` is. The probes never do."
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas()
        },
        "paths": {
            "/v1/records": {
                "post": {
                    "summary": "Ingest records: a JSON object, a JSON array, or NDJSON; gzip bodies too.",
                    // The encoding is not a parameter: a client that declares
                    // gzip must send a gzip body, which no schema can say.
                    "description": "A body may be sent with `Content-Encoding: gzip` (or `identity`); it is inflated within `server.max_decoded_bytes`, and a body that is not gzip is answered 400. Other encodings are answered 415.",
                    "security": [{"bearerAuth": []}],
                    "requestBody": {
                        "required": true,
                        "content": {
                            "application/json": {"schema": {"oneOf": [
                                {"$ref": "#/components/schemas/Record"},
                                {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Record"}}
                            ]}},
                            "application/x-ndjson": {"schema": {"type": "string", "description": "One record a line."}}
                        }
                    },
                    "responses": common(json!({
                        "200": json_response("Every accepted record is in a shard queue; rejected lines are listed with their number, field and reason.", "IngestAnswer"),
                        "400": {"description": "No record in the body is valid, or the body cannot be read.", "content": {"application/json": {"schema": {"oneOf": [
                            {"$ref": "#/components/schemas/IngestAnswer"},
                            {"$ref": "#/components/schemas/Error"}
                        ]}}}},
                        "408": error_response("The body was not sent within `server.body_timeout`."),
                        "413": error_response("The body is over `server.max_body_bytes` (or inflates past `server.max_decoded_bytes`), or holds more than `server.max_queued_records` records."),
                        "415": error_response("A content type or encoding this endpoint does not take."),
                        "429": {
                            "description": "The ingest queue is full: nothing was accepted; send the same body again after `Retry-After`.",
                            "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                        }
                    }), true)
                }
            },
            "/v1/models": {
                "get": {
                    "summary": "Models and versions, with records seen and open findings.",
                    "security": read_security,
                    "parameters": [limit("Versions listed at most (capped by `server.max_listed_versions`).")],
                    "responses": common(json!({
                        "200": json_response("Models by name, with their versions.", "Models"),
                        "400": error_response("A bad query string.")
                    }), true)
                }
            },
            "/v1/models/{model}": {
                "get": {
                    "summary": "One model: each version's detectors (status, statistic, threshold, p-value), recent findings, jobs.",
                    "security": read_security,
                    "parameters": [{"name": "model", "in": "path", "required": true, "schema": {"type": "string"}, "example": "fraud"}],
                    "responses": common(json!({
                        "200": json_response("The model's state.", "Model"),
                        "404": error_response("The engine holds nothing of this model.")
                    }), true)
                }
            },
            "/v1/events": {
                "get": {
                    "summary": "Recent events from a bounded ring, after `since`.",
                    "security": read_security,
                    "parameters": [
                        {"name": "since", "in": "query", "required": false, "description": "The ring number after which to read (0: from the oldest).", "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX}},
                        limit("Events returned at most (default 100, capped by `server.max_events_per_call`).")
                    ],
                    "responses": common(json!({
                        "200": json_response("Events oldest first.", "EventsPage"),
                        "400": error_response("A bad query string.")
                    }), true)
                }
            },
            "/v1/jobs": {
                "get": {
                    "summary": "Retrain jobs in the journal, newest first.",
                    "security": read_security,
                    "parameters": [
                        {"name": "status", "in": "query", "required": false, "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "required": false, "description": "Jobs listed at most (default 50).", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
                    ],
                    "responses": common(json!({
                        "200": json_response("The jobs.", "Jobs"),
                        "400": error_response("A bad query string."),
                        "404": error_response("The daemon keeps no journal (`engine.state_dir`).")
                    }), true)
                }
            },
            "/v1/jobs/{id}": {
                "get": {
                    "summary": "One retrain job: its reasons, attempts, dispatcher and last answer.",
                    "security": read_security,
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "responses": common(json!({
                        "200": json_response("The job.", "JournalJob"),
                        "404": error_response("No such job, or no journal.")
                    }), true)
                }
            },
            "/v1/jobs/{id}/retry": {
                "post": {
                    "summary": "Ask for the job again: the retrain scheduler dispatches it under the same idempotency key.",
                    "security": [{"bearerAuth": []}],
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "responses": common(json!({
                        "200": json_response("The job, now `requested`.", "JournalJob"),
                        "404": error_response("No such job, or no journal.")
                    }), true)
                }
            },
            "/v1/jobs/{id}/cancel": {
                "post": {
                    "summary": "Mark a job that is not finished cancelled: no start asks for it again.",
                    "security": [{"bearerAuth": []}],
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "responses": common(json!({
                        "200": json_response("The job, now `cancelled`.", "JournalJob"),
                        "404": error_response("No such job, or no journal."),
                        "409": error_response("The job is finished.")
                    }), true)
                }
            },
            "/v1/outbox": {
                "get": {
                    "summary": "Deliveries in the outbox, newest first.",
                    "security": read_security,
                    "parameters": [
                        {"name": "receiver", "in": "query", "required": false, "schema": {"type": "string"}},
                        {"name": "status", "in": "query", "required": false, "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "required": false, "description": "Rows listed at most (default 50).", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
                    ],
                    "responses": common(json!({
                        "200": json_response("The rows.", "Outbox"),
                        "400": error_response("A bad query string."),
                        "404": error_response("The daemon keeps no journal (`engine.state_dir`).")
                    }), true)
                }
            },
            "/v1/outbox/{id}/retry": {
                "post": {
                    "summary": "Make a pending or failed delivery due now, its attempts counted from zero.",
                    "security": [{"bearerAuth": []}],
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}],
                    "responses": common(json!({
                        "200": json_response("The row, now due.", "OutboxRow"),
                        "400": error_response("The id is not a number."),
                        "404": error_response("No such row, or no journal."),
                        "409": error_response("The row was delivered or skipped.")
                    }), true)
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "security": read_security,
                    "responses": common(json!({
                        "200": {"description": "The OpenAPI 3.1 document.", "content": {"application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}}}}
                    }), true)
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics, text format 0.0.4.",
                    "security": read_security,
                    "responses": common(json!({
                        "200": {"description": "The metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}}
                    }), true)
                }
            },
            "/": {
                "get": {
                    "summary": "The live dashboard: every model with its status (HTML, reloads on its own, fetches nothing).",
                    "security": read_security,
                    "responses": common(json!({
                        "200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}
                    }), true)
                }
            },
            "/models/{model}": {
                "get": {
                    "summary": "The dashboard's page of one model: the charts of its recent windows, findings and jobs.",
                    "security": read_security,
                    "parameters": [{"name": "model", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "responses": common(json!({
                        "200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}
                    }), true)
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: the process answers.",
                    "security": [{}],
                    "responses": common(json!({"200": json_response("Alive.", "Health")}), false)
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: every shard and observer runs, the journal takes writes, and the server is not shutting down.",
                    "security": [{}],
                    "responses": {
                        "200": json_response("Ready.", "Readiness"),
                        "503": {"description": "Not ready, or shutting down.", "content": {"application/json": {"schema": {"oneOf": [
                            {"$ref": "#/components/schemas/Readiness"},
                            {"$ref": "#/components/schemas/Error"}
                        ]}}}}
                    }
                }
            }
        }
    })
}

/// `GET /v1/openapi.json`.
pub(crate) async fn get_document() -> Response {
    axum::Json(document()).into_response()
}
