//! The bureau's marketing (billing) database, read-only: sources per engine, the query
//! contract, typed lookups, and (with the marketing issue) the polling jobs and templates.
//!
//! ```text
//! [marketing] url + [marketing.queries] (site SQL, named params)
//!     -> source::open -> Arc<dyn Source> (sqlite | postgres | mysql; read-only, timeouts)
//!     -> Directory (typed lookups, customer streams) -> jobs / inbound replies / staff sends
//! ```

pub mod demo;
pub mod directory;
pub mod jobs;
pub mod mysql;
pub mod outages;
pub mod postgres;
pub mod queries;
pub mod source;
pub mod sqlite;

pub use directory::{Audience, Customer, Directory, MarketingError, SkipReason};
pub use queries::{QUERIES, Queries, QuerySpec};
pub use source::{Engine, Query, Row, RowStream, Source, SourceConfig, SourceError, Value};
