//! The daemon (`gridsms run`): wires the store, the modem pool, the dispatcher and the HTTP API
//! together and runs them until SIGTERM.
//!
//! Start-up: open and migrate the store → resolve messages a crash left in `sending` (per
//! category: resend or fail, see README "Crash safety") → start one actor per modem → bind the
//! API → READY=1 to systemd once every modem has had its first init attempt.
//!
//! Signals: SIGTERM/SIGINT stop claiming work, let running sends finish within the grace
//! period, stop the modems and exit 0. SIGHUP reloads the config file: modems added, removed
//! or changed, limits, quiet hours and tokens apply at once; an invalid file is refused with a
//! log line and the running config stays.

pub mod dispatcher;
pub mod pool;
pub mod retention;
pub mod sender;
pub mod state;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Config, ConfigError, CrashRule};
use crate::message::Category;
use crate::store::{RecoveryPolicy, RecoveryRule, Store, StoreError};
use crate::systemd::Notifier;
use dispatcher::{Control, Dispatcher};
use state::Shared;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long running sends may take to finish after SIGTERM. Shorter than the unit's
/// TimeoutStopSec (45 s), so systemd never has to kill a send half-way.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot create the storage folder {path}: {source}")]
    StorageDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// How a running daemon is set up beyond its config file (tests use these).
pub struct RunOptions {
    pub clock: Arc<dyn Clock>,
    pub notifier: Notifier,
    pub grace: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            clock: Arc::new(SystemClock),
            notifier: Notifier::from_env(),
            grace: SHUTDOWN_GRACE,
        }
    }
}

/// The start-up crash rule per category, from `[dispatch.on_crash]`.
pub fn recovery_policy(config: &Config) -> RecoveryPolicy {
    RecoveryPolicy {
        default: RecoveryRule::Resend,
        overrides: Category::ALL
            .into_iter()
            .map(|c| {
                let rule = match config.dispatch.on_crash.rule(c) {
                    CrashRule::Resend => RecoveryRule::Resend,
                    CrashRule::Fail => RecoveryRule::MarkFailed,
                };
                (c, rule)
            })
            .collect(),
    }
}

/// A started daemon: modems, dispatcher and API running. [`run`] wraps it with signals; tests
/// drive it directly.
pub struct Running {
    pub shared: Arc<Shared>,
    /// Where the API listens (the real port when the config said port 0).
    pub api_addr: std::net::SocketAddr,
    config_path: PathBuf,
    control: mpsc::Sender<Control>,
    stop: CancellationToken,
    api: tokio::task::JoinHandle<()>,
    dispatch: tokio::task::JoinHandle<()>,
    keepalive: tokio::task::JoinHandle<()>,
    pruning: tokio::task::JoinHandle<()>,
    jobs: tokio::task::JoinHandle<()>,
    inbound: Option<tokio::task::JoinHandle<()>>,
    notifier: Notifier,
}

/// Opens the store, resolves interrupted sends, starts the modems, the dispatcher and the API.
pub async fn start(
    config: Config,
    config_path: &Path,
    options: RunOptions,
) -> Result<Running, DaemonError> {
    let storage = &config.storage.path;
    if let Some(dir) = storage.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DaemonError::StorageDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    crate::marketing::demo::ensure(&config, options.clock.now());
    let store = with_start_extended(Store::open(storage), |waited| {
        tracing::info!(
            waited_s = waited.as_secs(),
            "still opening the database (schema upgrade); asked systemd for more time"
        );
        options.notifier.extend_start(
            START_EXTENSION,
            "opening the database (schema upgrade in progress)",
        );
    })
    .await?;
    let recovery = store
        .recover_in_flight(recovery_policy(&config), options.clock.now())
        .await?;
    if !recovery.requeued.is_empty()
        || !recovery.failed.is_empty()
        || !recovery.completed.is_empty()
    {
        tracing::warn!(
            requeued = recovery.requeued.len(),
            failed = recovery.failed.len(),
            completed = recovery.completed.len(),
            uncertain_segments = recovery.uncertain_segments,
            "resolved messages interrupted by the last stop"
        );
    }
    warn_if_modemmanager_running(&config);
    let listen = config.api.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: listen,
            source,
        })?;
    let api_addr = listener.local_addr().unwrap_or(listen);
    let shared = Shared::new(store, options.clock.clone(), Arc::new(config));
    let (control, control_rx) = mpsc::channel(4);
    let dispatcher = Dispatcher::new(shared.clone(), control_rx).await;
    tracing::info!(api = %format!("http://{api_addr}"), "gridsms running; API listening");

    let stop = CancellationToken::new();
    // The marketing runner publishes the directory the inbound replies look accounts up in,
    // so it starts first.
    let jobs = crate::marketing::jobs::spawn(shared.clone(), stop.clone());
    crate::marketing::outages::attach(&shared);
    let inbound = crate::inbound::pipeline::start(shared.clone(), stop.clone()).await;
    if let Some(i) = shared.inbound() {
        i.set_outages(Some(Arc::new(crate::marketing::outages::StoredOutages(
            shared.store.clone(),
        ))));
    }
    let api = {
        let stop = stop.clone();
        let router = crate::api::router(shared.clone());
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "API server stopped");
            }
        })
    };
    let dispatch = tokio::spawn(dispatcher.run(stop.clone(), options.grace));
    let keepalive = tokio::spawn(keep_systemd_informed(
        shared.clone(),
        options.notifier.clone(),
    ));
    let pruning = tokio::spawn(retention::run(shared.clone()));
    Ok(Running {
        shared,
        api_addr,
        config_path: config_path.to_owned(),
        control,
        stop,
        api,
        dispatch,
        keepalive,
        pruning,
        jobs,
        inbound,
        notifier: options.notifier,
    })
}

