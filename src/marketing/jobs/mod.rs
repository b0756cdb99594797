//! The marketing job runner: one task that polls the billing database on each job's schedule
//! and turns what it reads into queued messages.
//!
//! ```text
//! config [marketing] ─┐            ┌─ bills ──────┐
//!                     ├─ runner ───┼─ corrections ├─ Directory (streamed rows)
//! API POST …/run ─────┘  (one job  └─ reminders ──┘      │ batches of ~1,000
//!                         at a time)                     ▼
//!                               Store::call_durable(enqueue_checked + watermark) → wake
//! ```
//!
//! Invariants:
//! - Jobs run one at a time, so the bureau's database sees at most one of our queries at once
//!   (plus the per-account re-reads of the reminders job).
//! - Every run is recorded in `job_runs` (started, finished, counters, error) before and after.
//! - A job advances its watermark only together with its last batch (see `store::jobs`); a run
//!   that fails keeps the old watermark, so the next run reads the same rows again and the
//!   idempotency keys turn them into duplicates: nothing is lost, nothing is sent twice.
//! - The database down (a transient error) → the run is recorded failed, the job retries with
//!   backoff (30 s doubling, capped at its interval), status says since when it is unreachable.
//!   A database that is down when the daemon starts never stops the daemon.
//! - Schedules and queries are re-read from the live config before every decision, so a SIGHUP
//!   applies at the next run at the latest.
//! - Before a job first runs against a (re)configured source, its queries are prepared and
//!   their columns checked; a missing column fails the run with an error naming it.

pub mod bills;
pub mod corrections;
pub mod reminders;

use crate::config::Config;
use crate::config::marketing::{MarketingConfig, Schedule};
use crate::daemon::state::Shared;
use crate::marketing::directory::{Directory, MarketingError};
use crate::marketing::queries;
use crate::marketing::source::{self, BoxFuture, Engine, SourceError};
use crate::store::StoreError;
use crate::store::jobs::{self as store_jobs, BatchOutcome, JobRun, RunStats};
use crate::store::outbox::NewMessage;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Messages handed to the store per transaction.
pub const BATCH: usize = 1000;
/// First retry after a transient failure; doubles up to the job's interval.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);
/// Longest sleep between looks at the clock and the config (a manual clock in tests, a reload).
const TICK: Duration = Duration::from_secs(2);
/// How many recent runs `GET /api/v1/jobs` shows per job.
pub const RECENT_RUNS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Marketing(#[from] MarketingError),
    #[error("outbox: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Config(String),
    #[error("interrupted by a stop of the daemon")]
    Stopped,
}

impl JobError {
    /// The database is down or slow: retry soon.
    pub fn is_transient(&self) -> bool {
        match self {
            JobError::Marketing(e) => e.is_transient(),
            _ => false,
        }
    }
}

impl From<SourceError> for JobError {
    fn from(e: SourceError) -> Self {
        JobError::Marketing(MarketingError::Source(e))
    }
}

/// One polling job. Jobs are stateless between runs: what they must remember lives in the
/// store (watermarks, reminder state), so a restart or a reload loses nothing.
pub trait Job: Send + Sync {
    /// Fills `stats` as it goes; returns once everything read is committed.
    fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
        stats: &'a mut RunStats,
    ) -> BoxFuture<'a, Result<(), JobError>>;
}

/// A job as the current config defines it.
#[derive(Clone)]
pub struct JobSpec {
    pub name: &'static str,
    pub enabled: bool,
    pub schedule: Schedule,
    /// The `[marketing.queries]` it runs (checked for columns before its first run).
    pub queries: &'static [&'static str],
    pub job: Arc<dyn Job>,
}

/// The jobs `config` defines. Other polled features (outages) add one line here.
pub fn configured_jobs(config: &Config) -> Vec<JobSpec> {
    let mut out = Vec::new();
    if let Some(m) = &config.marketing {
        marketing_jobs(m, &mut out);
    }
    out.extend(crate::marketing::outages::job_spec(config));
    out
}

