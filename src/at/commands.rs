//! AT commands the driver issues: metadata that lives with each command (timeout, attempts,
//! response prefixes it expects) and typed parsers for the lines modems answer with.
//!
//! Every parser takes one information line (or URC line) as the digester returned it and gives
//! `None` for anything it does not recognise; none of them panics on input.

use std::time::Duration;

use super::errors::strip_prefix_ci;

/// What the digester must know about the command in flight, and how long to wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandMeta {
    /// Short name for logs.
    pub name: &'static str,
    /// Time allowed for the final result.
    pub timeout: Duration,
    /// How many times the driver may issue it when it times out (1 = once).
    pub attempts: u8,
    /// Information lines of this command start with one of these (case-insensitive); any
    /// other line is a URC or noise.
    pub prefixes: &'static [&'static str],
    /// The command answers with lines without a prefix (IMEI, IMSI, the PDU after +CMGR).
    pub bare_lines: bool,
    /// The command is answered with the `> ` prompt before its final result.
    pub prompt: bool,
}

const fn meta(
    name: &'static str,
    secs: u64,
    prefixes: &'static [&'static str],
    bare: bool,
) -> CommandMeta {
    CommandMeta {
        name,
        timeout: Duration::from_secs(secs),
        attempts: 1,
        prefixes,
        bare_lines: bare,
        prompt: false,
    }
}

pub const AT: CommandMeta = CommandMeta {
    attempts: 3,
    ..meta("AT", 1, &[], false)
};
pub const ECHO_OFF: CommandMeta = meta("ATE0", 2, &[], false);
pub const CMEE: CommandMeta = meta("CMEE", 2, &[], false);
pub const CPIN_QUERY: CommandMeta = meta("CPIN?", 5, &["+CPIN:"], false);
/// Entering the PIN: one attempt only, a SIM locks after three wrong ones.
pub const CPIN_ENTER: CommandMeta = meta("CPIN=", 10, &[], false);
pub const CGMI: CommandMeta = meta("CGMI", 2, &["+CGMI:"], true);
pub const CGMM: CommandMeta = meta("CGMM", 2, &["+CGMM:"], true);
pub const CGMR: CommandMeta = meta("CGMR", 2, &["+CGMR:", "Revision:"], true);
pub const CGSN: CommandMeta = meta("CGSN", 2, &["+CGSN:"], true);
pub const CIMI: CommandMeta = meta("CIMI", 3, &["+CIMI:"], true);
pub const ICCID: CommandMeta = meta(
    "ICCID",
    3,
    &[
        "+CCID:", "+QCCID:", "^ICCID:", "+ICCID:", "+CICCID:", "ICCID:",
    ],
    true,
);
pub const CMGF: CommandMeta = meta("CMGF", 2, &[], false);
pub const CSCA_QUERY: CommandMeta = meta("CSCA?", 3, &["+CSCA:"], false);
pub const CSCA_SET: CommandMeta = meta("CSCA=", 3, &[], false);
pub const CPMS: CommandMeta = meta("CPMS", 5, &["+CPMS:"], false);
pub const CNMI: CommandMeta = meta("CNMI", 3, &[], false);
pub const CSMS_QUERY: CommandMeta = meta("CSMS?", 3, &["+CSMS:"], false);
pub const CREG_QUERY: CommandMeta = meta("CREG?", 3, &["+CREG:"], false);
pub const CEREG_QUERY: CommandMeta = meta("CEREG?", 3, &["+CEREG:"], false);
pub const CGREG_QUERY: CommandMeta = meta("CGREG?", 3, &["+CGREG:"], false);
pub const COPS_FORMAT: CommandMeta = meta("COPS=3", 5, &[], false);
pub const COPS_QUERY: CommandMeta = meta("COPS?", 10, &["+COPS:"], false);
pub const CSQ: CommandMeta = meta("CSQ", 3, &["+CSQ:"], false);
pub const CNUM: CommandMeta = meta("CNUM", 3, &["+CNUM:"], false);
/// `AT+CMGS=<len>`: the prompt timeout; the PDU's own wait is the configured send timeout.
pub const CMGS: CommandMeta = CommandMeta {
    prompt: true,
    ..meta("CMGS", 15, &["+CMGS:"], false)
};
pub const CMGR: CommandMeta = meta("CMGR", 10, &["+CMGR:"], true);
pub const CMGL: CommandMeta = meta("CMGL", 30, &["+CMGL:"], true);
pub const CMGD: CommandMeta = meta("CMGD", 10, &[], false);
pub const CNMA: CommandMeta = meta("CNMA", 5, &[], false);
pub const CFUN_RESET: CommandMeta = meta("CFUN=1,1", 15, &[], false);

