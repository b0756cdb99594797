//! `GET /api/v1/modems`, `GET /api/v1/queue`, `GET /healthz` and `GET /metrics`.

use super::{ApiError, Caller};
use crate::config::Scope;
use crate::daemon::state::{Counters, ModemView, Shared};
use crate::message::{Category, MessageState};
use crate::modem::ModemState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

pub async fn modems(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
) -> Result<Json<Vec<ModemView>>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(shared.modems()))
}

#[derive(Debug, Serialize)]
pub struct QueueView {
    pub by_state: BTreeMap<&'static str, u64>,
    pub by_category: BTreeMap<&'static str, u64>,
    /// Messages still to send (queued + sending).
    pub pending: u64,
    pub total: u64,
    pub modems_ready: usize,
    pub modems_total: usize,
    /// What the dispatcher is doing, or why nothing moves.
    pub dispatcher: String,
}

async fn queue_view(shared: &Shared) -> Result<QueueView, ApiError> {
    let counts = shared.store.counts().await.map_err(ApiError::unavailable)?;
    let by_state = MessageState::ALL
        .into_iter()
        .map(|s| (s.as_str(), counts.by_state(s)))
        .collect();
    let by_category = Category::ALL
        .into_iter()
        .map(|c| (c.as_str(), counts.by_category(c)))
        .collect();
    let modems = shared.modems();
    Ok(QueueView {
        by_state,
        by_category,
        pending: counts.by_state(MessageState::Queued) + counts.by_state(MessageState::Sending),
        total: counts.total(),
        modems_ready: modems
            .iter()
            .filter(|m| m.state == ModemState::Ready)
            .count(),
        modems_total: modems.len(),
        dispatcher: shared.dispatch_status(),
    })
}

pub async fn queue(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
) -> Result<Json<QueueView>, ApiError> {
    caller.require(Scope::Read)?;
    Ok(Json(queue_view(&shared).await?))
}

/// Liveness and the one-line picture an operator wants: 200 while storage answers.
pub async fn healthz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    match queue_view(&shared).await {
        Ok(q) => (
            StatusCode::OK,
            Json(serde_json::json!({
                "status": "ok",
                "modems_ready": q.modems_ready,
                "modems_total": q.modems_total,
                "pending": q.pending,
                "dispatcher": q.dispatcher,
            })),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "error": e.message})),
        ),
    }
}

/// Prometheus text exposition (version 0.0.4).
pub async fn metrics(State(shared): State<Arc<Shared>>) -> Result<impl IntoResponse, ApiError> {
    let counts = shared.store.counts().await.map_err(ApiError::unavailable)?;
    let mut out = String::with_capacity(4096);
    metric_header(
        &mut out,
        "gridsms_messages",
        "gauge",
        "Messages in the outbox by state and category.",
    );
    for cell in &counts.cells {
        let _ = writeln!(
            out,
            "gridsms_messages{{state=\"{}\",category=\"{}\"}} {}",
            cell.state, cell.category, cell.count
        );
    }
    metric_header(
        &mut out,
        "gridsms_queue_depth",
        "gauge",
        "Messages waiting to be sent (queued + sending).",
    );
    let _ = writeln!(
        out,
        "gridsms_queue_depth {}",
        counts.by_state(MessageState::Queued) + counts.by_state(MessageState::Sending)
    );
    let c = &shared.counters;
    for (name, help, value) in [
        (
            "gridsms_segments_sent_total",
            "Segments accepted by a modem (+CMGS).",
            &c.segments_sent,
        ),
        (
            "gridsms_segments_failed_total",
            "Segment submissions that failed.",
            &c.segments_failed,
        ),
        (
            "gridsms_messages_sent_total",
            "Messages whose every segment was accepted.",
            &c.messages_sent,
        ),
        (
            "gridsms_messages_failed_total",
            "Messages that ended failed.",
            &c.messages_failed,
        ),
        (
            "gridsms_messages_retried_total",
            "Send attempts scheduled for retry.",
            &c.messages_retried,
        ),
        (
            "gridsms_status_reports_total",
            "Status reports received.",
            &c.status_reports,
        ),
        (
            "gridsms_status_reports_unmatched_total",
            "Status reports matching no segment.",
            &c.status_reports_unmatched,
        ),
        (
            "gridsms_inbound_pdus_total",
            "Inbound SMS PDUs received.",
            &c.inbound_pdus,
        ),
    ] {
        metric_header(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", Counters::get(value));
    }
    let modems = shared.modems();
    metric_header(
        &mut out,
        "gridsms_modem_up",
        "gauge",
        "1 when the modem is ready to send.",
    );
    for m in &modems {
        let _ = writeln!(
            out,
            "gridsms_modem_up{{modem=\"{}\"}} {}",
            label(&m.name),
            u8::from(m.state == ModemState::Ready)
        );
    }
    metric_header(
        &mut out,
        "gridsms_modem_signal_dbm",
        "gauge",
        "Received signal strength.",
    );
    for m in &modems {
        if let Some(dbm) = m.signal_dbm {
            let _ = writeln!(
                out,
                "gridsms_modem_signal_dbm{{modem=\"{}\"}} {dbm}",
                label(&m.name)
            );
        }
    }
    metric_header(
        &mut out,
        "gridsms_modem_segments_sent_total",
        "counter",
        "Segments sent per modem.",
    );
    for m in &modems {
        let _ = writeln!(
            out,
            "gridsms_modem_segments_sent_total{{modem=\"{}\"}} {}",
            label(&m.name),
            m.segments_sent
        );
    }
    metric_header(
        &mut out,
        "gridsms_modem_errors_total",
        "counter",
        "Send errors per modem and retry class.",
    );
    for ((modem, class), n) in shared.errors() {
        let _ = writeln!(
            out,
            "gridsms_modem_errors_total{{modem=\"{}\",class=\"{}\"}} {n}",
            label(&modem),
            label(&class)
        );
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}

fn metric_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values escaped as the exposition format wants.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