fn marketing_jobs(m: &MarketingConfig, out: &mut Vec<JobSpec>) {
    if let Some(b) = &m.bills {
        out.push(JobSpec {
            name: "bills",
            enabled: b.enabled,
            schedule: b.schedule.clone(),
            queries: &["bills"],
            job: Arc::new(bills::Bills),
        });
    }
    if let Some(c) = &m.corrections {
        out.push(JobSpec {
            name: "corrections",
            enabled: c.enabled,
            schedule: c.schedule.clone(),
            queries: &["corrections"],
            job: Arc::new(corrections::Corrections),
        });
    }
    if let Some(r) = &m.reminders {
        out.push(JobSpec {
            name: "reminders",
            enabled: r.enabled,
            schedule: r.schedule.clone(),
            queries: &["arrears", "account_arrears"],
            job: Arc::new(reminders::Reminders),
        });
    }
}

/// What a running job gets.
pub struct JobContext {
    pub shared: Arc<Shared>,
    /// The config snapshot the run started with.
    pub config: Arc<Config>,
    pub directory: Directory,
    pub job: &'static str,
    pub run_id: i64,
    /// When the run started (the shared clock).
    pub started: DateTime<Utc>,
}

impl JobContext {
    pub fn tz(&self) -> Tz {
        self.config.dispatch.timezone
    }

    /// `[marketing]` (always present while a job runs).
    pub fn marketing(&self) -> Result<&MarketingConfig, JobError> {
        self.config
            .marketing
            .as_ref()
            .ok_or_else(|| JobError::Config("[marketing] is no longer configured".into()))
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Commit a batch (opt-outs dropped, known keys counted as duplicates) and, with it, the
    /// job's new watermark; fsynced before returning. Wakes the dispatcher when anything new
    /// was queued.
    pub async fn commit(
        &self,
        msgs: Vec<NewMessage>,
        watermark: Option<String>,
        stats: &mut RunStats,
    ) -> Result<BatchOutcome, JobError> {
        let job = self.job;
        let now = self.now();
        self.commit_with(msgs, stats, move |conn| match watermark {
            Some(w) => store_jobs::set_watermark(conn, job, &w, now),
            None => Ok(()),
        })
        .await
    }

    /// Like [`JobContext::commit`], with `also` run in the same transaction (job state that
    /// must move together with the messages).
    pub async fn commit_with(
        &self,
        msgs: Vec<NewMessage>,
        stats: &mut RunStats,
        also: impl FnOnce(&rusqlite::Connection) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<BatchOutcome, JobError> {
        let now = self.now();
        let out = self
            .shared
            .store
            .call_durable(move |conn| {
                let out = store_jobs::enqueue_checked(conn, msgs, now)?;
                also(conn)?;
                Ok(out)
            })
            .await?;
        stats.add(&out);
        if out.queued > 0 {
            self.shared.wake.notify_one();
        }
        Ok(out)
    }

    /// A pipeline that commits each batch in the background while the job reads the next.
    pub fn committer(&self) -> Committer<'_> {
        Committer {
            ctx: self,
            inflight: None,
        }
    }

    /// The job's stored watermark.
    pub async fn watermark(&self) -> Result<Option<String>, JobError> {
        let job = self.job;
        Ok(self
            .shared
            .store
            .call(move |c| store_jobs::watermark(c, job))
            .await?)
    }
}

/// Commits batches one behind the reader: batch N is fsynced on the store thread while the
/// job reads and renders batch N+1, and at most one batch is in flight (memory stays bounded).
/// The last batch, which carries the watermark, is committed after every earlier one succeeded.
pub struct Committer<'a> {
    ctx: &'a JobContext,
    inflight: Option<tokio::task::JoinHandle<Result<BatchOutcome, StoreError>>>,
}

