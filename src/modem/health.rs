//! Health: signal and registration polled on a timer (never inside a send batch), and the
//! circuit breaker that benches a modem failing again and again.

use tokio::time::Instant;
use tracing::warn;

use super::actor::{Actor, ExecError};
use super::recovery::Rung;
use super::{ModemEventKind, ModemState, PortOpener};
use crate::at::commands::{self, CEREG_QUERY, CREG_QUERY, CSQ};

impl<O: PortOpener> Actor<O> {
    /// `AT+CSQ` and `AT+CREG?` (`AT+CEREG?` when CREG says not registered, as LTE-only
    /// modules do); emits a health event when something changed.
    pub(super) async fn health_check(&mut self) {
        let before = (self.status.signal_dbm, self.status.registration);
        match self.exec(&CSQ, "AT+CSQ").await {
            Ok(lines) => self.status.signal_dbm = lines.iter().find_map(|l| commands::parse_csq(l)),
            Err(ExecError::Timeout) => {
                self.recovery_due = Some(Rung::Resync);
                return;
            }
            Err(ExecError::PortLost(_) | ExecError::NoPort) => return,
            Err(ExecError::Device(e)) => warn!(error = %e, "AT+CSQ"),
        }
        if let Err(ExecError::Timeout) = self.query_registration().await {
            self.recovery_due = Some(Rung::Resync);
            return;
        }
        if before != (self.status.signal_dbm, self.status.registration) {
            self.emit(ModemEventKind::Health(self.snapshot())).await;
        }
    }

    pub(super) async fn query_registration(&mut self) -> Result<(), ExecError> {
        let creg = self
            .exec(&CREG_QUERY, "AT+CREG?")
            .await
            .map(|lines| lines.iter().find_map(|l| commands::parse_reg_query(l)));
        let mut reg = match creg {
            Ok(r) => r,
            Err(ExecError::Device(_)) => None,
            Err(e) => return Err(e),
        };
        if !reg.as_ref().is_some_and(|r| r.status.is_registered())
            && let Ok(lines) = self.exec(&CEREG_QUERY, "AT+CEREG?").await
            && let Some(r) = lines.iter().find_map(|l| commands::parse_reg_query(l))
            && (r.status.is_registered() || reg.is_none())
        {
            reg = Some(r);
        }
        self.status.registration = reg.as_ref().map(|r| r.status);
        self.status.registered = reg.is_some_and(|r| r.status.is_registered());
        Ok(())
    }

    /// Count a failure; at the threshold the modem is benched for `bench_for`.
    pub(super) async fn note_failure(&mut self, reason: &str) {
        self.status.consecutive_failures += 1;
        if self.status.consecutive_failures < self.cfg.breaker_threshold {
            return;
        }
        warn!(
            failures = self.status.consecutive_failures,
            reason, "benching modem"
        );
        self.status.consecutive_failures = 0;
        self.recovery_due = None;
        self.retry_at = Some(Instant::now() + self.cfg.bench_for);
        self.set_state(ModemState::Benched).await;
        self.emit(ModemEventKind::Benched {
            for_secs: self.cfg.bench_for.as_secs(),
            reason: reason.to_string(),
        })
        .await;
    }
}
