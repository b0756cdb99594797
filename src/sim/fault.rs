//! Faults the simulated modem can be told to show, as field modems show them, and their
//! command-line spelling (`--fault SPEC`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A misbehaviour to inject, at start (`SimOptions::faults`) or at any time
/// (`SimHandle::inject_fault`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The next `count` sends end in `+CMS ERROR: <code>` instead of `+CMGS: <mr>`.
    CmsError { code: u16, count: u32 },
    /// Registration drops to "searching" for `duration` (+CREG URC if enabled); sends fail with
    /// `+CMS ERROR: 331`, +CSQ says 99,99.
    RegistrationLost { duration: Duration },
    /// The modem ignores everything it is sent and prints nothing for `duration`.
    Silent { duration: Duration },
    /// `bytes` bytes of line noise, printed at once.
    Garbage { bytes: usize },
    /// The USB device vanishes: the pty closes (the open side sees a hangup), the link is
    /// removed, and after `down_for` a new pty (new /dev/pts path) and link come back and the
    /// modem boots again.
    Unplug { down_for: Duration },
    /// SMS storage reports full: inbound SMS are held by the network (no +CMTI) until the
    /// driver deletes a message; writing to storage fails with `+CMS ERROR: 322`.
    StorageFull,
    /// The next `AT+CMGS` prompt comes after `delay`.
    SlowPrompt { delay: Duration },
}

/// A `--fault` spec that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad fault spec {spec:?}: {reason} (forms: cms:CODE[:COUNT], noreg:DUR, silent:DUR, \
     garbage:BYTES, unplug:DUR, storage-full, slow-prompt:DUR; DUR like 500ms, 3s, 2m)"
)]
pub struct BadFault {
    pub spec: String,
    pub reason: &'static str,
}

/// Largest garbage burst accepted, so a typo cannot ask for gigabytes.
pub const MAX_GARBAGE: usize = 1 << 20;

/// `500ms`, `3s`, `2m`, or bare seconds.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        _ => None,
    }
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl FromStr for Fault {
    type Err = BadFault;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = |reason| BadFault {
            spec: spec.to_string(),
            reason,
        };
        let mut parts = spec.trim().split(':');
        let kind = parts.next().unwrap_or_default().to_ascii_lowercase();
        let args: Vec<&str> = parts.collect();
        let duration = |args: &[&str]| match args {
            [d] => parse_duration(d).ok_or_else(|| bad("bad duration")),
            _ => Err(bad("expects one duration")),
        };
        match kind.as_str() {
            "cms" => {
                let (code, count) = match args.as_slice() {
                    [c] => (c.parse().map_err(|_| bad("bad CMS code"))?, 1),
                    [c, n] => (
                        c.parse().map_err(|_| bad("bad CMS code"))?,
                        n.parse().map_err(|_| bad("bad count"))?,
                    ),
                    _ => return Err(bad("expects cms:CODE[:COUNT]")),
                };
                Ok(Fault::CmsError { code, count })
            }
            "noreg" => Ok(Fault::RegistrationLost {
                duration: duration(&args)?,
            }),
            "silent" => Ok(Fault::Silent {
                duration: duration(&args)?,
            }),
            "unplug" => Ok(Fault::Unplug {
                down_for: duration(&args)?,
            }),
            "slow-prompt" => Ok(Fault::SlowPrompt {
                delay: duration(&args)?,
            }),
            "garbage" => match args.as_slice() {
                [n] => match n.parse::<usize>() {
                    Ok(bytes) if bytes <= MAX_GARBAGE => Ok(Fault::Garbage { bytes }),
                    _ => Err(bad("bad byte count (at most 1048576)")),
                },
                _ => Err(bad("expects garbage:BYTES")),
            },
            "storage-full" if args.is_empty() => Ok(Fault::StorageFull),
            _ => Err(bad("unknown fault")),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::CmsError { code, count } => write!(f, "cms:{code}:{count}"),
            Fault::RegistrationLost { duration } => write!(f, "noreg:{}", show_duration(*duration)),
            Fault::Silent { duration } => write!(f, "silent:{}", show_duration(*duration)),
            Fault::Garbage { bytes } => write!(f, "garbage:{bytes}"),
            Fault::Unplug { down_for } => write!(f, "unplug:{}", show_duration(*down_for)),
            Fault::StorageFull => f.write_str("storage-full"),
            Fault::SlowPrompt { delay } => write!(f, "slow-prompt:{}", show_duration(*delay)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        let cases = [
            (
                "cms:500:3",
                Fault::CmsError {
                    code: 500,
                    count: 3,
                },
            ),
            ("cms:38", Fault::CmsError { code: 38, count: 1 }),
            (
                "noreg:10s",
                Fault::RegistrationLost {
                    duration: Duration::from_secs(10),
                },
            ),
            (
                "silent:5s",
                Fault::Silent {
                    duration: Duration::from_secs(5),
                },
            ),
            ("garbage:4096", Fault::Garbage { bytes: 4096 }),
            (
                "unplug:3s",
                Fault::Unplug {
                    down_for: Duration::from_secs(3),
                },
            ),
            ("storage-full", Fault::StorageFull),
            (
                "slow-prompt:2s",
                Fault::SlowPrompt {
                    delay: Duration::from_secs(2),
                },
            ),
            (
                "slow-prompt:750ms",
                Fault::SlowPrompt {
                    delay: Duration::from_millis(750),
                },
            ),
        ];
        for (spec, fault) in cases {
            assert_eq!(spec.parse::<Fault>().as_ref(), Ok(&fault), "{spec}");
            let shown = fault.to_string();
            assert_eq!(shown.parse::<Fault>(), Ok(fault), "{shown}");
        }
        assert_eq!(
            "silent:2m".parse(),
            Ok(Fault::Silent {
                duration: Duration::from_secs(120)
            })
        );
    }

    #[test]
    fn bad_specs_are_rejected() {
        for spec in [
            "",
            "cms",
            "cms:x",
            "cms:1:2:3",
            "noreg",
            "noreg:5h",
            "silent:-1s",
            "garbage:99999999",
            "unplug:",
            "storage-full:1",
            "reboot:1s",
            "slow-prompt:fast",
        ] {
            assert!(spec.parse::<Fault>().is_err(), "{spec:?} accepted");
        }
    }
}
