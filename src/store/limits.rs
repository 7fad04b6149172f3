//! Per-tenant limits that must hold across every `serve` process, so they live in PostgreSQL:
//! a token bucket for the API's writes, and the backlog a tenant has queued but not applied.

use sqlx::PgPool;
use uuid::Uuid;

/// Draws one token from the tenant's bucket (`rate` tokens a second, at most `burst`).
/// `None`: allowed. `Some(seconds)`: refused; a token will be there in that many seconds.
/// One statement: the row lock orders concurrent draws, from any process.
pub async fn take_token(
    pool: &PgPool,
    tenant_id: Uuid,
    rate: f64,
    burst: f64,
) -> Result<Option<f64>, sqlx::Error> {
    let (allowed, tokens): (bool, f64) = sqlx::query_as(
        "INSERT INTO rate_buckets AS b (tenant_id, tokens, refreshed_at, allowed)
         VALUES ($1, $3 - 1, now(), true)
         ON CONFLICT (tenant_id) DO UPDATE SET
             allowed = least($3, b.tokens + extract(epoch FROM now() - b.refreshed_at)::float8 * $2) >= 1,
             tokens = least($3, b.tokens + extract(epoch FROM now() - b.refreshed_at)::float8 * $2)
                 - CASE WHEN least($3, b.tokens + extract(epoch FROM now() - b.refreshed_at)::float8 * $2) >= 1
                        THEN 1 ELSE 0 END,
             refreshed_at = now()
         RETURNING allowed, tokens",
    )
    .bind(tenant_id)
    .bind(rate)
    .bind(burst)
    .fetch_one(pool)
    .await?;
    Ok((!allowed).then(|| (1.0 - tokens).max(0.0) / rate))
}

/// Rows and payload bytes the tenant has stored and not yet applied (`held` or `pending`), the
/// bytes as stored (packed, or JSON from before migration 0029).
pub async fn queued(pool: &PgPool, tenant_id: Uuid) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(sum(row_count), 0)::int8, coalesce(sum(octet_length(payload)), 0)::int8
         FROM import_batches WHERE tenant_id = $1 AND state IN ('held', 'pending')",
    )
    .bind(tenant_id)
    .fetch_one(pool)
    .await
}
