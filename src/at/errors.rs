//! Final error results of AT commands (`ERROR`, `+CMS ERROR`, `+CME ERROR`) mapped to named
//! errors and to the one thing the caller needs to decide: a [`RetryClass`].
//!
//! Codes come from 3GPP TS 27.005 §3.2.5 (CMS, including the TS 24.011 RP causes and TS 23.040
//! TP-FCS values a modem passes through) and TS 27.007 §9.2 (CME), plus the manufacturer
//! range 512–515 as Quectel, SIMCom and u-blox use it. Modems set to `AT+CMEE=2` print the
//! standard text instead of the number; [`DeviceError::parse`] maps such texts back to codes.

use std::fmt;

/// What the caller should do with a message (or command) that failed with this error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryClass {
    /// Transient: try again on the same modem after a short pause.
    RetryHere,
    /// The message is fine but this SIM / modem / network cannot take it now: hand it to
    /// another modem.
    RetryOtherModem,
    /// The message itself (recipient, PDU) is refused: do not retry it anywhere.
    PermanentForMessage,
    /// The modem is in a state it must be recovered from (re-init, reopen, reset); the message
    /// goes to another modem meanwhile.
    ModemNeedsRecovery,
}

impl RetryClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryClass::RetryHere => "retry_here",
            RetryClass::RetryOtherModem => "retry_other_modem",
            RetryClass::PermanentForMessage => "permanent_for_message",
            RetryClass::ModemNeedsRecovery => "modem_needs_recovery",
        }
    }
}

impl fmt::Display for RetryClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One known error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub code: u16,
    /// Short snake_case name, stable for logs and metrics.
    pub name: &'static str,
    /// The standard's text (what `AT+CMEE=2` prints).
    pub meaning: &'static str,
    pub class: RetryClass,
}

use RetryClass::{
    ModemNeedsRecovery as Rec, PermanentForMessage as Perm, RetryHere as Here,
    RetryOtherModem as Other,
};

const fn ci(code: u16, name: &'static str, meaning: &'static str, class: RetryClass) -> CodeInfo {
    CodeInfo {
        code,
        name,
        meaning,
        class,
    }
}

