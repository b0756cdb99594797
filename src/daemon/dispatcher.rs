//! The dispatcher: one task that takes queued messages in priority order and gives each to a
//! SIM that can send it now, then records what happened.
//!
//! ```text
//!  wake (enqueue) / modem events / send finished / timer / control (reload, shutdown)
//!        │
//!        ▼
//!  fill(): due messages from the ready cache, or peeked (priority, not_before, expiry,
//!          quiet hours by category)
//!          → choose_sim (registered, healthy, quota incl. in-flight, min_interval, carrier)
//!          → one claim_many for the whole pass (CAS queued→sending) → the modem's worker
//!  worker (sender.rs): per segment  [+CMGS record of the previous segment + submitting mark]
//!            in one store request → AT+CMGS (the last record marks the message sent)
//!  outcome: usage += segments ; failure → decide_retry → schedule_retry | mark_failed ;
//!           released (never started) → unclaim
//! ```
//!
//! Invariants: a modem holds at most two messages (one on the air, the next waiting, and only
//! one when it has a `min_interval`) and has at most one segment between Ctrl-Z and `+CMGS`,
//! so a crash leaves at most one segment per modem in doubt; quotas count every reserved
//! segment, so they are never exceeded; nothing is dropped: a message is queued, with a
//! worker, or in a final state with a reason. An urgent message queued meanwhile waits for
//! at most the one message already waiting on each modem. The dispatcher owns the pool;
//! nothing else touches the slots.

use super::pool::{FIRST_INIT_WAIT, Slot};
use super::sender::{Finished, Outcome, SendJob, Worker, WorkerContext};
use super::state::{Counters, Shared};
use crate::config::{Config, ModemChange, modem_changes};
use crate::dispatch::balance::{Choice, MessageNeeds, QuotaWindows, choose_sim_preferring};
use crate::dispatch::policy::{RetryClass, RetryDecision, decide_retry};
use crate::message::Category;
use crate::modem::{ModemEvent, ModemEventKind, ModemState};
use crate::pdu;
use crate::phone;
use crate::store::{ClaimFilter, Claimed, Message, MessageId, SimRef, StatusReport, StoreError};
use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Messages looked at per pass; more than the pool can start at once, so that a message no SIM
/// can take now does not block the ones behind it.
const PEEK: usize = 64;
/// Messages read per free place on the modems when the queue is read.
const PEEK_PER_IDLE_MODEM: usize = 4;
/// At least this many per peek: the rest wait in the ready cache for the next passes, so
/// one read of the queue serves many finished sends.
const PEEK_MIN: usize = 32;
/// Longest sleep without a look at the clock (wall-clock jumps, quota windows rolling over).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// The API's modem list is refreshed at most this often while sends are running.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);
/// Expired messages are swept at most this often.
const EXPIRE_EVERY: Duration = Duration::from_secs(5);
/// Remembered "try another modem" hints; beyond this the oldest are forgotten (a hint only).
const MAX_AVOID_HINTS: usize = 10_000;

/// Requests to the dispatcher from the lifecycle code.
pub enum Control {
    /// Apply a new, validated config: modems added, removed or changed, limits, quiet hours.
    Reload(Arc<Config>, oneshot::Sender<Vec<ModemChange>>),
}

pub struct Dispatcher {
    shared: Arc<Shared>,
    slots: Vec<Slot>,
    events_tx: mpsc::Sender<ModemEvent>,
    events_rx: mpsc::Receiver<ModemEvent>,
    control_rx: mpsc::Receiver<Control>,
    /// Reports of the modems' send workers.
    finished_tx: mpsc::Sender<Finished>,
    finished_rx: mpsc::Receiver<Finished>,
    /// Cancelled when the daemon stops: workers hand back messages they have not started.
    stop: CancellationToken,
    /// Due messages from the last peek not yet claimed, in claim order, so that a pass after
    /// each finished send need not read the queue again (see `fill`).
    ready: ReadyCache,
    rng: rand::rngs::StdRng,
    avoid: HashMap<MessageId, String>,
    /// Configs waiting for a busy modem to finish before its actor is restarted.
    pending_restart: HashMap<String, crate::config::ModemConfig>,
    wake_at: Option<DateTime<Utc>>,
    last_publish: Option<Instant>,
    last_expire: Option<Instant>,
    ready_announced: bool,
    started: Instant,
}