impl Committer<'_> {
    async fn wait(&mut self, stats: &mut RunStats) -> Result<(), JobError> {
        if let Some(h) = self.inflight.take() {
            let out = h
                .await
                .map_err(|e| JobError::Config(format!("batch commit task failed: {e}")))??;
            stats.add(&out);
            if out.queued > 0 {
                self.ctx.shared.wake.notify_one();
            }
        }
        Ok(())
    }

    /// Hand a batch over; waits only for the batch before it.
    pub async fn send(
        &mut self,
        msgs: Vec<NewMessage>,
        stats: &mut RunStats,
    ) -> Result<(), JobError> {
        self.wait(stats).await?;
        let store = self.ctx.shared.store.clone();
        let now = self.ctx.now();
        self.inflight = Some(tokio::spawn(async move {
            store
                .call_durable(move |conn| store_jobs::enqueue_checked(conn, msgs, now))
                .await
        }));
        Ok(())
    }

    /// The last batch and the watermark, once every earlier batch is committed.
    pub async fn finish(
        mut self,
        msgs: Vec<NewMessage>,
        watermark: Option<String>,
        stats: &mut RunStats,
    ) -> Result<(), JobError> {
        self.wait(stats).await?;
        self.ctx.commit(msgs, watermark, stats).await?;
        Ok(())
    }
}

/// A time watermark: RFC 3339 UTC in the store, a local date-time (`:since`) for the query.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn local_naive(t: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

/// The next time `schedule` fires strictly after `after`.
pub fn next_after(schedule: &Schedule, after: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    match schedule {
        Schedule::Every(d) => after + TimeDelta::from_std(*d).unwrap_or(TimeDelta::hours(1)),
        Schedule::At(times) => {
            let local = after.with_timezone(&tz);
            let mut date = local.date_naive();
            for _ in 0..3 {
                for t in times {
                    let candidate = date.and_time(*t);
                    if let Some(c) =
                        chrono::TimeZone::from_local_datetime(&tz, &candidate).earliest()
                    {
                        let c = c.with_timezone(&Utc);
                        if c > after {
                            return c;
                        }
                    }
                }
                date = date.succ_opt().unwrap_or(date);
            }
            after + TimeDelta::days(1)
        }
    }
}

/// Delay before retry number `failures` (1-based) after a transient error.
pub fn retry_delay(failures: u32, schedule: &Schedule) -> Duration {
    let cap = match schedule {
        Schedule::Every(d) => (*d).max(FIRST_RETRY),
        Schedule::At(_) => Duration::from_secs(3600),
    };
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(factor).min(cap)
}

/// A job as `GET /api/v1/jobs` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub name: String,
    pub enabled: bool,
    pub schedule: String,
    /// idle | running | retrying | failing | disabled
    pub state: String,
    pub next_run: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub last_runs: Vec<JobRun>,
}

/// The marketing source as status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub url: String,
    pub engine: Option<&'static str>,
    pub reachable: bool,
    pub unreachable_since: Option<DateTime<Utc>>,
    /// "ok", or "marketing database unreachable since …".
    pub status: String,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunnerView {
    pub marketing: Option<SourceView>,
    pub jobs: Vec<JobView>,
}

/// A request to run a job now.
pub struct Trigger {
    pub job: String,
    /// Answered with the finished run (or why it could not start).
    pub reply: Option<oneshot::Sender<Result<JobRun, String>>>,
}

/// The runner as the API reaches it (in `Shared::jobs`).
pub struct JobsHandle {
    triggers: mpsc::Sender<Trigger>,
    view: RwLock<RunnerView>,
}

impl JobsHandle {
    /// The runner's view (without recent runs: the API reads those from the store).
    pub fn view(&self) -> RunnerView {
        self.view
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, v: RunnerView) {
        *self.view.write().unwrap_or_else(PoisonError::into_inner) = v;
    }

    /// Ask for a run of `job` now; the receiver gets the finished run.
    pub fn trigger(&self, job: &str) -> Result<oneshot::Receiver<Result<JobRun, String>>, String> {
        let (tx, rx) = oneshot::channel();
        self.triggers
            .try_send(Trigger {
                job: job.to_owned(),
                reply: Some(tx),
            })
            .map_err(|_| "the job runner is busy; try again shortly".to_owned())?;
        Ok(rx)
    }

