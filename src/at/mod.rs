//! The AT-command layer, pure: no I/O, no tokio, no panics on input.
//!
//! - [`digest`]: bytes from the modem → information lines, final results, the `> ` prompt and
//!   unsolicited result codes, through a fixed-size buffer.
//! - [`commands`]: per-command metadata (timeout, attempts, expected prefixes) and typed
//!   parsers for the answers (+CSQ, +CREG, +CMGS, +CMGL, ICCID variants …).
//! - [`errors`]: `+CMS ERROR` / `+CME ERROR` codes → named errors and a [`RetryClass`].

pub mod commands;
pub mod digest;
pub mod errors;

pub use digest::{Digested, Digester, Expect, Ingress, Skip, Urc};
pub use errors::{DeviceError, ErrorFamily, RetryClass};
