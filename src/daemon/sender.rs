//! The send worker of one modem: takes claimed messages from the dispatcher in order and
//! sends their segments, writing each segment's state around its `AT+CMGS`.
//!
//! ```text
//!  dispatcher --SendJob (≤ 2 queued per modem)--> worker --AT+CMGS--> modem actor
//!      ^                                            |
//!      +------------------- Finished --------------+
//! ```
//!
//! Why a worker per modem and not a task per message: the dispatcher can hand a modem its
//! next message while the current one is on the air, so the modem does not sit idle while
//! the dispatcher plans and claims; and the two store writes a modem needs between two
//! `AT+CMGS` — the `+CMGS` record of the segment just sent and the `submitting` mark of the
//! next one, of this message or of the next — travel in one store request
//! ([`Store::segment_step`]). The first write of a message and the last of the previous
//! one share a transaction; the report of a message to the dispatcher waits for it.
//!
//! That request runs while the modem answers the next `AT+CMGS`: the segment is sent with
//! [`ModemHandle::send_gated`], whose PDU waits at the `> ` prompt until the request has
//! committed (or is typed as ESC when it failed, or the message was cancelled meanwhile).
//! Between a modem's `+CMGS` and its next Ctrl-Z there is then one store commit, not a
//! commit followed by the `AT+CMGS` round trip.
//!
//! Invariants: one segment per modem is between its `submitting` mark and its `+CMGS`
//! record (the crash window); the `submitting` mark is committed before the segment's
//! Ctrl-Z and the `+CMGS` record (with the SIM's quota count) before the dispatcher hears
//! the message finished; a message waiting behind one that failed on this modem, or queued
//! when the daemon stops, is handed back untried ([`Outcome::Released`]).

use crate::at::RetryClass;
use crate::clock::Clock;
use crate::modem::ModemHandle;
use crate::pdu::{self, SubmitOptions};
use crate::store::{
    Claimed, MessageId, SegmentSent, SegmentState, SegmentSubmit, Store, StoreError,
};
use chrono_tz::Tz;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Messages a worker holds at most: the one on the air and the next.
pub const QUEUE_DEPTH: usize = 2;

/// How a message's send ended.
#[derive(Debug)]
pub enum Outcome {
    Sent {
        segments: u32,
    },
    Failed {
        class: RetryClass,
        error: String,
        segments: u32,
    },
    /// Cancelled or expired while sending: the store refused the next segment.
    Stopped {
        segments: u32,
    },
    /// The store failed; the message stays `sending` and start-up recovery resolves it.
    Store {
        error: String,
        segments: u32,
    },
    /// Never started (the message before it failed on this modem, or the daemon is
    /// stopping): give it back to the queue untried.
    Released,
}

impl Outcome {
    /// Segments the network accepted.
    pub fn segments(&self) -> u32 {
        match self {
            Outcome::Sent { segments }
            | Outcome::Failed { segments, .. }
            | Outcome::Stopped { segments }
            | Outcome::Store { segments, .. } => *segments,
            Outcome::Released => 0,
        }
    }
}

/// A finished message, reported to the dispatcher.
#[derive(Debug)]
pub struct Finished {
    pub modem: String,
    pub message_id: MessageId,
    pub attempts: u32,
    /// Segments the dispatcher reserved on the SIM for this message.
    pub planned: u32,
    pub outcome: Outcome,
}

/// One claimed message for a worker.
pub struct SendJob {
    pub claimed: Claimed,
    pub planned: u32,
    pub sim_key: String,
    pub status_reports: bool,
    pub validity_minutes: Option<u32>,
}

/// What a worker needs besides its jobs.
pub struct WorkerContext {
    pub modem: String,
    pub handle: ModemHandle,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub tz: Tz,
    pub finished: mpsc::Sender<Finished>,
    pub stop: CancellationToken,
}

/// The dispatcher's end of a worker. Dropping it lets the worker end after its queue.
pub struct Worker {
    jobs: mpsc::Sender<SendJob>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    pub fn spawn(ctx: WorkerContext) -> Worker {
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        let task = tokio::spawn(run(ctx, rx));
        Worker { jobs, task }
    }