/// `+CMS ERROR` codes.
pub static CMS_CODES: &[CodeInfo] = &[
    ci(
        1,
        "unassigned_number",
        "Unassigned (unallocated) number",
        Perm,
    ),
    ci(8, "operator_barring", "Operator determined barring", Other),
    ci(10, "call_barred", "Call barred", Other),
    ci(
        21,
        "sm_transfer_rejected",
        "Short message transfer rejected",
        Other,
    ),
    ci(
        27,
        "destination_out_of_service",
        "Destination out of service",
        Here,
    ),
    ci(
        28,
        "unidentified_subscriber",
        "Unidentified subscriber",
        Perm,
    ),
    ci(29, "facility_rejected", "Facility rejected", Other),
    ci(30, "unknown_subscriber", "Unknown subscriber", Perm),
    ci(38, "network_out_of_order", "Network out of order", Other),
    ci(41, "temporary_failure", "Temporary failure", Here),
    ci(42, "congestion", "Congestion", Here),
    ci(
        47,
        "resources_unavailable",
        "Resources unavailable, unspecified",
        Here,
    ),
    ci(
        50,
        "facility_not_subscribed",
        "Requested facility not subscribed",
        Other,
    ),
    ci(
        69,
        "facility_not_implemented",
        "Requested facility not implemented",
        Other,
    ),
    ci(
        81,
        "invalid_reference",
        "Invalid short message transfer reference value",
        Here,
    ),
    ci(95, "invalid_message", "Invalid message, unspecified", Perm),
    ci(
        96,
        "invalid_mandatory_information",
        "Invalid mandatory information",
        Perm,
    ),
    ci(
        97,
        "message_type_nonexistent",
        "Message type non-existent or not implemented",
        Perm,
    ),
    ci(
        98,
        "message_not_compatible",
        "Message not compatible with short message protocol state",
        Here,
    ),
    ci(
        99,
        "ie_nonexistent",
        "Information element non-existent or not implemented",
        Perm,
    ),
    ci(111, "protocol_error", "Protocol error, unspecified", Here),
    ci(
        127,
        "interworking_unspecified",
        "Interworking, unspecified",
        Other,
    ),
    ci(
        128,
        "telematic_interworking_not_supported",
        "Telematic interworking not supported",
        Perm,
    ),
    ci(
        129,
        "sm_type0_not_supported",
        "Short message Type 0 not supported",
        Perm,
    ),
    ci(
        130,
        "cannot_replace_sm",
        "Cannot replace short message",
        Perm,
    ),
    ci(143, "tp_pid_error", "Unspecified TP-PID error", Perm),
    ci(
        144,
        "dcs_not_supported",
        "Data coding scheme (alphabet) not supported",
        Perm,
    ),
    ci(
        145,
        "message_class_not_supported",
        "Message class not supported",
        Perm,
    ),
    ci(159, "tp_dcs_error", "Unspecified TP-DCS error", Perm),
    ci(
        160,
        "command_cannot_be_actioned",
        "Command cannot be actioned",
        Perm,
    ),
    ci(161, "command_unsupported", "Command unsupported", Perm),
    ci(
        175,
        "tp_command_error",
        "Unspecified TP-Command error",
        Perm,
    ),
    ci(176, "tpdu_not_supported", "TPDU not supported", Perm),
    ci(192, "sc_busy", "SC busy", Here),
    ci(193, "no_sc_subscription", "No SC subscription", Other),
    ci(194, "sc_system_failure", "SC system failure", Here),
    ci(195, "invalid_sme_address", "Invalid SME address", Perm),
    ci(
        196,
        "destination_sme_barred",
        "Destination SME barred",
        Perm,
    ),
    ci(
        197,
        "sm_rejected_duplicate",
        "SM Rejected-Duplicate SM",
        Perm,
    ),
    ci(198, "tp_vpf_not_supported", "TP-VPF not supported", Perm),
    ci(199, "tp_vp_not_supported", "TP-VP not supported", Perm),
    ci(208, "sim_sms_storage_full", "D0 SIM SMS storage full", Here),
    ci(
        209,
        "no_sim_sms_storage",
        "No SMS storage capability in SIM",
        Here,
    ),
    ci(210, "error_in_ms", "Error in MS", Rec),
    ci(
        211,
        "memory_capacity_exceeded",
        "Memory Capacity Exceeded",
        Here,
    ),
    ci(
        212,
        "sim_toolkit_busy",
        "SIM Application Toolkit Busy",
        Here,
    ),
    ci(
        213,
        "sim_data_download_error",
        "SIM data download error",
        Here,
    ),
    ci(
        255,
        "unspecified_error_cause",
        "Unspecified error cause",
        Here,
    ),
    ci(300, "me_failure", "ME failure", Rec),
    ci(
        301,
        "sms_service_reserved",
        "SMS service of ME reserved",
        Here,
    ),
    ci(302, "operation_not_allowed", "operation not allowed", Rec),
    ci(
        303,
        "operation_not_supported",
        "operation not supported",
        Rec,
    ),
    ci(
        304,
        "invalid_pdu_parameter",
        "invalid PDU mode parameter",
        Perm,
    ),
    ci(
        305,
        "invalid_text_parameter",
        "invalid text mode parameter",
        Rec,
    ),
    ci(310, "sim_not_inserted", "SIM not inserted", Rec),
    ci(311, "sim_pin_required", "SIM PIN required", Rec),
    ci(312, "ph_sim_pin_required", "PH-SIM PIN required", Rec),
    ci(313, "sim_failure", "SIM failure", Rec),
    ci(314, "sim_busy", "SIM busy", Here),
    ci(315, "sim_wrong", "SIM wrong", Rec),
    ci(316, "sim_puk_required", "SIM PUK required", Rec),
    ci(317, "sim_pin2_required", "SIM PIN2 required", Other),
    ci(318, "sim_puk2_required", "SIM PUK2 required", Other),
    ci(320, "memory_failure", "memory failure", Rec),
    ci(321, "invalid_memory_index", "invalid memory index", Perm),
    ci(322, "memory_full", "memory full", Here),
    ci(330, "smsc_address_unknown", "SMSC address unknown", Other),
    ci(331, "no_network_service", "no network service", Other),
    ci(332, "network_timeout", "network timeout", Here),
    ci(
        340,
        "no_cnma_expected",
        "no +CNMA acknowledgement expected",
        Here,
    ),
    ci(500, "unknown_error", "unknown error", Here),
    ci(
        512,
        "mm_establishment_failure",
        "MM establishment failure",
        Here,
    ),
    ci(513, "lower_layer_failure", "lower layer failure", Here),
    ci(514, "cp_error", "CP error", Here),
    ci(
        515,
        "init_in_progress",
        "please wait, init or command processing in progress",
        Here,
    ),
];

