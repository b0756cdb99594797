//! A minimal AT client for the simulator tests: opens the pty slave path like a driver opens a
//! /dev/ttyUSB, writes commands, and reads with bounded waits.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{SerialPortBuilderExt, SerialStream};

/// Upper bound of every wait in these tests; generous so a loaded CI machine does not flake.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Client {
    port: SerialStream,
    /// Everything received so far, lossily decoded.
    pub received: String,
}

pub fn is_final(text: &str) -> bool {
    text.ends_with("\r\nOK\r\n")
        || text.ends_with("\r\nERROR\r\n")
        || text.ends_with("> ")
        || text
            .rsplit("\r\n")
            .nth(1)
            .is_some_and(|l| l.starts_with("+CME ERROR:") || l.starts_with("+CMS ERROR:"))
}

impl Client {
    /// Open `path`, retrying while it does not exist yet (after an unplug).
    pub async fn open(path: &Path) -> Client {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio_serial::new(path.to_string_lossy(), 115_200).open_native_async() {
                Ok(port) => {
                    return Client {
                        port,
                        received: String::new(),
                    };
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot open {}: {e}", path.display()),
            }
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.port.write_all(bytes).await.expect("write to the pty");
    }

    /// Write that may fail (the port may be gone).
    pub async fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.port.write_all(bytes).await
    }

    /// Read once (bounded by `wait`); Err on EOF or an I/O error (the port went away).
    pub async fn read_some(&mut self, wait: Duration) -> Result<usize, String> {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(wait, self.port.read(&mut buf)).await {
            Err(_) => Ok(0),
            Ok(Ok(0)) => Err("EOF".into()),
            Ok(Ok(n)) => {
                self.received.push_str(&String::from_utf8_lossy(&buf[..n]));
                Ok(n)
            }
            Ok(Err(e)) => Err(e.to_string()),
        }
    }

    /// Read until `pred` holds for what arrived since `from`; returns that text.
    pub async fn read_until(&mut self, from: usize, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = &self.received[from.min(self.received.len())..];
            if pred(text) {
                return text.to_string();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                panic!("timed out; received since mark: {text:?}");
            }
            if let Err(e) = self.read_some(left.min(Duration::from_millis(200))).await {
                panic!("port failed ({e}); received: {:?}", self.received);
            }
        }
    }

    pub fn mark(&self) -> usize {
        self.received.len()
    }

    /// Send a command line and return everything up to its final result (or the prompt).
    pub async fn cmd(&mut self, line: &str) -> String {
        let from = self.mark();
        self.write(format!("{line}\r").as_bytes()).await;
        self.read_until(from, is_final).await
    }

    /// Wait for `needle` to appear after `from`.
    pub async fn expect(&mut self, from: usize, needle: &str) -> String {
        self.read_until(from, |t| t.contains(needle)).await
    }

    /// Send AT until OK comes back (after boot, silence or garbage), bounded by [`WAIT`].
    pub async fn sync(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            let from = self.mark();
            self.write(b"AT\r").await;
            let _ = self.read_some(Duration::from_millis(300)).await;
            let _ = self.read_some(Duration::from_millis(100)).await;
            if self.received[from..].contains("\r\nOK\r\n") {
                return;
            }
        }
        panic!("modem never answered AT; got {:?}", self.received);
    }

    /// AT+CMGS with one PDU; returns the text from the command to its final result.
    pub async fn send_pdu(&mut self, hex: &str, tpdu_len: usize) -> String {
        let from = self.mark();
        let prompt = self.cmd(&format!("AT+CMGS={tpdu_len}")).await;
        assert!(prompt.ends_with("> "), "no prompt: {prompt:?}");
        self.write(format!("{hex}\x1a").as_bytes()).await;
        let mark = self.mark();
        self.read_until(mark, |t| t.contains("\r\nOK\r\n") || t.contains("ERROR"))
            .await;
        self.received[from..].to_string()
    }
}

/// The text after the info line starting with `prefix`, e.g. the PDU after "+CMGR: ...".
pub fn line_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let mut lines = text.split("\r\n");
    lines.find(|l| l.starts_with(prefix))?;
    lines.next()
}

/// The value of an info line "PREFIX: value".
pub fn field<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
}
