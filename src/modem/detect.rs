//! Modem discovery for `gridsms modems detect`: which serial ports answer AT, and who is
//! behind them.
//!
//! ```text
//! paths (given, or /dev/ttyUSB* /dev/ttyACM* /dev/gridsms/*) --canonicalize, dedupe-->
//!   one /proc scan: who holds each device? --held--> InUse (never opened)
//!   else, all ports concurrently: open (O_NOCTTY|O_NONBLOCK, TIOCEXCL + flock, via
//!   tokio-serial) → AT ×2 (short) → read-only identity, SIM, registration, signal queries
//!   → close; then `udevadm info` for the USB identity → config block and udev rule
//! ```
//!
//! Invariants: a port some other process has open is never opened (opening a tty can change
//! its line settings under its owner, and closing it again clears TIOCEXCL); only queries
//! are sent, no setting is changed (no ATE0, no CMGF, no CNMI); a silent port costs at most
//! [`DetectOptions::answer_timeout`] × [`DetectOptions::attempts`] plus the open, and a port
//! that answers is bounded by [`DetectOptions::budget`]; ports are probed concurrently.
//! Lines are read with the driver's own [`Ingress`] digester and parsed with
//! [`crate::at::commands`]: there is no second AT parser here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use super::port::{PortOpener, SerialOpener};
use crate::at::commands::{
    self, AT, CEREG_QUERY, CGMI, CGMM, CGMR, CGSN, CIMI, COPS_QUERY, CPIN_QUERY, CREG_QUERY, CSQ,
    CommandMeta, ICCID, PinState, RegStatus,
};
use crate::at::{Digested, Expect, Ingress};

/// Where stable links live by default (udev/90-gridsms.rules makes them).
pub const DEFAULT_LINK_DIR: &str = "/dev/gridsms";

/// How to probe.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// Directories of stable links, scanned for ports (when no paths are given) and for the
    /// link that names a port.
    pub link_dirs: Vec<PathBuf>,
    /// Wait for the answer to one `AT`.
    pub answer_timeout: Duration,
    /// `AT` tries before a port is called silent (or garbage).
    pub attempts: u8,
    /// Wait for the answer to each identity query.
    pub query_timeout: Duration,
    /// Whole probe of a port that answers.
    pub budget: Duration,
    pub baud: u32,
    /// Ask `udevadm` for the USB identity.
    pub udev: bool,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            link_dirs: vec![PathBuf::from(DEFAULT_LINK_DIR)],
            answer_timeout: Duration::from_millis(900),
            attempts: 2,
            query_timeout: Duration::from_secs(2),
            budget: Duration::from_secs(12),
            baud: 115_200,
            udev: true,
        }
    }
}

/// The result of a detection run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Detection {
    pub ports: Vec<PortReport>,
    /// Processes whose open files could not be read (not root): a port they hold is not seen
    /// as held, but their TIOCEXCL still makes the open fail ("busy").
    pub processes_unreadable: usize,
}

/// One device (however many paths led to it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PortReport {
    /// The path as given or found.
    pub path: PathBuf,
    /// The device node it resolves to.
    pub device: PathBuf,
    /// Stable links (in [`DetectOptions::link_dirs`]) pointing at the device.
    pub links: Vec<PathBuf>,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub usb: Option<UsbInfo>,
    /// Why there is no USB identity (no udevadm, not a USB device, e.g. a pty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usb_note: Option<String>,
    /// Suggested `[[modem]]` name, `device` and config block (modems only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udev_rule: Option<String>,
}

/// What a port turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Answered `AT` with `OK` (or an error result: it speaks AT).
    Modem(ModemInfo),
    /// Nothing at all came back.
    Silent,
    /// Bytes came back, but no AT answer (a log/diag port, wrong baud rate, a loopback).
    Garbage {
        bytes: usize,
        sample: String,
    },
    /// Another process has the device open: not opened, not disturbed.
    InUse {
        holders: Vec<Holder>,
    },
    /// The open was refused (TIOCEXCL or a lock held by a process we cannot see).
    Busy {
        error: String,
    },
    OpenFailed {
        error: String,
    },
}

/// A process holding a device open.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    pub pid: u32,
    pub name: String,
}

