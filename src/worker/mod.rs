//! The batch runner. One transaction per batch: lock the batch row, stop if it is done,
//! validate its rows (pure), lock the stored contacts they name by their `dedupeOn` identifier
//! (none while the import has met none), write contacts and row results, mark the batch done,
//! add to the import's counters last (batches of one import queue on that row's lock until the
//! commit), commit. The unique indexes check the rows' other identifiers as they are written;
//! when one is held by a contact the batch did not read, those writes are rolled back to a
//! savepoint and the rows planned against every contact holding any of their identifiers. The
//! broker message is acked only after the commit, so a redelivered or duplicated message finds
//! the batch done and changes nothing.
//!
//! A worker may read and validate its next batch ahead (`prepare`), while its current one is
//! being written: the batch's transaction then uses those rows only if the batch and its
//! import, the tenant's fields and the date it reads under the lock are exactly those they were
//! validated from, and validates again otherwise.

pub mod plan;

use crate::import::ImportOptions;
use crate::store::batches::{self, BatchToApply};
use crate::store::imports::{self, Counts};
use crate::store::row_results::{self, NewResults};
use crate::store::{self, BatchState, ImportState, RowStatus, contacts};
use crate::validate::{self, Identifier, Rules};
use backon::{ExponentialBuilder, Retryable};
use plan::{Plan, RowInput, RowOutcome};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

pub use crate::store::batches::BatchRef;

/// What happened to a batch; decides ack or nack in one place (the consumer).
#[derive(Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Its rows were applied and committed now.
    Applied(Counts),
    /// An earlier delivery applied it; nothing was changed.
    AlreadyDone,
    /// No such batch (its import was deleted, or the message is bogus); nothing to do.
    Unknown,
}

fn counts_of(outcomes: &[RowOutcome]) -> Counts {
    let mut c = Counts::default();
    for o in outcomes {
        match o.status {
            RowStatus::Created => c.created += 1,
            RowStatus::Updated => c.updated += 1,
            RowStatus::Skipped | RowStatus::Erased => c.skipped += 1,
            RowStatus::Failed => c.failed += 1,
        }
    }
    c
}

/// Why a batch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Worth another try: the database was busy, gone, or another batch won a race.
    #[error("transient: {0}")]
    Transient(#[source] sqlx::Error),
    /// The database refused it in a way a retry will not change.
    #[error("fatal: {0}")]
    Database(#[source] sqlx::Error),
    /// What is stored cannot be applied (unreadable options, a payload gone).
    #[error("fatal: {0}")]
    Unreadable(String),
}

impl BatchError {
    /// True when another try may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl From<sqlx::Error> for BatchError {
    fn from(e: sqlx::Error) -> Self {
        if store::is_transient(&e) {
            Self::Transient(e)
        } else {
            Self::Database(e)
        }
    }
}

/// Applies a batch, retrying transient failures in place with exponential back-off and jitter
/// for about a minute: a short database outage is ridden out while holding the message, so it
/// does not use up the broker's delivery limit and dead-letter healthy batches.
pub async fn run_batch(pool: &PgPool, batch: BatchRef) -> Result<BatchOutcome, BatchError> {
    run_prepared(pool, batch, None).await
}

/// `run_batch`, with the batch's rows validated ahead (`prepare`) when `prepared` has them;
/// the first try uses them if they still hold, a retry validates again.
pub async fn run_prepared(
    pool: &PgPool,
    batch: BatchRef,
    prepared: Option<Prepared>,
) -> Result<BatchOutcome, BatchError> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_secs(10))
        .with_max_times(12)
        .with_jitter();
    let prepared = Mutex::new(prepared);
    let first_try = || prepared.lock().ok().and_then(|mut p| p.take());
    (|| apply_batch(pool, batch, first_try()))
        .retry(backoff)
        .when(BatchError::is_transient)
        .notify(|e, after| {
            tracing::warn!(import_id = %batch.import_id, batch_no = batch.batch_no, error = %e, retry_in_ms = after.as_millis() as u64, "batch will be retried");
        })
        .await
}