/// `+CME ERROR` codes.
pub static CME_CODES: &[CodeInfo] = &[
    ci(0, "phone_failure", "phone failure", Rec),
    ci(1, "no_connection", "no connection to phone", Rec),
    ci(2, "link_reserved", "phone-adaptor link reserved", Here),
    ci(3, "operation_not_allowed", "operation not allowed", Rec),
    ci(4, "operation_not_supported", "operation not supported", Rec),
    ci(5, "ph_sim_pin_required", "PH-SIM PIN required", Rec),
    ci(10, "sim_not_inserted", "SIM not inserted", Rec),
    ci(11, "sim_pin_required", "SIM PIN required", Rec),
    ci(12, "sim_puk_required", "SIM PUK required", Rec),
    ci(13, "sim_failure", "SIM failure", Rec),
    ci(14, "sim_busy", "SIM busy", Here),
    ci(15, "sim_wrong", "SIM wrong", Rec),
    ci(16, "incorrect_password", "incorrect password", Rec),
    ci(17, "sim_pin2_required", "SIM PIN2 required", Other),
    ci(18, "sim_puk2_required", "SIM PUK2 required", Other),
    ci(20, "memory_full", "memory full", Here),
    ci(21, "invalid_index", "invalid index", Perm),
    ci(22, "not_found", "not found", Perm),
    ci(23, "memory_failure", "memory failure", Rec),
    ci(24, "text_too_long", "text string too long", Perm),
    ci(
        25,
        "invalid_text_characters",
        "invalid characters in text string",
        Perm,
    ),
    ci(26, "dial_string_too_long", "dial string too long", Perm),
    ci(
        27,
        "invalid_dial_characters",
        "invalid characters in dial string",
        Perm,
    ),
    ci(30, "no_network_service", "no network service", Other),
    ci(31, "network_timeout", "network timeout", Here),
    ci(
        32,
        "emergency_calls_only",
        "network not allowed - emergency calls only",
        Other,
    ),
    ci(100, "unknown", "unknown", Here),
];

/// Which final error result a modem printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorFamily {
    /// Bare `ERROR` (or a vendor equivalent such as Huawei's `COMMAND NOT SUPPORT`).
    Plain,
    /// `+CMS ERROR` (message service).
    Cms,
    /// `+CME ERROR` (equipment).
    Cme,
}

/// A final error result, with its code when the modem gave one (numerically or as a known
/// verbose text) and the verbose text when it gave one we do not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DeviceError {
    pub family: ErrorFamily,
    pub code: Option<u16>,
    /// Verbose text the modem printed that maps to no known code (bounded to 80 bytes).
    pub text: Option<String>,
}

const MAX_ERROR_TEXT: usize = 80;

impl DeviceError {
    pub const PLAIN: DeviceError = DeviceError {
        family: ErrorFamily::Plain,
        code: None,
        text: None,
    };

    pub fn cms(code: u16) -> Self {
        DeviceError {
            family: ErrorFamily::Cms,
            code: Some(code),
            text: None,
        }
    }

    pub fn cme(code: u16) -> Self {
        DeviceError {
            family: ErrorFamily::Cme,
            code: Some(code),
            text: None,
        }
    }

    /// Parse a final error line; `None` when the line is not one.
    pub fn parse(line: &str) -> Option<DeviceError> {
        let line = line.trim();
        let (family, rest) = if let Some(rest) = strip_prefix_ci(line, "+CMS ERROR:") {
            (ErrorFamily::Cms, rest)
        } else if let Some(rest) = strip_prefix_ci(line, "+CME ERROR:") {
            (ErrorFamily::Cme, rest)
        } else if line.eq_ignore_ascii_case("ERROR")
            || line.eq_ignore_ascii_case("COMMAND NOT SUPPORT")
            || line.eq_ignore_ascii_case("TOO MANY PARAMETERS")
        {
            return Some(DeviceError::PLAIN);
        } else {
            return None;
        };
        let rest = rest.trim().trim_matches('"').trim();
        if let Ok(code) = rest.parse::<u16>() {
            return Some(DeviceError {
                family,
                code: Some(code),
                text: None,
            });
        }
        let table = match family {
            ErrorFamily::Cms => CMS_CODES,
            _ => CME_CODES,
        };
        let known = table.iter().find(|c| c.meaning.eq_ignore_ascii_case(rest));
        Some(match known {
            Some(info) => DeviceError {
                family,
                code: Some(info.code),
                text: None,
            },
            None => {
                let mut text = rest.to_string();
                if text.len() > MAX_ERROR_TEXT {
                    let mut cut = MAX_ERROR_TEXT;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                }
                DeviceError {
                    family,
                    code: None,
                    text: Some(text),
                }
            }
        })
    }