/// What a modem said about itself. `None`: it did not answer that query.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ModemInfo {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub revision: Option<String>,
    pub imei: Option<String>,
    /// `+CPIN` state: READY, SIM PIN, … (`None`: no SIM answer).
    pub sim: Option<String>,
    pub imsi: Option<String>,
    pub iccid: Option<String>,
    pub operator: Option<String>,
    pub registered: Option<bool>,
    pub registration: Option<RegStatus>,
    pub signal_dbm: Option<i16>,
}

/// The USB identity `udevadm info` gives for a tty.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UsbInfo {
    pub vendor_id: String,
    pub model_id: String,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial_short: Option<String>,
    pub interface_num: Option<String>,
    pub id_path: Option<String>,
}

/// Why the arguments were unusable (the CLI exits 2).
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("{path}: {source}")]
    Path {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a character device (a serial port or pty)")]
    NotCharDevice(PathBuf),
}

/// Ports to probe: `paths`, or every /dev/ttyUSB*, /dev/ttyACM* and link in the link dirs.
/// Symlinks are resolved; each device appears once, under the first path that led to it.
pub fn candidates(
    paths: &[PathBuf],
    opts: &DetectOptions,
) -> Result<Vec<(PathBuf, PathBuf)>, DetectError> {
    let explicit = !paths.is_empty();
    let mut list: Vec<PathBuf> = paths.to_vec();
    if !explicit {
        let mut found = list_dir(Path::new("/dev"), |n| {
            n.starts_with("ttyUSB") || n.starts_with("ttyACM")
        });
        found.sort_by_key(|p| natural_key(p));
        list.extend(found);
        for dir in &opts.link_dirs {
            let mut links = list_dir(dir, |_| true);
            links.sort();
            list.extend(links);
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for path in list {
        let device = match std::fs::canonicalize(&path) {
            Ok(d) => d,
            // A dangling link found by scanning is skipped; a bad argument is an error.
            Err(_) if !explicit => continue,
            Err(source) => return Err(DetectError::Path { path, source }),
        };
        let is_char = std::fs::metadata(&device).is_ok_and(|m| m.file_type().is_char_device());
        if !is_char {
            if explicit {
                return Err(DetectError::NotCharDevice(path));
            }
            continue;
        }
        if seen.insert(device.clone()) {
            out.push((path, device));
        }
    }
    Ok(out)
}

fn list_dir(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| keep(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect()
}

/// ttyUSB2 before ttyUSB10.
fn natural_key(p: &Path) -> (String, u64) {
    let name = p.to_string_lossy();
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, tail) = name.split_at(name.len() - digits);
    (head.to_string(), tail.parse().unwrap_or(0))
}

/// Links in `dirs` that resolve to `device`.
fn links_to(device: &Path, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| list_dir(d, |_| true))
        .filter(|l| std::fs::canonicalize(l).is_ok_and(|c| c == device))
        .collect();
    out.sort();
    out
}

/// Who has which character device open, from one pass over /proc/*/fd.
#[derive(Debug, Default)]
pub struct OpenFiles {
    /// rdev → processes holding it.
    by_rdev: HashMap<u64, Vec<Holder>>,
    /// pty index → processes holding that pty's master (/dev/ptmx with fdinfo tty-index).
    pty_masters: HashMap<u32, HashSet<u32>>,
    pub unreadable: usize,
}

impl OpenFiles {
    /// Scan every process but this one.
    pub fn scan() -> OpenFiles {
        let me = std::process::id();
        let mut of = OpenFiles::default();
        for pid in list_dir(Path::new("/proc"), |n| {
            n.bytes().all(|b| b.is_ascii_digit())
        })
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.parse::<u32>().ok())
        .filter(|&p| p != me)
        {
            let fd_dir = PathBuf::from(format!("/proc/{pid}/fd"));
            let Ok(fds) = std::fs::read_dir(&fd_dir) else {
                of.unreadable += 1;
                continue;
            };
            let mut rdevs = HashSet::new();
            for fd in fds.flatten() {
                let Ok(target) = std::fs::read_link(fd.path()) else {
                    continue;
                };
                if !target.starts_with("/dev") {
                    continue;
                }
                if target.file_name().is_some_and(|n| n == "ptmx") {
                    let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
                    if let Some(idx) = std::fs::read_to_string(info)
                        .ok()
                        .and_then(|s| parse_tty_index(&s))
                    {
                        of.pty_masters.entry(idx).or_default().insert(pid);
                    }
                    continue;
                }
                // stat through the fd link: the device even if its path was renamed.
                if let Ok(m) = std::fs::metadata(fd.path())
                    && m.file_type().is_char_device()
                {
                    rdevs.insert(m.rdev());
                }
            }
            if rdevs.is_empty() {
                continue;
            }
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            for rdev in rdevs {
                of.by_rdev.entry(rdev).or_default().push(Holder {
                    pid,
                    name: name.clone(),
                });
            }
        }
        of
    }

    /// Processes holding `device`. For a pty slave, a process that also holds the pty's
    /// master is the other end (a simulator, which keeps its slave open on purpose), not a
    /// competing user.
    pub fn holders(&self, device: &Path) -> Vec<Holder> {
        let Ok(meta) = std::fs::metadata(device) else {
            return Vec::new();
        };
        let owners = pty_index(device)
            .and_then(|i| self.pty_masters.get(&i))
            .cloned()
            .unwrap_or_default();
        let mut out: Vec<Holder> = self
            .by_rdev
            .get(&meta.rdev())
            .map(|hs| {
                hs.iter()
                    .filter(|h| !owners.contains(&h.pid))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|h| h.pid);
        out
    }
}

/// `tty-index:` from a /proc/PID/fdinfo/N of /dev/ptmx.
fn parse_tty_index(fdinfo: &str) -> Option<u32> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("tty-index:"))
        .and_then(|v| v.trim().parse().ok())
}