/// Capacity of the modem event channel: events beyond it make the actors wait (bounded).
const EVENT_CAPACITY: usize = 1024;

impl Dispatcher {
    /// Starts every enabled modem's actor. A simulated modem that cannot start is logged and
    /// left out; the others run.
    pub async fn new(shared: Arc<Shared>, control_rx: mpsc::Receiver<Control>) -> Dispatcher {
        let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
        let (finished_tx, finished_rx) = mpsc::channel(EVENT_CAPACITY);
        let config = shared.config();
        let mut slots = Vec::new();
        for (index, modem) in config.modems.iter().enumerate() {
            if !modem.enabled {
                continue;
            }
            match Slot::start(index, modem.clone(), events_tx.clone()).await {
                Ok(slot) => slots.push(slot),
                Err(error) => tracing::error!(%error, "modem not started"),
            }
        }
        Dispatcher {
            shared,
            slots,
            events_tx,
            events_rx,
            control_rx,
            finished_tx,
            finished_rx,
            stop: CancellationToken::new(),
            ready: ReadyCache::default(),
            rng: rand::rngs::StdRng::from_os_rng(),
            avoid: HashMap::new(),
            pending_restart: HashMap::new(),
            wake_at: None,
            last_publish: None,
            last_expire: None,
            ready_announced: false,
            started: Instant::now(),
        }
    }

    /// Runs until `stop` is cancelled, then stops claiming, lets running sends finish within
    /// `grace`, and shuts the modems down.
    pub async fn run(mut self, stop: CancellationToken, grace: Duration) {
        self.stop = stop.clone();
        self.publish(true);
        loop {
            if let Err(error) = self.fill().await {
                tracing::error!(%error, "dispatch pass failed; retrying shortly");
                self.shared
                    .set_dispatch_status(format!("storage error: {error}"));
                self.wake_at = Some(self.shared.clock.now() + chrono::TimeDelta::seconds(1));
            }
            self.announce_ready_if_due();
            self.publish(false);
            let sleep = self.sleep_duration();
            tokio::select! {
                _ = stop.cancelled() => break,
                // Something new was queued (maybe more urgent than what was peeked).
                _ = self.shared.wake.notified() => self.ready.clear(),
                Some(event) = self.events_rx.recv() => self.on_event(event).await,
                Some(done) = self.finished_rx.recv() => {
                    self.on_finished(done).await;
                    // Everything else already reported, then one pass for all of them.
                    while let Ok(more) = self.finished_rx.try_recv() {
                        self.on_finished(more).await;
                    }
                }
                Some(control) = self.control_rx.recv() => {
                    self.ready.clear();
                    self.on_control(control).await;
                }
                // A timer: something became due (not_before, retry, quiet hours over).
                _ = tokio::time::sleep(sleep) => self.ready.clear(),
            }
        }
        self.drain(grace).await;
    }