    /// The table entry for this error, when its code is known.
    pub fn info(&self) -> Option<&'static CodeInfo> {
        let table = match self.family {
            ErrorFamily::Cms => CMS_CODES,
            ErrorFamily::Cme => CME_CODES,
            ErrorFamily::Plain => return None,
        };
        let code = self.code?;
        table.iter().find(|c| c.code == code)
    }

    /// Stable short name (`network_out_of_order`, `error`, `cms_unknown` …).
    pub fn name(&self) -> &'static str {
        match (self.info(), self.family) {
            (Some(info), _) => info.name,
            (None, ErrorFamily::Plain) => "error",
            (None, ErrorFamily::Cms) => "cms_unknown",
            (None, ErrorFamily::Cme) => "cme_unknown",
        }
    }

    /// What to do about it. A bare `ERROR` or an unknown code sends the message elsewhere:
    /// the dispatcher bounds attempts, and a modem that keeps failing is benched.
    pub fn class(&self) -> RetryClass {
        self.info().map_or(RetryClass::RetryOtherModem, |i| i.class)
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fam = match self.family {
            ErrorFamily::Plain => return f.write_str("ERROR"),
            ErrorFamily::Cms => "+CMS ERROR",
            ErrorFamily::Cme => "+CME ERROR",
        };
        match (self.code, self.info(), &self.text) {
            (Some(code), Some(info), _) => write!(f, "{fam} {code} ({})", info.meaning),
            (Some(code), None, _) => write!(f, "{fam} {code}"),
            (None, _, Some(text)) => write!(f, "{fam}: {text}"),
            (None, _, None) => f.write_str(fam),
        }
    }
}

pub(crate) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_codes_are_named_and_classed() {
        let cms = [
            38, 42, 301, 302, 303, 304, 310, 311, 312, 313, 314, 315, 316, 320, 321, 322, 330, 331,
            332, 340, 500, 512, 513, 514,
        ];
        for code in cms {
            assert!(
                DeviceError::cms(code).info().is_some(),
                "CMS {code} unknown"
            );
        }
        for code in [10, 11, 12, 13, 14, 15, 16, 30, 100] {
            assert!(
                DeviceError::cme(code).info().is_some(),
                "CME {code} unknown"
            );
        }
    }

    #[test]
    fn classes_match_what_the_dispatcher_must_do() {
        let table = [
            (42, RetryClass::RetryHere),
            (38, RetryClass::RetryOtherModem),
            (331, RetryClass::RetryOtherModem),
            (304, RetryClass::PermanentForMessage),
            (1, RetryClass::PermanentForMessage),
            (310, RetryClass::ModemNeedsRecovery),
            (302, RetryClass::ModemNeedsRecovery),
            (332, RetryClass::RetryHere),
            (500, RetryClass::RetryHere),
        ];
        for (code, class) in table {
            assert_eq!(DeviceError::cms(code).class(), class, "CMS {code}");
        }
        assert_eq!(DeviceError::PLAIN.class(), RetryClass::RetryOtherModem);
        assert_eq!(DeviceError::cms(999).class(), RetryClass::RetryOtherModem);
    }

    #[test]
    fn parses_numeric_verbose_and_plain_forms() {
        assert_eq!(
            DeviceError::parse("+CMS ERROR: 500"),
            Some(DeviceError::cms(500))
        );
        assert_eq!(
            DeviceError::parse("+CME ERROR: 10"),
            Some(DeviceError::cme(10))
        );
        assert_eq!(DeviceError::parse("ERROR"), Some(DeviceError::PLAIN));
        assert_eq!(
            DeviceError::parse("COMMAND NOT SUPPORT"),
            Some(DeviceError::PLAIN)
        );
        assert_eq!(
            DeviceError::parse("+CME ERROR: SIM not inserted"),
            Some(DeviceError::cme(10))
        );
        assert_eq!(
            DeviceError::parse("+CME ERROR: incorrect password"),
            Some(DeviceError::cme(16))
        );
        assert_eq!(
            DeviceError::parse("+CMS ERROR: Network out of order"),
            Some(DeviceError::cms(38))
        );
        assert_eq!(
            DeviceError::parse("+CMS ERROR: \"memory full\""),
            Some(DeviceError::cms(322))
        );
        let odd = DeviceError::parse("+CMS ERROR: something vendor specific").unwrap();
        assert_eq!(odd.code, None);
        assert_eq!(odd.text.as_deref(), Some("something vendor specific"));
        assert_eq!(odd.class(), RetryClass::RetryOtherModem);
        assert_eq!(DeviceError::parse("OK"), None);
        assert_eq!(DeviceError::parse("+CMGS: 12"), None);
        let long = format!("+CME ERROR: {}", "x".repeat(500));
        assert_eq!(
            DeviceError::parse(&long).unwrap().text.unwrap().len(),
            MAX_ERROR_TEXT
        );
    }

    #[test]
    fn display_names_the_meaning() {
        assert_eq!(
            DeviceError::cms(38).to_string(),
            "+CMS ERROR 38 (Network out of order)"
        );
        assert_eq!(DeviceError::cms(38).name(), "network_out_of_order");
        assert_eq!(DeviceError::PLAIN.to_string(), "ERROR");
    }
}