fn pty_index(device: &Path) -> Option<u32> {
    let rest = device.strip_prefix("/dev/pts").ok()?;
    rest.to_str()?.parse().ok()
}

/// Probe the ports (`paths`, or the default globs) and describe each.
pub async fn detect(paths: &[PathBuf], opts: &DetectOptions) -> Result<Detection, DetectError> {
    let ports = candidates(paths, opts)?;
    let open_files = tokio::task::spawn_blocking(OpenFiles::scan)
        .await
        .unwrap_or_default();
    let mut tasks = Vec::new();
    for (path, device) in ports {
        let holders = open_files.holders(&device);
        let opts = opts.clone();
        tasks.push(tokio::spawn(async move {
            let links = links_to(&device, &opts.link_dirs);
            // udevadm runs alongside the probe so it adds nothing to a port's time.
            let probed = async {
                if holders.is_empty() {
                    probe(&device, &opts).await
                } else {
                    Outcome::InUse { holders }
                }
            };
            let udev = async {
                if opts.udev {
                    udev_info(&device).await
                } else {
                    (None, Some("udev lookup disabled".to_string()))
                }
            };
            let (outcome, (usb, usb_note)) = tokio::join!(probed, udev);
            PortReport {
                path,
                device,
                links,
                outcome,
                usb,
                usb_note,
                suggested_name: None,
                config_block: None,
                udev_rule: None,
            }
        }));
    }
    let mut reports = Vec::new();
    for t in tasks {
        if let Ok(r) = t.await {
            reports.push(r);
        }
    }
    suggest(&mut reports);
    Ok(Detection {
        ports: reports,
        processes_unreadable: open_files.unreadable,
    })
}

/// Probe one device that nobody else holds.
pub async fn probe(device: &Path, opts: &DetectOptions) -> Outcome {
    let mut opener = SerialOpener {
        device: device.to_string_lossy().into_owned(),
        baud: opts.baud,
    };
    let port = match opener.open() {
        Ok(p) => p,
        Err(e) => {
            let error = e.to_string();
            let lower = error.to_lowercase();
            return if lower.contains("busy") || lower.contains("exclusive") {
                Outcome::Busy { error }
            } else {
                Outcome::OpenFailed { error }
            };
        }
    };
    let mut p = Prober {
        port,
        ingress: Ingress::new(),
        bytes: 0,
        sample: Vec::new(),
    };
    let mut answered = false;
    for _ in 0..opts.attempts.max(1) {
        let deadline = Instant::now() + opts.answer_timeout;
        match p.exec(&AT, "AT", deadline).await {
            Ok(_) | Err(Exec::Device) => {
                answered = true;
                break;
            }
            Err(Exec::Timeout) => {}
            Err(Exec::Io(error)) => return Outcome::OpenFailed { error },
        }
    }
    if !answered {
        return if p.bytes == 0 {
            Outcome::Silent
        } else {
            Outcome::Garbage {
                bytes: p.bytes,
                sample: render(&p.sample),
            }
        };
    }
    Outcome::Modem(p.identify(opts).await)
}

