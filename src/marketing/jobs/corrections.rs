//! Corrected-bill notices: posted bills revised since the watermark → one notice per account,
//! period, revision and contact phone, key `billfix:{account}:{period}:{revision}:{phone}`, so
//! each revision is announced once. Rows with revision 0 are not corrections (`not_revised`).
//! Same streaming, batching and watermark rules as [`super::bills`], on `revised_at`.

use super::bills::{Kind, poll_configured};
use super::{Job, JobContext, JobError};
use crate::marketing::source::BoxFuture;
use crate::store::jobs::RunStats;

pub struct Corrections;

impl Job for Corrections {
    fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
        stats: &'a mut RunStats,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(poll_configured(ctx, stats, Kind::Correction))
    }
}
