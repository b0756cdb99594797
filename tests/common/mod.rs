//! Harness for the daemon's integration tests: simulated modems the TEST owns (so it can inject
//! faults and read what each SIM received), a config in a tempdir pointing at their pty links,
//! token files, and the daemon started in-process (`daemon::start`) or as the built binary
//! (for signals and kill -9). HTTP goes through `ureq` on a blocking thread.
#![allow(dead_code)]

pub mod mkdb;

use gridsms::clock::{Clock, ManualClock, SystemClock};
use gridsms::daemon::pool::simulated_identity;
use gridsms::daemon::{self, RunOptions, Running};
use gridsms::sim::{self, Profile, SimHandle, SimOptions};
use gridsms::systemd::Notifier;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";
pub const READ_TOKEN: &str = "read-token-0123456789abcdef";
pub const SEND_TOKEN: &str = "send-token-0123456789abcdef";

/// Generous bound for anything that should happen "soon" (waits, never assertions on speed).
pub const SOON: Duration = Duration::from_secs(30);

/// Carriers by the MNC a simulated SIM's IMSI carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mnc {
    Mobile,
    Unicom,
    Telecom,
}

/// One simulated modem the test spawns and the config names.
pub struct ModemSpec {
    pub name: String,
    pub mnc: Mnc,
    pub options: SimOptions,
    /// Extra `key = value` lines for its `[[modem]]` table.
    pub extra: String,
}

pub fn modem(name: &str, mnc: Mnc) -> ModemSpec {
    let mut options = SimOptions::new(Profile::QuectelEc25);
    options.send_delay = Duration::from_millis(5);
    options.report_delay = Duration::from_millis(20);
    let index = match mnc {
        Mnc::Mobile => 0,
        Mnc::Unicom => 1,
        Mnc::Telecom => 2,
    };
    options.identity = simulated_identity(index, name);
    ModemSpec {
        name: name.to_owned(),
        mnc,
        options,
        extra: String::new(),
    }
}

impl ModemSpec {
    pub fn extra(mut self, lines: &str) -> Self {
        self.extra.push_str(lines);
        self.extra.push('\n');
        self
    }
    pub fn send_delay(mut self, d: Duration) -> Self {
        self.options.send_delay = d;
        self
    }
}

/// A test environment: tempdir, simulators, config file.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub sims: BTreeMap<String, SimHandle>,
    pub specs: Vec<(String, String)>, // (name, extra toml)
    pub dispatch: String,
    pub listen: String,
    pub config_path: PathBuf,
}

impl Env {
    /// Spawns the simulators and writes the config (listen 127.0.0.1:0 unless `listen` is set).
    pub async fn new(modems: Vec<ModemSpec>, dispatch: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        for (file, secret) in [
            ("admin.token", ADMIN_TOKEN),
            ("read.token", READ_TOKEN),
            ("send.token", SEND_TOKEN),
        ] {
            let path = dir.path().join(file);
            std::fs::write(&path, secret).expect("token file");
            set_private(&path);
        }
        let mut env = Env {
            config_path: dir.path().join("gridsms.toml"),
            dir,
            sims: BTreeMap::new(),
            specs: Vec::new(),
            dispatch: dispatch.to_owned(),
            listen: "127.0.0.1:0".to_owned(),
        };
        for m in modems {
            env.add_modem(m).await;
        }
        env.write_config();
        env
    }

    /// Spawns one more simulator and lists it (call `write_config` to publish it).
    pub async fn add_modem(&mut self, m: ModemSpec) {
        let link = self.link_path(&m.name);
        let handle = sim::spawn_linked(m.options, &link)
            .await
            .expect("spawn simulator");
        self.sims.insert(m.name.clone(), handle);
        self.specs.push((m.name, m.extra));
    }