/// Printable form of the first bytes of garbage: ASCII kept, the rest as `\xNN`.
fn render(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

const SAMPLE_MAX: usize = 48;

enum Exec {
    Timeout,
    Device,
    Io(String),
}

struct Prober {
    port: tokio_serial::SerialStream,
    ingress: Ingress,
    bytes: usize,
    sample: Vec<u8>,
}

impl Prober {
    /// Write `cmd`, collect its information lines until the final result or `deadline`.
    /// URCs and noise in between are skipped by the digester.
    async fn exec(
        &mut self,
        meta: &CommandMeta,
        cmd: &str,
        deadline: Instant,
    ) -> Result<Vec<String>, Exec> {
        self.ingress.digester.expect = Expect::command(meta);
        let wrote = timeout_at(deadline, self.port.write_all(format!("{cmd}\r").as_bytes())).await;
        match wrote {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Exec::Io(e.to_string())),
            Err(_) => return Err(Exec::Timeout),
        }
        let mut lines = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            if let Some(done) = self.drain(&mut lines) {
                return done;
            }
            let n = match timeout_at(deadline, self.port.read(&mut buf)).await {
                Ok(Ok(0)) => return Err(Exec::Io("port closed".into())),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(Exec::Io(e.to_string())),
                Err(_) => {
                    self.ingress.digester.expect = Expect::IDLE;
                    return Err(Exec::Timeout);
                }
            };
            self.bytes += n;
            let room = SAMPLE_MAX.saturating_sub(self.sample.len());
            self.sample.extend_from_slice(&buf[..n.min(room)]);
            let mut data = &buf[..n];
            // A drained ingress always has room (a full buffer yields an item), so every
            // round takes at least one byte.
            while !data.is_empty() {
                let took = self.ingress.push(data);
                data = &data[took..];
                if let Some(done) = self.drain(&mut lines) {
                    return done;
                }
            }
        }
    }

    /// Pull recognised items; `Some` once the final result arrived.
    fn drain(&mut self, lines: &mut Vec<String>) -> Option<Result<Vec<String>, Exec>> {
        while let Some(item) = self.ingress.next_item() {
            match item {
                Digested::Info(l) if lines.len() < 16 => lines.push(l),
                Digested::Final(r) => {
                    self.ingress.digester.expect = Expect::IDLE;
                    return Some(r.map(|()| std::mem::take(lines)).map_err(|_| Exec::Device));
                }
                _ => {}
            }
        }
        None
    }

    /// Run one query within the probe's budget; `None` when it failed or time ran out.
    async fn query(
        &mut self,
        meta: &CommandMeta,
        cmd: &str,
        timeout: Duration,
        end: Instant,
    ) -> Option<Vec<String>> {
        let deadline = (Instant::now() + timeout).min(end);
        self.exec(meta, cmd, deadline).await.ok()
    }

    async fn text(
        &mut self,
        meta: &CommandMeta,
        cmd: &str,
        t: Duration,
        end: Instant,
    ) -> Option<String> {
        self.query(meta, cmd, t, end)
            .await?
            .iter()
            .map(|l| commands::parse_text(l, meta.prefixes))
            .find(|s| !s.is_empty())
    }

    async fn identify(&mut self, opts: &DetectOptions) -> ModemInfo {
        let end = Instant::now() + opts.budget;
        let t = opts.query_timeout;
        let mut info = ModemInfo {
            manufacturer: self.text(&CGMI, "AT+CGMI", t, end).await,
            model: self.text(&CGMM, "AT+CGMM", t, end).await,
            revision: self.text(&CGMR, "AT+CGMR", t, end).await,
            ..ModemInfo::default()
        };
        info.imei = self
            .query(&CGSN, "AT+CGSN", t, end)
            .await
            .and_then(|ls| ls.iter().find_map(|l| commands::parse_digits(l, "+CGSN:")));
        let pin = self
            .query(&CPIN_QUERY, "AT+CPIN?", t, end)
            .await
            .and_then(|ls| ls.iter().find_map(|l| commands::parse_cpin(l)));
        info.sim = pin.as_ref().map(pin_name);
        if pin == Some(PinState::Ready) {
            info.imsi = self
                .query(&CIMI, "AT+CIMI", t, end)
                .await
                .and_then(|ls| ls.iter().find_map(|l| commands::parse_digits(l, "+CIMI:")));
            for cmd in ["AT+CCID", "AT+QCCID", "AT^ICCID?", "AT+CICCID", "AT+ICCID"] {
                if Instant::now() >= end {
                    break;
                }
                if let Some(iccid) = self
                    .query(&ICCID, cmd, t, end)
                    .await
                    .and_then(|ls| ls.iter().find_map(|l| commands::parse_iccid(l)))
                {
                    info.iccid = Some(iccid);
                    break;
                }
            }
        }
        let mut reg = self
            .query(&CREG_QUERY, "AT+CREG?", t, end)
            .await
            .and_then(|ls| ls.iter().find_map(|l| commands::parse_reg_query(l)));
        if !reg.as_ref().is_some_and(|r| r.status.is_registered())
            && let Some(r) = self
                .query(&CEREG_QUERY, "AT+CEREG?", t, end)
                .await
                .and_then(|ls| ls.iter().find_map(|l| commands::parse_reg_query(l)))
            && (r.status.is_registered() || reg.is_none())
        {
            reg = Some(r);
        }
        info.registration = reg.as_ref().map(|r| r.status);
        info.registered = reg.as_ref().map(|r| r.status.is_registered());
        // COPS? can take seconds while the modem searches; it gets the full query timeout.
        info.operator = self
            .query(&COPS_QUERY, "AT+COPS?", t, end)
            .await
            .and_then(|ls| ls.iter().find_map(|l| commands::parse_cops(l)));
        info.signal_dbm = self
            .query(&CSQ, "AT+CSQ", t, end)
            .await
            .and_then(|ls| ls.iter().find_map(|l| commands::parse_csq(l)));
        info
    }
}