impl Running {
    /// Serves the outage API with `desk` (tests; `start` attaches one when `[marketing]` is
    /// configured). The poll and reminders run as the marketing runner's `outages` job.
    pub fn start_outages(&mut self, desk: crate::marketing::outages::OutageDesk) {
        let _ = self.shared.outages.set(desk);
    }

    /// Re-reads the config file (SIGHUP). Returns false when it was refused.
    pub async fn reload(&self) -> bool {
        self.notifier.reloading();
        let applied = reload(&self.config_path, &self.shared, &self.control).await;
        crate::store::audit::record_alone(&self.shared.store, reload_entry(&self.shared, applied))
            .await;
        self.notifier.ready(&status_line(&self.shared).await);
        applied
    }

    /// Stops claiming, lets running sends finish within the grace period, stops the modems
    /// and the API.
    pub async fn shutdown(self) {
        self.notifier.stopping();
        self.stop.cancel();
        self.keepalive.abort();
        self.pruning.abort();
        // A job run stops at its next await; what it committed stays, its watermark did not move.
        let _ = tokio::time::timeout(Duration::from_secs(10), self.jobs).await;
        if let Err(error) = self.dispatch.await {
            tracing::error!(%error, "dispatcher ended abnormally");
        }
        if let Some(inbound) = self.inbound {
            let _ = tokio::time::timeout(Duration::from_secs(15), inbound).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.api).await;
        tracing::info!("stopped");
    }
}

/// Runs the daemon with `config` (loaded from `config_path`, which SIGHUP re-reads) until
/// SIGTERM or SIGINT.
pub async fn run(
    config: Config,
    config_path: &Path,
    options: RunOptions,
) -> Result<(), DaemonError> {
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let running = start(config, config_path, options).await?;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: draining"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: draining"); break; }
            _ = hup.recv() => { running.reload().await; }
        }
    }
    running.shutdown().await;
    Ok(())
}

/// The audit entry of a reload (actor "sighup": reloads come from the signal).
fn reload_entry(shared: &Shared, applied: bool) -> crate::store::audit::AuditEntry {
    use crate::store::audit::{AuditAction, AuditEntry, AuditResult};
    let entry = AuditEntry::new(shared.clock.now(), "sighup", AuditAction::ConfigReload);
    if applied {
        entry
    } else {
        entry.result(AuditResult::Error(
            "refused; the running configuration stays (see the log)".to_owned(),
        ))
    }
}

/// SIGHUP: re-read and validate the file; apply it whole or not at all.
async fn reload(path: &Path, shared: &Arc<Shared>, control: &mpsc::Sender<Control>) -> bool {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(error) => {
            tracing::error!(%error, "configuration reload refused; the running configuration stays");
            return false;
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let old = shared.config();
    let new = loaded.config;
    if new.storage.path != old.storage.path || new.api.listen != old.api.listen {
        tracing::warn!("storage.path and api.listen changes take effect at the next restart");
    }
    if new.log != old.log {
        tracing::warn!("[log] changes take effect at the next restart");
    }
    let (reply_tx, reply_rx) = oneshot::channel();
    if control
        .send(Control::Reload(Arc::new(new), reply_tx))
        .await
        .is_err()
    {
        tracing::error!("dispatcher gone; reload not applied");
        return false;
    }
    match tokio::time::timeout(Duration::from_secs(30), reply_rx).await {
        Ok(Ok(changes)) => {
            for change in changes {
                tracing::info!(?change, "modem change applied");
            }
            true
        }
        _ => {
            tracing::error!("dispatcher did not confirm the reload");
            false
        }
    }
}

/// The STATUS= line: modems up and queue depth.
async fn status_line(shared: &Shared) -> String {
    let modems = shared.modems();
    let up = modems
        .iter()
        .filter(|m| m.state == crate::modem::ModemState::Ready)
        .count();
    let pending = match shared.store.counts().await {
        Ok(c) => {
            let q = c.by_state(crate::message::MessageState::Queued)
                + c.by_state(crate::message::MessageState::Sending);
            q.to_string()
        }
        Err(_) => "?".to_owned(),
    };
    let mut line = format!(
        "{up}/{} modems up, {pending} messages pending; {}",
        modems.len(),
        shared.dispatch_status()
    );
    if let Some(problem) = shared.jobs.get().and_then(|j| j.problem()) {
        line.push_str("; ");
        line.push_str(&problem);
    }
    line
}

/// READY once the modems have had their first init attempt; then STATUS every few seconds and
/// WATCHDOG pings, each only after the store answered (a wedged store thread stops the pings
/// and systemd restarts the daemon).
async fn keep_systemd_informed(shared: Arc<Shared>, notifier: Notifier) {
    shared.first_init_done.notified().await;
    let line = status_line(&shared).await;
    tracing::info!(status = %line, "ready");
    notifier.ready(&line);
    let every = notifier
        .watchdog_interval()
        .unwrap_or(Duration::from_secs(10))
        .min(Duration::from_secs(10));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Ok(line) = tokio::time::timeout(every, status_line(&shared)).await {
            notifier.status(&line);
            notifier.watchdog();
        }
    }
}

