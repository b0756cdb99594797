//! gridsms: the SMS notification gateway of a power-supply bureau.
//!
//! Data flow (see `docs/` and the design card):
//!
//! ```text
//! marketing DB --poll--> jobs --+
//! operators (CLI / HTTP API) ---+--> outbox (SQLite) --> dispatcher --> modem actors --> SIM cards
//! inbound keyword replies ------+                                        |
//!                                        +CMTI/+CDS -> inbox / delivery state
//! ```
//!
//! Module map:
//! - [`pdu`]: pure 3GPP TS 23.040 / 23.038 codec (SMS-SUBMIT, SMS-DELIVER, SMS-STATUS-REPORT).
//! - [`at`]: pure AT-command response digester, command metadata and CMS/CME error classes.
//! - [`modem`]: one actor task per modem owning its serial port; init, send, receive, health.
//! - [`sim`]: a simulated modem on a pseudo-terminal, running the same serial code path.

pub mod at;
pub mod modem;
pub mod pdu;
pub mod sim;
