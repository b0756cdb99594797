//! Checks `systemd/gridsms.service`: `systemd-analyze verify` accepts it (and rejects broken
//! copies), `systemd-analyze security` rates its exposure at 2.0 or below, and the settings
//! the daemon relies on (notify, watchdog, stop timeout above the drain grace) are there.
//!
//! `verify` checks that ExecStart's binary exists, so it runs on a copy of the unit whose
//! ExecStart points at the binary cargo built. Without systemd-analyze the systemd tests
//! print a SKIPPED line, unless GRIDSMS_REQUIRE_EXTERNAL=1 (set by .ci/run).

use std::path::PathBuf;
use std::process::Command;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/gridsms.service");

/// The daemon's drain grace after SIGTERM (design: 30 s); TimeoutStopSec must exceed it.
const DAEMON_DRAIN_GRACE_SECS: u64 = 30;

fn unit_text() -> String {
    std::fs::read_to_string(UNIT).unwrap_or_else(|e| panic!("{UNIT}: {e}"))
}

fn values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

fn one(text: &str, key: &str) -> String {
    let v = values(text, key);
    assert_eq!(v.len(), 1, "{key} should be set exactly once, found {v:?}");
    v[0].clone()
}

fn seconds(v: &str) -> u64 {
    let digits = v.trim_end_matches('s');
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{v:?} is not a plain number of seconds"))
}

fn systemd_analyze() -> bool {
    let present = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        let strict = std::env::var("GRIDSMS_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1");
        assert!(
            !strict,
            "GRIDSMS_REQUIRE_EXTERNAL=1 but systemd-analyze is missing (apt-get install systemd)"
        );
        println!("SKIPPED: systemd-analyze not found; unit not verified (apt-get install systemd)");
    }
    present
}

/// A copy of `text` as `gridsms.service` in a temp dir, ExecStart pointing at the built binary.
fn staged(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gridsms.service");
    let text = text.replace(
        "ExecStart=/usr/bin/gridsms ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_gridsms")),
    );
    std::fs::write(&path, text).expect("write unit");
    (dir, path)
}

/// `systemd-analyze verify`: Ok, or the complaints. Unknown keys and unparsable values are
/// only warnings to systemd (exit 0), so any line about the unit counts as a failure.
fn verify(text: &str) -> Result<(), String> {
    let (_dir, path) = staged(text);
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains("gridsms")).collect();
    if out.status.success() && complaints.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", out.status, stderr))
    }
}

#[test]
fn systemd_analyze_verify_passes() {
    if !systemd_analyze() {
        return;
    }
    if let Err(e) = verify(&unit_text()) {
        panic!("systemd-analyze verify rejected the unit: {e}");
    }
}

#[test]
fn systemd_analyze_verify_rejects_broken_copies() {
    if !systemd_analyze() {
        return;
    }
    let good = unit_text();
    let mutations = [
        ("Type=notify", "Type=notifyy"),
        ("ProtectHome=yes", "ProtectHomme=yes"),
        ("WatchdogSec=30s", "WatchdogSec=thirty"),
        ("[Service]", "[Servce]"),
    ];
    for (from, to) in mutations {
        assert!(good.contains(from), "{from:?} not in the unit");
        assert!(
            verify(&good.replacen(from, to, 1)).is_err(),
            "verify accepted {to:?}"
        );
    }
}

#[test]
fn security_exposure_is_at_most_two() {
    if !systemd_analyze() {
        return;
    }
    let (_dir, path) = staged(&unit_text());
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure line in:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    println!("systemd-analyze security: {}", line.trim());
    assert!(score <= 2.0, "exposure {score} above 2.0:\n{stdout}");
}

#[test]
fn unit_has_what_the_daemon_relies_on() {
    let t = unit_text();
    assert_eq!(one(&t, "Type"), "notify");
    assert_eq!(one(&t, "NotifyAccess"), "main");
    assert!(seconds(&one(&t, "WatchdogSec")) > 0);
    assert_eq!(one(&t, "Restart"), "on-failure");
    assert!(
        seconds(&one(&t, "TimeoutStopSec")) > DAEMON_DRAIN_GRACE_SECS,
        "systemd would SIGKILL the daemon before its drain grace ends"
    );
    assert_eq!(one(&t, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(
        one(&t, "ExecStart"),
        "/usr/bin/gridsms run --config /etc/gridsms/gridsms.toml"
    );
    assert_eq!(one(&t, "User"), "gridsms");
    assert_eq!(one(&t, "SupplementaryGroups"), "dialout");
    // Modems need their tty classes through the device cgroup and nothing else.
    assert_eq!(one(&t, "DevicePolicy"), "closed");
    let allowed = values(&t, "DeviceAllow");
    for class in ["char-ttyUSB rw", "char-ttyACM rw"] {
        assert!(
            allowed.iter().any(|a| a == class),
            "DeviceAllow lacks {class}"
        );
    }
    assert!(
        values(&t, "PrivateDevices").is_empty(),
        "PrivateDevices hides hot-plugged modems"
    );
    assert!(
        values(&t, "PrivateUsers").is_empty(),
        "PrivateUsers unmaps the dialout group"
    );
    assert_eq!(one(&t, "CapabilityBoundingSet"), "");
    assert_eq!(one(&t, "NoNewPrivileges"), "yes");
    assert_eq!(one(&t, "ProtectSystem"), "strict");
    assert_eq!(one(&t, "IPAddressDeny"), "any");
    assert_eq!(one(&t, "IPAddressAllow"), "localhost");
    assert_eq!(
        one(&t, "RestrictAddressFamilies"),
        "AF_UNIX AF_INET AF_INET6"
    );
}
