//! How the actor gets (and gets again) its byte stream: a serial device through tokio-serial,
//! or anything else that can be opened repeatedly (duplex pipes in tests).

use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

/// Opens the modem's byte stream. Called at start, after the device vanished (unplug) and on
/// the "reopen" rung of the recovery ladder; an error is retried with backoff.
pub trait PortOpener: Send + 'static {
    type Port: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn open(&mut self) -> io::Result<Self::Port>;
}

/// A serial device (`/dev/ttyUSB2`, a udev symlink, a pty path) at a baud rate.
#[derive(Debug, Clone)]
pub struct SerialOpener {
    pub device: String,
    pub baud: u32,
}

impl PortOpener for SerialOpener {
    type Port = tokio_serial::SerialStream;

    fn open(&mut self) -> io::Result<Self::Port> {
        use tokio_serial::SerialPortBuilderExt;
        // Resolve udev / simulator symlinks so a path that reappears pointing elsewhere is
        // followed afresh on every open.
        let path = std::fs::canonicalize(&self.device)?;
        let port = tokio_serial::new(path.to_string_lossy(), self.baud)
            .open_native_async()
            .map_err(io::Error::other)?;
        Ok(port)
    }
}

/// Any closure returning a port: tests hand out one end of a duplex pipe per open.
pub struct FnOpener<F>(pub F);

impl<F, P> PortOpener for FnOpener<F>
where
    F: FnMut() -> io::Result<P> + Send + 'static,
    P: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Port = P;

    fn open(&mut self) -> io::Result<P> {
        (self.0)()
    }
}
