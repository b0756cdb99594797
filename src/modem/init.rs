//! The init sequence, one timeout per step: sync, ATE0, CMEE, PIN (entered at most once),
//! identity (standard and vendor ICCID commands), PDU mode, SMSC, storage, CNMI with
//! fallbacks, registration, operator, signal. Steps that only inform (identity, operator) do
//! not fail init; steps the driver depends on (sync, SIM ready, PDU mode) do.

use std::time::Duration;

use tokio::time::{Instant, sleep};
use tracing::{info, warn};

use super::actor::{Actor, ExecError};
use super::{ModemEventKind, ModemIdentity, ModemState, PortOpener};
use crate::at::commands::{
    self, AT, CGMI, CGMM, CGMR, CGSN, CIMI, CMEE, CMGF, CNMI, CNMI_FALLBACKS, CNUM, COPS_FORMAT,
    COPS_QUERY, CPIN_ENTER, CPIN_QUERY, CPMS, CSCA_QUERY, CSCA_SET, CSMS_QUERY, CSQ, ECHO_OFF,
    ICCID, PinState,
};

/// Why init stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InitError {
    #[error("no answer to AT")]
    NoResponse,
    #[error("SIM: {0}")]
    Sim(String),
    #[error("{step}: {error}")]
    Step { step: &'static str, error: String },
    #[error("serial port lost: {0}")]
    PortLost(String),
}

fn step(step: &'static str) -> impl Fn(ExecError) -> InitError {
    move |e| match e {
        ExecError::PortLost(why) => InitError::PortLost(why),
        ExecError::NoPort => InitError::PortLost("port not open".into()),
        other => InitError::Step {
            step,
            error: other.to_string(),
        },
    }
}

/// Vendor ICCID commands, tried in order until one answers with an ICCID.
const ICCID_COMMANDS: &[&str] = &["AT+CCID", "AT+QCCID", "AT^ICCID?", "AT+CICCID", "AT+ICCID"];

/// How long to wait for the SIM after entering the PIN.
const SIM_READY_WAIT: Duration = Duration::from_secs(10);
/// How long SMS commands may answer "SIM busy" after boot (the SIM's SMS files are read
/// only after `+CPIN: READY`; modules say "SMS Ready" / "+QIND: SMS DONE" when done).
const SMS_BUSY_WAIT: Duration = Duration::from_secs(30);

/// "Busy, try again shortly": CMS 314 (SIM busy), 515 (init in progress), CME 14.
fn is_busy(e: &ExecError) -> bool {
    use crate::at::ErrorFamily;
    matches!(e, ExecError::Device(d)
        if matches!((d.family, d.code), (ErrorFamily::Cms, Some(314 | 515)) | (ErrorFamily::Cme, Some(14))))
}