    pub fn link_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("tty-{name}"))
    }

    pub fn storage_path(&self) -> PathBuf {
        self.dir.path().join("data").join("gridsms.db")
    }

    pub fn config_text(&self) -> String {
        let mut t = format!(
            "[storage]\npath = {:?}\n\n",
            self.storage_path().display().to_string()
        );
        for (name, extra) in &self.specs {
            t.push_str(&format!(
                "[[modem]]\nname = {name:?}\ndevice = {:?}\nmin_interval = \"0s\"\nsend_timeout = \"10s\"\n{extra}\n",
                self.link_path(name).display().to_string()
            ));
        }
        t.push_str("[dispatch]\n");
        t.push_str(&self.dispatch);
        t.push_str(&format!(
            "\n\n[api]\nlisten = {:?}\n\n\
             [[api.tokens]]\nname = \"admin\"\nsecret_file = \"admin.token\"\nscopes = [\"admin\"]\n\n\
             [[api.tokens]]\nname = \"reader\"\nsecret_file = \"read.token\"\nscopes = [\"read\"]\n\n\
             [[api.tokens]]\nname = \"sender\"\nsecret_file = \"send.token\"\nscopes = [\"read\", \"send\"]\n\n\
             [log]\nlevel = \"warn\"\n",
            self.listen
        ));
        t
    }

    pub fn write_config(&self) {
        std::fs::write(&self.config_path, self.config_text()).expect("write config");
    }

    pub fn sim(&self, name: &str) -> &SimHandle {
        self.sims.get(name).expect("no such simulator")
    }

    /// Segments every simulator received, by simulator name.
    pub fn sent_by(&self) -> BTreeMap<String, Vec<sim::SentSms>> {
        self.sims
            .iter()
            .map(|(n, s)| (n.clone(), s.sent()))
            .collect()
    }

    pub fn sent_total(&self) -> usize {
        self.sims.values().map(|s| s.sent_total()).sum()
    }

    /// The simulators' send timing, summed over all of them.
    #[allow(dead_code)]
    pub fn send_timing(&self) -> gridsms::sim::SendTiming {
        self.sims
            .values()
            .map(|s| s.send_timing())
            .fold(Default::default(), |sum, t| sum + t)
    }

    /// Starts the daemon in this process.
    pub async fn start(&self, clock: Arc<dyn Clock>) -> Daemon {
        let loaded = gridsms::config::load(&self.config_path).expect("config loads");
        let running = daemon::start(
            loaded.config,
            &self.config_path,
            RunOptions {
                clock,
                notifier: Notifier::disabled(),
                grace: Duration::from_secs(20),
            },
        )
        .await
        .expect("daemon starts");
        let api = Api::new(running.api_addr.to_string(), ADMIN_TOKEN);
        Daemon { running, api }
    }

    pub async fn start_now(&self) -> Daemon {
        self.start(Arc::new(SystemClock)).await
    }

    /// Starts the built binary with this config; its API must listen on a fixed port (set
    /// `listen` first).
    pub fn spawn_binary(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_gridsms"))
            .arg("run")
            .arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .spawn()
            .expect("spawn gridsms")
    }

    pub async fn shutdown_sims(&mut self) {
        let sims = std::mem::take(&mut self.sims);
        for (_, s) in sims {
            s.shutdown().await;
        }
    }
}

/// A 127.0.0.1 port that was free a moment ago (for the binary, which cannot report it).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

/// A daemon started in-process.
pub struct Daemon {
    pub running: Running,
    pub api: Api,
}

impl Daemon {
    pub fn wake(&self) {
        self.running.shared.wake.notify_one();
    }

    pub async fn stop(self) {
        self.running.shutdown().await;
    }
}

/// Blocking JSON client, used through `spawn_blocking`.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(addr: String, token: &str) -> Api {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Api {
            base: format!("http://{addr}"),
            token: Some(token.to_owned()),
            agent,
        }
    }

    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    /// (status, body); a non-JSON body comes back as a JSON string.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let this = self.clone();
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || this.get_blocking(&path))
            .await
            .expect("join")
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let this = self.clone();
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || this.post_blocking(&path, &body))
            .await
            .expect("join")
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let this = self.clone();
        let path = path.to_owned();
        let body = body.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut req = this
                .agent
                .post(format!("{}{path}", this.base))
                .header("Content-Type", "application/json");
            if let Some(t) = &this.token {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            read(req.send(body.as_bytes()).expect("request"))
        })
        .await
        .expect("join")
    }

    pub fn get_blocking(&self, path: &str) -> (u16, Value) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        read(req.call().expect("request"))
    }

    pub fn try_get_blocking(&self, path: &str) -> Option<(u16, Value)> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        req.call().ok().map(read)
    }

    pub fn post_blocking(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        read(req.send_json(body).expect("request"))
    }

    /// POST a message; panics unless 202; returns the ids.
    pub async fn send(&self, body: Value) -> Vec<i64> {
        let (status, reply) = self.post("/api/v1/messages", body.clone()).await;
        assert_eq!(status, 202, "POST {body} → {reply}");
        reply["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_i64().expect("id"))
            .collect()
    }

    pub async fn message(&self, id: i64) -> Value {
        let (status, body) = self.get(&format!("/api/v1/messages/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn state(&self, id: i64) -> String {
        self.message(id).await["state"]
            .as_str()
            .unwrap_or("?")
            .to_owned()
    }

    /// Waits (bounded) until message `id` is in one of `states`; returns the message.
    pub async fn wait_state(&self, id: i64, states: &[&str], timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.message(id).await;
            let s = m["state"].as_str().unwrap_or("?");
            if states.contains(&s) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "message {id} still {s} (wanted {states:?}): {m}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn queue(&self) -> Value {
        let (status, body) = self.get("/api/v1/queue").await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Waits (bounded) until `check` holds.
pub async fn wait_until<F: FnMut() -> bool>(what: &str, timeout: Duration, mut check: F) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A manual clock at a local (Asia/Shanghai) wall-clock time on a fixed day.
pub fn shanghai(hour: u32, minute: u32) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 3, 10, hour, minute, 0)
        .single()
        .expect("valid local time")
        .with_timezone(&chrono::Utc)
}

pub fn manual_clock(hour: u32, minute: u32) -> (ManualClock, Arc<dyn Clock>) {
    let c = ManualClock::new(shanghai(hour, minute));
    (c.clone(), Arc::new(c))
}

/// The number as the simulator shows it.
pub fn intl(local: &str) -> String {
    format!("+86{local}")
}