    fn sleep_duration(&self) -> Duration {
        let ready_deadline = if self.ready_announced {
            MAX_SLEEP
        } else {
            FIRST_INIT_WAIT.saturating_sub(self.started.elapsed())
        };
        let until_wake = self.wake_at.map_or(MAX_SLEEP, |at| {
            (at - self.shared.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
        });
        until_wake
            .min(MAX_SLEEP)
            .min(ready_deadline)
            .max(Duration::from_millis(1))
    }

    fn messages_in_flight(&self) -> u32 {
        self.slots.iter().map(|s| s.messages_in_flight).sum()
    }

    async fn drain(mut self, grace: Duration) {
        self.shared.set_dispatch_status(format!(
            "stopping: {} sends to finish",
            self.messages_in_flight()
        ));
        let deadline = Instant::now() + grace;
        while self.messages_in_flight() > 0 {
            match tokio::time::timeout_at(deadline, self.finished_rx.recv()).await {
                Ok(Some(finished)) => self.on_finished(finished).await,
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        running = self.messages_in_flight(),
                        "grace period over; unfinished sends stay `sending` and are resolved at next start"
                    );
                    for slot in &self.slots {
                        if let Some(worker) = &slot.worker {
                            worker.abort();
                        }
                    }
                    break;
                }
            }
        }
        let mut stops = JoinSet::new();
        for slot in &self.slots {
            let handle = slot.handle.clone();
            stops.spawn(async move { handle.shutdown().await });
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), stops.join_all()).await;
        for slot in self.slots.drain(..) {
            if let Some(sim) = slot.simulator {
                sim.shutdown().await;
            }
        }
        self.shared.set_dispatch_status("stopped");
    }

    /// Starts as many sends as idle SIMs allow.
    async fn fill(&mut self) -> Result<(), StoreError> {
        let now = self.shared.clock.now();
        let config = self.shared.config();
        self.expire_if_due(now).await?;
        self.refresh_usage(now, &config).await?;
        self.wake_at = None;
        let quiet = config.dispatch.quiet_policy();
        let mut allowed = Vec::new();
        for category in Category::ALL {
            match quiet.hold(category, now) {
                None => allowed.push(category),
                Some(until) => self.wake_no_later_than(until),
            }
        }
        // A pass runs after every finished send. It plans from the ready cache and reads the
        // queue only when the cache is empty or stale: reading rows on every pass kept the
        // store thread busy (32 modems at 20 ms reached a third of their capacity with 64
        // rows per pass).
        let room: u32 = self.slots.iter().map(Slot::room).sum();
        let filter = ClaimFilter {
            limit: (room as usize * PEEK_PER_IDLE_MODEM).clamp(PEEK_MIN, PEEK),
            categories: Some(allowed),
        };
        if room == 0 {
            if !self.slots.iter().any(Slot::usable) {
                // Nothing will wake us (no send to finish): look again soon so messages
                // still expire on time while every modem is down.
                self.wake_no_later_than(
                    now + chrono::TimeDelta::from_std(EXPIRE_EVERY).unwrap_or_default(),
                );
            }
            self.set_idle_status(&filter).await?;
            return Ok(());
        }
        if !self.ready.usable_for(&filter) {
            let peeked = self.shared.store.peek_ready(now, filter.clone()).await?;
            self.ready.fill(peeked, &filter);
        }
        if self.ready.messages.is_empty() {
            if let Some(due) = self.shared.store.next_due(filter.clone()).await? {
                self.wake_no_later_than(due);
            }
            self.set_idle_status(&filter).await?;
            return Ok(());
        }
        let windows = QuotaWindows::at(config.dispatch.timezone, now);
        let mut last_reason = None;
        // Plan the whole pass (each pick reserves its segments on the slot, so the next
        // choice sees it), then claim every pick in one store round trip.
        let mut picks: Vec<(usize, MessageId, u32)> = Vec::new();
        let ready = std::mem::take(&mut self.ready.messages);
        let mut keep = std::collections::VecDeque::with_capacity(ready.len());
        for message in ready {
            if self.slots.iter().all(|s| s.room() == 0) {
                keep.push_back(message);
                continue;
            }
            let segments = match pdu::preview(&message.text) {
                Ok(p) => p.segments as u32,
                Err(e) => {
                    // Only reachable for rows written by an older or foreign writer.
                    self.shared
                        .store
                        .mark_failed(message.id, format!("cannot encode: {e}"), false, now)
                        .await?;
                    continue;
                }
            };
            let avoid_name = self.avoid.get(&message.id).cloned();
            let avoid: Vec<&str> = avoid_name.iter().map(String::as_str).collect();
            let need = MessageNeeds {
                segments,
                carrier: phone::carrier_of(&message.to),
                avoid: &avoid,
            };
            let candidates: Vec<_> = self.slots.iter().map(Slot::candidate).collect();
            let prefer = message.prefer_modem.as_deref();
            match choose_sim_preferring(&candidates, prefer, &need, &windows, now) {
                Choice::Sim(index) => {
                    drop(candidates);
                    self.slots[index].reserve(segments, now);
                    picks.push((index, message.id, segments));
                }
                Choice::Wait { until, reason } => {
                    self.wake_no_later_than(until);
                    last_reason = Some(reason);
                    keep.push_back(message);
                }
                Choice::Busy { reason } | Choice::NoneAvailable { reason } => {
                    last_reason = Some(reason);
                    keep.push_back(message);
                }
            }
        }
        self.ready.messages = keep;
        let started = self.claim_and_start(picks, now, &config).await?;
        let busy = self.slots.iter().filter(|s| s.in_flight > 0).count();
        let status = match (busy, last_reason) {
            (0, Some(reason)) => format!("waiting: {reason}"),
            (0, None) => "idle".to_owned(),
            (n, _) => format!("sending on {n} of {} modems", self.slots.len()),
        };
        self.shared.set_dispatch_status(status);
        if started > 0 {
            self.publish(false);
        }
        Ok(())
    }

    /// Says why nothing moves when no pass could start anything.
    async fn set_idle_status(&self, filter: &ClaimFilter) -> Result<(), StoreError> {
        let busy = self.slots.iter().filter(|s| s.in_flight > 0).count();
        if busy > 0 {
            self.shared
                .set_dispatch_status(format!("sending on {busy} of {} modems", self.slots.len()));
            return Ok(());
        }
        let usable = self.slots.iter().filter(|s| s.usable()).count();
        let status = if self.slots.is_empty() {
            "no modem configured and enabled; messages wait".to_owned()
        } else if usable == 0 {
            let why: Vec<String> = self
                .slots
                .iter()
                .map(|s| {
                    let err = s.last_error.as_deref().unwrap_or("");
                    format!(
                        "{} {:?}{}{}",
                        s.name(),
                        s.state,
                        if err.is_empty() { "" } else { ": " },
                        err
                    )
                })
                .collect();
            format!("all modems down, messages wait ({})", why.join("; "))
        } else if self.shared.store.next_due(filter.clone()).await?.is_some() {
            "waiting: next message not yet due".to_owned()
        } else {
            "idle: nothing to send".to_owned()
        };
        self.shared.set_dispatch_status(status);
        Ok(())
    }

    fn wake_no_later_than(&mut self, at: DateTime<Utc>) {
        if self.wake_at.is_none_or(|w| at < w) {
            self.wake_at = Some(at);
        }
    }

    /// Claims the planned picks in one round trip and hands each claimed message to its
    /// modem's worker; a pick someone else got first gives its reservation back. Returns how
    /// many sends started.
    async fn claim_and_start(
        &mut self,
        picks: Vec<(usize, MessageId, u32)>,
        now: DateTime<Utc>,
        config: &Config,
    ) -> Result<usize, StoreError> {
        if picks.is_empty() {
            return Ok(0);
        }
        let request = picks
            .iter()
            .map(|&(index, id, _)| {
                let slot = &self.slots[index];
                let sim = SimRef {
                    modem: slot.name().to_owned(),
                    iccid: slot.sim_key(),
                };
                (id, Some(sim))
            })
            .collect();
        let claimed = match self.shared.store.claim_many(request, now).await {
            Ok(c) => c,
            Err(e) => {
                self.ready.clear();
                for &(index, _, segments) in &picks {
                    self.slots[index].unreserve(segments);
                }
                return Err(e);
            }
        };
        let mut started = 0;
        for ((index, id, segments), claimed) in picks.into_iter().zip(claimed) {
            match claimed {
                Some(claimed) => {
                    self.avoid.remove(&id);
                    self.start_send(index, claimed, segments, config).await;
                    started += 1;
                }
                None => {
                    // Cancelled, expired or taken meanwhile: the cache is stale.
                    self.slots[index].unreserve(segments);
                    self.ready.clear();
                }
            }
        }
        Ok(started)
    }

    /// Hands a claimed message (its segments already reserved on the slot) to the slot's
    /// worker, starting the worker on first use.
    async fn start_send(&mut self, index: usize, claimed: Claimed, segments: u32, config: &Config) {
        let slot = &mut self.slots[index];
        let sim_key = slot.sim_key();
        let worker = slot.worker.get_or_insert_with(|| {
            Worker::spawn(WorkerContext {
                modem: slot.config.name.clone(),
                handle: slot.handle.clone(),
                store: self.shared.store.clone(),
                clock: self.shared.clock.clone(),
                tz: config.dispatch.timezone,
                finished: self.finished_tx.clone(),
                stop: self.stop.clone(),
            })
        });
        tracing::debug!(
            modem = %slot.config.name,
            message = claimed.message.id,
            to = %claimed.message.to.mask(),
            segments,
            "sending"
        );
        let job = SendJob {
            sim_key,
            status_reports: config.dispatch.status_reports,
            validity_minutes: validity_minutes(config.dispatch.validity),
            planned: segments,
            claimed,
        };
        if let Err(id) = worker.submit(job) {
            // Cannot happen while the slot's reservations are kept; never lose the claim.
            slot.unreserve(segments);
            tracing::error!(message = id, "send worker unavailable; message handed back");
            if let Err(error) = self.shared.store.unclaim(id, self.shared.clock.now()).await {
                tracing::error!(message = id, %error, "could not hand the message back");
            }
        }
    }

    async fn on_finished(&mut self, done: Finished) {
        let now = self.shared.clock.now();
        let config = self.shared.config();
        let counters = &self.shared.counters;
        let segments = done.outcome.segments();
        if let Some(slot) = self.slots.iter_mut().find(|s| s.name() == done.modem) {
            slot.unreserve(done.planned);
            // Already persisted, segment by segment, with each +CMGS (Store::segment_step).
            slot.usage.hour += u64::from(segments);
            slot.usage.day += u64::from(segments);
            slot.usage.month += u64::from(segments);
        }
        Counters::add(&counters.segments_sent, u64::from(segments));
        let result = match done.outcome {
            Outcome::Released => {
                // Back in the queue as it was: plan it again on the next pass.
                self.ready.clear();
                self.shared
                    .store
                    .unclaim(done.message_id, now)
                    .await
                    .map(drop)
            }
            Outcome::Sent { .. } => {
                Counters::add(&counters.messages_sent, 1);
                Ok(())
            }
            Outcome::Stopped { .. } => Ok(()),
            Outcome::Store { error, .. } => {
                tracing::error!(message = done.message_id, %error, "storage failed during a send");
                Ok(())
            }
            Outcome::Failed { class, error, .. } => {
                Counters::add(&counters.segments_failed, 1);
                self.shared.count_error(&done.modem, class.as_str());
                if let Some(slot) = self.slots.iter_mut().find(|s| s.name() == done.modem) {
                    slot.last_error = Some(error.clone());
                }
                let decision = decide_retry(
                    class,
                    done.attempts,
                    config.dispatch.max_attempts,
                    &config.dispatch.backoff,
                    self.rng.random::<f64>(),
                    &error,
                );
                match decision {
                    RetryDecision::Retry { after, avoid_modem } => {
                        Counters::add(&counters.messages_retried, 1);
                        if avoid_modem {
                            if self.avoid.len() >= MAX_AVOID_HINTS {
                                self.avoid.clear();
                            }
                            self.avoid.insert(done.message_id, done.modem.clone());
                        }
                        let at = now
                            + chrono::TimeDelta::from_std(after)
                                .unwrap_or(chrono::TimeDelta::seconds(60));
                        tracing::info!(
                            message = done.message_id,
                            modem = %done.modem,
                            %error,
                            class = class.as_str(),
                            retry_in_secs = after.as_secs(),
                            "send failed; will retry"
                        );
                        self.wake_no_later_than(at);
                        self.shared
                            .store
                            .schedule_retry(done.message_id, at, error, now)
                            .await
                    }
                    RetryDecision::Fail { reason } => {
                        Counters::add(&counters.messages_failed, 1);
                        tracing::warn!(message = done.message_id, %reason, "message failed");
                        self.shared
                            .store
                            .mark_failed(
                                done.message_id,
                                reason,
                                class == RetryClass::PermanentForMessage,
                                now,
                            )
                            .await
                    }
                }
            }
        };
        if let Err(error) = result {
            tracing::error!(message = done.message_id, %error, "could not record send outcome");
        }
        self.finish_retirement(&done.modem).await;
        self.publish(false);
    }

    async fn on_event(&mut self, event: ModemEvent) {
        let now = self.shared.clock.now();
        let Some(index) = self.slots.iter().position(|s| *s.name() == *event.modem) else {
            return;
        };
        match event.kind {
            ModemEventKind::Ready(identity) => {
                tracing::info!(
                    modem = %event.modem,
                    model = identity.model.as_deref().unwrap_or("?"),
                    operator = identity.operator.as_deref().unwrap_or("?"),
                    "modem ready"
                );
                let handle = self.slots[index].handle.clone();
                let slot = &mut self.slots[index];
                slot.identity = Some(identity);
                slot.state = ModemState::Ready;
                slot.first_init_done = true;
                slot.usage_hour = None; // reload this SIM's persisted usage on the next pass
                if let Ok(Ok(status)) =
                    tokio::time::timeout(Duration::from_secs(2), handle.status()).await
                {
                    let slot = &mut self.slots[index];
                    slot.state = status.state;
                    slot.status = Some(status);
                }
            }
            ModemEventKind::Health(status) => {
                let slot = &mut self.slots[index];
                // The actor reports Ready in a Health event before the Ready event: take the
                // identity from it, or the first sends would count against `modem:NAME`
                // instead of the SIM's persisted quota.
                if let Some(id) = status.identity.as_ref()
                    && slot.identity.as_ref() != Some(id)
                {
                    slot.identity = Some(id.clone());
                    slot.usage_hour = None;
                }
                slot.state = status.state;
                if status.state != ModemState::Initialising {
                    slot.first_init_done = true;
                }
                slot.status = Some(status);
            }
            ModemEventKind::Down { reason } => {
                tracing::warn!(modem = %event.modem, %reason, "modem down");
                let slot = &mut self.slots[index];
                slot.state = ModemState::Down;
                slot.first_init_done = true;
                slot.last_error = Some(reason);
            }
            ModemEventKind::Benched { for_secs, reason } => {
                tracing::warn!(modem = %event.modem, %reason, for_secs, "modem benched");
                let slot = &mut self.slots[index];
                slot.state = ModemState::Benched;
                slot.benched_until = Some(now + chrono::TimeDelta::seconds(for_secs as i64));
                slot.last_error = Some(reason);
            }
            ModemEventKind::Stopped => {
                self.slots[index].state = ModemState::Stopped;
            }
            ModemEventKind::StatusReport { storage_index, pdu } => {
                self.on_status_report(index, storage_index, &pdu, now).await;
            }
            ModemEventKind::Inbound { storage_index, pdu } => {
                crate::inbound::offer(&self.shared, &self.slots[index], storage_index, pdu);
            }
        }
        self.publish(true);
    }

    async fn on_status_report(
        &mut self,
        index: usize,
        storage_index: Option<u32>,
        raw: &[u8],
        now: DateTime<Utc>,
    ) {
        let counters = &self.shared.counters;
        Counters::add(&counters.status_reports, 1);
        let slot = &self.slots[index];
        let report = match pdu::decode(raw) {
            Ok(pdu::Pdu::StatusReport(r)) => r,
            Ok(_) | Err(_) => {
                Counters::add(&counters.status_reports_unmatched, 1);
                tracing::warn!(modem = %slot.name(), "undecodable status report skipped");
                self.ack(index, storage_index).await;
                return;
            }
        };
        let recipient = match phone::normalise(&report.recipient.to_display()) {
            Ok(r) => r,
            Err(_) => {
                Counters::add(&counters.status_reports_unmatched, 1);
                self.ack(index, storage_index).await;
                return;
            }
        };
        let applied = self
            .shared
            .store
            .apply_status_report(StatusReport {
                sim_iccid: slot.sim_key(),
                tp_mr: report.message_ref,
                recipient,
                status: report.status,
                received_at: now,
            })
            .await;
        match applied {
            Ok(Some(a)) => tracing::debug!(
                message = a.message_id,
                seq = a.seq,
                state = %a.message_state,
                "status report applied"
            ),
            Ok(None) => Counters::add(&counters.status_reports_unmatched, 1),
            Err(error) => {
                // Not acknowledged: the report stays on the modem and is read again later.
                tracing::error!(%error, "could not store status report");
                return;
            }
        }
        self.ack(index, storage_index).await;
    }

    async fn ack(&self, index: usize, storage_index: Option<u32>) {
        if let Some(i) = storage_index {
            let handle = self.slots[index].handle.clone();
            // Deleting can wait behind a send; do it off the dispatcher's loop.
            tokio::spawn(async move {
                if let Err(error) = handle.ack_inbound(i).await {
                    tracing::warn!(%error, index = i, "could not delete a read report from the modem");
                }
            });
        }
    }

    async fn on_control(&mut self, control: Control) {
        match control {
            Control::Reload(config, reply) => {
                let old = self.shared.config();
                let changes = modem_changes(&old.modems, &config.modems);
                self.shared.set_config(config.clone());
                for change in &changes {
                    self.apply_change(change, &config).await;
                }
                tracing::info!(changes = changes.len(), "configuration reloaded");
                let _ = reply.send(changes);
                self.publish(true);
            }
        }
    }

    async fn apply_change(&mut self, change: &ModemChange, config: &Config) {
        let find_new = |name: &str| config.modems.iter().find(|m| m.name == name).cloned();
        match change {
            ModemChange::Added(name) => {
                if let Some(m) = find_new(name).filter(|m| m.enabled) {
                    self.add_slot(m).await;
                }
            }
            ModemChange::Removed(name) => self.retire(name, None).await,
            ModemChange::Reopen(name) => {
                let new = find_new(name);
                self.retire(name, new).await;
            }
            ModemChange::Retune(name) => {
                let Some(new) = find_new(name) else { return };
                match self.slots.iter_mut().find(|s| s.name() == name) {
                    Some(slot) if new.enabled => slot.config = new,
                    Some(_) => self.retire(name, None).await,
                    None if new.enabled => self.add_slot(new).await,
                    None => {}
                }
            }
        }
    }

    async fn add_slot(&mut self, config: crate::config::ModemConfig) {
        let index = self
            .shared
            .config()
            .modems
            .iter()
            .position(|m| m.name == config.name)
            .unwrap_or(self.slots.len());
        match Slot::start(index, config, self.events_tx.clone()).await {
            Ok(slot) => self.slots.push(slot),
            Err(error) => tracing::error!(%error, "modem not started"),
        }
    }

    /// Takes a modem out of the pool (after its running send), optionally starting it again
    /// with a new config.
    async fn retire(&mut self, name: &str, restart_with: Option<crate::config::ModemConfig>) {
        if let Some(new) = restart_with {
            self.pending_restart.insert(name.to_owned(), new);
        }
        if let Some(slot) = self.slots.iter_mut().find(|s| s.name() == name) {
            slot.retiring = true;
        }
        self.finish_retirement(name).await;
    }

    async fn finish_retirement(&mut self, name: &str) {
        let Some(index) = self
            .slots
            .iter()
            .position(|s| s.name() == name && s.retiring && s.messages_in_flight == 0)
        else {
            return;
        };
        let slot = self.slots.remove(index);
        slot.handle.shutdown().await;
        if let Some(sim) = slot.simulator {
            sim.shutdown().await;
        }
        if let Some(new) = self.pending_restart.remove(name).filter(|m| m.enabled) {
            self.add_slot(new).await;
        }
    }

    async fn expire_if_due(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        if self.last_expire.is_some_and(|t| t.elapsed() < EXPIRE_EVERY) {
            return Ok(());
        }
        self.last_expire = Some(Instant::now());
        let expired = self.shared.store.expire_due(now).await?;
        if expired > 0 {
            tracing::info!(expired, "messages expired before they could be sent");
        }
        Ok(())
    }

    /// Reloads the persisted usage of a SIM when the local hour changes or the SIM was just
    /// identified, so counts follow the quota windows and survive restarts.
    ///
    /// Only those SIMs: the store already holds the `+CMGS` records of messages whose
    /// [`Finished`] report is still on its way (and adds their segments again), so reloading a
    /// busy SIM in mid-hour would count them twice. At the turn of an hour a busy SIM can
    /// still be over-counted by the segments in flight (never under: quotas stay safe) until
    /// the next hour's reload.
    async fn refresh_usage(
        &mut self,
        now: DateTime<Utc>,
        config: &Config,
    ) -> Result<(), StoreError> {
        let hour = QuotaWindows::at(config.dispatch.timezone, now).hour_start;
        if self.slots.iter().all(|s| s.usage_hour == Some(hour)) {
            return Ok(());
        }
        let all = self
            .shared
            .store
            .usage_all(now, config.dispatch.timezone)
            .await?;
        for slot in self.slots.iter_mut().filter(|s| s.usage_hour != Some(hour)) {
            let key = slot.sim_key();
            slot.usage = all
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, u)| *u)
                .unwrap_or_default();
            slot.usage_hour = Some(hour);
        }
        Ok(())
    }

    fn announce_ready_if_due(&mut self) {
        if self.ready_announced {
            return;
        }
        let all_tried = self.slots.iter().all(|s| s.first_init_done);
        if all_tried || self.started.elapsed() >= FIRST_INIT_WAIT {
            self.ready_announced = true;
            self.shared.first_init_done.notify_one();
        }
    }

    fn publish(&mut self, force: bool) {
        if !force
            && self
                .last_publish
                .is_some_and(|t| t.elapsed() < PUBLISH_EVERY)
        {
            return;
        }
        self.last_publish = Some(Instant::now());
        self.shared
            .set_modems(self.slots.iter().map(Slot::view).collect());
    }
}