/// `AT+CNMI` settings tried in order until the modem accepts one: deliveries stored and
/// announced with +CMTI, status reports direct (+CDS) or stored (+CDSI).
pub const CNMI_FALLBACKS: &[&str] = &[
    "2,1,0,2,0",
    "2,1,0,1,0",
    "1,1,0,2,0",
    "1,1,0,1,0",
    "2,1,0,0,0",
    "1,1,0,0,0",
    "2,1",
    "1,1",
];

/// Split parameters on commas outside double quotes; quotes are removed, spaces trimmed.
pub fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => {
                out.push(clean(&s[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(clean(&s[start..]));
    out
}

fn clean(p: &str) -> &str {
    p.trim().trim_matches('"')
}

/// The parameters after `prefix` (case-insensitive), or `None` when the line has another prefix.
pub fn params<'a>(line: &'a str, prefix: &str) -> Option<Vec<&'a str>> {
    strip_prefix_ci(line.trim(), prefix).map(|rest| split_params(rest.trim()))
}

/// `+CSQ: <rssi>,<ber>` → received signal strength in dBm; `None` when unknown (99) or invalid.
pub fn parse_csq(line: &str) -> Option<i16> {
    let p = params(line, "+CSQ:")?;
    let rssi: i16 = p.first()?.parse().ok()?;
    match rssi {
        0..=31 => Some(-113 + 2 * rssi),
        // TD-SCDMA range of some Chinese modules: -116 dBm + (rssi - 100).
        100..=191 => Some(-116 + (rssi - 100)),
        _ => None,
    }
}

/// Network registration status (TS 27.007 §7.2 `<stat>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegStatus {
    NotSearching,
    Home,
    Searching,
    Denied,
    Unknown,
    Roaming,
    /// 6/7: registered for SMS only (LTE), home or roaming.
    SmsOnly,
    /// 8: emergency bearer services only.
    EmergencyOnly,
}

impl RegStatus {
    pub fn from_code(code: u8) -> Option<RegStatus> {
        Some(match code {
            0 => RegStatus::NotSearching,
            1 | 9 => RegStatus::Home,
            2 => RegStatus::Searching,
            3 => RegStatus::Denied,
            4 => RegStatus::Unknown,
            5 | 10 => RegStatus::Roaming,
            6 | 7 => RegStatus::SmsOnly,
            8 => RegStatus::EmergencyOnly,
            _ => return None,
        })
    }

    /// Can send SMS.
    pub fn is_registered(self) -> bool {
        matches!(
            self,
            RegStatus::Home | RegStatus::Roaming | RegStatus::SmsOnly
        )
    }
}

/// Which registration command a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegKind {
    Creg,
    Cgreg,
    Cereg,
}

/// A +CREG / +CGREG / +CEREG line, query answer or URC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub kind: RegKind,
    pub status: RegStatus,
    pub lac: Option<String>,
    pub cell: Option<String>,
}

fn reg_kind(line: &str) -> Option<(RegKind, Vec<&str>)> {
    for (prefix, kind) in [
        ("+CREG:", RegKind::Creg),
        ("+CGREG:", RegKind::Cgreg),
        ("+CEREG:", RegKind::Cereg),
    ] {
        if let Some(p) = params(line, prefix) {
            return Some((kind, p));
        }
    }
    None
}

fn registration(kind: RegKind, stat: &str, rest: &[&str]) -> Option<Registration> {
    let status = RegStatus::from_code(stat.parse().ok()?)?;
    let field = |i: usize| rest.get(i).filter(|s| !s.is_empty()).map(|s| s.to_string());
    Some(Registration {
        kind,
        status,
        lac: field(0),
        cell: field(1),
    })
}

