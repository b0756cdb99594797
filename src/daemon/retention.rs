//! Retention: once a day (and shortly after start), delete finished messages older than
//! `[storage] retention_days` (default 183, never below 150: the rules ask for at least five
//! months). The store deletes in small batches, each its own transaction, so sends interleave
//! and pruning never blocks them.

use super::state::Shared;
use crate::store::retention::cutoff;
use std::sync::Arc;
use std::time::Duration;

/// First run after start: late enough not to compete with start-up recovery and modem init.
const FIRST_RUN_AFTER: Duration = Duration::from_secs(300);
const EVERY: Duration = Duration::from_secs(24 * 3600);

pub async fn run(shared: Arc<Shared>) {
    tokio::time::sleep(FIRST_RUN_AFTER).await;
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        prune_once(&shared).await;
    }
}

/// One pass; returns how many messages went.
pub async fn prune_once(shared: &Shared) -> usize {
    let days = shared.config().storage.retention_days;
    let older_than = cutoff(shared.clock.now(), days);
    let now = shared.clock.now();
    // The audit trail has its own floor of six months (store::audit::MIN_RETENTION_DAYS).
    if let Err(error) = shared
        .store
        .call(move |c| crate::store::audit::prune(c, now, days))
        .await
    {
        tracing::error!(%error, "pruning the audit trail failed; will try again tomorrow");
    }
    match shared.store.prune(older_than).await {
        Ok(0) => 0,
        Ok(n) => {
            tracing::info!(deleted = n, retention_days = days, "old messages pruned");
            n
        }
        Err(error) => {
            tracing::error!(%error, "pruning old messages failed; will try again tomorrow");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::message::Category;
    use crate::store::{NewMessage, Store};
    use chrono::{TimeZone, Utc};

    #[tokio::test]
    async fn prunes_finished_messages_past_retention_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let toml = "[storage]\npath = \"x.db\"\nretention_days = 183\n";
        let config = crate::config::parse(toml, &dir.path().join("gridsms.toml"))
            .unwrap()
            .config;
        let start = Utc.with_ymd_and_hms(2026, 1, 10, 2, 0, 0).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let store = Store::open_in_memory().await.unwrap();
        let to = crate::phone::normalise("13800138000").unwrap();
        let old = store
            .enqueue(NewMessage::new(to.clone(), "old", Category::Manual), start)
            .await
            .unwrap()
            .id();
        store
            .mark_failed(old, "test".into(), false, start)
            .await
            .unwrap();
        let queued = store
            .enqueue(NewMessage::new(to, "still queued", Category::Manual), start)
            .await
            .unwrap()
            .id();
        let shared = Shared::new(store, clock.clone(), Arc::new(config));
        assert_eq!(prune_once(&shared).await, 0, "nothing is old yet");
        clock.advance(std::time::Duration::from_secs(184 * 24 * 3600));
        assert_eq!(prune_once(&shared).await, 1);
        assert!(shared.store.get(old).await.unwrap().is_none());
        assert!(
            shared.store.get(queued).await.unwrap().is_some(),
            "queued messages stay"
        );
    }
}