    /// Queue a job; on failure (worker gone, or full: the dispatcher never queues more than
    /// [`QUEUE_DEPTH`]) returns the message id, which the caller must hand back.
    pub fn submit(&self, job: SendJob) -> Result<(), MessageId> {
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => {
                j.claimed.message.id
            }
        })
    }

    /// Stop at once (grace period over): whatever was in flight stays `sending`.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// The `+CMGS` record of the modem's latest segment, not yet written, and the report of its
/// message if that was the message's last segment.
struct Owed {
    sent: SegmentSent,
    finished: Option<Finished>,
}

async fn run(ctx: WorkerContext, mut jobs: mpsc::Receiver<SendJob>) {
    let mut owed: Option<Owed> = None;
    // Jobs still to hand back after a failure on this modem (those queued at that moment).
    let mut release = 0usize;
    loop {
        let job = if owed.is_some() {
            match jobs.try_recv() {
                Ok(job) => job,
                Err(_) => {
                    // Nothing queued behind: write the record alone.
                    settle(&ctx, owed.take()).await;
                    continue;
                }
            }
        } else {
            match jobs.recv().await {
                Some(job) => job,
                None => return,
            }
        };
        if release > 0 || ctx.stop.is_cancelled() {
            release = release.saturating_sub(1);
            settle(&ctx, owed.take()).await;
            report(&ctx, finished(&ctx, &job, Outcome::Released)).await;
            continue;
        }
        let span =
            tracing::info_span!("send", modem = %ctx.modem, message = job.claimed.message.id);
        let outcome = send(&ctx, &job, &mut owed).instrument(span).await;
        if let Some(outcome) = outcome {
            if let Outcome::Failed { class, .. } = &outcome
                && *class != RetryClass::PermanentForMessage
            {
                release = jobs.len();
            }
            report(&ctx, finished(&ctx, &job, outcome)).await;
        }
    }
}

fn finished(ctx: &WorkerContext, job: &SendJob, outcome: Outcome) -> Finished {
    Finished {
        modem: ctx.modem.clone(),
        message_id: job.claimed.message.id,
        attempts: job.claimed.message.attempts,
        planned: job.planned,
        outcome,
    }
}

async fn report(ctx: &WorkerContext, done: Finished) {
    // The dispatcher outlives its workers, except at the very end of shutdown.
    let _ = ctx.finished.send(done).await;
}

/// Write an owed record on its own and report its message.
async fn settle(ctx: &WorkerContext, owed: Option<Owed>) {
    let Some(owed) = owed else { return };
    let result = ctx
        .store
        .segment_step(Some(owed.sent), None, ctx.clock.now())
        .await
        .and_then(|s| s.sent.unwrap_or(Ok(false)));
    finish_owed(ctx, owed.finished, result).await;
}

/// Report the message whose last `+CMGS` record was just written (or failed to be).
async fn finish_owed(
    ctx: &WorkerContext,
    finished: Option<Finished>,
    result: Result<bool, StoreError>,
) {
    let Some(mut done) = finished else { return };
    let segments = done.outcome.segments();
    done.outcome = match result {
        Ok(true) => done.outcome,
        // Parts sent by an earlier attempt were already out: the explicit step.
        Ok(false) => match ctx.store.mark_sent(done.message_id, ctx.clock.now()).await {
            Ok(()) => done.outcome,
            Err(e) => Outcome::Store {
                error: e.to_string(),
                segments,
            },
        },
        Err(e) => Outcome::Store {
            error: e.to_string(),
            segments,
        },
    };
    report(ctx, done).await;
}

