//! What the dispatcher publishes and the HTTP API reads: the live config, modem snapshots,
//! why the queue is (not) moving, and counters for `/metrics`. Locks here are std locks held
//! only for a copy, never across `.await`.

use crate::clock::Clock;
use crate::config::Config;
use crate::modem::ModemState;
use crate::store::Store;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::Notify;

/// One modem as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModemView {
    pub name: String,
    pub device: String,
    pub enabled: bool,
    pub state: ModemState,
    pub registered: bool,
    pub signal_dbm: Option<i16>,
    pub operator: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub imei: Option<String>,
    pub imsi: Option<String>,
    pub iccid: Option<String>,
    /// The SIM's own number as it reports it (inbound replies never go to our own SIMs).
    pub own_number: Option<String>,
    pub carrier: String,
    pub busy: bool,
    pub sent_hour: u64,
    pub sent_day: u64,
    pub sent_month: u64,
    pub hourly_limit: u32,
    pub daily_limit: u32,
    pub monthly_limit: u32,
    pub segments_sent: u64,
    pub segments_failed: u64,
    pub last_error: Option<String>,
    pub benched_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Counters that only grow, for Prometheus.
#[derive(Debug, Default)]
pub struct Counters {
    pub segments_sent: AtomicU64,
    pub segments_failed: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_failed: AtomicU64,
    pub messages_retried: AtomicU64,
    pub status_reports: AtomicU64,
    pub status_reports_unmatched: AtomicU64,
    pub inbound_pdus: AtomicU64,
    pub api_requests: AtomicU64,
    pub api_errors: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// State shared by the dispatcher, the API and the lifecycle code.
pub struct Shared {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Poked after every enqueue so an idle pool starts within milliseconds, not a poll period.
    pub wake: Notify,
    pub counters: Counters,
    config: RwLock<Arc<Config>>,
    modems: RwLock<Vec<ModemView>>,
    /// Why nothing moves (all modems down, quotas used up, quiet hours), or "sending".
    dispatch_status: RwLock<String>,
    /// Per-modem error counts by class, for `/metrics`.
    errors: RwLock<BTreeMap<(String, String), u64>>,
    /// Set once every modem has had its first init attempt (systemd READY).
    pub first_init_done: Notify,
    /// Planned-outage notices (set when the marketing database is configured).
    pub outages: std::sync::OnceLock<crate::marketing::outages::OutageDesk>,
    /// The marketing job runner, once started (`marketing::jobs::spawn`).
    pub jobs: std::sync::OnceLock<Arc<crate::marketing::jobs::JobsHandle>>,
    /// The marketing database's lookups, when `[marketing]` is configured.
    directory: RwLock<Option<crate::marketing::directory::Directory>>,
    /// The inbound pipeline, when `[inbound]` is enabled (set at start).
    inbound: RwLock<Option<Arc<crate::inbound::Inbound>>>,
}

impl Shared {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: Arc<Config>) -> Arc<Shared> {
        Arc::new(Shared {
            store,
            clock,
            wake: Notify::new(),
            counters: Counters::default(),
            config: RwLock::new(config),
            modems: RwLock::new(Vec::new()),
            dispatch_status: RwLock::new("starting".to_owned()),
            errors: RwLock::new(BTreeMap::new()),
            first_init_done: Notify::new(),
            outages: std::sync::OnceLock::new(),
            jobs: std::sync::OnceLock::new(),
            directory: RwLock::new(None),
            inbound: RwLock::new(None),
        })
    }

    /// The marketing lookups, if configured.
    pub fn directory(&self) -> Option<crate::marketing::Directory> {
        snapshot(&self.directory)
    }

    pub fn set_directory(&self, directory: Option<crate::marketing::Directory>) {
        replace(&self.directory, directory);
    }

    /// The inbound pipeline, if running.
    pub fn inbound(&self) -> Option<Arc<crate::inbound::Inbound>> {
        snapshot(&self.inbound)
    }

    pub fn set_inbound(&self, inbound: Option<Arc<crate::inbound::Inbound>>) {
        replace(&self.inbound, inbound);
    }

    pub fn config(&self) -> Arc<Config> {
        snapshot(&self.config)
    }

    pub fn set_config(&self, config: Arc<Config>) {
        replace(&self.config, config);
    }

    pub fn modems(&self) -> Vec<ModemView> {
        snapshot(&self.modems)
    }

    pub fn set_modems(&self, views: Vec<ModemView>) {
        replace(&self.modems, views);
    }

    pub fn dispatch_status(&self) -> String {
        snapshot(&self.dispatch_status)
    }

    pub fn set_dispatch_status(&self, status: impl Into<String>) {
        replace(&self.dispatch_status, status.into());
    }

    pub fn count_error(&self, modem: &str, class: &str) {
        let mut errors = self.errors.write().unwrap_or_else(PoisonError::into_inner);
        *errors
            .entry((modem.to_owned(), class.to_owned()))
            .or_default() += 1;
    }

    pub fn errors(&self) -> BTreeMap<(String, String), u64> {
        snapshot(&self.errors)
    }
}

// A panic elsewhere must not take the status page down with it: poisoned locks still hold
// a consistent value here, since every writer replaces it whole.
fn snapshot<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(PoisonError::into_inner).clone()
}

fn replace<T>(lock: &RwLock<T>, value: T) {
    *lock.write().unwrap_or_else(PoisonError::into_inner) = value;
}
