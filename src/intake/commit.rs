//! Committing a dry run (`POST /api/v1/imports/{id}/commit`): the rows a finished dry run
//! reviewed become a new import, applied as any other, without the client sending them again
//! (respond.io's review step). The new import has the dry run's options with `dryRun` off; a
//! file's own import tag names the new import, since that is the one that applies the rows.

use super::upload::import_tag;
use super::{Accepted, IntakeError, check_backlog};
use crate::settings::Settings;
use crate::store::ImportState;
use crate::store::imports::{self, Commit};
use sqlx::PgPool;
use uuid::Uuid;

/// Stores the commit of the dry run `dry_run`; the 202 body of the new import.
pub async fn commit(
    pool: &PgPool,
    settings: &Settings,
    tenant_id: Uuid,
    dry_run: Uuid,
) -> Result<Accepted, IntakeError> {
    let Some(reviewed) = imports::reviewed(pool, tenant_id, dry_run).await? else {
        return Err(IntakeError::NotFound(format!("no import {dry_run}")));
    };
    if let Some(id) = reviewed.committed_as {
        return Err(IntakeError::Conflict(format!(
            "dry run {dry_run} was committed already, as import {id}"
        )));
    }
    if !reviewed.options.dry_run {
        return Err(IntakeError::Conflict(format!(
            "import {dry_run} is not a dry run: its rows were applied already"
        )));
    }
    if reviewed.purged {
        return Err(IntakeError::Gone(format!(
            "the rows of dry run {dry_run} were deleted under the retention period (RETENTION_DAYS); send the file again"
        )));
    }
    if !matches!(
        reviewed.status,
        ImportState::Completed | ImportState::CompletedWithErrors
    ) {
        return Err(IntakeError::Conflict(format!(
            "dry run {dry_run} is {}: only a finished dry run (completed or completedWithErrors) can be committed",
            reviewed.status.as_str()
        )));
    }
    check_backlog(
        pool,
        settings,
        tenant_id,
        reviewed.total_rows.max(0) as u64,
        reviewed.bytes.max(0) as u64,
    )
    .await?;
    let id = Uuid::now_v7();
    let mut options = reviewed.options;
    options.dry_run = false;
    let own_tag = |tag: &String| {
        tag.starts_with("import-") && tag.ends_with(&dry_run.simple().to_string()[..8])
    };
    if let Some(tag) = options.tags.iter_mut().find(|t| own_tag(t)) {
        *tag = import_tag(id, time::OffsetDateTime::now_utc().date());
    }
    match imports::commit_dry_run(pool, tenant_id, id, &options, dry_run).await? {
        Commit::Stored { total_rows } => Ok(Accepted::new(id, total_rows)),
        Commit::Refused => Err(IntakeError::Conflict(format!(
            "dry run {dry_run} was committed already (or changed meanwhile)"
        ))),
    }
}
