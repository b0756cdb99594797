//! Shared rig for the modem integration tests: a simulated modem on a pty and an actor on it.
#![allow(dead_code)]

use std::time::Duration;

use gridsms::modem::{
    self, ModemConfig, ModemEvent, ModemEventKind, ModemHandle, ModemIdentity, SendError,
};
use gridsms::pdu::{self, SubmitOptions};
use gridsms::sim::{self, Profile, SimHandle, SimOptions};
use tokio::sync::mpsc;

/// Hang guard only: generous, never part of what a test asserts.
pub const GUARD: Duration = Duration::from_secs(60);

pub struct Rig {
    /// Holds the simulator's symlink: after an unplug the pty comes back under a new
    /// /dev/pts number, and the link is how the driver finds it (as udev links do).
    pub dir: tempfile::TempDir,
    pub sim: SimHandle,
    pub modem: ModemHandle,
    pub events: mpsc::Receiver<ModemEvent>,
    pub identity: ModemIdentity,
}

pub fn config(device: &str) -> ModemConfig {
    let mut c = ModemConfig::new("test-modem", device);
    c.send_timeout = Duration::from_secs(5);
    c.prompt_timeout = Duration::from_secs(5);
    c.reopen_backoff_min = Duration::from_millis(100);
    c.reopen_backoff_max = Duration::from_secs(1);
    c.sweep_interval = Duration::from_secs(3600);
    c.health_interval = Duration::from_secs(3600);
    c
}

impl Rig {
    pub async fn start(profile: Profile) -> Rig {
        Self::start_with(SimOptions::new(profile), |_| {}).await
    }

    pub async fn start_with(options: SimOptions, adjust: impl FnOnce(&mut ModemConfig)) -> Rig {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = sim::spawn_linked(options, &dir.path().join("modem"))
            .await
            .expect("simulator starts");
        let mut cfg = config(&sim.device_path().to_string_lossy());
        adjust(&mut cfg);
        let (tx, mut events) = mpsc::channel(256);
        let modem = modem::spawn(cfg, tx);
        let identity = match next_event(&mut events, |k| {
            matches!(k, ModemEventKind::Ready(_) | ModemEventKind::Down { .. })
        })
        .await
        {
            ModemEventKind::Ready(id) => id,
            other => panic!("modem did not become ready: {other:?}"),
        };
        Rig {
            dir,
            sim,
            modem,
            events,
            identity,
        }
    }

    pub async fn send(&self, to: &str, text: &str, report: bool) -> Result<Vec<u8>, SendError> {
        let options = SubmitOptions {
            status_report: report,
            ..SubmitOptions::default()
        };
        let segments = pdu::encode_submit(to, text, &options).expect("encodes");
        tokio::time::timeout(GUARD, self.modem.send(segments))
            .await
            .expect("send does not hang")
    }

    pub async fn next(&mut self, pred: impl Fn(&ModemEventKind) -> bool) -> ModemEventKind {
        next_event(&mut self.events, pred).await
    }

    pub async fn stop(self) {
        tokio::time::timeout(GUARD, self.modem.shutdown())
            .await
            .expect("actor stops");
        self.sim.shutdown().await;
        drop(self.dir);
    }

    /// Inject a fault and give the simulator's task a moment to apply it before the next
    /// command reaches it (the two travel on different paths: channel and pty).
    pub async fn fault(&self, fault: gridsms::sim::Fault) {
        self.sim.inject_fault(fault);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub async fn next_event(
    rx: &mut mpsc::Receiver<ModemEvent>,
    pred: impl Fn(&ModemEventKind) -> bool,
) -> ModemEventKind {
    loop {
        let ev = tokio::time::timeout(GUARD, rx.recv())
            .await
            .expect("expected event did not come (hang guard)")
            .expect("event channel open");
        if pred(&ev.kind) {
            return ev.kind;
        }
    }
}