/// A batch's rows read and validated ahead of its transaction, with everything they were
/// validated from.
pub struct Prepared {
    batch: BatchRef,
    read: BatchToApply,
    fields: HashMap<String, validate::FieldKind>,
    today: Date,
    rows: Vec<RowInput>,
    options: ImportOptions,
}

impl Prepared {
    /// Validates the rows of `read`, a batch as read ahead, keeping what they came from.
    fn validated(
        batch: BatchRef,
        read: BatchToApply,
        options: ImportOptions,
        fields: HashMap<String, validate::FieldKind>,
        today: Date,
    ) -> Result<Self, BatchError> {
        let (rows, options) = validate_batch(&read, options, &fields, today)?;
        Ok(Self {
            batch,
            read,
            fields,
            today,
            rows,
            options,
        })
    }

    /// The validated rows and options, if `locked` (the batch as its transaction locked it),
    /// `fields` and `today` are what they were validated from. The states and
    /// `all_new_so_far` are not read by validation: they are taken from the lock (a cancelled
    /// import's batch is never validated).
    fn fits(
        self,
        batch: BatchRef,
        locked: &BatchToApply,
        fields: &HashMap<String, validate::FieldKind>,
        today: Date,
    ) -> Option<(Vec<RowInput>, ImportOptions)> {
        let read = &self.read;
        let same = self.batch.import_id == batch.import_id
            && self.batch.batch_no == batch.batch_no
            && read.tenant_id == locked.tenant_id
            && read.first_row == locked.first_row
            && read.row_count == locked.row_count
            && read.duplicates == locked.duplicates
            && read.options == locked.options
            && read.payload == locked.payload
            && self.fields == *fields
            && self.today == today;
        same.then_some((self.rows, self.options))
    }
}

/// Reads a pending batch and validates its rows without a transaction or a lock, for
/// `run_prepared`. `None` when there is nothing to prepare (the batch is gone, done or
/// cancelled) or the read failed: the batch's transaction then reads and validates it.
pub async fn prepare(pool: PgPool, batch: BatchRef) -> Option<Prepared> {
    let read = match batches::read_ahead(&pool, batch).await {
        Ok(read) => read?,
        Err(e) => {
            tracing::debug!(import_id = %batch.import_id, batch_no = batch.batch_no, error = %e, "batch not read ahead");
            return None;
        }
    };
    if read.state != BatchState::Pending || read.import_status == ImportState::Cancelled {
        return None;
    }
    let options: ImportOptions = serde_json::from_value(read.options.clone()).ok()?;
    let fields = store::fields::kinds(&pool, read.tenant_id).await.ok()?;
    let today = OffsetDateTime::now_utc().date();
    in_the_background(move || Prepared::validated(batch, read, options, fields, today).ok())
        .await
        .flatten()
}

/// Runs `work` on a thread of its own at a lower CPU priority (nice 10, on Linux): work done
/// ahead of need yields the CPU to requests (the intake's parsing, the API) and to the batch
/// being applied, and takes what they leave. `None` if no thread could be started.
async fn in_the_background<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("read-ahead".into())
        .spawn(move || {
            lower_priority();
            let _ = done.send(work());
        })
        .ok()?;
    result.await.ok()
}

/// Lowers the calling thread's scheduling priority to nice 10 (raising one's own nice value
/// needs no privilege); on failure, or off Linux, it keeps its priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority(2) reads and writes no memory of ours; on Linux, PRIO_PROCESS with
    // `who` 0 sets the calling thread's nice value alone.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

