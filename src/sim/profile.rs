//! Modem profiles: the identity strings and quirks of the three module families the bureau
//! deploys, as their vendors' AT manuals and field transcripts show them.
//!
//! A profile is static data; the AT server reads it to decide what to echo, which CNMI modes to
//! accept, which ICCID command exists, which URCs to print at boot and how to word errors.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Which real modem the simulator imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Quectel EC25 LTE Cat.4 module: RDY / +QIND boot URCs, `AT+QCCID`, 0-based indices,
    /// `+CEREG`, rejects unsupported CNMI values with `+CMS ERROR: 303`.
    QuectelEc25,
    /// SIMCom SIM800 GSM module: "Call Ready" / "SMS Ready", `AT+CCID` answering a bare line,
    /// 1-based indices, no `+CEREG`, no `+CDSI` (CNMI ds=2 rejected), prompt after ~20 ms.
    Sim800,
    /// Huawei E173 3G stick: keeps echoing after `ATE0`, ^RSSI / ^MODE / ^BOOT noise,
    /// `AT^ICCID?`, `AT^PORTSEL`, `AT^CURC`, no `+CEREG`, rejects CNMI ds=1 with a plain
    /// `ERROR`, slow prompt (~120 ms).
    HuaweiE173,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::QuectelEc25, Profile::Sim800, Profile::HuaweiE173];

    /// The name used on the command line and in `sim:PROFILE` device specs.
    pub fn name(self) -> &'static str {
        match self {
            Profile::QuectelEc25 => "quectel-ec25",
            Profile::Sim800 => "sim800",
            Profile::HuaweiE173 => "huawei-e173",
        }
    }

    pub(crate) fn spec(self) -> &'static ProfileSpec {
        match self {
            Profile::QuectelEc25 => &QUECTEL_EC25,
            Profile::Sim800 => &SIM800,
            Profile::HuaweiE173 => &HUAWEI_E173,
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown profile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown modem profile {0:?} (known: quectel-ec25, sim800, huawei-e173)")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == wanted)
            .ok_or_else(|| UnknownProfile(s.to_string()))
    }
}

/// How a profile answers the ICCID question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IccidStyle {
    /// `AT+QCCID` → `+QCCID: <iccid>`.
    Quectel,
    /// `AT+CCID` → bare `<iccid>` line.
    Simcom,
    /// `AT^ICCID?` → `^ICCID: <iccid>`.
    Huawei,
}

/// How a profile rejects a CNMI combination it does not support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    Cms303,
    PlainError,
}

/// One entry of the boot script: after `after` (from power-on), print `line` as a URC.
pub(crate) struct BootLine {
    pub after: Duration,
    pub line: &'static str,
    /// Once this line is out, SMS commands work (the module's "SMS DONE" / "SMS Ready").
    pub sms_ready: bool,
}

/// Static data of one profile.
pub(crate) struct ProfileSpec {
    pub manufacturer: &'static str,
    pub model: &'static str,
    pub revision: &'static str,
    /// Lines of `ATI` (before OK); `{imei}` is replaced.
    pub ati: &'static [&'static str],
    /// Echo stays on whatever ATE says (Huawei sticks in the field do this).
    pub sticky_echo: bool,
    pub default_cmee: u8,
    /// Time from `AT+CMGS=…` to the `> ` prompt.
    pub prompt_delay: Duration,
    pub default_cscs: &'static str,
    /// Default `+CNMI` after power-on: mode, mt, bm, ds, bfr.
    pub default_cnmi: [u8; 5],
    /// Accepted values of each CNMI parameter (bit n set = value n accepted).
    pub cnmi_allowed: [u8; 5],
    /// `AT+CNMI=?` answer.
    pub cnmi_test: &'static str,
    pub cnmi_rejection: Rejection,
    pub iccid: IccidStyle,
    pub has_cereg: bool,
    /// Access technology printed in +COPS? (None: field omitted, as GSM-only modules do).
    pub cops_act: Option<u8>,
    /// Index of the first storage slot (0 on Quectel and Huawei, 1 on SIMCom).
    pub index_base: usize,
    /// Storages: name and capacity; the first is the default for mem1/mem2/mem3.
    pub storages: &'static [(&'static str, usize)],
    pub boot: &'static [BootLine],
    /// Periodic vendor noise and its interval.
    pub noise: &'static [&'static str],
    pub noise_every: Option<Duration>,
    /// What the module prints when its SMS storage fills up.
    pub storage_full_urc: Option<&'static str>,
    pub csq: (u8, u8),
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// Boot scripts are compressed in time (a real EC25 needs ~12 s to SMS DONE) so tests stay
// quick; the order and wording are the vendors'.
static QUECTEL_EC25: ProfileSpec = ProfileSpec {
    manufacturer: "Quectel",
    model: "EC25",
    revision: "EC25EFAR06A08M4G",
    ati: &["Quectel", "EC25", "Revision: EC25EFAR06A08M4G"],
    sticky_echo: false,
    default_cmee: 1,
    prompt_delay: ms(0),
    default_cscs: "GSM",
    default_cnmi: [2, 1, 0, 0, 0],
    cnmi_allowed: [0b0111, 0b1111, 0b0101, 0b0111, 0b0011],
    cnmi_test: "+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)",
    cnmi_rejection: Rejection::Cms303,
    iccid: IccidStyle::Quectel,
    has_cereg: true,
    cops_act: Some(7),
    index_base: 0,
    storages: &[("SM", 50), ("ME", 255)],
    boot: &[
        BootLine {
            after: ms(0),
            line: "RDY",
            sms_ready: false,
        },
        BootLine {
            after: ms(40),
            line: "+CFUN: 1",
            sms_ready: false,
        },
        BootLine {
            after: ms(80),
            line: "+CPIN: READY",
            sms_ready: false,
        },
        BootLine {
            after: ms(100),
            line: "+QUSIM: 1",
            sms_ready: false,
        },
        BootLine {
            after: ms(150),
            line: "+QIND: SMS DONE",
            sms_ready: true,
        },
        BootLine {
            after: ms(200),
            line: "+QIND: PB DONE",
            sms_ready: false,
        },
    ],
    noise: &[],
    noise_every: None,
    storage_full_urc: Some("+QIND: \"smsfull\",\"SM\""),
    csq: (23, 99),
};

