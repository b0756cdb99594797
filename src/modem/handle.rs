//! The cloneable front of a modem actor: requests over a bounded channel, one oneshot reply
//! per request, shutdown as a watch flag the actor sees even while a command is in flight.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::{ModemError, ModemStatus, SendError, SendFailure};
use crate::at::RetryClass;
use crate::pdu::EncodedSegment;

pub(crate) enum Request {
    Send {
        segments: Vec<EncodedSegment>,
        /// Opens (true) the first segment's Ctrl-Z; see [`ModemHandle::send_gated`].
        gate: Option<oneshot::Receiver<bool>>,
        reply: oneshot::Sender<Result<Vec<u8>, SendError>>,
    },
    Status {
        reply: oneshot::Sender<ModemStatus>,
    },
    AckInbound {
        index: u32,
        reply: oneshot::Sender<Result<(), ModemError>>,
    },
}

/// Talks to one modem actor. Cheap to clone; the actor stops when [`ModemHandle::shutdown`]
/// is called or every handle is dropped.
#[derive(Clone)]
pub struct ModemHandle {
    pub(crate) name: Arc<str>,
    pub(crate) requests: mpsc::Sender<Request>,
    pub(crate) shutdown: Arc<watch::Sender<bool>>,
    pub(crate) done: watch::Receiver<bool>,
}

impl ModemHandle {
    /// The modem's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Send the segments of one message, in order, back to back (no status commands between
    /// them). Returns the TP-MR of each segment. On failure, [`SendError::accepted`] holds the
    /// references of the segments the network took before the failing one.
    pub async fn send(&self, segments: Vec<EncodedSegment>) -> Result<Vec<u8>, SendError> {
        self.request_send(segments, None).await
    }

    /// Send one segment whose Ctrl-Z waits for `gate`: `AT+CMGS` goes out and the prompt is
    /// awaited at once, the PDU is typed only once `gate` says `true`. On `false`, a dropped
    /// sender, or no word within the prompt timeout, ESC is typed instead and the send fails
    /// with [`SendFailure::CalledOff`] (nothing went out).
    ///
    /// Why: a caller that must record a segment durably before its Ctrl-Z can run that
    /// write while the modem answers `AT+CMGS`, instead of before it.
    pub async fn send_gated(
        &self,
        segment: EncodedSegment,
        gate: oneshot::Receiver<bool>,
    ) -> Result<u8, SendError> {
        let refs = self.request_send(vec![segment], Some(gate)).await?;
        refs.first().copied().ok_or(SendError {
            segment_index: 0,
            accepted: Vec::new(),
            failure: SendFailure::NoReference,
            class: RetryClass::RetryOtherModem,
        })
    }

    async fn request_send(
        &self,
        segments: Vec<EncodedSegment>,
        gate: Option<oneshot::Receiver<bool>>,
    ) -> Result<Vec<u8>, SendError> {
        let (reply, rx) = oneshot::channel();
        let request = Request::Send {
            segments,
            gate,
            reply,
        };
        if self.requests.send(request).await.is_err() {
            return Err(gone());
        }
        rx.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Current state, identity, signal and registration.
    pub async fn status(&self) -> Result<ModemStatus, ModemError> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::Status { reply })
            .await
            .map_err(|_| ModemError::Gone)?;
        rx.await.map_err(|_| ModemError::Gone)
    }

    /// The message at `storage_index` (from an inbound or status-report event) is stored
    /// durably by the caller: delete it from the modem.
    pub async fn ack_inbound(&self, storage_index: u32) -> Result<(), ModemError> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::AckInbound {
                index: storage_index,
                reply,
            })
            .await
            .map_err(|_| ModemError::Gone)?;
        rx.await.map_err(|_| ModemError::Gone)?
    }

    /// Ask the actor to stop and wait until it has: a send in progress finishes its current
    /// segment (or times out), later segments are failed back.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }
}

fn gone() -> SendError {
    SendError {
        segment_index: 0,
        accepted: Vec::new(),
        failure: SendFailure::Gone,
        class: RetryClass::RetryOtherModem,
    }
}