#[tracing::instrument(name = "batch", skip_all, fields(import_id = %batch.import_id, batch_no = batch.batch_no, tenant_id = tracing::field::Empty))]
async fn apply_batch(
    pool: &PgPool,
    batch: BatchRef,
    prepared: Option<Prepared>,
) -> Result<BatchOutcome, BatchError> {
    let started = Instant::now();
    let mut tx = store::begin_by_key(pool).await?;
    let Some(batch_row) = batches::lock(&mut tx, batch).await? else {
        return Ok(BatchOutcome::Unknown);
    };
    let tenant_id = batch_row.tenant_id;
    tracing::Span::current().record("tenant_id", tracing::field::display(tenant_id));
    if batch_row.state != BatchState::Pending {
        return Ok(BatchOutcome::AlreadyDone);
    }
    let counts = apply_rows(&mut tx, batch, batch_row, prepared).await?;
    // The import's row last: batches of one import queue on its lock, held from here to the
    // commit.
    imports::record_batch(&mut tx, batch.import_id, tenant_id, counts, false).await?;
    tx.commit().await?;
    tracing::info!(
        tenant_id = %tenant_id,
        rows = counts.total(),
        created = counts.created,
        updated = counts.updated,
        skipped = counts.skipped,
        failed = counts.failed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "batch applied"
    );
    crate::telemetry::batch_duration().observe(started.elapsed().as_secs_f64());
    Ok(BatchOutcome::Applied(counts))
}

async fn apply_rows(
    conn: &mut PgConnection,
    batch: BatchRef,
    b: BatchToApply,
    prepared: Option<Prepared>,
) -> Result<Counts, BatchError> {
    if b.import_status == ImportState::Cancelled {
        return write_plan(conn, batch, b.tenant_id, &cancelled(&b)).await;
    }
    let fields = store::fields::kinds(&mut *conn, b.tenant_id).await?;
    let today = OffsetDateTime::now_utc().date();
    let (tenant_id, all_new_so_far) = (b.tenant_id, b.all_new_so_far);
    let (rows, options) = match prepared.and_then(|p| p.fits(batch, &b, &fields, today)) {
        Some(validated) => validated,
        None => {
            let options: ImportOptions = serde_json::from_value(b.options.clone())
                .map_err(|e| BatchError::Unreadable(format!("import options unreadable: {e}")))?;
            // Reading and validating a batch's rows is milliseconds of CPU: off the I/O threads,
            // which also serve the API in `run`.
            tokio::task::spawn_blocking(move || validate_batch(&b, options, &fields, today))
                .await
                .map_err(|e| BatchError::Unreadable(format!("validation stopped: {e}")))??
        }
    };
    let applying = plan::Applying {
        source: format!("import:{}", batch.import_id),
        now: OffsetDateTime::now_utc(),
    };
    if !options.dry_run
        && !options.all_or_nothing
        && let Some(plan) =
            apply_reading_keys(conn, tenant_id, &rows, &options, &applying, all_new_so_far).await?
    {
        let counts = write_outcomes(conn, batch, tenant_id, &plan).await?;
        after_apply(conn, Some(batch.import_id), tenant_id, &plan, &options).await?;
        return Ok(counts);
    }
    let plan = lock_and_plan(conn, tenant_id, rows, &options, &applying).await?;
    if options.dry_run {
        return write_plan(conn, batch, tenant_id, &plan.dry_run()).await;
    }
    let failed = plan.failed();
    if options.all_or_nothing && failed > 0 {
        let counts = write_plan(conn, batch, tenant_id, &plan.not_applied()).await?;
        imports::fail(
            &mut *conn,
            batch.import_id,
            tenant_id,
            &format!(
                "allOrNothing: {failed} row(s) failed, so no row was applied; see the failed rows"
            ),
        )
        .await?;
        return Ok(counts);
    }
    let counts = write_plan(conn, batch, tenant_id, &plan).await?;
    after_apply(conn, Some(batch.import_id), tenant_id, &plan, &options).await?;
    Ok(counts)
}

