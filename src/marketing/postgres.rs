//! PostgreSQL-protocol marketing source (PostgreSQL, KingbaseES, openGauss/GaussDB).
//! Not built yet: the adapter lands with the marketing issue.

use super::source::{Source, SourceConfig, SourceError};
use std::sync::Arc;

pub fn open(_config: &SourceConfig) -> Result<Arc<dyn Source>, SourceError> {
    Err(SourceError::Unsupported("PostgreSQL"))
}
