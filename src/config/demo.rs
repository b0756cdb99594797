//! `[demo]`: demo only. Names the demo marketing database the daemon writes at start when it
//! is missing (`gridsms demo-db` writes the same on demand). Production configs leave it out.

use super::validate::{int_in, resolve};
use super::{KeyPath, Problems};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDemo {
    pub marketing_db: Option<String>,
    pub customers: Option<i64>,
    pub seed: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoConfig {
    /// Written at start when missing; point `[marketing] url` at the same file.
    pub marketing_db: PathBuf,
    pub customers: u32,
    pub seed: u64,
}

pub(super) fn validate(raw: RawDemo, base: &Path, at: &KeyPath, p: &mut Problems) -> DemoConfig {
    let marketing_db = match raw.marketing_db.as_deref() {
        Some(path) if !path.trim().is_empty() => resolve(base, path),
        _ => {
            p.error(
                &at.key("marketing_db"),
                "missing: the demo database file to create",
            );
            PathBuf::new()
        }
    };
    let customers = int_in(
        p,
        &at.key("customers"),
        raw.customers,
        crate::marketing::demo::DEFAULT_CUSTOMERS,
        1..=crate::marketing::demo::MAX_CUSTOMERS,
    );
    let seed = match raw.seed {
        None => 1,
        Some(s) => u64::try_from(s).unwrap_or_else(|_| {
            p.error(&at.key("seed"), "must not be negative");
            1
        }),
    };
    DemoConfig {
        marketing_db,
        customers,
        seed,
    }
}