/// Plans and writes the rows having read only the stored contacts they name by their
/// `dedupeOn` identifier, or none while every contact of the tenant is one the import created
/// (`all_new_so_far`, as in a first import): the unique indexes tell, as the contacts are
/// written, whether an unread contact holds one of their other identifiers
/// (`contacts::write_unless_held`). `None` when one did: nothing was written, and the caller
/// plans the rows against every holder (`lock_and_plan`).
///
/// The plan is then the one `lock_and_plan` makes: a contact that holds none of the keys
/// changes a row's outcome only by holding an identifier the row's contact would take, which is
/// the unique violation that sends the rows back.
async fn apply_reading_keys(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    rows: &[RowInput],
    options: &ImportOptions,
    applying: &plan::Applying,
    all_new_so_far: bool,
) -> Result<Option<Plan>, sqlx::Error> {
    if all_new_so_far
        && let Some(plan) = plan::as_all_new(rows, options, applying, Uuid::now_v7)
        && contacts::write_unless_held(&mut *conn, tenant_id, &plan.inserts, &[]).await?
    {
        return Ok(Some(plan));
    }
    let keys = identifiers(rows, Some(options.dedupe_on));
    let existing = contacts::lock_holding(&mut *conn, tenant_id, &keys).await?;
    let plan = plan::plan(rows.to_vec(), existing, options, applying, Uuid::now_v7);
    let written =
        contacts::write_unless_held(&mut *conn, tenant_id, &plan.inserts, &plan.updates).await?;
    Ok(written.then_some(plan))
}

/// Locks the stored contacts that hold any identifier of the rows and plans the rows against
/// them (`plan::plan`), in the caller's transaction.
async fn lock_and_plan(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    rows: Vec<RowInput>,
    options: &ImportOptions,
    applying: &plan::Applying,
) -> Result<Plan, sqlx::Error> {
    let existing = contacts::lock_holding(&mut *conn, tenant_id, &identifiers(&rows, None)).await?;
    Ok(plan::plan(rows, existing, options, applying, Uuid::now_v7))
}

/// Applies already validated rows outside any import (a single contact), in the caller's
/// transaction, with exactly a batch's rules: the same planner, the same writes, the same
/// group and count changes; no row results, counters or events (there is no import).
pub async fn apply_now(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    rows: Vec<RowInput>,
    options: &ImportOptions,
    applying: &plan::Applying,
) -> Result<Plan, sqlx::Error> {
    let plan = lock_and_plan(conn, tenant_id, rows, options, applying).await?;
    if options.dry_run {
        return Ok(plan.dry_run());
    }
    contacts::generic_plans_from_here(&mut *conn).await?;
    contacts::insert_new(&mut *conn, tenant_id, &plan.inserts).await?;
    contacts::update_existing(&mut *conn, tenant_id, &plan.updates).await?;
    after_apply(conn, None, tenant_id, &plan, options).await?;
    Ok(plan)
}

/// What an applied batch does besides its contacts and results, in its transaction: the
/// tenant's contact counts; group memberships and their counts (restored contacts count again
/// in the groups they were in, then every applied contact joins `groupNames` and leaves
/// `groupNamesExclude`); one event per created contact (an import's only).
async fn after_apply(
    conn: &mut PgConnection,
    import_id: Option<Uuid>,
    tenant_id: Uuid,
    plan: &Plan,
    options: &ImportOptions,
) -> Result<(), sqlx::Error> {
    use crate::store::groups;
    let created = plan.created();
    let (created_n, restored_n) = (created.len() as i64, plan.restored.len() as i64);
    contacts::count_changed(&mut *conn, tenant_id, created_n + restored_n, created_n).await?;
    groups::members_changed_state(&mut *conn, tenant_id, &plan.restored, 1).await?;
    if !options.group_names.is_empty() || !options.group_names_exclude.is_empty() {
        let applied = plan.applied();
        groups::add_members(&mut *conn, tenant_id, &options.group_names, &applied).await?;
        groups::remove_members(
            &mut *conn,
            tenant_id,
            &options.group_names_exclude,
            &applied,
        )
        .await?;
    }
    if let (Some(key), Some(import_id)) = (&options.event_key_for_new_contacts, import_id) {
        store::events::record_new_contacts(conn, tenant_id, import_id, key, &created).await?;
    }
    Ok(())
}

