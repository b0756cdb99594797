//! gridsms: the SMS notification gateway of a power-supply bureau.
//!
//! Data flow (see the design card and `docs/`):
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
//! - [`message`]: categories, priorities, states and carriers shared by every layer.
//! - [`phone`]: normalising Chinese mobile numbers and telling their carrier.
//! - [`config`]: the TOML configuration, validated as a whole.
//! - [`clock`]: wall-clock time behind a trait, for quiet hours and schedules.
//! - [`store`]: the SQLite outbox, quotas and migrations.
//! - [`dispatch`]: pure SIM choice and retry policy; the scheduler that feeds the modems.
//! - [`marketing`]: the read-only marketing database: sources, query contract, lookups.
//! - [`reports`]: delivery statistics, failed numbers, SIM usage and cost; JSON and CSV.
//! - [`templates`]: notice texts (placeholders, signature, unsubscribe hint on broadcasts).
//! - [`inbound`]: customers texting in: PDU intake, reassembly, inbox, keywords, replies.

pub mod api;
pub mod at;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod inbound;
pub mod marketing;
pub mod message;
pub mod modem;
pub mod pdu;
pub mod phone;
pub mod reports;
pub mod sim;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod templates;