impl<O: PortOpener> Actor<O> {
    /// Run init; on success the modem is Ready, `Ready` and `Health` events are out and a
    /// sweep is due.
    pub(super) async fn initialise(&mut self) -> Result<(), crate::modem::init::InitError> {
        self.set_state(ModemState::Initialising).await;
        match self.init_steps().await {
            Ok(identity) => {
                info!(?identity, "modem ready");
                self.status.identity = Some(identity.clone());
                self.status.operator = identity.operator.clone();
                self.status.last_error = None;
                self.status.consecutive_failures = 0;
                let now = Instant::now();
                self.health_at = now + self.cfg.health_interval;
                self.sweep_at = now + self.cfg.sweep_interval;
                self.sweep_due = true;
                self.set_state(ModemState::Ready).await;
                self.emit(ModemEventKind::Ready(identity)).await;
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "init failed");
                self.status.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    async fn sync(&mut self) -> Result<(), InitError> {
        // ESC abandons a PDU a previous owner left half-typed; then AT until OK, flushing
        // boot noise through the digester on the way.
        self.write(b"\x1b").await.map_err(step("sync"))?;
        for _ in 0..5 {
            match self.exec(&AT, "AT").await {
                Ok(_) => return Ok(()),
                Err(ExecError::PortLost(why)) => return Err(InitError::PortLost(why)),
                Err(ExecError::NoPort) => return Err(InitError::PortLost("port not open".into())),
                Err(_) => {}
            }
        }
        Err(InitError::NoResponse)
    }

    async fn sim_ready(&mut self) -> Result<(), InitError> {
        let state = match self.exec(&CPIN_QUERY, "AT+CPIN?").await {
            Ok(lines) => lines.iter().find_map(|l| commands::parse_cpin(l)),
            Err(ExecError::Device(e)) => return Err(InitError::Sim(e.to_string())),
            Err(e) => return Err(step("CPIN?")(e)),
        };
        match state {
            Some(PinState::Ready) => Ok(()),
            Some(PinState::SimPin) => {
                let Some(pin) = self.cfg.pin.clone() else {
                    return Err(InitError::Sim(
                        "SIM PIN required and none configured".into(),
                    ));
                };
                if self.pin_entered {
                    return Err(InitError::Sim(
                        "SIM PIN required again; the configured PIN was already tried once and is not retried".into(),
                    ));
                }
                self.pin_entered = true;
                if let Err(e) = self.exec(&CPIN_ENTER, &format!("AT+CPIN=\"{pin}\"")).await {
                    return Err(InitError::Sim(format!(
                        "configured PIN rejected ({e}); not retried"
                    )));
                }
                let deadline = Instant::now() + SIM_READY_WAIT;
                while Instant::now() < deadline {
                    sleep(Duration::from_millis(500)).await;
                    if let Ok(lines) = self.exec(&CPIN_QUERY, "AT+CPIN?").await
                        && lines.iter().find_map(|l| commands::parse_cpin(l))
                            == Some(PinState::Ready)
                    {
                        return Ok(());
                    }
                }
                Err(InitError::Sim("SIM not ready after PIN".into()))
            }
            Some(other) => Err(InitError::Sim(Self::pin_state_error(&other))),
            None => Err(InitError::Sim("no +CPIN answer".into())),
        }
    }

    /// [`Actor::exec`], repeated while the modem says it is busy booting.
    async fn exec_patient(
        &mut self,
        meta: &commands::CommandMeta,
        cmd: &str,
    ) -> Result<Vec<String>, ExecError> {
        let deadline = Instant::now() + SMS_BUSY_WAIT;
        loop {
            match self.exec(meta, cmd).await {
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    sleep(Duration::from_millis(250)).await
                }
                other => return other,
            }
        }
    }

    async fn first_line(&mut self, meta: &commands::CommandMeta, cmd: &str) -> Option<String> {
        let lines = self.exec(meta, cmd).await.ok()?;
        lines
            .iter()
            .map(|l| commands::parse_text(l, meta.prefixes))
            .find(|s| !s.is_empty())
    }

    async fn identity(&mut self) -> ModemIdentity {
        let mut id = ModemIdentity {
            manufacturer: self.first_line(&CGMI, "AT+CGMI").await,
            model: self.first_line(&CGMM, "AT+CGMM").await,
            revision: self.first_line(&CGMR, "AT+CGMR").await,
            ..ModemIdentity::default()
        };
        if let Ok(lines) = self.exec(&CGSN, "AT+CGSN").await {
            id.imei = lines
                .iter()
                .find_map(|l| commands::parse_digits(l, "+CGSN:"));
        }
        // The SIM may still be busy reading its files right after PIN entry.
        for _ in 0..3 {
            match self.exec_patient(&CIMI, "AT+CIMI").await {
                Ok(lines) => {
                    id.imsi = lines
                        .iter()
                        .find_map(|l| commands::parse_digits(l, "+CIMI:"));
                    break;
                }
                Err(ExecError::Device(_)) => sleep(Duration::from_millis(500)).await,
                Err(_) => break,
            }
        }
        for cmd in ICCID_COMMANDS {
            if let Ok(lines) = self.exec(&ICCID, cmd).await
                && let Some(iccid) = lines.iter().find_map(|l| commands::parse_iccid(l))
            {
                id.iccid = Some(iccid);
                break;
            }
            if self.port.is_none() {
                break;
            }
        }
        id
    }

    async fn init_steps(&mut self) -> Result<ModemIdentity, InitError> {
        self.ingress.clear();
        self.sync().await?;
        // Echo off and numeric errors are wishes: the digester copes with either.
        let _ = self.exec(&ECHO_OFF, "ATE0").await.map_err(step("ATE0"));
        let _ = self.exec(&CMEE, "AT+CMEE=1").await;
        self.sim_ready().await?;
        let mut id = self.identity().await;
        self.exec_patient(&CMGF, "AT+CMGF=0")
            .await
            .map_err(step("AT+CMGF=0 (PDU mode)"))?;

        let current = match self.exec_patient(&CSCA_QUERY, "AT+CSCA?").await {
            Ok(lines) => lines.iter().find_map(|l| commands::parse_csca(l)),
            Err(_) => None,
        };
        id.smsc = current.clone();
        if let Some(want) = self.cfg.smsc.clone() {
            let same = current.as_deref().map(|c| c.trim_start_matches('+'))
                == Some(want.trim_start_matches('+'));
            if !same {
                let toa = if want.starts_with('+') { 145 } else { 129 };
                self.exec_patient(&CSCA_SET, &format!("AT+CSCA=\"{want}\",{toa}"))
                    .await
                    .map_err(step("AT+CSCA (set SMSC)"))?;
                id.smsc = Some(want);
            }
        }

        if self
            .exec_patient(&CPMS, "AT+CPMS=\"SM\",\"SM\",\"SM\"")
            .await
            .is_err()
        {
            let _ = self.exec_patient(&CPMS, "AT+CPMS?").await;
        }
        self.needs_cnma = match self.exec_patient(&CSMS_QUERY, "AT+CSMS?").await {
            Ok(lines) => lines
                .iter()
                .find_map(|l| commands::parse_csms_needs_ack(l))
                .unwrap_or(false),
            Err(_) => false,
        };
        self.status.cnmi = None;
        for mode in CNMI_FALLBACKS {
            match self.exec_patient(&CNMI, &format!("AT+CNMI={mode}")).await {
                Ok(_) => {
                    self.status.cnmi = Some((*mode).to_string());
                    break;
                }
                Err(ExecError::Device(_)) => continue,
                Err(e) => return Err(step("AT+CNMI")(e)),
            }
        }
        if self.status.cnmi.is_none() {
            warn!("modem accepted no AT+CNMI mode; inbound messages arrive by sweep only");
        }

        self.query_registration()
            .await
            .map_err(step("registration"))?;
        let _ = self.exec(&COPS_FORMAT, "AT+COPS=3,0").await;
        if let Ok(lines) = self.exec(&COPS_QUERY, "AT+COPS?").await {
            id.operator = lines.iter().find_map(|l| commands::parse_cops(l));
        }
        if let Ok(lines) = self.exec(&CSQ, "AT+CSQ").await {
            self.status.signal_dbm = lines.iter().find_map(|l| commands::parse_csq(l));
        }
        if let Ok(lines) = self.exec(&CNUM, "AT+CNUM").await {
            id.own_number = lines.iter().find_map(|l| commands::parse_cnum(l));
        }
        if let Some(why) = self.lost.clone() {
            return Err(InitError::PortLost(why));
        }
        Ok(id)
    }
}