    /// A line for the systemd STATUS and `gridsms status`, when something is wrong.
    pub fn problem(&self) -> Option<String> {
        let v = self.view();
        v.marketing.filter(|m| !m.reachable).map(|m| m.status)
    }
}

struct JobState {
    schedule: Schedule,
    next_due: DateTime<Utc>,
    failures: u32,
    last_error: Option<String>,
    running: bool,
}

/// The source and directory built from one `[marketing]` (rebuilt when it changes).
struct Connected {
    key: String,
    directory: Directory,
    engine: Engine,
    /// Queries whose columns were checked against this source.
    checked: Vec<&'static str>,
}

struct Runner {
    shared: Arc<Shared>,
    handle: Arc<JobsHandle>,
    jobs: HashMap<&'static str, JobState>,
    connected: Option<Connected>,
    source_error: Option<String>,
    unreachable_since: Option<DateTime<Utc>>,
}

fn source_key(m: &MarketingConfig) -> String {
    let mut k = format!(
        "{}|{:?}|{:?}|{:?}",
        m.url,
        m.password.as_ref().map(|s| s.expose().len()),
        m.connect_timeout,
        m.query_timeout
    );
    if let Some(p) = &m.password {
        // Only whether it changed matters; the key never leaves this process.
        k.push_str(p.expose());
    }
    for (n, q) in &m.queries {
        k.push_str(n);
        k.push('\u{1}');
        k.push_str(q);
    }
    k
}

/// Starts the runner (call once from `daemon::start`); it idles while `[marketing]` is absent
/// and stops with `stop`.
pub fn spawn(shared: Arc<Shared>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let (tx, rx) = mpsc::channel(16);
    let handle = Arc::new(JobsHandle {
        triggers: tx,
        view: RwLock::new(RunnerView::default()),
    });
    let _ = shared.jobs.set(handle.clone());
    // Inbound replies and staff sends look accounts up from the first request on, before any
    // job has run (opening a source does not connect yet).
    let config = shared.config();
    if let Some(m) = config.marketing.as_ref() {
        match source::open(&m.source_config()) {
            Ok(src) => shared.set_directory(Some(Directory::new(
                src,
                m.parsed.clone(),
                config.dispatch.timezone,
            ))),
            Err(error) => tracing::error!(%error, "marketing source unusable"),
        }
    }
    let runner = Runner {
        shared,
        handle,
        jobs: HashMap::new(),
        connected: None,
        source_error: None,
        unreachable_since: None,
    };
    // Published before the task runs, so the API knows the jobs from the first request on.
    let config = runner.shared.config();
    runner.publish(&config, &configured_jobs(&config));
    tokio::spawn(runner.run(rx, stop))
}

