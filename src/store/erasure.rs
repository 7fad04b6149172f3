//! Erasure of one contact (a data subject's right to erasure): the contact and its
//! memberships, the events that carry it, and its row in every stored import — the row as sent
//! (JSON payload, a file's cells, its dedupe key while the file arrives) and its result,
//! whose messages may quote its values. A row is the contact's when its result names the
//! contact, or when one of its identifiers (normalised as the import read them) is one the
//! contact holds. Such a row becomes `validate::ERASED_ROW` and its result `erased` with
//! nothing else; the imports' counters stay as they were. All of it in one transaction: a crash
//! leaves the contact as it was, never half erased.

use super::contacts::{STORED_COLUMNS, StoredContact, count_changed};
use super::{groups, packed, row_results};
use crate::import::ImportOptions;
use crate::validate::{self, Identifier};
use serde_json::value::RawValue;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use std::collections::HashSet;
use uuid::Uuid;

/// Batches read at a time while looking for the contact's rows (a batch holds at most 8 MiB
/// of rows, and its cells as read as much again).
const BATCHES_AT_ONCE: i64 = 4;

/// What an erasure did.
#[derive(Debug, PartialEq, Eq)]
pub enum Erasure {
    /// The tenant has no such contact.
    NotFound,
    /// Erased, with this many stored rows turned to tombstones.
    Erased { rows: usize },
}

/// Erases the tenant's contact `id` everywhere the service stored it.
pub async fn erase(pool: &PgPool, tenant_id: Uuid, id: Uuid) -> Result<Erasure, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let contact: Option<StoredContact> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {STORED_COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
    )))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(contact) = contact else {
        return Ok(Erasure::NotFound);
    };
    let live = contact.deleted_at.is_none();
    if live {
        groups::members_changed_state(&mut tx, tenant_id, &[id], -1).await?;
    }
    count_changed(&mut tx, tenant_id, if live { -1 } else { 0 }, -1).await?;
    // Its memberships go with it (ON DELETE CASCADE).
    sqlx::query("DELETE FROM contacts WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM event_outbox WHERE tenant_id = $1 AND position(convert_to($2, 'UTF8') IN body) > 0",
    )
    .bind(tenant_id)
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    let known: HashSet<(Uuid, i32)> = row_results::rows_of_contact(&mut tx, tenant_id, id)
        .await?
        .into_iter()
        .collect();
    let rows = scrub_batches(&mut tx, tenant_id, &contact, &known).await?;
    let mut all: Vec<(Uuid, i32)> = rows.iter().chain(&known).copied().collect();
    all.sort_unstable();
    all.dedup();
    row_results::erase_rows(&mut tx, tenant_id, &all).await?;
    tx.commit().await?;
    Ok(Erasure::Erased { rows: rows.len() })
}

/// A stored batch as the erasure reads it.
#[derive(sqlx::FromRow)]
struct StoredBatch {
    import_id: Uuid,
    batch_no: i32,
    first_row: i32,
    payload: Option<Vec<u8>>,
    raw: Option<Vec<u8>>,
    dedupe_keys: Option<Vec<Option<String>>>,
    #[sqlx(json)]
    options: ImportOptions,
}

