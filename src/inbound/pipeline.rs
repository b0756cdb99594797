//! The intake task: PDUs from the modems → durable rows → deleted from the modem → whole
//! messages → inbox → router.
//!
//! ```text
//! intake queue (bounded) --batch of ≤ 64--> decode -> store_pdus (one durable commit)
//!   -> ack_inbound per stored index (off this task) -> Reassembler::push
//!      Complete -> inbox row (consumes the PDU rows) -> handler task (router)
//!      Pending  -> waits; the 1 s tick expires groups older than `incomplete_wait`
//!                  into an inbox row noted "incomplete: parts 1,3 of 4"
//! ```
//!
//! Restart: [`start`] first pushes every `pending` PDU row back into the reassembler (with the
//! time it was received, so waits carry on where they were) and hands every inbox row left
//! `received` to the router. Reassembly time is wall-clock milliseconds from the daemon's
//! [`Clock`](crate::clock::Clock), so tests move it by hand.
//!
//! Bounds: the intake queue ([`super::INTAKE_CAPACITY`]), pending multipart groups
//! (`max_pending_groups`, the oldest evicted into the inbox with a note), handler tasks
//! ([`MAX_HANDLERS`]), inbox text ([`inbox::MAX_INBOX_CHARS`]).

use super::{Inbound, Intake, mask_sender, router};
use crate::daemon::state::Shared;
use crate::pdu::concat::{Incomplete, Outcome, Part, Reassembler};
use crate::pdu::{self, Deliver};
use crate::store::inbox::{self, InboxEntry, NewInbox, NewPdu};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// PDUs stored in one transaction.
const BATCH: usize = 64;
/// Inbox messages handled at once (marketing lookups run meanwhile).
pub const MAX_HANDLERS: usize = 64;
/// How often waiting multipart groups are checked for expiry.
const TICK: Duration = Duration::from_secs(1);
/// Longest wait for a modem to delete a stored message.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// PDU rows read back at start (more than `max_pending_groups` × 255 is never useful).
const REBUILD_LIMIT: usize = 100_000;
/// How often old inbox rows, PDUs and rate windows are pruned, and how many rows at a time.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const PRUNE_BATCH: usize = 5_000;

/// Where a waiting group came from (for its inbox row).
struct Origin {
    modem: String,
    sim: String,
    first_received: DateTime<Utc>,
}

struct Pipeline {
    shared: Arc<Shared>,
    reassembler: Reassembler,
    origins: HashMap<String, Origin>,
    handlers: JoinSet<()>,
}

/// Starts the pipeline when `[inbound]` is enabled: installs it in `shared` and returns its
/// task, which ends when `stop` is cancelled (after the handlers running then finish).
pub async fn start(
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let config = shared.config();
    if !config.inbound.enabled {
        return None;
    }
    let (tx, rx) = mpsc::channel(super::INTAKE_CAPACITY);
    shared.set_inbound(Some(Arc::new(Inbound::new(tx))));
    let wait_ms = u64::try_from(config.inbound.incomplete_wait.as_millis()).unwrap_or(u64::MAX);
    let mut p = Pipeline {
        reassembler: Reassembler::new(config.inbound.max_pending_groups as usize, wait_ms),
        origins: HashMap::new(),
        handlers: JoinSet::new(),
        shared,
    };
    tokio::spawn(super::legacy::run(p.shared.clone(), stop.clone()));
    if let Err(error) = p.rebuild().await {
        tracing::error!(%error, "inbound: could not resume stored messages; they wait for the next start");
    }
    Some(tokio::spawn(p.run(rx, stop)))
}