/// Send one message. Returns its outcome, or `None` when it ended with its last segment on
/// the air and its record owed (reported once written).
async fn send(ctx: &WorkerContext, job: &SendJob, owed: &mut Option<Owed>) -> Option<Outcome> {
    let message = &job.claimed.message;
    // A resend reuses the reference of the parts already out so the phone can join them.
    let concat_ref = job
        .claimed
        .segments
        .iter()
        .find_map(|s| s.concat_ref)
        .unwrap_or((message.id % 256) as u16) as u8;
    let options = SubmitOptions {
        smsc: None,
        status_report: job.status_reports,
        validity_minutes: job.validity_minutes,
        message_ref: 0,
        concat_ref,
    };
    let encoded = match pdu::encode_submit(message.to.as_str(), &message.text, &options) {
        Ok(e) => e,
        Err(e) => {
            settle(ctx, owed.take()).await;
            return Some(Outcome::Failed {
                class: RetryClass::PermanentForMessage,
                error: format!("cannot encode: {e}"),
                segments: 0,
            });
        }
    };
    let total = encoded.len() as u8;
    let mut sent = 0u32;
    let mut last_sent: Option<SegmentSent> = None;
    for (i, segment) in encoded.into_iter().enumerate() {
        let seq = i as u8 + 1;
        let already_out = job.claimed.segments.iter().any(|s| {
            s.seq == seq && matches!(s.state, SegmentState::Submitted | SegmentState::Delivered)
        });
        if already_out {
            continue;
        }
        let next = SegmentSubmit {
            message_id: message.id,
            seq,
            total,
            concat_ref: Some(u16::from(concat_ref)),
            sim_iccid: job.sim_key.clone(),
        };
        // The record owed by the previous segment (of this message, or the last one of the
        // previous message) and this segment's mark, in one round trip that runs while the
        // modem answers `AT+CMGS`; the PDU waits at the prompt until it has committed.
        let previous = owed.take();
        let own_previous = last_sent.take();
        let record = previous
            .as_ref()
            .map(|o| o.sent.clone())
            .or(own_previous.clone());
        let (go, gate) = oneshot::channel();
        let sent_so_far = sent;
        let step = async {
            let step = ctx
                .store
                .segment_step(record, Some(next), ctx.clock.now())
                .await;
            let (record_result, next_result) = match step {
                Ok(s) => (s.sent, s.next.unwrap_or(Ok(()))),
                Err(e) => {
                    let msg = e.to_string();
                    (Some(Err(e)), Err(StoreError::Commit(msg)))
                }
            };
            let verdict = match (&own_previous, &record_result, next_result) {
                (Some(_), Some(Err(e)), _) => Err(Outcome::Store {
                    error: e.to_string(),
                    segments: sent_so_far,
                }),
                (_, _, Ok(())) => Ok(()),
                (_, _, Err(StoreError::WrongState { .. })) => Err(Outcome::Stopped {
                    segments: sent_so_far,
                }),
                (_, _, Err(e)) => Err(Outcome::Store {
                    error: e.to_string(),
                    segments: sent_so_far,
                }),
            };
            let _ = go.send(verdict.is_ok());
            // The previous message is done once its last record is in: tell the dispatcher
            // now, not after this segment, so it refills this worker's queue in time.
            if let Some(previous) = previous {
                let result = record_result.unwrap_or(Ok(false));
                finish_owed(ctx, previous.finished, result).await;
            }
            verdict
        };
        let (verdict, sent_result) = tokio::join!(step, ctx.handle.send_gated(segment, gate));
        if let Err(outcome) = verdict {
            return Some(outcome);
        }
        match sent_result {
            Ok(tp_mr) => {
                sent += 1;
                last_sent = Some(SegmentSent {
                    message_id: message.id,
                    seq,
                    tp_mr,
                    sim_iccid: job.sim_key.clone(),
                    tz: ctx.tz,
                });
            }
            Err(e) => {
                return Some(Outcome::Failed {
                    class: e.class,
                    error: e.failure.to_string(),
                    segments: sent,
                });
            }
        }
    }
    match last_sent {
        // The last record travels with the next message's first mark, or alone.
        Some(record) => {
            *owed = Some(Owed {
                sent: record,
                finished: Some(finished(ctx, job, Outcome::Sent { segments: sent })),
            });
            None
        }
        // Every remaining part was out already (a resend after a crash).
        None => {
            settle(ctx, owed.take()).await;
            Some(
                match ctx.store.mark_sent(message.id, ctx.clock.now()).await {
                    Ok(()) => Outcome::Sent { segments: 0 },
                    Err(e) => Outcome::Store {
                        error: e.to_string(),
                        segments: 0,
                    },
                },
            )
        }
    }
}
