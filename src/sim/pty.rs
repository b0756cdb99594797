//! The I/O side of the simulator: the pty pair, the device link, and the task that moves bytes
//! between the pty master and the [`AtServer`] state machine.
//!
//! The slave side is kept open by the task as well, so the pty survives a driver (or gammu)
//! closing and reopening the device, as a USB modem survives it; an unplug closes both sides,
//! which the driver sees as a hangup, and later brings up a new pair.

use super::at_server::AtServer;
use super::timer::PreciseTimer;
use super::{Request, SharedRef, SimError, SimOptions, lock};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_serial::{ClearBuffer, SerialPort, SerialStream};
use tracing::Instrument;

/// Longest a write to the pty may wait for the reader; after that nobody is listening and the
/// bytes are dropped, like a UART's with no host attached.
const WRITE_TIMEOUT: Duration = Duration::from_millis(250);

pub(crate) struct Port {
    master: SerialStream,
    slave: SerialStream,
    pub slave_path: PathBuf,
}

impl Port {
    /// A new pty pair, plus the link pointing at its slave when asked for.
    pub fn open(link: Option<&Path>) -> Result<Port, SimError> {
        let (master, slave) = SerialStream::pair().map_err(|e| SimError::Pty(e.into()))?;
        let slave_path = slave
            .name()
            .map(PathBuf::from)
            .ok_or_else(|| SimError::Pty(std::io::Error::other("pty slave has no name")))?;
        if let Some(link) = link {
            make_link(&slave_path, link).map_err(|source| SimError::Link {
                path: link.to_path_buf(),
                source,
            })?;
        }
        Ok(Port {
            master,
            slave,
            slave_path,
        })
    }

    /// Write everything, or give up after [`WRITE_TIMEOUT`] and discard what the reader left
    /// unread (the slave's input queue), so the next reader does not get stale noise.
    async fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match tokio::time::timeout(WRITE_TIMEOUT, self.master.write_all(bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "pty write failed"),
            Err(_) => {
                tracing::debug!(bytes = bytes.len(), "nobody reads the pty; output dropped");
                let _ = self.slave.clear(ClearBuffer::Input);
            }
        }
    }
}

impl Port {
    /// Wait (bounded) until the reader has taken what was written: closing the master
    /// discards whatever the slave still holds.
    async fn drain(&mut self) {
        // The kernel moves written bytes to the slave's queue asynchronously: look only after
        // a short pause, then until the queue is empty.
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if !matches!(self.slave.bytes_to_read(), Ok(n) if n > 0) {
                return;
            }
        }
    }
}

/// Point `link` at `target`, atomically. Only a symlink left by a simulator (into /dev/pts)
/// or a dangling one is replaced: never a file or a live device link someone put there.
fn make_link(target: &Path, link: &Path) -> std::io::Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(link) {
        let replaceable = meta.file_type().is_symlink()
            && std::fs::read_link(link)
                .is_ok_and(|t| t.starts_with("/dev/pts") || std::fs::metadata(link).is_err());
        if !replaceable {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a stale simulator link; not replacing it",
            ));
        }
    }
    let mut tmp = link.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

/// Remove `link` if it is a symlink into /dev/pts (ours, or a stale one of a simulator):
/// never delete a regular file or a real device someone put there.
pub(crate) fn remove_link_if_ours(link: &Path) {
    if let Ok(target) = std::fs::read_link(link)
        && target.starts_with("/dev/pts")
    {
        let _ = std::fs::remove_file(link);
    }
}

/// The simulator task: runs until `stop` fires or the handle is dropped.
pub(crate) async fn run(
    options: SimOptions,
    port: Port,
    link: Option<PathBuf>,
    shared: SharedRef,
    sent_tx: watch::Sender<usize>,
    mut requests: mpsc::Receiver<Request>,
    mut stop: oneshot::Receiver<()>,
) {
    let span = tracing::info_span!("sim", profile = %options.profile);
    serve(
        options,
        port,
        link,
        shared,
        sent_tx,
        &mut requests,
        &mut stop,
    )
    .instrument(span)
    .await
}

async fn serve(
    options: SimOptions,
    port: Port,
    link: Option<PathBuf>,
    shared: SharedRef,
    sent_tx: watch::Sender<usize>,
    requests: &mut mpsc::Receiver<Request>,
    stop: &mut oneshot::Receiver<()>,
) {
    let faults = options.faults.clone();
    let mut server = AtServer::new(options, shared.clone(), sent_tx);
    server.power_on(Instant::now());
    for fault in faults {
        server.fault(Instant::now(), fault);
    }
    let mut port = Some(port);
    let mut buf = [0u8; 1024];
    let mut timer = PreciseTimer::new();
    tracing::info!(device = %lock(&shared).device.display(), "simulated modem up");
    loop {
        let out = server.take_output();
        if let Some(p) = port.as_mut() {
            p.write(&out).await;
        }
        if let Some((down_for, drain)) = server.take_replug() {
            // USB reset / unplug: both sides close, the link goes, a new pty comes back later.
            if drain && let Some(p) = port.as_mut() {
                p.drain().await;
            }
            tracing::info!(?down_for, "port gone");
            drop(port.take());
            if let Some(link) = &link {
                remove_link_if_ours(link);
            }
            let back = Instant::now() + down_for;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(back) => break,
                    r = requests.recv() => match r {
                        Some(r) => server.request(Instant::now(), r),
                        None => return,
                    },
                    _ = &mut *stop => return,
                }
            }
            match Port::open(link.as_deref()) {
                Ok(p) => {
                    {
                        let mut s = lock(&shared);
                        s.device = p.slave_path.clone();
                        s.generation += 1;
                    }
                    tracing::info!(device = %p.slave_path.display(), "port back");
                    port = Some(p);
                    server.power_on(Instant::now());
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot bring the port back; simulator stops");
                    return;
                }
            }
            continue;
        }
        let Some(p) = port.as_mut() else { return };
        let deadline = server.next_deadline();
        tokio::select! {
            n = p.master.read(&mut buf) => match n {
                Ok(0) => tokio::time::sleep(Duration::from_millis(10)).await,
                Ok(n) => server.feed(Instant::now(), &buf[..n]),
                Err(e) => {
                    // EIO on a master whose slave we hold should not happen; do not spin.
                    tracing::debug!(error = %e, "pty read failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = timer.sleep_until(deadline) => server.tick(Instant::now()),
            r = requests.recv() => match r {
                Some(r) => server.request(Instant::now(), r),
                None => break,
            },
            _ = &mut *stop => break,
        }
    }
    drop(port);
    if let Some(link) = &link {
        remove_link_if_ours(link);
    }
    tracing::info!("simulated modem stopped");
}