/// Parses a batch's stored rows and validates each one.
fn validate_batch(
    b: &BatchToApply,
    options: ImportOptions,
    fields: &HashMap<String, validate::FieldKind>,
    today: Date,
) -> Result<(Vec<RowInput>, ImportOptions), BatchError> {
    // The array is split into its rows' texts first, so that a row a parser refuses fails
    // alone (`invalid_row`) and never its batch.
    let unreadable = |e: &dyn std::fmt::Display| {
        BatchError::Unreadable(format!("batch payload unreadable: {e}"))
    };
    let json = match b.rows() {
        Some(json) => json.map_err(|e| unreadable(&e))?,
        None => return Err(BatchError::Unreadable("batch payload is gone".into())),
    };
    let raw: Vec<&serde_json::value::RawValue> =
        serde_json::from_slice(&json).map_err(|e| unreadable(&e))?;
    if raw.len() != b.row_count as usize {
        return Err(BatchError::Unreadable(format!(
            "batch payload has {} rows, expected {}",
            raw.len(),
            b.row_count
        )));
    }
    let rules = Rules {
        dedupe_on: options.dedupe_on,
        default_region: options.default_region.as_deref(),
        fields,
        today,
        date_format: options.date_format,
    };
    let rows = raw
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let index = b.first_row + i as i32;
            RowInput {
                index,
                parsed: validate::validate_stored_text(text.get(), &rules),
                duplicate: b.duplicates.binary_search(&index).is_ok(),
                erased: text.get() == validate::ERASED_ROW,
            }
        })
        .collect();
    Ok((rows, options))
}

/// A cancelled import's batch: every row is skipped, and counted.
fn cancelled(b: &BatchToApply) -> Plan {
    let outcomes = (b.first_row..b.first_row + b.row_count)
        .map(|index| RowOutcome {
            index,
            status: RowStatus::Skipped,
            contact_id: None,
            errors: Vec::new(),
            warnings: vec![imports::cancelled_warning()],
        })
        .collect();
    Plan {
        outcomes,
        ..Plan::default()
    }
}

/// Every identifier value the valid rows carry, per kind (`only`: of that kind alone), for
/// the locking look-up.
fn identifiers(rows: &[RowInput], only: Option<Identifier>) -> contacts::Held {
    let wanted = |kind| only.is_none_or(|only| only == kind);
    let mut held = contacts::Held::default();
    for c in rows.iter().filter_map(|row| row.parsed.as_ref().ok()) {
        let put = |list: &mut Vec<String>, kind| {
            if let Some(v) = c.dedupe_key(kind).filter(|_| wanted(kind)) {
                list.push(v.to_owned());
            }
        };
        put(&mut held.phones, Identifier::Phone);
        put(&mut held.emails, Identifier::Email);
        put(&mut held.external_ids, Identifier::ExternalId);
        if let Some(id) = c.id.as_ref().filter(|_| wanted(Identifier::Id)) {
            held.ids.push(id.uuid());
        }
    }
    held
}

async fn write_plan(
    conn: &mut PgConnection,
    batch: BatchRef,
    tenant_id: Uuid,
    plan: &Plan,
) -> Result<Counts, BatchError> {
    contacts::insert_new(&mut *conn, tenant_id, &plan.inserts).await?;
    contacts::update_existing(&mut *conn, tenant_id, &plan.updates).await?;
    write_outcomes(conn, batch, tenant_id, plan).await
}

/// Stores a batch's row results and marks it done; its contacts are written.
async fn write_outcomes(
    conn: &mut PgConnection,
    batch: BatchRef,
    tenant_id: Uuid,
    plan: &Plan,
) -> Result<Counts, BatchError> {
    let mut results = NewResults::with_capacity(plan.outcomes.len());
    for o in &plan.outcomes {
        results
            .push(o.index, o.status, o.contact_id, &o.errors, &o.warnings)
            .map_err(|e| BatchError::Unreadable(e.to_string()))?;
    }
    row_results::insert(&mut *conn, tenant_id, batch.import_id, &results).await?;
    batches::mark_done(&mut *conn, tenant_id, batch).await?;
    Ok(counts_of(&plan.outcomes))
}

