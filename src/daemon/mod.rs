//! The daemon: wires the store, the modem pool, the dispatcher and the HTTP API together and
//! runs them until SIGTERM.

pub mod dispatcher;
pub mod pool;
pub mod state;
