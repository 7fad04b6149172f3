//! Intake: turn a request into a stored import. Everything the request says is checked
//! here (request-level problems are a 422 before anything is stored), then the import, its
//! batches (which are also the outbox) and its duplicate rows are written in ONE
//! transaction. Only after that commit does the client get 202: nothing accepted is lost.
//!
//! `json` reads the JSON body and `upload` streams a CSV file (`csv` maps its columns, `xlsx`
//! turns a workbook into CSV, `vcard` an address book into records); `options` reads what both
//! share and `checks` what holds for a request as a whole. Every problem is an `IntakeError`,
//! which `api` answers as problem+json.

mod bulk_upsert;
mod checks;
mod commit;
pub mod csv;
mod encoding;
mod error;
pub mod gzip;
mod json;
mod known_headers;
mod options;
pub(crate) mod records;
mod single;
pub mod upload;
pub mod vcard;
pub mod xlsx;

pub use crate::store::imports::Idempotency;
pub use checks::{
    check_attribute_names, check_backlog, check_custom_columns, find_duplicates, within_backlog,
};
pub use commit::commit;
pub use error::{FieldError, IntakeError};
pub use json::parse;
pub use single::parse_single;

use crate::import::ImportOptions;
use crate::store::batches::NewBatch;
use crate::store::imports::{self, NewImport, Stored};
use crate::store::{ImportState, Source};
use crate::validate::{self, IntakePart};
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::PgPool;
use std::borrow::Cow;
use std::collections::HashSet;
use uuid::Uuid;

/// Most contacts one JSON request may carry.
pub const MAX_CONTACTS: usize = 3000;

/// A checked JSON intake request.
#[derive(Debug)]
pub struct IntakeRequest<'a> {
    /// Each contact's JSON text as sent, borrowed from the body (a BulkUpsert row, converted
    /// to a contact, is owned): the batches store it as it is, and only the worker builds the
    /// contact.
    pub contacts: Vec<Cow<'a, RawValue>>,
    pub options: ImportOptions,
    /// BulkUpsert's columns naming custom fields, with their place in `columns`.
    pub custom_columns: Vec<(usize, String)>,
}

impl IntakeRequest<'_> {
    /// What the intake checks of each contact, read in one pass over each (see
    /// `validate::intake_part`): the identifier its rows are deduplicated on, and the custom
    /// attribute names not in `known`, the tenant's fields.
    pub fn read_contacts(&self, known: &HashSet<String>) -> Vec<IntakePart> {
        self.contacts
            .iter()
            .map(|c| validate::intake_part(c.get(), self.options.dedupe_on, known))
            .collect()
    }

    /// The request as `store` writes it: its rows cut into batches of `batch_size` (one batch
    /// when it is all or nothing), with the rows `duplicates` names.
    pub fn into_import(self, duplicates: Vec<i32>, batch_size: usize) -> JsonImport {
        // All or nothing is one transaction, so one batch (a request holds at most 3000 rows).
        let batch_size = if self.options.all_or_nothing {
            MAX_CONTACTS
        } else {
            batch_size.max(1)
        };
        let mut batches = Vec::new();
        let mut first_row = 0i32;
        for (no, chunk) in self.contacts.chunks(batch_size).enumerate() {
            batches.push(NewBatch::new(
                no as i32,
                first_row,
                chunk.len() as i32,
                &json::json_array(chunk),
            ));
            first_row += chunk.len() as i32;
        }
        JsonImport {
            total_rows: first_row,
            bytes: self.contacts.iter().map(|c| c.get().len() as u64).sum(),
            options: self.options,
            batches,
            duplicates,
        }
    }
}

/// A checked JSON request as it is stored: the import's options, its batches and its rows
/// marked as duplicates.
pub struct JsonImport {
    pub options: ImportOptions,
    pub batches: Vec<NewBatch>,
    pub duplicates: Vec<i32>,
    pub total_rows: i32,
    /// The contacts' JSON text in bytes, which the tenant's backlog counts.
    pub bytes: u64,
}

/// The 202 body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub async_session_id: Uuid,
    /// Always `queued`.
    pub status: ImportState,
    pub total_rows: i32,
    /// Where to poll the import's status.
    pub status_url: String,
}

impl Accepted {
    /// The answer for a stored import.
    pub fn new(id: Uuid, total_rows: i32) -> Self {
        Self {
            async_session_id: id,
            status: ImportState::Queued,
            total_rows,
            status_url: format!("/api/v1/imports/{id}"),
        }
    }
}

/// Stores the import with its batches and duplicate rows in one transaction. A repeated
/// idempotency key with the same body answers the first import; with another body, 422.
pub async fn store(
    pool: &PgPool,
    tenant_id: Uuid,
    request: &JsonImport,
    idempotency: Option<&Idempotency>,
) -> Result<Accepted, IntakeError> {
    let total_rows = request.total_rows;
    let import = NewImport {
        id: Uuid::now_v7(),
        tenant_id,
        source: Source::Api,
        options: &request.options,
        total_rows,
        batch_count: request.batches.len() as i32,
    };
    match imports::store_json(
        pool,
        &import,
        &request.batches,
        &request.duplicates,
        idempotency,
    )
    .await?
    {
        Stored::New => Ok(Accepted::new(import.id, total_rows)),
        Stored::KeyUsed(Some(first))
            if idempotency
                .is_some_and(|i| first.body_hash.as_deref() == Some(i.body_hash.as_slice())) =>
        {
            Ok(Accepted::new(first.id, first.total_rows))
        }
        Stored::KeyUsed(Some(_)) => Err(IntakeError::invalid(
            "this Idempotency-Key was used before with a different body",
            vec![FieldError::new(
                "",
                "idempotency_key_reused",
                "send a new Idempotency-Key for a new request",
            )],
        )),
        Stored::KeyUsed(None) => Err(IntakeError::KeyInUse(
            "the first request with this Idempotency-Key is still being stored; try again".into(),
        )),
    }
}