/// How long peeked messages are trusted. A claim re-checks state and expiry anyway, so a
/// stale entry costs at most a failed claim; the limit bounds how long a change the cache
/// cannot see (a cancellation, say) keeps being planned around.
const READY_CACHE_TTL: Duration = Duration::from_secs(1);

/// The due messages of the last peek, minus those claimed since. Cleared whenever something
/// may have changed the order: a new enqueue (wake), a timer (something became due), a
/// reload, a failed claim; and after [`READY_CACHE_TTL`].
#[derive(Default)]
struct ReadyCache {
    messages: std::collections::VecDeque<Message>,
    categories: Option<Vec<Category>>,
    at: Option<Instant>,
}

impl ReadyCache {
    fn usable_for(&self, filter: &ClaimFilter) -> bool {
        !self.messages.is_empty()
            && self.categories == filter.categories
            && self.at.is_some_and(|t| t.elapsed() < READY_CACHE_TTL)
    }

    fn fill(&mut self, peeked: Vec<Message>, filter: &ClaimFilter) {
        self.messages = peeked.into();
        self.categories = filter.categories.clone();
        self.at = Some(Instant::now());
    }

    fn clear(&mut self) {
        self.messages.clear();
        self.at = None;
    }
}

/// TP-VP in minutes from the configured validity, clamped to what the PDU can carry.
fn validity_minutes(validity: Duration) -> Option<u32> {
    let minutes = (validity.as_secs() / 60).clamp(5, 63 * 7 * 24 * 60);
    u32::try_from(minutes).ok()
}

pub(crate) fn mask_any(number: &str) -> String {
    phone::normalise(number).map_or_else(
        |_| {
            let chars: Vec<char> = number.chars().collect();
            if chars.len() <= 4 {
                number.to_owned()
            } else {
                format!("{}****", chars[..3].iter().collect::<String>())
            }
        },
        |n| n.mask(),
    )
}
