//! The OpenAPI 3.1 description of the HTTP API, served without auth at
//! `/api/v1/openapi.json` (a web console and client generators start from it).
//!
//! Hand-written (no derive crate): the API is small and its JSON shapes are plain. The test
//! `tests/staff_openapi.rs` keeps it honest: every route in `router()` (read from
//! src/api/mod.rs) must be described here and every path described here must answer on the
//! running daemon. When you add a route, add it to [`document`] too.

use axum::Json;
use serde_json::{Map, Value, json};

/// Serves the document.
pub async fn serve() -> Json<Value> {
    Json(document())
}

fn error_responses(codes: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    for code in codes {
        let what = match *code {
            "400" => "Invalid request; `field` names the culprit",
            "401" => "No or unknown bearer token",
            "403" => "The token's scopes or stations do not allow this (refusals are audited)",
            "404" => "Not found",
            "409" => "Idempotency key reused with different content",
            "422" => "Nothing to send: no valid phone, or every recipient opted out",
            "503" => "Storage or the marketing database unavailable; nothing was accepted",
            _ => "Error",
        };
        m.insert(
            (*code).to_owned(),
            json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    m
}

/// An operation: summary, required scope (in the description), parameters, body, 2xx schema.
struct Op {
    summary: &'static str,
    scope: Option<&'static str>,
    params: Vec<Value>,
    body: Option<Value>,
    ok_code: &'static str,
    ok: Value,
    errors: &'static [&'static str],
}

impl Op {
    fn new(summary: &'static str, scope: Option<&'static str>) -> Op {
        Op {
            summary,
            scope,
            params: Vec::new(),
            body: None,
            ok_code: "200",
            ok: json!({"type": "object"}),
            errors: &["400", "401", "403", "503"],
        }
    }
    fn path_param(mut self, name: &str, what: &str) -> Op {
        self.params.push(json!({"name": name, "in": "path", "required": true, "description": what, "schema": {"type": "string"}}));
        self
    }
    fn query(mut self, name: &str, what: &str) -> Op {
        self.params.push(json!({"name": name, "in": "query", "required": false, "description": what, "schema": {"type": "string"}}));
        self
    }
    fn period(self) -> Op {
        self.query(
            "from",
            "Local date 2026-11-01 or RFC 3339 time; default: start of this month",
        )
        .query(
            "to",
            "Local date (inclusive) or RFC 3339 time (exclusive); default: now",
        )
    }
    fn body(mut self, schema: Value) -> Op {
        self.body = Some(schema);
        self
    }
    fn ok(mut self, code: &'static str, schema: Value) -> Op {
        self.ok_code = code;
        self.ok = schema;
        self
    }
    fn errors(mut self, e: &'static [&'static str]) -> Op {
        self.errors = e;
        self
    }
    fn build(self) -> Value {
        let mut responses = error_responses(self.errors);
        responses.insert(
            self.ok_code.to_owned(),
            json!({"description": "Success", "content": {"application/json": {"schema": self.ok}}}),
        );
        let mut op = json!({
            "summary": self.summary,
            "responses": responses,
        });
        match self.scope {
            Some(scope) => {
                op["description"] = json!(format!("Scope: `{scope}` (or `admin`)."));
                op["security"] = json!([{"bearer": []}]);
            }
            None => op["security"] = json!([]),
        }
        if !self.params.is_empty() {
            op["parameters"] = Value::Array(self.params);
        }
        if let Some(b) = self.body {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": b}}});
        }
        op
    }
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

fn string_list() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

/// The whole document.
pub fn document() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    let cancelled = json!({"$ref": "#/components/schemas/Cancelled"});
    let mut paths = Map::new();
    let mut add = |path: &str, method: &str, op: Op| {
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = op.build();
    };
    add(
        "/healthz",
        "get",
        Op::new("Liveness: the store answers", None).errors(&["503"]),
    );
    add(
        "/metrics",
        "get",
        Op::new("Prometheus metrics (text format)", None)
            .errors(&[])
            .ok("200", json!({"type": "string"})),
    );
    add(
        "/api/v1/openapi.json",
        "get",
        Op::new("This document", None).errors(&[]),
    );
    add(
        "/api/v1/messages",
        "post",
        Op::new("Queue a message to phone numbers or to a customer account", Some("send"))
            .body(obj(
                json!({
                    "to": {"oneOf": [{"type": "string"}, string_list()], "description": "Mobile numbers (exclusive with account)"},
                    "account": {"type": "string", "description": "Customer account: its marketing contacts and active bindings, minus opt-outs"},
                    "text": {"type": "string"},
                    "category": {"type": "string", "enum": ["manual", "outage", "broadcast", "bill", "reminder", "reply"], "default": "manual"},
                    "priority": {"type": "integer", "minimum": 0, "maximum": 9},
                    "not_before": time, "expires_at": time,
                    "idempotency_key": {"type": "string"},
                    "override_opt_out": {"type": "boolean", "description": "admin only; audited as opt_out_override"}
                }),
                &["text"],
            ))
            .ok("202", json!({"$ref": "#/components/schemas/Created"}))
            .errors(&["400", "401", "403", "404", "409", "422", "503"]),
    );
    add(
        "/api/v1/messages",
        "get",
        Op::new("List messages, newest first", Some("read"))
            .query("to", "Recipient")
            .query("state", "Message state")
            .query("category", "Category")
            .query("since", "RFC 3339 time")
            .query("limit", "1..1000, default 100")
            .query("cursor", "next_cursor of the previous page"),
    );
    add(
        "/api/v1/messages/{id}",
        "get",
        Op::new("One message with its segments", Some("read"))
            .path_param("id", "Message id")
            .errors(&["400", "401", "403", "404", "503"]),
    );
    add(
        "/api/v1/messages/{id}/cancel",
        "post",
        Op::new(
            "Cancel a queued message (own messages; admin any)",
            Some("send"),
        )
        .path_param("id", "Message id")
        .ok("200", cancelled.clone())
        .errors(&["400", "401", "403", "404", "503"]),
    );
    add(
        "/api/v1/sends/{batch_id}/cancel",
        "post",
        Op::new(
            "Cancel every queued message of a send, outage notice run or broadcast",
            Some("send"),
        )
        .path_param("batch_id", "batch_id / broadcast_id of the send")
        .ok("200", cancelled)
        .errors(&["400", "401", "403", "404", "503"]),
    );
    add(
        "/api/v1/broadcasts",
        "post",
        Op::new("Broadcast to stations, feeders or areas (dry run previews)", Some("broadcast"))
            .body(obj(
                json!({
                    "text": {"type": "string"},
                    "audience": obj(json!({"stations": string_list(), "feeders": string_list(), "areas": string_list()}), &[]),
                    "not_before": time, "expires_at": time,
                    "dry_run": {"type": "boolean"},
                    "idempotency_key": {"type": "string"}
                }),
                &["text"],
            ))
            .ok(
                "202",
                obj(
                    json!({
                        "broadcast_id": {"type": "string"}, "dry_run": {"type": "boolean"},
                        "recipients": {"type": "integer"}, "segments": {"type": "integer"},
                        "estimated_cost": {"type": "string", "description": "yuan"},
                        "opted_out": {"type": "integer"},
                        "skipped": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "text": {"type": "string"}
                    }),
                    &["broadcast_id", "recipients", "segments", "estimated_cost", "opted_out", "skipped"],
                ),
            ),
    );
    add(
        "/api/v1/audit",
        "get",
        Op::new("The audit trail, newest first (read: own entries; admin: all)", Some("read"))
            .period()
            .query("actor", "Token name")
            .query("action", "send, send_by_account, outage, broadcast, cancel, subscription_approve, subscription_reject, opt_out_override, config_reload, refused")
            .query("limit", "1..1000, default 100")
            .query("cursor", "next_cursor of the previous page")
            .ok("200", obj(json!({"entries": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}}, "next_cursor": {"type": ["integer", "null"]}}), &["entries"])),
    );
    add(
        "/api/v1/reports/delivery",
        "get",
        Op::new(
            "Delivery statistics per day × category × station × SIM",
            Some("read"),
        )
        .period(),
    );
    add(
        "/api/v1/reports/failed-numbers",
        "get",
        Op::new(
            "Numbers with permanent or repeated failures, with their accounts",
            Some("read"),
        )
        .period(),
    );
    add(
        "/api/v1/reports/sims",
        "get",
        Op::new(
            "SIM usage against limits; segments and cost per month",
            Some("read"),
        )
        .period(),
    );
    add(
        "/api/v1/modems",
        "get",
        Op::new(
            "The modems: state, signal, carrier, quota use",
            Some("read"),
        ),
    );
    add(
        "/api/v1/queue",
        "get",
        Op::new("Message counts by state and category", Some("read")),
    );
    // Routes of the outages, jobs and inbound work.
    add(
        "/api/v1/outages",
        "post",
        Op::new("Notify every customer of a feeder or areas of a planned outage", Some("outage"))
            .body(obj(
                json!({"feeder": {"type": "string"}, "areas": string_list(), "start": time, "end": time, "reason": {"type": "string"}}),
                &["start", "end", "reason"],
            ))
            .ok("202", obj(json!({"outage_id": {"type": "integer"}, "recipients": {"type": "integer"}, "skipped": {"type": "object"}}), &["outage_id"])),
    );
    add(
        "/api/v1/outages",
        "get",
        Op::new("Outages and their notices", Some("read")),
    );
    add(
        "/api/v1/outages/{id}",
        "get",
        Op::new("One outage", Some("read")).path_param("id", "Outage id"),
    );
    add(
        "/api/v1/outages/{id}/cancel",
        "post",
        Op::new("Cancel an outage and notify those told", Some("outage"))
            .path_param("id", "Outage id"),
    );
    add(
        "/api/v1/jobs",
        "get",
        Op::new(
            "Marketing jobs: schedule, last runs, next run",
            Some("read"),
        ),
    );
    add(
        "/api/v1/jobs/{name}/run",
        "post",
        Op::new("Run a job now", Some("admin")).path_param("name", "Job name"),
    );
    add(
        "/api/v1/subscriptions",
        "get",
        Op::new("Phone ↔ account subscriptions", Some("admin"))
            .query("status", "pending, active, rejected"),
    );
    add(
        "/api/v1/subscriptions/{phone}/{account}/approve",
        "post",
        Op::new("Approve a pending subscription", Some("admin"))
            .path_param("phone", "Mobile number")
            .path_param("account", "Account"),
    );
    add(
        "/api/v1/subscriptions/{phone}/{account}/reject",
        "post",
        Op::new("Reject a pending subscription", Some("admin"))
            .path_param("phone", "Mobile number")
            .path_param("account", "Account"),
    );
    add(
        "/api/v1/inbox",
        "get",
        Op::new("Received SMS, newest first", Some("read")),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "gridsms API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "SMS notification gateway of a power-supply bureau. Every /api/v1/ route except this document needs `Authorization: Bearer <token>`; tokens carry scopes (read, send, outage, broadcast, admin) and optionally supply-station prefixes (`stations`), which limit sends to those stations' customers. Errors are `{\"error\", \"field\"}`."
        },
        "servers": [{"url": "http://127.0.0.1:8727"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": obj(json!({"error": {"type": "string"}, "field": {"type": ["string", "null"]}}), &["error"]),
                "Created": obj(json!({
                    "ids": {"type": "array", "items": {"type": "integer"}},
                    "segments": {"type": "integer"},
                    "batch_id": {"type": "string"},
                    "account": {"type": "string"},
                    "recipients": {"type": "integer"},
                    "opted_out": string_list()
                }), &["ids", "segments", "batch_id", "recipients", "opted_out"]),
                "Cancelled": obj(json!({"cancelled": {"type": "integer"}, "already_gone": {"type": "integer"}}), &["cancelled", "already_gone"]),
                "AuditEntry": obj(json!({
                    "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
                    "actor": {"type": "string"}, "action": {"type": "string"},
                    "target": {"type": ["string", "null"]}, "recipients": {"type": "integer"},
                    "result": {"type": "string", "description": "ok | refused: REASON | error: REASON"},
                    "detail": {}, "batch_id": {"type": ["string", "null"]}
                }), &["id", "at", "actor", "action", "recipients", "result"])
            }
        }
    })
}