/// Records a batch that can never be applied as dead (its rows fail `batch_failed` with the
/// reason, its import moves on); false when it was not pending any more.
pub async fn mark_dead(pool: &PgPool, batch: BatchRef, reason: &str) -> Result<bool, sqlx::Error> {
    let Some((tenant_id, rows)) = batches::mark_dead(pool, batch, reason).await? else {
        return Ok(false);
    };
    tracing::error!(import_id = %batch.import_id, batch_no = batch.batch_no, %tenant_id, rows, reason, "batch is dead; its rows failed");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch's two rows, the second a duplicate of the first.
    const TWO_ROWS: &str = r#"[{"phone":"+212600000001"},{"phone":"+212600000001"}]"#;

    fn read(payload: &str) -> BatchToApply {
        BatchToApply {
            state: BatchState::Pending,
            import_status: ImportState::Queued,
            tenant_id: Uuid::nil(),
            first_row: 500,
            row_count: 2,
            payload: Some(payload.as_bytes().to_vec()),
            options: serde_json::json!({"dedupeOn": "phone"}),
            duplicates: vec![501],
            all_new_so_far: true,
        }
    }

    fn prepared(batch: BatchRef, today: Date) -> Prepared {
        let fields = HashMap::from([("tier".to_owned(), validate::FieldKind::String)]);
        Prepared::validated(
            batch,
            read(TWO_ROWS),
            ImportOptions::default(),
            fields,
            today,
        )
        .unwrap()
    }

    #[test]
    fn rows_validated_ahead_are_used_only_while_what_they_came_from_is_unchanged() {
        let batch = BatchRef {
            import_id: Uuid::now_v7(),
            batch_no: 1,
            tenant_id: None,
        };
        let today = OffsetDateTime::now_utc().date();
        let fields = prepared(batch, today).fields;
        let locked = prepared(batch, today).read;

        let (rows, _) = prepared(batch, today)
            .fits(batch, &locked, &fields, today)
            .expect("nothing changed");
        assert_eq!(rows.len(), 2);
        assert!(rows[0].parsed.is_ok() && !rows[0].duplicate && rows[1].duplicate);
        // What the lock reads besides the rows may differ.
        let moved_on = BatchToApply {
            import_status: ImportState::Processing,
            all_new_so_far: false,
            ..read(TWO_ROWS)
        };
        assert!(
            prepared(batch, today)
                .fits(batch, &moved_on, &fields, today)
                .is_some()
        );

        let changes: Vec<(&str, BatchToApply)> = vec![
            (
                "a row erased",
                read(r#"[{"$erased":true},{"phone":"+212600000001"}]"#),
            ),
            (
                "no payload",
                BatchToApply {
                    payload: None,
                    ..read("[]")
                },
            ),
            (
                "other duplicates",
                BatchToApply {
                    duplicates: vec![],
                    ..read(TWO_ROWS)
                },
            ),
            (
                "other options",
                BatchToApply {
                    options: serde_json::json!({"dedupeOn": "email"}),
                    ..read(TWO_ROWS)
                },
            ),
            (
                "another first row",
                BatchToApply {
                    first_row: 0,
                    ..read(TWO_ROWS)
                },
            ),
            (
                "another tenant",
                BatchToApply {
                    tenant_id: Uuid::now_v7(),
                    ..read(TWO_ROWS)
                },
            ),
        ];
        for (what, changed) in &changes {
            assert!(
                prepared(batch, today)
                    .fits(batch, changed, &fields, today)
                    .is_none(),
                "{what}"
            );
        }
        let other_fields = HashMap::from([("tier".to_owned(), validate::FieldKind::Number)]);
        assert!(
            prepared(batch, today)
                .fits(batch, &locked, &other_fields, today)
                .is_none()
        );
        assert!(
            prepared(batch, today)
                .fits(batch, &locked, &fields, today.next_day().unwrap())
                .is_none()
        );
        let other_batch = BatchRef {
            batch_no: 2,
            ..batch
        };
        assert!(
            prepared(batch, today)
                .fits(other_batch, &locked, &fields, today)
                .is_none()
        );
    }
}
