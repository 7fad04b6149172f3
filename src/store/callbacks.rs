//! Completion callbacks (`callbackUrl`): stored with the import, claimed once it is final by a
//! delivery task (a one-minute lease, so a process that dies mid-delivery leaves it to
//! another), and marked delivered, retried later, or failed.

use super::states::{CallbackState, ImportState};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// The delivery of an import's completion callback, as its status shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallbackView {
    pub url: String,
    pub state: CallbackState,
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// Stores the import's callback, in the intake's transaction.
pub(super) async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
    url: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO import_callbacks (import_id, tenant_id, url) VALUES ($1, $2, $3)")
        .bind(import_id)
        .bind(tenant_id)
        .bind(url)
        .execute(conn)
        .await?;
    Ok(())
}

/// A callback that is due, with what its delivery needs.
#[derive(Debug, sqlx::FromRow)]
pub struct Due {
    pub import_id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    pub attempts: i32,
    /// The tenant's signing secret.
    pub secret: String,
    /// Seconds since the import finished.
    pub age_secs: f64,
}

/// Claims up to `limit` due callbacks of final imports: leases them for a minute.
pub async fn claim(pool: &PgPool, limit: i64) -> Result<Vec<Due>, sqlx::Error> {
    sqlx::query_as(
        "WITH due AS (
             SELECT c.import_id FROM import_callbacks c
             JOIN imports i ON i.id = c.import_id AND i.tenant_id = c.tenant_id
             WHERE c.state = 'pending' AND c.next_attempt_at <= now() AND i.finished_at IS NOT NULL
               AND i.status = ANY($2)
             ORDER BY c.next_attempt_at LIMIT $1 FOR UPDATE OF c SKIP LOCKED)
         UPDATE import_callbacks c SET next_attempt_at = now() + interval '1 minute'
         FROM due, imports i, tenants t
         WHERE c.import_id = due.import_id AND i.id = c.import_id AND t.id = c.tenant_id
         RETURNING c.import_id, c.tenant_id, c.url, c.attempts, t.signing_secret AS secret,
                   extract(epoch FROM now() - i.finished_at)::float8 AS age_secs",
    )
    .bind(limit)
    .bind(&ImportState::FINAL[..])
    .fetch_all(pool)
    .await
}

/// The receiver took it (attempt number `attempts`).
pub async fn delivered(pool: &PgPool, due: &Due, attempts: i32) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE import_callbacks SET state = 'delivered', attempts = $3, delivered_at = now()
         WHERE import_id = $1 AND tenant_id = $2",
    )
    .bind(due.import_id)
    .bind(due.tenant_id)
    .bind(attempts)
    .execute(pool)
    .await?;
    Ok(())
}

/// Attempt number `attempts` failed with `error`: tried again after `wait`, or given up.
pub async fn attempt_failed(
    pool: &PgPool,
    due: &Due,
    attempts: i32,
    error: &str,
    give_up: bool,
    wait: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE import_callbacks SET attempts = $3, last_error = $4,
             state = CASE WHEN $5 THEN 'failed' ELSE 'pending' END,
             next_attempt_at = now() + make_interval(secs => $6)
         WHERE import_id = $1 AND tenant_id = $2",
    )
    .bind(due.import_id)
    .bind(due.tenant_id)
    .bind(attempts)
    .bind(error)
    .bind(give_up)
    .bind(wait.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}
