//! The maintenance statements that `tasks::maintenance` runs every second: keeping the
//! planner's statistics fresh, the visibility map that deep pages need, the retention period,
//! and abandoned uploads.
//!
//! Statistics. A bulk import can grow `contacts` from nothing to
//! millions of rows in minutes; until the table is analysed the planner believes it is tiny
//! and each batch's look-up scans the whole tenant (measured: 775 ms per batch at 674k rows,
//! 12 ms once analysed). Autovacuum does this when it is on, but it may be off or late, so
//! the service analyses its hot tables itself once enough rows changed — one process at a
//! time, behind an advisory lock. It also fails CSV uploads that a crashed process left
//! half-received, so that they do not sit `queued` for ever.

use sqlx::PgPool;
use std::time::Duration;

/// Tables whose statistics the hot path depends on.
const TABLES: [&str; 2] = ["contacts", "batch_results"];

/// Analyse a table once this many rows changed since its last analysis …
const MIN_CHANGES: i64 = 1000;
/// … and they are at least this many times the rows it had then (its live rows less the
/// changed ones: an inserted row counts in both). What a batch's plans need is a table that
/// has been analysed once: between analyses the planner scales the row count it knows by the
/// table's current size in pages, so a table that grows keeps its estimates; what the lists'
/// estimated totals need is statistics of about the right shape. Checked every second while a
/// first import grows the table by ~20k rows a second: 10 % of the table meant an ANALYZE
/// (~300 ms at 150k rows) every second, and 20 % still spent a tenth of PostgreSQL's CPU in an
/// import analysing (perf). At 1× (analysed each time the table doubled) ANALYZE was 7 % of the
/// database's busy time in a 200,000-row import (pg_stat_activity sampled, bench/RESULTS.md);
/// at 4× it runs at about 1k, 5k, 25k, 125k, 625k rows.
const MIN_SHARE: f64 = 4.0;

/// Key of the advisory lock that keeps two processes from analysing at once.
const LOCK_KEY: i64 = 0x0063_6f6e_7461_6374; // "contact"

/// Deletes the batches (rows as sent), duplicate markers and row results of imports that
/// finished more than `retention` ago, 100 imports per transaction; their summaries stay, with
/// `purged_at` set. Returns how many imports were purged.
pub async fn purge_expired(pool: &PgPool, retention: Duration) -> Result<u64, sqlx::Error> {
    let mut purged = 0;
    loop {
        let mut tx = pool.begin().await?;
        let expired: Vec<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
            "SELECT id, tenant_id FROM imports
             WHERE purged_at IS NULL AND finished_at < now() - make_interval(secs => $1)
             ORDER BY finished_at LIMIT 100 FOR UPDATE SKIP LOCKED",
        )
        .bind(retention.as_secs_f64())
        .fetch_all(&mut *tx)
        .await?;
        if expired.is_empty() {
            return Ok(purged);
        }
        let (ids, tenants): (Vec<uuid::Uuid>, Vec<uuid::Uuid>) = expired.into_iter().unzip();
        // Its key leads with the tenant.
        sqlx::query(
            "DELETE FROM batch_results
             WHERE (tenant_id, import_id) IN (SELECT * FROM UNNEST($1::uuid[], $2::uuid[]))",
        )
        .bind(&tenants)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        for table in ["duplicate_rows", "import_batches"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE import_id = ANY($1)"
            )))
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE imports SET purged_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        purged += ids.len() as u64;
    }
}

