//! "Nothing lost, nothing twice", checked on the database itself after a fault: every accepted
//! row has exactly one result, counters add up and agree with the results, every batch is done,
//! and the contacts are exactly those a fault-free run would leave.

use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What a fault-free run gives one import.
pub struct ExpectedImport {
    pub id: Uuid,
    /// The phone (E.164) of each row, in request order.
    pub phones: Vec<String>,
    pub created: i64,
    pub updated: i64,
}

/// The contacts a fault-free run leaves: phone → (first name, last name).
pub type ExpectedContacts = BTreeMap<String, (String, String)>;

#[derive(sqlx::FromRow, Debug)]
struct ImportRow {
    status: String,
    total_rows: i32,
    processed_rows: i32,
    created: i32,
    updated: i32,
    skipped: i32,
    failed: i32,
    batch_count: i32,
    batches_done: i32,
}

/// Every row of the import accounted for exactly once, counters consistent with the results.
pub async fn assert_import_accounted(pool: &PgPool, expected: &ExpectedImport) {
    let id = expected.id;
    let total = expected.phones.len() as i64;
    let import: ImportRow = sqlx::query_as(
        "SELECT status, total_rows, processed_rows, created, updated, skipped, failed,
                batch_count, batches_done
         FROM imports WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("read the import");
    assert_eq!(import.status, "completed", "import {id}: {import:?}");
    assert_eq!(
        i64::from(import.total_rows),
        total,
        "import {id}: {import:?}"
    );
    assert_eq!(
        import.created + import.updated + import.skipped + import.failed,
        import.processed_rows,
        "import {id}: counters do not add up: {import:?}"
    );
    assert_eq!(
        import.processed_rows, import.total_rows,
        "import {id}: {import:?}"
    );
    assert_eq!(
        (
            i64::from(import.created),
            i64::from(import.updated),
            import.skipped,
            import.failed
        ),
        (expected.created, expected.updated, 0, 0),
        "import {id}: (created, updated, skipped, failed) differ from a fault-free run: {import:?}"
    );
    assert_eq!(
        import.batches_done, import.batch_count,
        "import {id}: {import:?}"
    );

    let (rows, distinct, min, max): (i64, i64, Option<i32>, Option<i32>) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT row_index), min(row_index), max(row_index)
         FROM row_results WHERE import_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("count row results");
    assert_eq!(
        (rows, distinct, min.map(i64::from), max.map(i64::from)),
        (total, total, Some(0), Some(total - 1)),
        "import {id}: row results are not exactly one per row (count, distinct, min, max)"
    );

    let by_status: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM row_results WHERE import_id = $1 GROUP BY status",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("count row results by status");
    let by_status: BTreeMap<String, i64> = by_status.into_iter().collect();
    let count = |s: &str| by_status.get(s).copied().unwrap_or(0);
    assert_eq!(
        (
            count("created"),
            count("updated"),
            count("skipped"),
            count("failed")
        ),
        (
            i64::from(import.created),
            i64::from(import.updated),
            i64::from(import.skipped),
            i64::from(import.failed)
        ),
        "import {id}: counters differ from the row results {by_status:?}"
    );

    let (pending,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM import_batches WHERE import_id = $1 AND state <> 'done'",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("count unfinished batches");
    assert_eq!(pending, 0, "import {id}: batches not done");

    // Each row's result names the contact that holds that row's phone.
    let linked: Vec<(i32, Option<String>)> = sqlx::query_as(
        "SELECT r.row_index, c.phone FROM row_results r LEFT JOIN contacts c ON c.id = r.contact_id
         WHERE r.import_id = $1 ORDER BY r.row_index",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("read row results");
    let wrong: Vec<String> = linked
        .iter()
        .filter(|(i, phone)| phone.as_deref() != Some(expected.phones[*i as usize].as_str()))
        .take(5)
        .map(|(i, phone)| format!("row {i} → {phone:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "import {id}: row results name the wrong contact: {wrong:?}"
    );
}

/// No two contacts share a dedupe key, and the contacts are exactly `expected`.
pub async fn assert_contacts(pool: &PgPool, expected: &ExpectedContacts) {
    let (count, phones, emails): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT phone), count(DISTINCT email) FROM contacts",
    )
    .fetch_one(pool)
    .await
    .expect("count contacts");
    assert_eq!(count, phones, "two contacts share a phone");
    assert_eq!(count, emails, "two contacts share an email");
    assert_eq!(
        count,
        expected.len() as i64,
        "not one contact per distinct input phone"
    );
    let stored: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT phone, first_name, last_name FROM contacts WHERE phone IS NOT NULL")
            .fetch_all(pool)
            .await
            .expect("read contacts");
    let mut wrong = Vec::new();
    for (phone, first, last) in &stored {
        let want = expected.get(phone);
        let got = (
            first.clone().unwrap_or_default(),
            last.clone().unwrap_or_default(),
        );
        if want != Some(&got) {
            wrong.push(format!("{phone}: {got:?}, expected {want:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} contacts differ from a fault-free run, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}