fn ms(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn group_key(d: &Deliver) -> Option<String> {
    d.concat
        .filter(|c| c.total > 1 && c.seq >= 1 && c.seq <= c.total)
        .map(|c| format!("{}|{}|{}", d.sender.to_display(), c.reference, c.total))
}

fn key_of(sender: &str, reference: u16, total: u8) -> String {
    format!("{sender}|{reference}|{total}")
}

/// "incomplete: parts 1,3 of 4".
fn incomplete_note(g: &Incomplete, why: &str) -> String {
    let have: Vec<String> = g.parts.iter().map(|(s, _)| s.to_string()).collect();
    format!("incomplete{why}: parts {} of {}", have.join(","), g.total)
}

impl Pipeline {
    async fn run(mut self, mut rx: mpsc::Receiver<Intake>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(first) = rx.recv() => {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(i) => batch.push(i),
                            Err(_) => break,
                        }
                    }
                    self.intake(batch).await;
                }
                Some(_) = self.handlers.join_next(), if !self.handlers.is_empty() => {}
                _ = tick.tick() => self.expire().await,
                _ = prune.tick() => self.prune().await,
            }
        }
        self.shared.set_inbound(None);
        // Handlers commit or leave their message `received` for the next start.
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while self.handlers.join_next().await.is_some() {}
        })
        .await;
    }

    /// Inbox records are kept as long as sent messages (`storage.retention_days`); rate windows
    /// two hours. Small batches, so sending never waits long behind a prune.
    async fn prune(&self) {
        let now = self.shared.clock.now();
        let days = i64::from(self.shared.config().storage.retention_days);
        let older = now - chrono::TimeDelta::days(days);
        loop {
            match self
                .shared
                .store
                .call(move |c| inbox::prune(c, older, PRUNE_BATCH))
                .await
            {
                Ok(n) if n >= PRUNE_BATCH => tokio::task::yield_now().await,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "inbound: pruning old inbox records failed");
                    return;
                }
            }
        }
        let windows = now - chrono::TimeDelta::hours(2);
        if let Err(error) = self
            .shared
            .store
            .call(move |c| inbox::prune_rates(c, windows))
            .await
        {
            tracing::warn!(%error, "inbound: pruning rate windows failed");
        }
    }

    /// Stored PDUs still pending and inbox rows still unhandled, from before a stop.
    async fn rebuild(&mut self) -> Result<(), crate::store::StoreError> {
        let pending = self
            .shared
            .store
            .call(|c| inbox::pending_pdus(c, REBUILD_LIMIT))
            .await?;
        let mut fresh = Vec::new();
        let count = pending.len();
        for row in pending {
            let d = match pdu::decode(&row.pdu) {
                Ok(pdu::Pdu::Deliver(d)) => d,
                _ => continue,
            };
            fresh.extend(self.push(&d, row.id, &row.modem, &row.sim, row.received_at));
        }
        let unhandled = self
            .shared
            .store
            .call(|c| inbox::unhandled(c, REBUILD_LIMIT))
            .await?;
        if count > 0 || !unhandled.is_empty() {
            tracing::info!(
                pdus = count,
                unhandled = unhandled.len(),
                waiting_groups = self.reassembler.len(),
                "inbound: resumed messages stored before the last stop"
            );
        }
        self.create(fresh).await;
        for entry in unhandled {
            self.spawn_handler(entry).await;
        }
        Ok(())
    }

    async fn intake(&mut self, batch: Vec<Intake>) {
        let now = self.shared.clock.now();
        let decoded: Vec<Option<Deliver>> = batch
            .iter()
            .map(|i| match pdu::decode(&i.pdu) {
                Ok(pdu::Pdu::Deliver(d)) => Some(d),
                _ => None,
            })
            .collect();
        let rows: Vec<NewPdu> = batch
            .iter()
            .zip(&decoded)
            .map(|(i, d)| NewPdu {
                modem: i.modem.clone(),
                sim: i.sim.clone(),
                storage_index: i.storage_index,
                pdu: i.pdu.clone(),
                received_at: now,
                group_key: d.as_ref().and_then(group_key),
                decodable: d.is_some(),
            })
            .collect();
        let stored = match self
            .shared
            .store
            .call_durable(move |c| inbox::store_pdus(c, &rows))
            .await
        {
            Ok(ids) => ids,
            Err(error) => {
                // Not acknowledged: the messages stay on the modems and come back in a sweep.
                tracing::error!(%error, pdus = batch.len(), "inbound: could not store PDUs");
                return;
            }
        };
        let mut fresh = Vec::new();
        for ((intake, d), id) in batch.into_iter().zip(decoded).zip(stored) {
            if let (Some(handle), Some(index)) = (intake.ack.clone(), intake.storage_index) {
                tokio::spawn(async move {
                    match tokio::time::timeout(ACK_TIMEOUT, handle.ack_inbound(index)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => {
                            tracing::warn!(%error, index, "inbound: could not delete a stored SMS from the modem")
                        }
                        Err(_) => {
                            tracing::warn!(index, "inbound: deleting a stored SMS timed out")
                        }
                    }
                });
            }
            let Some(id) = id else {
                tracing::debug!(modem = %intake.modem, "inbound: PDU seen before; deleted again, not handled again");
                continue;
            };
            let Some(d) = d else {
                tracing::warn!(modem = %intake.modem, pdu = id, "inbound: undecodable PDU kept as `bad`");
                continue;
            };
            fresh.extend(self.push(&d, id, &intake.modem, &intake.sim, now));
        }
        self.create(fresh).await;
    }

    /// Pushes one part; returns the inbox rows it completes (or evicts).
    fn push(
        &mut self,
        d: &Deliver,
        pdu_id: i64,
        modem: &str,
        sim: &str,
        received: DateTime<Utc>,
    ) -> Vec<NewInbox> {
        let key = group_key(d);
        let part = Part::from_deliver(d);
        let pushed = self.reassembler.push(part, ms(received));
        let mut out = Vec::new();
        if let Some(ev) = pushed.evicted {
            out.push(self.incomplete(ev, " (evicted: too many waiting multipart messages)"));
        }
        match pushed.outcome {
            Outcome::Complete(m) => {
                let origin = key.as_ref().and_then(|k| self.origins.remove(k));
                out.push(NewInbox {
                    sender: m.sender,
                    text: m.text,
                    modem: modem.to_owned(),
                    sim: Some(sim.to_owned()),
                    received_at: origin.map_or(received, |o| o.first_received),
                    parts: m.parts,
                    note: None,
                    pdu_id: if key.is_none() { Some(pdu_id) } else { None },
                    group_key: key,
                });
            }
            Outcome::Pending { .. } => {
                if let Some(k) = key {
                    self.origins.entry(k).or_insert_with(|| Origin {
                        modem: modem.to_owned(),
                        sim: sim.to_owned(),
                        first_received: received,
                    });
                }
            }
            Outcome::Duplicate => {
                let store = self.shared.store.clone();
                tokio::spawn(async move {
                    let _ = store
                        .call(move |c| inbox::mark_pdu(c, pdu_id, "duplicate"))
                        .await;
                });
            }
        }
        out
    }

    fn incomplete(&mut self, g: Incomplete, why: &str) -> NewInbox {
        let key = key_of(&g.sender, g.reference, g.total);
        let origin = self.origins.remove(&key);
        let note = incomplete_note(&g, why);
        NewInbox {
            text: g.text(),
            sender: g.sender,
            modem: origin
                .as_ref()
                .map_or_else(|| "?".to_owned(), |o| o.modem.clone()),
            sim: origin.as_ref().map(|o| o.sim.clone()),
            received_at: origin.map_or_else(|| self.shared.clock.now(), |o| o.first_received),
            parts: u8::try_from(g.parts.len()).unwrap_or(u8::MAX),
            note: Some(note),
            pdu_id: None,
            group_key: Some(key),
        }
    }

    async fn expire(&mut self) {
        if self.reassembler.is_empty() {
            return;
        }
        let now = ms(self.shared.clock.now());
        let gone = self.reassembler.expire(now);
        if gone.is_empty() {
            return;
        }
        let rows: Vec<NewInbox> = gone.into_iter().map(|g| self.incomplete(g, "")).collect();
        self.create(rows).await;
    }

    /// Commits inbox rows (consuming their PDUs), then hands each to a handler.
    async fn create(&mut self, rows: Vec<NewInbox>) {
        if rows.is_empty() {
            return;
        }
        let for_entries = rows.clone();
        let created = self
            .shared
            .store
            .call(move |c| {
                rows.iter()
                    .map(|r| inbox::create_inbox(c, r))
                    .collect::<Result<Vec<i64>, _>>()
            })
            .await;
        let ids = match created {
            Ok(ids) => ids,
            Err(error) => {
                // The PDUs stay `pending`: the next start reassembles them again.
                tracing::error!(%error, "inbound: could not create inbox messages");
                return;
            }
        };
        for (id, r) in ids.into_iter().zip(for_entries) {
            tracing::info!(
                inbox = id,
                from = %mask_sender(&r.sender),
                modem = %r.modem,
                parts = r.parts,
                note = r.note.as_deref().unwrap_or(""),
                "inbound SMS stored"
            );
            let entry = InboxEntry {
                id,
                sender: r.sender,
                text: r.text.chars().take(inbox::MAX_INBOX_CHARS).collect(),
                modem: r.modem,
                sim: r.sim,
                received_at: r.received_at,
                parts: r.parts,
                state: inbox::InboxState::Received,
                command: None,
                account: None,
                reply_id: None,
                note: r.note,
                handled_at: None,
            };
            self.spawn_handler(entry).await;
        }
    }

    async fn spawn_handler(&mut self, entry: InboxEntry) {
        while self.handlers.len() >= MAX_HANDLERS {
            let _ = self.handlers.join_next().await;
        }
        let shared = self.shared.clone();
        self.handlers.spawn(async move {
            if let Err(error) = router::handle(&shared, &entry).await {
                tracing::error!(%error, inbox = entry.id, "inbound: handling failed; retried at the next start");
            }
        });
    }
}