fn pin_name(p: &PinState) -> String {
    format!("{p:?}")
}

/// `udevadm info --query=property` for the device: its USB identity, or why there is none.
async fn udev_info(device: &Path) -> (Option<UsbInfo>, Option<String>) {
    let mut cmd = tokio::process::Command::new("udevadm");
    cmd.args(["info", "--query=property", "--name"])
        .arg(device)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(Duration::from_secs(3), cmd.output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return (None, Some("udevadm not found: USB identity unknown".into()));
        }
        Ok(Err(e)) => return (None, Some(format!("udevadm failed: {e}"))),
        Err(_) => return (None, Some("udevadm did not answer within 3 s".into())),
    };
    let props = parse_udev_properties(&String::from_utf8_lossy(&out.stdout));
    match usb_info(&props) {
        Some(u) => (Some(u), None),
        None if pty_index(device).is_some() => (
            None,
            Some("a pseudo-terminal, not a USB device: no udev rule applies".into()),
        ),
        None => (
            None,
            Some("not a USB device (no ID_VENDOR_ID from udev): no udev rule applies".into()),
        ),
    }
}

/// `KEY=value` lines of `udevadm info --query=property`.
pub fn parse_udev_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// The USB identity in udev properties, when the device is on USB.
pub fn usb_info(props: &BTreeMap<String, String>) -> Option<UsbInfo> {
    let get = |k: &str| props.get(k).filter(|v| !v.is_empty()).cloned();
    Some(UsbInfo {
        vendor_id: get("ID_VENDOR_ID")?,
        model_id: get("ID_MODEL_ID")?,
        vendor: get("ID_VENDOR_FROM_DATABASE").or_else(|| get("ID_VENDOR")),
        model: get("ID_MODEL_FROM_DATABASE").or_else(|| get("ID_MODEL")),
        serial_short: get("ID_SERIAL_SHORT"),
        interface_num: get("ID_USB_INTERFACE_NUM"),
        id_path: get("ID_PATH"),
    })
}

/// Serial numbers every unit of a model shares (see udev/90-gridsms.rules): useless as an id.
fn placeholder_serial(s: &str) -> bool {
    matches!(
        s,
        "0" | "00" | "000" | "0000" | "0001" | "123456789ABCDEF" | "0123456789ABCDEF"
    )
}

