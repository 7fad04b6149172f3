//! The delivery loop of completion callbacks, in the API processes (`serve`, `run`): claims
//! the due callbacks of final imports (a one-minute lease each), delivers up to 16 at once,
//! and records each outcome. A slow or hanging receiver holds no worker: each attempt is
//! bounded by `callback::TIMEOUT`.

use crate::callback::{self, GIVE_UP_AFTER};
use crate::store::callbacks::{self, Due};
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::watch;

/// Callbacks delivered at once by one process.
const CONCURRENCY: i64 = 16;

/// Delivers due callbacks until `shutdown`, checking every `every`.
pub async fn run(
    pool: PgPool,
    every: Duration,
    retry_initial: Duration,
    allow_private: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut running = tokio::task::JoinSet::new();
    while !*shutdown.borrow() {
        while running.try_join_next().is_some() {}
        let room = CONCURRENCY - running.len() as i64;
        if room > 0 {
            match callbacks::claim(&pool, room).await {
                Ok(due) => {
                    for callback in due {
                        running.spawn(deliver(
                            pool.clone(),
                            callback,
                            retry_initial,
                            allow_private,
                        ));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "callbacks not checked this time"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
    // Deliveries under way finish (each is bounded by TIMEOUT); the rest wait for a restart.
    while running.join_next().await.is_some() {}
}

/// One attempt, and its outcome recorded.
async fn deliver(pool: PgPool, due: Due, retry_initial: Duration, allow_private: bool) {
    let attempt = callback::attempt(&pool, &due, allow_private).await;
    let attempts = due.attempts + 1;
    let result = match attempt {
        Ok(()) => {
            tracing::info!(import_id = %due.import_id, tenant_id = %due.tenant_id, attempts, "callback delivered");
            callbacks::delivered(&pool, &due, attempts).await
        }
        Err(error) => {
            let wait = callback::backoff(retry_initial, attempts as u32, rand_unit());
            let give_up = due.age_secs + wait.as_secs_f64() > GIVE_UP_AFTER.as_secs_f64();
            tracing::warn!(import_id = %due.import_id, tenant_id = %due.tenant_id, attempts, error = %error, give_up, "callback not delivered");
            callbacks::attempt_failed(&pool, &due, attempts, &error, give_up, wait).await
        }
    };
    if let Err(e) = result {
        tracing::warn!(import_id = %due.import_id, error = %e, "callback outcome not recorded; it will be tried again");
    }
}

/// A uniform number in [0, 1), for jitter.
fn rand_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}