/// Answer to `AT+CREG?` (and CGREG/CEREG): `+CREG: <n>,<stat>[,<lac>,<ci>[,<act>]]`.
pub fn parse_reg_query(line: &str) -> Option<Registration> {
    let (kind, p) = reg_kind(line)?;
    if p.len() < 2 {
        return None;
    }
    registration(kind, p[1], &p[2..])
}

/// Unsolicited `+CREG: <stat>[,<lac>,<ci>[,<act>]]`. Two bare numbers are read as the query
/// form (`<n>,<stat>`), which some modems repeat as a URC.
pub fn parse_reg_urc(line: &str) -> Option<Registration> {
    let (kind, p) = reg_kind(line)?;
    let raw = strip_prefix_ci(line.trim(), "+CREG:")
        .or_else(|| strip_prefix_ci(line.trim(), "+CGREG:"))
        .or_else(|| strip_prefix_ci(line.trim(), "+CEREG:"))
        .unwrap_or("");
    let second_quoted = raw
        .split(',')
        .nth(1)
        .is_some_and(|s| s.trim().starts_with('"'));
    if p.len() == 1 || second_quoted {
        registration(kind, p[0], &p[1..])
    } else {
        registration(kind, p[1], &p[2..])
    }
}

/// `+COPS: <mode>[,<format>,<oper>[,<act>]]` → the operator name or numeric code.
pub fn parse_cops(line: &str) -> Option<String> {
    let p = params(line, "+COPS:")?;
    p.get(2).filter(|s| !s.is_empty()).map(|s| s.to_string())
}

/// Usage of the first message storage (where reading and deleting happens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageUsage {
    pub memory: Option<String>,
    pub used: u32,
    pub total: u32,
}

impl StorageUsage {
    pub fn is_full(&self) -> bool {
        self.total > 0 && self.used >= self.total
    }
}

/// `+CPMS: "SM",3,50,...` (query) or `+CPMS: 3,50,...` (answer to a set).
pub fn parse_cpms(line: &str) -> Option<StorageUsage> {
    let p = params(line, "+CPMS:")?;
    let first = p.first()?;
    if first.parse::<u32>().is_ok() {
        Some(StorageUsage {
            memory: None,
            used: p.first()?.parse().ok()?,
            total: p.get(1)?.parse().ok()?,
        })
    } else {
        Some(StorageUsage {
            memory: Some(first.to_string()),
            used: p.get(1)?.parse().ok()?,
            total: p.get(2)?.parse().ok()?,
        })
    }
}

/// Header of a stored message in PDU mode: `+CMGL: <index>,<stat>,[<alpha>],<length>` or
/// `+CMGR: <stat>,[<alpha>],<length>` (index `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredHeader {
    pub index: Option<u32>,
    /// 0 received unread, 1 received read, 2 stored unsent, 3 stored sent.
    pub stat: u8,
    /// TPDU length in octets (without the SMSC field).
    pub length: u32,
}

pub fn parse_cmgl(line: &str) -> Option<StoredHeader> {
    let p = params(line, "+CMGL:")?;
    Some(StoredHeader {
        index: Some(p.first()?.parse().ok()?),
        stat: p.get(1)?.parse().ok()?,
        length: p.last()?.parse().ok()?,
    })
}

pub fn parse_cmgr(line: &str) -> Option<StoredHeader> {
    let p = params(line, "+CMGR:")?;
    if p.len() < 2 {
        return None;
    }
    Some(StoredHeader {
        index: None,
        stat: p.first()?.parse().ok()?,
        length: p.last()?.parse().ok()?,
    })
}

/// `+CMGS: <mr>[,<scts>]` → TP-MR.
pub fn parse_cmgs(line: &str) -> Option<u8> {
    params(line, "+CMGS:")?.first()?.parse().ok()
}