/// Analyses each hot table whose statistics are stale; returns the tables analysed.
pub async fn analyse_stale(pool: &PgPool) -> Result<Vec<&'static str>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(Vec::new());
    }
    let mut analysed = Vec::new();
    let result = async {
        for table in TABLES {
            let row: Option<(i64, i64)> = sqlx::query_as(
                "SELECT n_mod_since_analyze, n_live_tup FROM pg_stat_user_tables
                 WHERE relname = $1 AND schemaname = current_schema()",
            )
            .bind(table)
            .fetch_optional(&mut *conn)
            .await?;
            let Some((changed, live)) = row else { continue };
            let before = (live - changed).max(1);
            if changed >= MIN_CHANGES && changed as f64 >= MIN_SHARE * before as f64 {
                let started = std::time::Instant::now();
                sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
                    .execute(&mut *conn)
                    .await?;
                tracing::info!(
                    table,
                    changed,
                    rows = live,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "table analysed"
                );
                analysed.push(table);
            }
        }
        // The search index's pending list (migrations 0015 and 0019): merged here once no import is
        // being applied (merging it while batches insert would undo what it saves them), so
        // that searches do not scan a long list after an import.
        let importing: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM import_batches WHERE state IN ('pending', 'held'))",
        )
        .fetch_one(&mut *conn)
        .await?;
        if importing {
            return Ok(());
        }
        let pages: i64 =
            sqlx::query_scalar("SELECT gin_clean_pending_list('contacts_words'::regclass)")
                .fetch_one(&mut *conn)
                .await?;
        if pages > 0 {
            tracing::debug!(pages, "search index pending list merged");
        }
        vacuum_if_changed(&mut conn).await
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await;
    result.map(|()| analysed)
}

/// Vacuum `contacts` once this share of its rows were inserted, updated or deleted since its
/// last vacuum (and at least `MIN_CHANGES`).
const VACUUM_SHARE: f64 = 0.1;

/// Vacuums `contacts` when enough of it changed since its last vacuum; called while no import
/// is being applied. What it is for is the visibility map: a deep page skips its offset in an
/// index-only scan (migration 0023), which must still read each contact whose table page is not
/// marked all-visible (measured at 891,812 contacts: deep pages p99 28–37 ms once vacuumed,
/// against 0.4–1.4 s reading every contact skipped). Autovacuum keeps the map when it is on;
/// it may be off or late, as for the statistics. A first vacuum of 891,812 contacts took
/// 2.4 s.
async fn vacuum_if_changed(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT n_ins_since_vacuum + n_dead_tup, n_live_tup FROM pg_stat_user_tables
         WHERE relname = 'contacts' AND schemaname = current_schema()",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some((changed, live)) = row else {
        return Ok(());
    };
    if changed < MIN_CHANGES || (changed as f64) < VACUUM_SHARE * live as f64 {
        return Ok(());
    }
    let started = std::time::Instant::now();
    // Not in a transaction, as VACUUM must be.
    sqlx::raw_sql("VACUUM contacts").execute(&mut *conn).await?;
    tracing::info!(
        table = "contacts",
        changed,
        rows = live,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "table vacuumed"
    );
    Ok(())
}

/// Fails CSV imports still being received (`queued`, no batch count yet) whose last stored
/// batch, or whose creation, is older than `silence`: the process receiving them is gone.
/// Their stored batches are deleted; nothing of them was applied. Returns how many.
pub async fn fail_abandoned_uploads(pool: &PgPool, silence: Duration) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let abandoned: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE imports i SET status = 'failed', finished_at = now(),
             error = 'the upload was interrupted (the service receiving it stopped); nothing was applied'
         WHERE i.source = 'csv' AND i.status = 'queued' AND i.batch_count = 0
           AND i.created_at < now() - make_interval(secs => $1)
           AND NOT EXISTS (SELECT 1 FROM import_batches b WHERE b.import_id = i.id
                           AND b.created_at > now() - make_interval(secs => $1))
         RETURNING i.id",
    )
    .bind(silence.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    if !abandoned.is_empty() {
        sqlx::query("DELETE FROM import_batches WHERE import_id = ANY($1) AND state = 'held'")
            .bind(&abandoned)
            .execute(&mut *tx)
            .await?;
        tracing::warn!(imports = ?abandoned, "failed CSV uploads that were abandoned half-way");
    }
    tx.commit().await?;
    Ok(abandoned.len() as u64)
}