/// Turns every stored row of the contact into a tombstone, batch by batch (each locked, so
/// that no worker applies it meanwhile); the rows turned, by import and index.
async fn scrub_batches(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    contact: &StoredContact,
    known: &HashSet<(Uuid, i32)>,
) -> Result<Vec<(Uuid, i32)>, sqlx::Error> {
    let mut turned = Vec::new();
    let mut after = (Uuid::nil(), -1i32);
    loop {
        let batches: Vec<StoredBatch> = sqlx::query_as(
            "SELECT b.import_id, b.batch_no, b.first_row, b.payload, b.raw, b.dedupe_keys, i.options
             FROM import_batches b JOIN imports i ON i.id = b.import_id AND i.tenant_id = b.tenant_id
             WHERE b.tenant_id = $1 AND (b.import_id, b.batch_no) > ($2, $3)
             ORDER BY b.import_id, b.batch_no LIMIT $4
             FOR UPDATE OF b",
        )
        .bind(tenant_id)
        .bind(after.0)
        .bind(after.1)
        .bind(BATCHES_AT_ONCE)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = batches.last() else {
            return Ok(turned);
        };
        after = (last.import_id, last.batch_no);
        for batch in batches {
            let Some(scrubbed) = scrub(&batch, contact, known) else {
                continue;
            };
            sqlx::query(
                "UPDATE import_batches SET payload = $4, raw = $5, dedupe_keys = $6
                 WHERE tenant_id = $1 AND import_id = $2 AND batch_no = $3",
            )
            .bind(tenant_id)
            .bind(batch.import_id)
            .bind(batch.batch_no)
            .bind(&scrubbed.payload)
            .bind(&scrubbed.raw)
            .bind(&scrubbed.dedupe_keys)
            .execute(&mut *conn)
            .await?;
            turned.extend(scrubbed.rows.iter().map(|&i| (batch.import_id, i)));
        }
    }
}

/// A batch with the contact's rows turned to tombstones.
struct Scrubbed {
    payload: Option<Vec<u8>>,
    raw: Option<Vec<u8>>,
    dedupe_keys: Option<Vec<Option<String>>>,
    /// The indexes of the rows turned.
    rows: Vec<i32>,
}

/// The batch with the contact's rows turned, or `None` when none of its rows is the contact's.
fn scrub(
    batch: &StoredBatch,
    contact: &StoredContact,
    known: &HashSet<(Uuid, i32)>,
) -> Option<Scrubbed> {
    let payload = packed::unpack(batch.payload.as_deref()?).ok()?;
    let rows: Vec<&RawValue> = serde_json::from_slice(&payload).ok()?;
    let positions: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(i, row)| {
            known.contains(&(batch.import_id, batch.first_row + *i as i32))
                || is_contacts_row(row.get(), &batch.options, contact)
        })
        .map(|(i, _)| i)
        .collect();
    if positions.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(payload.len());
    out.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let text = if positions.contains(&i) {
            validate::ERASED_ROW
        } else {
            row.get()
        };
        out.extend_from_slice(text.as_bytes());
    }
    out.push(b']');
    let raw = batch.raw.as_deref().and_then(|raw| {
        let mut cells: Vec<Vec<String>> =
            serde_json::from_slice(&packed::unpack(raw).ok()?).ok()?;
        for &i in &positions {
            if let Some(row) = cells.get_mut(i) {
                row.iter_mut().for_each(String::clear);
            }
        }
        serde_json::to_vec(&cells)
            .ok()
            .map(|cells| packed::pack(&cells))
    });
    let dedupe_keys = batch.dedupe_keys.clone().map(|mut keys| {
        for &i in &positions {
            if let Some(key) = keys.get_mut(i) {
                *key = None;
            }
        }
        keys
    });
    Some(Scrubbed {
        payload: Some(packed::pack(&out)),
        raw,
        dedupe_keys,
        rows: positions
            .into_iter()
            .map(|i| batch.first_row + i as i32)
            .collect(),
    })
}

/// True when the stored row names one of the contact's identifiers, normalised as its
/// import read it, or the contact's own id.
fn is_contacts_row(text: &str, options: &ImportOptions, contact: &StoredContact) -> bool {
    let part = validate::identifying_part(text);
    let region = options.default_region.as_deref();
    let holds = |kind: Identifier| {
        let stored = match kind {
            Identifier::Id => Some(contact.id.hyphenated().to_string()),
            kind => contact.identifier(kind).map(str::to_owned),
        };
        stored.is_some_and(|v| validate::dedupe_key(&part, kind, region).as_deref() == Some(&v))
    };
    Identifier::ALL.into_iter().any(holds) || holds(Identifier::Id)
}