/// `+CMTI: "SM",5` / `+CDSI: "SM",5` → (memory, index).
pub fn parse_new_message_index(line: &str) -> Option<(String, u32)> {
    let p = params(line, "+CMTI:").or_else(|| params(line, "+CDSI:"))?;
    Some((p.first()?.to_string(), p.get(1)?.parse().ok()?))
}

/// `+CMT: [<alpha>],<length>` or `+CDS: <length>` → TPDU length.
pub fn parse_direct_header(line: &str) -> Option<u32> {
    let p = params(line, "+CMT:").or_else(|| params(line, "+CDS:"))?;
    p.last()?.parse().ok()
}

/// ICCID from any of `+CCID:`, `+QCCID:`, `^ICCID:`, `+ICCID:`, `+CICCID:`, `ICCID:` or a bare
/// line. Huawei prints it nibble-swapped (`98…` instead of `89…`); trailing `F` padding is dropped.
pub fn parse_iccid(line: &str) -> Option<String> {
    let line = line.trim();
    let raw = [
        "+CCID:", "+QCCID:", "^ICCID:", "+ICCID:", "+CICCID:", "ICCID:",
    ]
    .iter()
    .find_map(|p| strip_prefix_ci(line, p))
    .unwrap_or(line)
    .trim()
    .trim_matches('"');
    if !(18..=22).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digits: String = if raw.starts_with("98") {
        let b = raw.as_bytes();
        let mut s = String::with_capacity(b.len());
        for pair in b.chunks(2) {
            if let [a, c] = pair {
                s.push(*c as char);
                s.push(*a as char);
            } else {
                s.push(pair[0] as char);
            }
        }
        s
    } else {
        raw.to_string()
    };
    let digits = digits.trim_end_matches(['F', 'f']);
    if digits.len() < 18 || !digits.starts_with("89") {
        return None;
    }
    Some(digits.to_ascii_uppercase())
}

/// A bare identity line (IMEI, IMSI): 14–17 decimal digits, optionally after a prefix.
pub fn parse_digits(line: &str, prefix: &str) -> Option<String> {
    let line = line.trim();
    let s = strip_prefix_ci(line, prefix)
        .unwrap_or(line)
        .trim()
        .trim_matches('"');
    (6..=20).contains(&s.len()).then_some(())?;
    s.bytes().all(|b| b.is_ascii_digit()).then(|| s.to_string())
}

/// A bare text line (manufacturer, model, revision), prefixes removed.
pub fn parse_text(line: &str, prefixes: &[&str]) -> String {
    let line = line.trim();
    prefixes
        .iter()
        .find_map(|p| strip_prefix_ci(line, p))
        .unwrap_or(line)
        .trim()
        .trim_matches('"')
        .to_string()
}

/// SIM state from `+CPIN: <code>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinState {
    Ready,
    SimPin,
    SimPuk,
    PhSimPin,
    Other(String),
}

pub fn parse_cpin(line: &str) -> Option<PinState> {
    let rest = strip_prefix_ci(line.trim(), "+CPIN:")?.trim();
    Some(match rest.to_ascii_uppercase().as_str() {
        "READY" => PinState::Ready,
        "SIM PIN" => PinState::SimPin,
        "SIM PUK" => PinState::SimPuk,
        "PH-SIM PIN" => PinState::PhSimPin,
        _ => PinState::Other(rest.to_string()),
    })
}

/// `+CSCA: "<number>",<type>` → the number (empty → `None`).
pub fn parse_csca(line: &str) -> Option<String> {
    let p = params(line, "+CSCA:")?;
    p.first().filter(|s| !s.is_empty()).map(|s| s.to_string())
}

/// `+CSMS: <service>,...` → true when phase 2+ (service 1): direct deliveries need +CNMA.
pub fn parse_csms_needs_ack(line: &str) -> Option<bool> {
    Some(params(line, "+CSMS:")?.first()?.trim() == "1")
}

/// `+CNUM: ["alpha"],"<number>",<type>` → the number.
pub fn parse_cnum(line: &str) -> Option<String> {
    let p = params(line, "+CNUM:")?;
    p.get(1).filter(|s| !s.is_empty()).map(|s| s.to_string())
}

