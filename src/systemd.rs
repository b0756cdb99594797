//! systemd's notify protocol: READY once the modems have had their first init attempt,
//! STATUS with modems up and queue depth, WATCHDOG pings at half of WatchdogSec, STOPPING and
//! RELOADING around shutdown and SIGHUP. Outside systemd (no NOTIFY_SOCKET) every call is a no-op,
//! so the daemon runs the same on a terminal and in tests.

use sd_notify::NotifyState;
use std::time::Duration;

/// Sends state changes to systemd when started by it; never fails the daemon over them.
#[derive(Debug, Clone)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID from the environment.
    pub fn from_env() -> Self {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: sd_notify::watchdog_enabled(),
        }
    }

    /// A notifier that never sends anything (tests, field tools).
    pub fn disabled() -> Self {
        Notifier {
            enabled: false,
            watchdog: None,
        }
    }

    /// How often to ping the watchdog: half of WatchdogSec, so one late tick is not fatal.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// Asks for `by` more start-up time (and pings the watchdog) while something slow but
    /// alive, such as a schema upgrade, holds READY back.
    pub fn extend_start(&self, by: Duration, status: &str) {
        let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
        self.send(&[
            NotifyState::ExtendTimeoutUsec(usec),
            NotifyState::Watchdog,
            NotifyState::Status(status),
        ]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    pub fn reloading(&self) {
        self.send(&[NotifyState::Reloading]);
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(error) = sd_notify::notify(states) {
            // systemd going away must not take the gateway with it; the watchdog will tell.
            tracing::warn!(%error, "systemd notification failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn disabled_notifier_sends_nothing_and_has_no_watchdog() {
        let n = Notifier::disabled();
        n.ready("x");
        assert_eq!(n.watchdog_interval(), None);
    }

    #[test]
    fn messages_reach_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // sd_notify reads the socket path from the environment; this test owns that variable.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        let n = Notifier {
            enabled: true,
            watchdog: Some(Duration::from_secs(30)),
        };
        n.ready("2/4 modems up, 0 queued");
        let mut buf = [0u8; 256];
        let len = socket.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..len]);
        assert!(text.contains("READY=1"), "{text}");
        assert!(text.contains("STATUS=2/4 modems up, 0 queued"), "{text}");
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(15)));
        n.extend_start(Duration::from_secs(30), "upgrading");
        let len = socket.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..len]);
        assert!(text.contains("EXTEND_TIMEOUT_USEC=30000000"), "{text}");
        assert!(text.contains("WATCHDOG=1"), "{text}");
        assert!(text.contains("STATUS=upgrading"), "{text}");
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
    }
}
