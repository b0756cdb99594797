//! `gridsms modems detect`: probe serial ports for modems and print what answered, config
//! blocks and udev rules. The probing is [`gridsms::modem::detect`]; this file only formats.
use clap::Args;
use gridsms::modem::detect::{self, DetectOptions, Detection, Outcome, PortReport};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Ports to probe; default /dev/ttyUSB*, /dev/ttyACM* and /dev/gridsms/*.
    pub paths: Vec<PathBuf>,
    /// Print the findings as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Directory of stable links to scan and to name ports by (repeatable).
    #[arg(long, value_name = "DIR", default_value = detect::DEFAULT_LINK_DIR)]
    pub link_dir: Vec<PathBuf>,
    /// Do not ask udevadm for the USB identity.
    #[arg(long)]
    pub no_udev: bool,
}

/// Exit 0 when the probe ran (whatever it found), 2 on unusable arguments.
pub fn run(args: DetectArgs) -> ExitCode {
    let opts = DetectOptions {
        link_dirs: args.link_dir,
        udev: !args.no_udev,
        ..DetectOptions::default()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let found = match runtime.block_on(detect::detect(&args.paths, &opts)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_BAD_INPUT);
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&found) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", human(&found));
    }
    ExitCode::SUCCESS
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

fn port_line(r: &PortReport) -> String {
    let mut head = r.path.display().to_string();
    if r.device != r.path {
        head.push_str(&format!(" -> {}", r.device.display()));
    }
    let body = match &r.outcome {
        Outcome::Modem(m) => {
            let mut s = format!(
                "answers AT\n  manufacturer {}, model {}, revision {}\n  IMEI {}  SIM {}  IMSI {}  ICCID {}\n  operator {}, registered {}, signal {}",
                opt(&m.manufacturer),
                opt(&m.model),
                opt(&m.revision),
                opt(&m.imei),
                opt(&m.sim),
                opt(&m.imsi),
                opt(&m.iccid),
                opt(&m.operator),
                match (m.registered, m.registration) {
                    (Some(r), Some(s)) => format!("{} ({s:?})", if r { "yes" } else { "no" }),
                    _ => "-".into(),
                },
                m.signal_dbm
                    .map(|d| format!("{d} dBm"))
                    .unwrap_or("-".into()),
            );
            for l in &r.links {
                s.push_str(&format!("\n  stable link {}", l.display()));
            }
            s
        }
        Outcome::Silent => "no answer to AT (silent)".into(),
        Outcome::Garbage { bytes, sample } => {
            format!("no AT answer, {bytes} bytes of something else: \"{sample}\"")
        }
        Outcome::InUse { holders } => {
            let who: Vec<String> = holders
                .iter()
                .map(|h| format!("PID {} {}", h.pid, h.name))
                .collect();
            format!("in use by {} (not opened)", who.join(", "))
        }
        Outcome::Busy { error } => format!("busy, opened exclusively elsewhere ({error})"),
        Outcome::OpenFailed { error } => format!("cannot open: {error}"),
    };
    let mut s = format!("{head}: {body}\n");
    if let Some(u) = &r.usb {
        s.push_str(&format!(
            "  usb {}:{} {} {} serial {} interface {}\n",
            u.vendor_id,
            u.model_id,
            opt(&u.vendor),
            opt(&u.model),
            opt(&u.serial_short),
            opt(&u.interface_num)
        ));
    } else if matches!(r.outcome, Outcome::Modem(_))
        && let Some(n) = &r.usb_note
    {
        s.push_str(&format!("  {n}\n"));
    }
    s
}

/// The report for a person: one paragraph per port, then config blocks and udev rules.
pub fn human(d: &Detection) -> String {
    let mut out = String::new();
    if d.ports.is_empty() {
        out.push_str(
            "no serial ports found (looked for /dev/ttyUSB*, /dev/ttyACM*, stable links)\n",
        );
    }
    for r in &d.ports {
        out.push_str(&port_line(r));
    }
    if d.processes_unreadable > 0 {
        out.push_str(&format!(
            "note: the open files of {} processes could not be read; run as root to see every holder\n",
            d.processes_unreadable
        ));
    }
    let modems = d.ports.iter().filter(|r| r.config_block.is_some()).count();
    out.push_str(&format!(
        "\n{modems} modem(s) found among {} port(s).\n",
        d.ports.len()
    ));
    if modems == 0 {
        return out;
    }
    out.push_str("\n# --- for /etc/gridsms/gridsms.toml ---\n");
    for b in d.ports.iter().filter_map(|r| r.config_block.as_ref()) {
        out.push('\n');
        out.push_str(b);
    }
    let rules: Vec<&String> = d
        .ports
        .iter()
        .filter_map(|r| r.udev_rule.as_ref())
        .collect();
    if !rules.is_empty() {
        out.push_str(
            "\n# --- for /etc/udev/rules.d/89-gridsms-local.rules, then: udevadm control --reload && udevadm trigger -s tty ---\n",
        );
        for rule in rules {
            out.push_str(rule);
        }
    }
    out
}