/// `model-IMEI tail` in the config's name alphabet: `ec25-5136`, `simcom-sim800-5136`.
pub fn suggest_name(info: &ModemInfo) -> String {
    let mut slug = String::new();
    for c in info.model.as_deref().unwrap_or("modem").chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "modem" } else { slug };
    match info.imei.as_deref().filter(|i| i.len() >= 4) {
        Some(imei) => format!("{slug}-{}", &imei[imei.len() - 4..]),
        None => slug.to_string(),
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Fill in names (unique within the run), config blocks and udev rules for the modems.
fn suggest(reports: &mut [PortReport]) {
    let mut used: HashMap<String, u32> = HashMap::new();
    for r in reports.iter_mut() {
        let Outcome::Modem(info) = &r.outcome else {
            continue;
        };
        let base = suggest_name(info);
        let n = used.entry(base.clone()).or_insert(0);
        *n += 1;
        let name = if *n == 1 { base } else { format!("{base}-{n}") };
        r.udev_rule = udev_rule(&name, info, r);
        r.config_block = Some(config_block(&name, info, r));
        r.suggested_name = Some(name);
    }
}

/// A ready-to-paste `[[modem]]` block.
pub fn config_block(name: &str, info: &ModemInfo, r: &PortReport) -> String {
    let mut about = Vec::new();
    let model = [info.manufacturer.as_deref(), info.model.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !model.is_empty() {
        about.push(model);
    }
    if let Some(i) = &info.imei {
        about.push(format!("IMEI {i}"));
    }
    if let Some(i) = &info.iccid {
        about.push(format!("ICCID {i}"));
    }
    if let Some(o) = &info.operator {
        about.push(o.clone());
    }
    if let Some(s) = info.signal_dbm {
        about.push(format!("{s} dBm"));
    }
    let mut out = format!("[[modem]]\n# {}\n", about.join(", "));
    out.push_str(&format!("name = {}\n", toml_str(name)));
    let (device, note) = match r.links.first() {
        Some(link) => (
            link.clone(),
            format!("stable link to {}", r.device.display()),
        ),
        None if r.udev_rule.is_some() => (
            r.path.clone(),
            format!(
                "changes when modems are re-plugged: install the udev rule below and use /dev/gridsms/{name}"
            ),
        ),
        None if pty_index(&r.device).is_some() => (
            r.path.clone(),
            "a pseudo-terminal: valid only while the program behind it runs".into(),
        ),
        None => (
            r.path.clone(),
            "no stable link points here: names of USB serial ports change on re-plugging".into(),
        ),
    };
    out.push_str(&format!("# {note}\n"));
    out.push_str(&format!(
        "device = {}\n",
        toml_str(&device.to_string_lossy())
    ));
    if info.sim.as_deref().is_some_and(|s| s != "Ready") {
        out.push_str("# the SIM is not ready (PIN?): set pin_file, see config/gridsms.toml\n");
    }
    out
}

/// A udev rule giving the port a stable name, in the style of udev/90-gridsms.rules; `None`
/// when the port is not on USB or already has a stable link.
pub fn udev_rule(name: &str, info: &ModemInfo, r: &PortReport) -> Option<String> {
    let usb = r.usb.as_ref()?;
    if !r.links.is_empty() {
        return None;
    }
    let mut m = format!(
        "SUBSYSTEM==\"tty\", ATTRS{{idVendor}}==\"{}\", ATTRS{{idProduct}}==\"{}\"",
        usb.vendor_id, usb.model_id
    );
    match (&usb.serial_short, &usb.id_path) {
        (Some(s), _) if !placeholder_serial(s) => {
            m.push_str(&format!(", ENV{{ID_SERIAL_SHORT}}==\"{s}\""))
        }
        (_, Some(p)) => m.push_str(&format!(", ENV{{ID_PATH}}==\"{p}\"")),
        _ => {}
    }
    if let Some(i) = &usb.interface_num {
        m.push_str(&format!(", ENV{{ID_USB_INTERFACE_NUM}}==\"{i}\""));
    }
    let model = info.model.as_deref().unwrap_or("modem");
    Some(format!(
        "# {name}: {model} ({}:{}) on {}\n{m}, SYMLINK+=\"gridsms/{name}\", GROUP=\"dialout\", MODE=\"0660\", ENV{{ID_MM_DEVICE_IGNORE}}=\"1\", ENV{{ID_MM_PORT_IGNORE}}=\"1\"\n",
        usb.vendor_id,
        usb.model_id,
        r.device.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udev_properties_and_usb_identity() {
        let text = "DEVNAME=/dev/ttyUSB2\nID_VENDOR_ID=2c7c\nID_MODEL_ID=0125\nID_SERIAL_SHORT=8d4f20a1\nID_USB_INTERFACE_NUM=02\nID_PATH=pci-0000:00:14.0-usb-0:1.3:1.2\ngarbage line\n=x\n";
        let props = parse_udev_properties(text);
        let usb = usb_info(&props).unwrap();
        assert_eq!(usb.vendor_id, "2c7c");
        assert_eq!(usb.interface_num.as_deref(), Some("02"));
        assert!(usb_info(&parse_udev_properties("DEVNAME=/dev/pts/3\n")).is_none());
    }

    #[test]
    fn names_from_model_and_imei_tail() {
        let mut i = ModemInfo {
            model: Some("SIMCOM_SIM800".into()),
            imei: Some("866758042195136".into()),
            ..ModemInfo::default()
        };
        assert_eq!(suggest_name(&i), "simcom-sim800-5136");
        i.model = Some("  ".into());
        i.imei = None;
        assert_eq!(suggest_name(&i), "modem");
    }

    #[test]
    fn tty_index_and_natural_order() {
        assert_eq!(
            parse_tty_index("pos:\t0\nflags:\t02\ntty-index:\t7\n"),
            Some(7)
        );
        assert_eq!(parse_tty_index("pos: 0\n"), None);
        assert_eq!(pty_index(Path::new("/dev/pts/12")), Some(12));
        assert_eq!(pty_index(Path::new("/dev/ttyUSB1")), None);
        assert!(natural_key(Path::new("/dev/ttyUSB2")) < natural_key(Path::new("/dev/ttyUSB10")));
    }

    fn report(usb: Option<UsbInfo>, links: Vec<PathBuf>) -> PortReport {
        PortReport {
            path: "/dev/ttyUSB2".into(),
            device: "/dev/ttyUSB2".into(),
            links,
            outcome: Outcome::Silent,
            usb,
            usb_note: None,
            suggested_name: None,
            config_block: None,
            udev_rule: None,
        }
    }

    #[test]
    fn udev_rule_pins_serial_or_path_and_interface() {
        let info = ModemInfo {
            model: Some("EC25".into()),
            ..ModemInfo::default()
        };
        let mut usb = UsbInfo {
            vendor_id: "2c7c".into(),
            model_id: "0125".into(),
            serial_short: Some("8d4f20a1".into()),
            interface_num: Some("02".into()),
            id_path: Some("pci-0000:00:14.0-usb-0:1.3:1.2".into()),
            ..UsbInfo::default()
        };
        let rule = udev_rule("ec25-5136", &info, &report(Some(usb.clone()), vec![])).unwrap();
        assert!(
            rule.contains("ENV{ID_SERIAL_SHORT}==\"8d4f20a1\""),
            "{rule}"
        );
        assert!(rule.contains("ENV{ID_USB_INTERFACE_NUM}==\"02\""), "{rule}");
        assert!(rule.contains("SYMLINK+=\"gridsms/ec25-5136\""), "{rule}");
        usb.serial_short = Some("0000".into());
        let rule = udev_rule("x", &info, &report(Some(usb.clone()), vec![])).unwrap();
        assert!(
            rule.contains("ENV{ID_PATH}==\"pci-0000:00:14.0-usb-0:1.3:1.2\""),
            "{rule}"
        );
        assert!(!rule.contains("ID_SERIAL_SHORT"), "{rule}");
        // Already named by the shipped rules: nothing to add.
        assert!(
            udev_rule(
                "x",
                &info,
                &report(Some(usb), vec!["/dev/gridsms/a".into()])
            )
            .is_none()
        );
        assert!(udev_rule("x", &info, &report(None, vec![])).is_none());
    }

    #[test]
    fn config_block_is_valid_toml_with_the_stable_link() {
        let info = ModemInfo {
            manufacturer: Some("Quectel".into()),
            model: Some("EC25".into()),
            imei: Some("866758042195136".into()),
            sim: Some("Ready".into()),
            ..ModemInfo::default()
        };
        let r = report(None, vec!["/dev/gridsms/quectel-ec25-8d4f20a1-at".into()]);
        let block = config_block("ec25-5136", &info, &r);
        let v: toml::Table = toml::from_str(&block).unwrap();
        let m = &v["modem"].as_array().unwrap()[0];
        assert_eq!(
            m["device"].as_str(),
            Some("/dev/gridsms/quectel-ec25-8d4f20a1-at")
        );
        assert_eq!(m["name"].as_str(), Some("ec25-5136"));
    }
}