static SIM800: ProfileSpec = ProfileSpec {
    manufacturer: "SIMCOM_Ltd",
    model: "SIMCOM_SIM800",
    revision: "Revision:1418B04SIM800C24",
    ati: &["SIM800 R14.18"],
    sticky_echo: false,
    default_cmee: 0,
    prompt_delay: ms(20),
    default_cscs: "IRA",
    default_cnmi: [1, 1, 0, 0, 0],
    cnmi_allowed: [0b1111, 0b1111, 0b0101, 0b0011, 0b0011],
    cnmi_test: "+CNMI: (0-3),(0-3),(0,2),(0,1),(0,1)",
    cnmi_rejection: Rejection::Cms303,
    iccid: IccidStyle::Simcom,
    has_cereg: false,
    cops_act: None,
    index_base: 1,
    storages: &[("SM", 30), ("ME", 50)],
    boot: &[
        BootLine {
            after: ms(0),
            line: "RDY",
            sms_ready: false,
        },
        BootLine {
            after: ms(40),
            line: "+CFUN: 1",
            sms_ready: false,
        },
        BootLine {
            after: ms(80),
            line: "+CPIN: READY",
            sms_ready: false,
        },
        BootLine {
            after: ms(150),
            line: "Call Ready",
            sms_ready: false,
        },
        BootLine {
            after: ms(180),
            line: "SMS Ready",
            sms_ready: true,
        },
    ],
    noise: &[],
    noise_every: None,
    storage_full_urc: None,
    csq: (19, 0),
};

static HUAWEI_E173: ProfileSpec = ProfileSpec {
    manufacturer: "huawei",
    model: "E173",
    revision: "11.126.85.00.209",
    ati: &[
        "Manufacturer: huawei",
        "Model: E173",
        "Revision: 11.126.85.00.209",
        "IMEI: {imei}",
        "+GCAP: +CGSM,+DS,+ES",
    ],
    sticky_echo: true,
    default_cmee: 0,
    prompt_delay: ms(120),
    default_cscs: "IRA",
    default_cnmi: [0, 0, 0, 0, 0],
    cnmi_allowed: [0b0111, 0b1111, 0b0101, 0b0101, 0b0011],
    cnmi_test: "+CNMI: (0,1,2),(0,1,2,3),(0,2),(0,2),(0,1)",
    cnmi_rejection: Rejection::PlainError,
    iccid: IccidStyle::Huawei,
    has_cereg: false,
    cops_act: Some(2),
    index_base: 0,
    storages: &[("SM", 20), ("ME", 100)],
    boot: &[
        BootLine {
            after: ms(0),
            line: "^BOOT:20357121,0,0,0,72",
            sms_ready: false,
        },
        BootLine {
            after: ms(60),
            line: "^SRVST:2",
            sms_ready: false,
        },
        BootLine {
            after: ms(100),
            line: "^MODE:5,4",
            sms_ready: true,
        },
        BootLine {
            after: ms(120),
            line: "^RSSI:18",
            sms_ready: false,
        },
    ],
    noise: &[
        "^RSSI:18",
        "^BOOT:20357121,0,0,0,72",
        "^RSSI:17",
        "^MODE:5,4",
    ],
    noise_every: Some(Duration::from_millis(1500)),
    storage_full_urc: Some("^SMMEMFULL: \"SM\""),
    csq: (18, 99),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(p.to_string().parse::<Profile>(), Ok(p));
        }
        assert_eq!("SIM800".parse::<Profile>(), Ok(Profile::Sim800));
        assert!("nokia-3310".parse::<Profile>().is_err());
    }

    #[test]
    fn default_cnmi_is_accepted_by_its_own_profile() {
        for p in Profile::ALL {
            let s = p.spec();
            for (i, v) in s.default_cnmi.iter().enumerate() {
                assert!(s.cnmi_allowed[i] & (1 << v) != 0, "{p} cnmi[{i}]");
            }
            assert!(
                s.boot.iter().any(|b| b.sms_ready),
                "{p} never becomes SMS ready"
            );
        }
    }
}