/// Hex text → bytes; `None` on odd length or a non-hex character.
pub fn hex_to_bytes(hex: &str) -> Option<Vec<u8>> {
    let h = hex.trim().as_bytes();
    if !h.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    h.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// Bytes → uppercase hex.
pub fn bytes_to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xF) as usize] as char);
    }
    s
}

/// TP-MTI of a PDU as modems print it (SMSC field first): 0 deliver, 1 submit, 2 status report.
pub fn pdu_mti(pdu: &[u8]) -> Option<u8> {
    let smsc_len = *pdu.first()? as usize;
    pdu.get(1 + smsc_len).map(|b| b & 0x03)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csq_to_dbm() {
        assert_eq!(parse_csq("+CSQ: 0,99"), Some(-113));
        assert_eq!(parse_csq("+CSQ: 1,0"), Some(-111));
        assert_eq!(parse_csq("+CSQ: 20,99"), Some(-73));
        assert_eq!(parse_csq("+CSQ: 31,0"), Some(-51));
        assert_eq!(parse_csq("+CSQ: 99,99"), None);
        assert_eq!(parse_csq("+CSQ: 120,99"), Some(-96));
        assert_eq!(parse_csq("+CSQ: x"), None);
        assert_eq!(parse_csq("+CREG: 1"), None);
    }

    #[test]
    fn registration_query_and_urc_forms() {
        let q = parse_reg_query("+CREG: 0,1").unwrap();
        assert_eq!((q.kind, q.status), (RegKind::Creg, RegStatus::Home));
        let q = parse_reg_query("+CEREG: 2,5,\"1A2B\",\"01C3D4E\",7").unwrap();
        assert_eq!(
            (q.kind, q.status, q.lac.as_deref()),
            (RegKind::Cereg, RegStatus::Roaming, Some("1A2B"))
        );
        assert_eq!(
            parse_reg_query("+CGREG: 0,2").unwrap().status,
            RegStatus::Searching
        );
        assert!(!RegStatus::Searching.is_registered());
        let u = parse_reg_urc("+CREG: 1").unwrap();
        assert_eq!(u.status, RegStatus::Home);
        let u = parse_reg_urc("+CREG: 5,\"1A2B\",\"0C3D\",0").unwrap();
        assert_eq!(
            (u.status, u.cell.as_deref()),
            (RegStatus::Roaming, Some("0C3D"))
        );
        assert_eq!(
            parse_reg_urc("+CGREG: 0").unwrap().status,
            RegStatus::NotSearching
        );
        assert_eq!(
            parse_reg_urc("+CEREG: 2,3").unwrap().status,
            RegStatus::Denied
        );
        assert!(parse_reg_query("+CREG: 0,42").is_none());
        assert!(parse_reg_query("+CREG:").is_none());
        assert!(RegStatus::from_code(6).unwrap().is_registered());
    }

    #[test]
    fn cops_cpms_cmgs() {
        assert_eq!(
            parse_cops("+COPS: 0,0,\"CHINA MOBILE\",7").as_deref(),
            Some("CHINA MOBILE")
        );
        assert_eq!(
            parse_cops("+COPS: 0,2,\"46001\",2").as_deref(),
            Some("46001")
        );
        assert_eq!(parse_cops("+COPS: 0"), None);
        let u = parse_cpms("+CPMS: \"SM\",3,50,\"SM\",3,50,\"SM\",3,50").unwrap();
        assert_eq!(
            (u.memory.as_deref(), u.used, u.total, u.is_full()),
            (Some("SM"), 3, 50, false)
        );
        let u = parse_cpms("+CPMS: 50,50,50,50,50,50").unwrap();
        assert!(u.is_full());
        assert_eq!(parse_cmgs("+CMGS: 17"), Some(17));
        assert_eq!(parse_cmgs("+CMGS: 255,\"24/01/01\""), Some(255));
        assert_eq!(parse_cmgs("+CMGS: 256"), None);
    }

    #[test]
    fn stored_message_headers() {
        assert_eq!(
            parse_cmgl("+CMGL: 3,0,,24"),
            Some(StoredHeader {
                index: Some(3),
                stat: 0,
                length: 24
            })
        );
        assert_eq!(
            parse_cmgl("+CMGL: 12,1,\"alpha, with comma\",140")
                .unwrap()
                .length,
            140
        );
        assert_eq!(
            parse_cmgr("+CMGR: 0,,24"),
            Some(StoredHeader {
                index: None,
                stat: 0,
                length: 24
            })
        );
        assert_eq!(parse_cmgr("+CMGR: 1,\"\",33").unwrap().length, 33);
        assert_eq!(
            parse_new_message_index("+CMTI: \"SM\",5"),
            Some(("SM".into(), 5))
        );
        assert_eq!(
            parse_new_message_index("+CDSI: \"ME\",0"),
            Some(("ME".into(), 0))
        );
        assert_eq!(parse_direct_header("+CMT: ,24"), Some(24));
        assert_eq!(parse_direct_header("+CMT: \"\",24"), Some(24));
        assert_eq!(parse_direct_header("+CDS: 25"), Some(25));
    }

    #[test]
    fn iccid_variants() {
        let want = Some("89860012345678901234".to_string());
        assert_eq!(parse_iccid("+CCID: 89860012345678901234"), want);
        assert_eq!(parse_iccid("+CCID: \"89860012345678901234\""), want);
        assert_eq!(parse_iccid("+QCCID: 89860012345678901234"), want);
        assert_eq!(parse_iccid("+ICCID: 89860012345678901234"), want);
        assert_eq!(parse_iccid("89860012345678901234"), want);
        // Huawei: nibble-swapped.
        assert_eq!(parse_iccid("^ICCID: 98680021436587092143"), want);
        assert_eq!(
            parse_iccid("8986001234567890123F").as_deref(),
            Some("8986001234567890123")
        );
        assert_eq!(parse_iccid("OK"), None);
        assert_eq!(parse_iccid("+CCID: 1234"), None);
    }

    #[test]
    fn identity_and_pin() {
        assert_eq!(
            parse_digits("860000000000001", "+CGSN:").as_deref(),
            Some("860000000000001")
        );
        assert_eq!(
            parse_digits("+CGSN: \"860000000000001\"", "+CGSN:").as_deref(),
            Some("860000000000001")
        );
        assert_eq!(parse_digits("Quectel", "+CGSN:"), None);
        assert_eq!(
            parse_text("Revision: EC25EFAR06A09M4G", &["+CGMR:", "Revision:"]),
            "EC25EFAR06A09M4G"
        );
        assert_eq!(parse_cpin("+CPIN: READY"), Some(PinState::Ready));
        assert_eq!(parse_cpin("+CPIN: SIM PIN"), Some(PinState::SimPin));
        assert_eq!(parse_cpin("+CPIN: SIM PUK"), Some(PinState::SimPuk));
        assert_eq!(
            parse_cpin("+CPIN: NOT INSERTED"),
            Some(PinState::Other("NOT INSERTED".into()))
        );
        assert_eq!(
            parse_csca("+CSCA: \"+8613800100500\",145").as_deref(),
            Some("+8613800100500")
        );
        assert_eq!(parse_csca("+CSCA: \"\",129"), None);
        assert_eq!(parse_csms_needs_ack("+CSMS: 1,1,1,1"), Some(true));
        assert_eq!(
            parse_cnum("+CNUM: \"\",\"+8613912345678\",145").as_deref(),
            Some("+8613912345678")
        );
    }

    #[test]
    fn hex_round_trip_and_mti() {
        assert_eq!(hex_to_bytes("00aF"), Some(vec![0x00, 0xAF]));
        assert_eq!(hex_to_bytes("0"), None);
        assert_eq!(hex_to_bytes("zz"), None);
        assert_eq!(bytes_to_hex(&[0x00, 0xAF]), "00AF");
        assert_eq!(pdu_mti(&[0x00, 0x06]), Some(2));
        assert_eq!(pdu_mti(&[0x07, 0x91, 1, 2, 3, 4, 5, 6, 0x04]), Some(0));
        assert_eq!(pdu_mti(&[0x07]), None);
        assert_eq!(pdu_mti(&[]), None);
    }
}