impl Runner {
    async fn run(mut self, mut triggers: mpsc::Receiver<Trigger>, stop: CancellationToken) {
        let now = self.shared.clock.now();
        match self
            .shared
            .store
            .call(move |c| store_jobs::interrupt_running(c, now))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(runs = n, "job runs interrupted by the last stop"),
            Err(error) => tracing::error!(%error, "cannot read job runs"),
        }
        loop {
            let config = self.shared.config();
            let specs = configured_jobs(&config);
            self.sync(&config, &specs);
            self.publish(&config, &specs);
            if stop.is_cancelled() {
                return;
            }
            let now = self.shared.clock.now();
            let due = specs
                .iter()
                .filter(|s| s.enabled)
                .filter_map(|s| self.jobs.get(s.name).map(|st| (s, st.next_due)))
                .filter(|(_, at)| *at <= now)
                .min_by_key(|(_, at)| *at)
                .map(|(s, _)| s.clone());
            if let Some(spec) = due {
                let trigger = if self.jobs.get(spec.name).is_some_and(|s| s.failures > 0) {
                    "retry"
                } else {
                    "schedule"
                };
                self.run_job(&config, &spec, trigger, &stop).await;
                continue;
            }
            let wait = specs
                .iter()
                .filter(|s| s.enabled)
                .filter_map(|s| self.jobs.get(s.name))
                .map(|st| (st.next_due - now).to_std().unwrap_or(Duration::ZERO))
                .min()
                .unwrap_or(TICK)
                .min(TICK);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                t = triggers.recv() => {
                    let Some(t) = t else { return };
                    // The config may have been reloaded while this loop slept.
                    let config = self.shared.config();
                    let specs = configured_jobs(&config);
                    self.sync(&config, &specs);
                    let Some(spec) = specs.iter().find(|s| s.name == t.job).cloned() else {
                        if let Some(r) = t.reply {
                            let _ = r.send(Err(format!("no job named {:?} is configured", t.job)));
                        }
                        continue;
                    };
                    let run = self.run_job(&config, &spec, "manual", &stop).await;
                    if let Some(r) = t.reply {
                        let _ = r.send(run.ok_or_else(|| "the run could not be recorded".to_owned()));
                    }
                }
            }
        }
    }

    /// Job states follow the config: new jobs are due now (interval) or at their next time
    /// (daily times); a changed schedule re-plans; removed jobs are forgotten.
    fn sync(&mut self, config: &Config, specs: &[JobSpec]) {
        let now = self.shared.clock.now();
        let tz = config.dispatch.timezone;
        self.jobs.retain(|n, _| specs.iter().any(|s| s.name == *n));
        for s in specs {
            let first_due = |sch: &Schedule| match sch {
                Schedule::Every(_) => now,
                Schedule::At(_) => next_after(sch, now, tz),
            };
            match self.jobs.get_mut(s.name) {
                None => {
                    self.jobs.insert(
                        s.name,
                        JobState {
                            schedule: s.schedule.clone(),
                            next_due: first_due(&s.schedule),
                            failures: 0,
                            last_error: None,
                            running: false,
                        },
                    );
                }
                Some(st) if st.schedule != s.schedule => {
                    st.next_due = st.next_due.min(next_after(&s.schedule, now, tz));
                    if matches!(s.schedule, Schedule::At(_)) {
                        st.next_due = next_after(&s.schedule, now, tz);
                    }
                    st.schedule = s.schedule.clone();
                }
                Some(_) => {}
            }
        }
        if config.marketing.is_none() {
            self.connected = None;
        }
    }

    fn publish(&self, config: &Config, specs: &[JobSpec]) {
        let marketing = config.marketing.as_ref().map(|m| SourceView {
            url: source::redact_url(&m.url),
            engine: self.connected.as_ref().map(|c| c.engine.as_str()),
            reachable: self.unreachable_since.is_none(),
            unreachable_since: self.unreachable_since,
            status: match self.unreachable_since {
                Some(t) => format!(
                    "marketing database unreachable since {}",
                    t.with_timezone(&config.dispatch.timezone)
                        .format("%Y-%m-%d %H:%M:%S")
                ),
                None => "ok".to_owned(),
            },
            last_error: self.source_error.clone(),
        });
        let jobs = specs
            .iter()
            .map(|s| {
                let st = self.jobs.get(s.name);
                JobView {
                    name: s.name.to_owned(),
                    enabled: s.enabled,
                    schedule: s.schedule.to_string(),
                    state: match st {
                        _ if !s.enabled => "disabled",
                        Some(st) if st.running => "running",
                        Some(st) if st.failures > 0 && st.last_error.is_some() => "retrying",
                        Some(st) if st.last_error.is_some() => "failing",
                        _ => "idle",
                    }
                    .to_owned(),
                    next_run: st.filter(|_| s.enabled).map(|st| st.next_due),
                    last_error: st.and_then(|st| st.last_error.clone()),
                    consecutive_failures: st.map_or(0, |st| st.failures),
                    last_runs: Vec::new(),
                }
            })
            .collect();
        self.handle.publish(RunnerView { marketing, jobs });
    }

    /// The directory for the current `[marketing]`, (re)built when it changed.
    fn directory(&mut self, config: &Config) -> Result<&mut Connected, JobError> {
        let m = config
            .marketing
            .as_ref()
            .ok_or_else(|| JobError::Config("[marketing] is not configured".into()))?;
        let key = source_key(m);
        if self.connected.as_ref().is_none_or(|c| c.key != key) {
            let src = source::open(&m.source_config())?;
            let engine = src.engine();
            let directory = Directory::new(src, m.parsed.clone(), config.dispatch.timezone);
            self.shared.set_directory(Some(directory.clone()));
            self.connected = Some(Connected {
                key,
                directory,
                engine,
                checked: Vec::new(),
            });
        }
        self.connected
            .as_mut()
            .ok_or_else(|| JobError::Config("no marketing source".into()))
    }

    /// Prepare the job's queries and name any required column they lack.
    async fn check_columns(
        &mut self,
        config: &Config,
        spec: &JobSpec,
    ) -> Result<Directory, JobError> {
        let conn = self.directory(config)?;
        let directory = conn.directory.clone();
        let pending: Vec<&'static str> = spec
            .queries
            .iter()
            .copied()
            .filter(|q| !conn.checked.contains(q))
            .collect();
        for name in pending {
            let (Some(spec_q), Some(query)) = (queries::spec(name), directory.queries().get(name))
            else {
                return Err(JobError::Config(format!(
                    "[marketing.queries] {name} is not configured"
                )));
            };
            let cols = directory.source().columns(query).await?;
            let missing = queries::missing_columns(spec_q, &cols);
            if !missing.is_empty() {
                return Err(JobError::Config(format!(
                    "[marketing.queries] {name}: missing column{} {} (the query returns {})",
                    if missing.len() > 1 { "s" } else { "" },
                    missing.join(", "),
                    cols.join(", ")
                )));
            }
            if let Some(c) = self.connected.as_mut() {
                c.checked.push(name);
            }
        }
        Ok(directory)
    }

    /// One run, recorded; returns the finished record.
    async fn run_job(
        &mut self,
        config: &Arc<Config>,
        spec: &JobSpec,
        trigger: &str,
        stop: &CancellationToken,
    ) -> Option<JobRun> {
        let started = self.shared.clock.now();
        let name = spec.name;
        let trig = trigger.to_owned();
        let run_id = match self
            .shared
            .store
            .call(move |c| store_jobs::start_run(c, name, &trig, started))
            .await
        {
            Ok(id) => id,
            Err(error) => {
                tracing::error!(job = name, %error, "cannot record a job run; retrying later");
                if let Some(st) = self.jobs.get_mut(name) {
                    st.next_due = started + TimeDelta::seconds(30);
                }
                return None;
            }
        };
        if let Some(st) = self.jobs.get_mut(name) {
            st.running = true;
        }
        self.publish(config, &configured_jobs(config));
        tracing::info!(job = name, run = run_id, trigger, "job run started");
        let mut stats = RunStats::default();
        let result = match self.check_columns(config, spec).await {
            Err(e) => Err(e),
            Ok(directory) => {
                let ctx = JobContext {
                    shared: self.shared.clone(),
                    config: config.clone(),
                    directory,
                    job: name,
                    run_id,
                    started,
                };
                tokio::select! {
                    r = spec.job.run(&ctx, &mut stats) => r,
                    _ = stop.cancelled() => Err(JobError::Stopped),
                }
            }
        };
        let finished = self.shared.clock.now();
        let error = result.as_ref().err().map(ToString::to_string);
        let transient = result.as_ref().err().is_some_and(JobError::is_transient);
        match &result {
            Ok(()) => tracing::info!(
                job = name,
                run = run_id,
                rows = stats.rows_read,
                queued = stats.queued,
                duplicates = stats.duplicates,
                skipped = stats.skipped_total(),
                cancelled = stats.cancelled,
                "job run finished"
            ),
            Err(e) => tracing::warn!(job = name, run = run_id, error = %e, "job run failed"),
        }
        let tz = config.dispatch.timezone;
        if let Some(st) = self.jobs.get_mut(name) {
            st.running = false;
            st.last_error = error.clone();
            if transient {
                st.failures += 1;
                let delay = retry_delay(st.failures, &spec.schedule);
                st.next_due =
                    finished + TimeDelta::from_std(delay).unwrap_or(TimeDelta::minutes(1));
            } else {
                st.failures = 0;
                st.next_due = next_after(&spec.schedule, finished.max(started), tz);
            }
        }
        if transient {
            self.unreachable_since.get_or_insert(started);
            self.source_error = error.clone();
            // A fresh source next time (a pool may hold dead connections).
            if let Some(c) = self.connected.as_mut() {
                c.checked.clear();
            }
        } else if !matches!(result, Err(JobError::Stopped) | Err(JobError::Store(_))) {
            if self.unreachable_since.take().is_some() {
                tracing::info!("marketing database reachable again");
            }
            self.source_error = None;
        }
        let stats2 = stats.clone();
        let err2 = error.clone();
        let recorded = self
            .shared
            .store
            .call(move |c| {
                store_jobs::finish_run(c, run_id, &stats2, err2.as_deref(), finished)?;
                store_jobs::get_run(c, run_id)
            })
            .await;
        self.publish(config, &configured_jobs(config));
        match recorded {
            Ok(run) => run,
            Err(error) => {
                tracing::error!(job = name, %error, "cannot record the end of a job run");
                None
            }
        }
    }
}

