//! The recovery ladder (resync → re-init → reopen the port → `AT+CFUN=1,1` where allowed) and
//! the reopen loop for a device that vanished, with exponential backoff.

use std::time::Duration;

use tokio::time::{Instant, sleep};
use tracing::{info, warn};

use super::actor::{Actor, ExecError};
use super::{ModemEventKind, ModemState, PortOpener};
use crate::at::commands::{AT, CFUN_RESET};

/// Rungs of the ladder, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rung {
    /// ESC, then `AT` until `OK`.
    Resync,
    /// The whole init sequence.
    Reinit,
    /// Close and reopen the port, then init.
    Reopen,
    /// `AT+CFUN=1,1` (only with `allow_cfun_reset`), then reopen when the device is back.
    Reset,
}

/// Time a modem needs to come back after `AT+CFUN=1,1`.
const RESET_WAIT: Duration = Duration::from_secs(10);

impl<O: PortOpener> Actor<O> {
    pub(super) async fn recover(&mut self, from: Rung) {
        info!(?from, "recovering");
        self.set_state(ModemState::Recovering).await;
        for rung in [Rung::Resync, Rung::Reinit, Rung::Reopen, Rung::Reset] {
            if rung < from {
                continue;
            }
            if *self.stop.borrow() {
                return;
            }
            let ok = match rung {
                Rung::Resync => {
                    if self.resync().await.is_ok() && self.status.identity.is_some() {
                        self.set_state(ModemState::Ready).await;
                        true
                    } else {
                        false
                    }
                }
                Rung::Reinit => self.port.is_some() && self.initialise().await.is_ok(),
                Rung::Reopen => {
                    self.port = None;
                    self.ingress.clear();
                    sleep(Duration::from_millis(200)).await;
                    self.open_port() && self.initialise().await.is_ok()
                }
                Rung::Reset => {
                    if !self.cfg.allow_cfun_reset || self.port.is_none() {
                        continue;
                    }
                    let _ = self.exec(&CFUN_RESET, "AT+CFUN=1,1").await;
                    self.port = None;
                    self.ingress.clear();
                    self.lost = None;
                    self.go_down("reset with AT+CFUN=1,1").await;
                    self.retry_at = Some(Instant::now() + RESET_WAIT);
                    return;
                }
            };
            if ok {
                info!(?rung, "recovered");
                self.lost = None;
                return;
            }
        }
        self.lost = None;
        let reason = self
            .status
            .last_error
            .clone()
            .unwrap_or_else(|| "recovery failed".into());
        self.go_down(&reason).await;
        self.note_failure(&reason).await;
    }

    /// ESC (abandons a half-typed PDU) then `AT` until `OK`, a few times.
    pub(super) async fn resync(&mut self) -> Result<(), ExecError> {
        self.write(b"\x1b").await?;
        self.ingress.clear();
        let mut last = ExecError::Timeout;
        for _ in 0..AT.attempts.max(1) + 2 {
            match self.exec(&AT, "AT").await {
                Ok(_) => return Ok(()),
                Err(e @ (ExecError::PortLost(_) | ExecError::NoPort)) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub(super) fn open_port(&mut self) -> bool {
        match self.opener.open() {
            Ok(port) => {
                self.port = Some(port);
                self.ingress.clear();
                self.lost = None;
                true
            }
            Err(e) => {
                self.status.last_error = Some(format!("open {}: {e}", self.cfg.device));
                false
            }
        }
    }

    /// The modem stops taking sends; the retry timer reopens and re-initialises it.
    pub(super) async fn go_down(&mut self, reason: &str) {
        self.port = None;
        self.ingress.clear();
        self.pending_reads.clear();
        self.retry_at = Some(Instant::now() + self.backoff);
        if self.status.state != ModemState::Down {
            warn!(reason, "modem down");
            self.status.last_error = Some(reason.to_string());
            self.set_state(ModemState::Down).await;
            self.emit(ModemEventKind::Down {
                reason: reason.to_string(),
            })
            .await;
        }
    }

    /// Retry timer: open the port if needed and run init. Used at start, after an unplug,
    /// after a reset and when a bench period ends.
    pub(super) async fn restart(&mut self) {
        if self.port.is_none() && !self.open_port() {
            self.schedule_retry();
            if self.status.state == ModemState::Initialising {
                let reason = self.status.last_error.clone().unwrap_or_default();
                self.go_down(&reason).await;
            }
            return;
        }
        match self.initialise().await {
            Ok(()) => self.backoff = self.cfg.reopen_backoff_min,
            Err(e) => {
                let reason = e.to_string();
                self.lost = None;
                self.go_down(&reason).await;
                self.schedule_retry();
            }
        }
    }

    fn schedule_retry(&mut self) {
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.cfg.reopen_backoff_max);
    }
}
