//! The maintenance loop of the API processes, every second: the retention period (every
//! minute), the planner's statistics, abandoned uploads, old published events, and the folds of
//! the contact and group counts. Each step is a statement of `store` that is safe to run from
//! several processes at once; a failed step is tried again on the next turn.

use crate::store::{contacts, events, groups, maintenance};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A CSV upload that stored no batch for this long was abandoned by a process that died.
pub const UPLOAD_SILENCE: Duration = Duration::from_secs(600);

/// How often finished imports are checked against the retention period.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Confirmed events are kept this long, then deleted.
const KEEP_PUBLISHED_EVENTS: Duration = Duration::from_secs(86_400);

/// Runs until `shutdown`, checking every `every`; imports finished more than `retention` ago
/// lose their rows and results.
pub async fn run(
    pool: PgPool,
    every: Duration,
    retention: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_purge: Option<Instant> = None;
    while !*shutdown.borrow() {
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            match maintenance::purge_expired(&pool, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(imports = n, "rows and results of old imports deleted"),
                Err(e) => tracing::debug!(error = %e, "retention check skipped"),
            }
        }
        if let Err(e) = maintenance::analyse_stale(&pool).await {
            tracing::debug!(error = %e, "statistics check skipped");
        }
        if let Err(e) = maintenance::fail_abandoned_uploads(&pool, UPLOAD_SILENCE).await {
            tracing::debug!(error = %e, "abandoned upload check skipped");
        }
        if let Err(e) = events::forget_published(&pool, KEEP_PUBLISHED_EVENTS).await {
            tracing::debug!(error = %e, "published events not cleared this time");
        }
        if let Err(e) = contacts::fold_counts(&pool).await {
            tracing::debug!(error = %e, "contact counts not folded this time");
        }
        if let Err(e) = groups::fold_counts(&pool).await {
            tracing::debug!(error = %e, "group counts not folded this time");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}
