//! `gridsms modems detect` over real pseudo-terminals: simulated modems of every profile, a
//! silent port, a garbage-spewing port, a port another process holds; in the library and as
//! the built binary (explicit paths, --json).

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use gridsms::modem::detect::{self, DetectOptions, Outcome, PortReport};
use gridsms::sim::{self, Profile, SimHandle, SimOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::SerialStream;

fn opts(link_dir: &Path) -> DetectOptions {
    DetectOptions {
        link_dirs: vec![link_dir.to_path_buf()],
        ..DetectOptions::default()
    }
}

async fn sims(dir: &Path) -> Vec<SimHandle> {
    let mut out = Vec::new();
    for p in Profile::ALL {
        let link = dir.join(p.name());
        out.push(sim::spawn_linked(SimOptions::new(p), &link).await.unwrap());
    }
    out
}

fn by_path<'a>(reports: &'a [PortReport], path: &Path) -> &'a PortReport {
    reports
        .iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("{} not reported: {reports:#?}", path.display()))
}

/// A pty pair whose master side writes junk forever (a diagnostic port, a wrong baud rate).
fn garbage_port() -> (PathBuf, SerialStream, tokio::task::JoinHandle<()>) {
    let (mut master, slave) = SerialStream::pair().unwrap();
    let path = PathBuf::from(tokio_serial::SerialPort::name(&slave).unwrap());
    let task = tokio::spawn(async move {
        let junk = b"\x7e\x00\xa5%DBG\xff\xfe\x13\x10\x80junk\x01\x02";
        loop {
            if master.write_all(junk).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (path, slave, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_every_simulated_profile_with_identity_and_config_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let sims = sims(dir.path()).await;
    // No paths: the link directory is scanned (and /dev/ttyUSB*, /dev/ttyACM*, absent here).
    let found = detect::detect(&[], &opts(dir.path())).await.unwrap();
    for sim in &sims {
        let link = sim.device_path();
        let r = by_path(&found.ports, &link);
        assert_eq!(r.device, std::fs::canonicalize(&link).unwrap());
        assert_eq!(r.links, vec![link.clone()]);
        let Outcome::Modem(m) = &r.outcome else {
            panic!("{}: {:?}", sim.profile(), r.outcome)
        };
        assert!(m.model.is_some() && m.manufacturer.is_some(), "{m:?}");
        assert_eq!(
            m.imei.as_deref(),
            Some("866758042195136"),
            "{}",
            sim.profile()
        );
        assert_eq!(
            m.imsi.as_deref(),
            Some("460001234567890"),
            "{}",
            sim.profile()
        );
        assert_eq!(
            m.iccid.as_deref(),
            Some("89860012345678901234"),
            "{}",
            sim.profile()
        );
        assert_eq!(m.sim.as_deref(), Some("Ready"));
        assert_eq!(m.registered, Some(true), "{}", sim.profile());
        assert!(m.operator.is_some(), "{}: {m:?}", sim.profile());
        assert!(
            m.signal_dbm.is_some_and(|d| (-113..=-51).contains(&d)),
            "{m:?}"
        );
        // A pty has no USB identity: no udev rule, and the config names the stable link.
        assert!(r.usb.is_none() && r.udev_rule.is_none());
        let block = r.config_block.as_deref().unwrap();
        let v: toml::Table = toml::from_str(block).unwrap();
        let modem = &v["modem"].as_array().unwrap()[0];
        assert_eq!(modem["device"].as_str(), Some(link.to_str().unwrap()));
        let name = modem["name"].as_str().unwrap();
        assert!(name.ends_with("-5136"), "{name}");
    }
    // Three modems with the same IMEI still get three different names.
    let mut names: Vec<_> = found
        .ports
        .iter()
        .filter_map(|r| r.suggested_name.clone())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3, "{names:?}");
    // The modems were only queried: they still work for the driver afterwards.
    for sim in sims {
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_and_its_target_are_probed_once() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("m");
    let sim = sim::spawn_linked(SimOptions::new(Profile::Sim800), &link)
        .await
        .unwrap();
    let pty = sim.pty_path();
    let found = detect::detect(&[link.clone(), pty.clone()], &opts(dir.path()))
        .await
        .unwrap();
    assert_eq!(found.ports.len(), 1, "{:#?}", found.ports);
    assert_eq!(found.ports[0].path, link);
    assert_eq!(found.ports[0].device, pty);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_garbage_ports_are_told_apart_from_modems() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim::spawn_linked(SimOptions::new(Profile::QuectelEc25), &dir.path().join("q"))
        .await
        .unwrap();
    // Silent: a pty whose other end never answers.
    let (_silent_master, silent_slave) = SerialStream::pair().unwrap();
    let silent = PathBuf::from(tokio_serial::SerialPort::name(&silent_slave).unwrap());
    let (garbage, _garbage_slave, spew) = garbage_port();

    let started = Instant::now();
    let found = detect::detect(
        &[silent.clone(), garbage.clone(), sim.device_path()],
        &opts(dir.path()),
    )
    .await
    .unwrap();
    println!(
        "three ports (modem, silent, garbage) probed in {:?}",
        started.elapsed()
    );
    assert_eq!(by_path(&found.ports, &silent).outcome, Outcome::Silent);
    match &by_path(&found.ports, &garbage).outcome {
        Outcome::Garbage { bytes, sample } => {
            assert!(*bytes > 0);
            assert!(sample.contains("%DBG"), "{sample}");
        }
        other => panic!("garbage port: {other:?}"),
    }
    assert!(matches!(
        by_path(&found.ports, &sim.device_path()).outcome,
        Outcome::Modem(_)
    ));
    // Neither gets a config block.
    assert!(by_path(&found.ports, &silent).config_block.is_none());
    assert!(by_path(&found.ports, &garbage).config_block.is_none());
    spew.abort();
    sim.shutdown().await;
}

/// A child process that will hold a port like another program would. It is started before
/// the port exists: a child forked later would inherit the pty master too (serialport opens
/// it without O_CLOEXEC) and so count as the pty's other end, not as a competing user.
struct Holder(Child);

impl Holder {
    fn start() -> Holder {
        Holder(
            std::process::Command::new("sh")
                .args(["-c", "read dev; exec sleep 600 <> \"$dev\""])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Open `device` in the child; returns once it has it open.
    async fn hold(&mut self, device: &Path) {
        use std::io::Write;
        let mut stdin = self.0.stdin.take().unwrap();
        writeln!(stdin, "{}", device.display()).unwrap();
        drop(stdin);
        let fd0 = format!("/proc/{}/fd/0", self.pid());
        for _ in 0..200 {
            if std::fs::read_link(&fd0).is_ok_and(|t| t == device) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("holder did not open {}", device.display());
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_another_process_holds_is_reported_and_not_touched() {
    let mut holder = Holder::start();
    let (mut master, slave) = SerialStream::pair().unwrap();
    let path = PathBuf::from(tokio_serial::SerialPort::name(&slave).unwrap());
    holder.hold(&path).await;
    let found = detect::detect(std::slice::from_ref(&path), &DetectOptions::default())
        .await
        .unwrap();
    let r = &found.ports[0];
    match &r.outcome {
        Outcome::InUse { holders } => {
            assert!(
                holders
                    .iter()
                    .any(|h| h.pid == holder.pid() && h.name == "sleep"),
                "{holders:?}"
            );
        }
        other => panic!("expected in use, got {other:?}"),
    }
    // Not opened: nothing was written to the port (no "AT" reached the other end).
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_millis(500), master.read(&mut buf)).await;
    assert!(read.is_err(), "the probe wrote to a held port: {read:?}");
    drop(holder);
    // Once the holder is gone the same port is probed (and found silent).
    let found = detect::detect(std::slice::from_ref(&path), &DetectOptions::default())
        .await
        .unwrap();
    assert_eq!(found.ports[0].outcome, Outcome::Silent);
    drop(slave);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_modem_held_by_another_process_is_in_use() {
    let mut holder = Holder::start();
    let dir = tempfile::tempdir().unwrap();
    let sim = sim::spawn_linked(SimOptions::new(Profile::HuaweiE173), &dir.path().join("h"))
        .await
        .unwrap();
    holder.hold(&sim.pty_path()).await;
    let found = detect::detect(&[sim.device_path()], &opts(dir.path()))
        .await
        .unwrap();
    assert!(
        matches!(&found.ports[0].outcome, Outcome::InUse { holders } if holders.iter().any(|h| h.pid == holder.pid())),
        "{:?}",
        found.ports[0].outcome
    );
    drop(holder);
    sim.shutdown().await;
}

async fn gridsms(args: Vec<String>) -> Output {
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_gridsms"))
            .args(&args)
            .output()
            .unwrap()
    });
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("binary does not hang")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_json_and_human_output_for_explicit_paths() {
    let mut holder = Holder::start();
    let dir = tempfile::tempdir().unwrap();
    let sims = sims(dir.path()).await;
    let (_silent_master, silent_slave) = SerialStream::pair().unwrap();
    let silent = tokio_serial::SerialPort::name(&silent_slave).unwrap();
    let (garbage, _g, spew) = garbage_port();
    let (_held_master, held_slave) = SerialStream::pair().unwrap();
    let held = tokio_serial::SerialPort::name(&held_slave).unwrap();
    holder.hold(Path::new(&held)).await;

    let mut args: Vec<String> = vec!["modems".into(), "detect".into(), "--json".into()];
    args.push("--link-dir".into());
    args.push(dir.path().to_string_lossy().into_owned());
    for s in &sims {
        args.push(s.device_path().to_string_lossy().into_owned());
    }
    args.push(silent.clone());
    args.push(garbage.to_string_lossy().into_owned());
    args.push(held.clone());
    let out = gridsms(args.clone()).await;
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ports = v["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 6, "{v:#}");
    let status = |path: &str| -> &Value {
        ports
            .iter()
            .find(|p| p["path"] == path)
            .unwrap_or_else(|| panic!("{path} missing: {v:#}"))
    };
    for s in &sims {
        let p = status(s.device_path().to_str().unwrap());
        assert_eq!(p["status"], "modem", "{p:#}");
        assert_eq!(p["imei"], "866758042195136");
        assert_eq!(p["iccid"], "89860012345678901234");
        assert!(p["config_block"].as_str().unwrap().contains("[[modem]]"));
    }
    assert_eq!(status(&silent)["status"], "silent");
    assert_eq!(status(garbage.to_str().unwrap())["status"], "garbage");
    let h = status(&held);
    assert_eq!(h["status"], "in_use", "{h:#}");
    assert_eq!(h["holders"][0]["pid"], holder.pid());

    // The same run for a person: a paragraph per port, then the config blocks.
    args.retain(|a| a != "--json");
    let out = gridsms(args).await;
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("[[modem]]").count(), 3, "{text}");
    assert!(text.contains("no answer to AT (silent)"), "{text}");
    assert!(
        text.contains(&format!("in use by PID {} sleep", holder.pid())),
        "{text}"
    );
    assert!(text.contains("3 modem(s) found among 6 port(s)"), "{text}");

    // Bad arguments exit 2.
    let out = gridsms(vec![
        "modems".into(),
        "detect".into(),
        "/nonexistent/tty".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    let out = gridsms(vec![
        "modems".into(),
        "detect".into(),
        dir.path().to_string_lossy().into_owned(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "a directory is not a port");

    drop(holder);
    spew.abort();
    for s in sims {
        s.shutdown().await;
    }
}