/// `check-config`: connect with the configured timeouts, prepare every configured query and
/// name missing columns. Returns one line per problem (empty: all good).
pub async fn check_source(m: &MarketingConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let src = match source::open(&m.source_config()) {
        Ok(s) => s,
        Err(e) => return vec![format!("marketing.url: {e}")],
    };
    if let Err(e) = src.ping().await {
        return vec![format!("marketing.url: {e}")];
    }
    for (name, query) in m.parsed.iter() {
        let Some(spec) = queries::spec(name) else {
            continue;
        };
        match src.columns(query).await {
            Ok(cols) => {
                let missing = queries::missing_columns(spec, &cols);
                if !missing.is_empty() {
                    problems.push(format!(
                        "marketing.queries.{name}: missing column{} {} (it returns {}; {})",
                        if missing.len() > 1 { "s" } else { "" },
                        missing.join(", "),
                        cols.join(", "),
                        spec.purpose
                    ));
                }
            }
            Err(e) => problems.push(format!("marketing.queries.{name}: {e}")),
        }
    }
    problems
}

/// The recent runs of every configured job, for the API.
pub async fn recent_runs(
    shared: &Shared,
    names: Vec<String>,
) -> Result<HashMap<String, Vec<JobRun>>, StoreError> {
    shared
        .store
        .call(move |c| {
            let mut out = HashMap::new();
            for n in names {
                let runs = store_jobs::recent_runs(c, &n, RECENT_RUNS)?;
                out.insert(n, runs);
            }
            Ok(out)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, TimeZone};

    #[test]
    fn daily_times_are_local_and_strictly_after() {
        let tz = chrono_tz::Asia::Shanghai;
        let s = Schedule::At(vec![
            NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
            NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
        ]);
        let at = |d, h, m| {
            tz.with_ymd_and_hms(2026, 11, d, h, m, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        assert_eq!(next_after(&s, at(28, 7, 0), tz), at(28, 8, 30));
        assert_eq!(next_after(&s, at(28, 8, 30), tz), at(28, 14, 0));
        assert_eq!(next_after(&s, at(28, 20, 0), tz), at(29, 8, 30));
        let e = Schedule::Every(Duration::from_secs(900));
        assert_eq!(next_after(&e, at(28, 7, 0), tz), at(28, 7, 15));
    }

    #[test]
    fn retries_double_from_30s_up_to_the_interval() {
        let e = Schedule::Every(Duration::from_secs(600));
        let d: Vec<u64> = (1..=6).map(|f| retry_delay(f, &e).as_secs()).collect();
        assert_eq!(d, vec![30, 60, 120, 240, 480, 600]);
        let a = Schedule::At(vec![]);
        assert_eq!(retry_delay(40, &a), Duration::from_secs(3600));
    }
}