/// How long an open may take before systemd is asked for more start time, how much each ask
/// adds, and when asking stops (a store that has not opened by then is not coming back, and
/// systemd's own timeout should fail the start).
const SLOW_OPEN_AFTER: Duration = Duration::from_secs(5);
const START_EXTENSION: Duration = Duration::from_secs(30);
const MAX_START_EXTENSION: Duration = Duration::from_secs(30 * 60);

/// Runs `opening` (the store's open, which may upgrade the schema of a large database for
/// minutes on a slow disk) and calls `extend` (ask systemd for [`START_EXTENSION`] more) every
/// third of that while it is slow, so TimeoutStartSec and the watchdog do not kill the daemon
/// mid-upgrade: a killed upgrade rolls back and would start over at every restart.
async fn with_start_extended<F: std::future::Future>(
    opening: F,
    mut extend: impl FnMut(Duration),
) -> F::Output {
    tokio::pin!(opening);
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval_at(started + SLOW_OPEN_AFTER, START_EXTENSION / 3);
    loop {
        tokio::select! {
            opened = &mut opening => return opened,
            _ = tick.tick() => {
                let waited = started.elapsed();
                if waited <= MAX_START_EXTENSION {
                    extend(waited);
                }
            }
        }
    }
}

/// ModemManager probes serial ports and can hold them for seconds; our udev rules tell it to
/// leave our modems alone, but only for ports the rules matched.
fn warn_if_modemmanager_running(config: &Config) {
    let running = std::fs::read_dir("/proc")
        .map(|entries| {
            entries.flatten().any(|e| {
                std::fs::read_to_string(e.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "ModemManager")
            })
        })
        .unwrap_or(false);
    if !running {
        return;
    }
    let untagged: Vec<String> = config
        .enabled_modems()
        .filter_map(|m| match &m.device {
            config::Device::Path(p) if !p.starts_with("/dev/gridsms") => {
                Some(format!("{} ({})", m.name, p.display()))
            }
            _ => None,
        })
        .collect();
    if !untagged.is_empty() {
        tracing::warn!(
            modems = %untagged.join(", "),
            "ModemManager is running and these ports are not under /dev/gridsms (our udev rules \
             tag those ID_MM_DEVICE_IGNORE); it may probe and hold them. Install udev/90-gridsms.rules \
             or stop ModemManager"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Elapsed times at which `extend` was called while an open took `open_takes`.
    async fn extensions_during(open_takes: Duration) -> Vec<u64> {
        let mut asked = Vec::new();
        let opened = with_start_extended(
            async {
                tokio::time::sleep(open_takes).await;
                "opened"
            },
            |waited| asked.push(waited.as_secs()),
        )
        .await;
        assert_eq!(opened, "opened");
        asked
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_open_asks_systemd_for_nothing() {
        assert!(extensions_during(Duration::from_secs(4)).await.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_open_keeps_asking_for_time_before_the_last_extension_runs_out() {
        let asked = extensions_during(Duration::from_secs(60)).await;
        assert_eq!(asked, vec![5, 15, 25, 35, 45, 55]);
        // Each ask covers the start until well after the next one.
        for pair in asked.windows(2) {
            assert!(Duration::from_secs(pair[1] - pair[0]) < START_EXTENSION);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_that_never_ends_stops_being_covered() {
        let asked = extensions_during(MAX_START_EXTENSION + Duration::from_secs(600)).await;
        let last = *asked.last().expect("asked at least once");
        assert!(last <= MAX_START_EXTENSION.as_secs(), "{last}");
        assert_eq!(asked.len(), 180, "every 10 s from 5 s to 30 min");
    }
}
