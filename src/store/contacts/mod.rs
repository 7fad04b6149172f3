//! Contacts: the stored shape and the API view, look-ups by id, soft delete and restore, and
//! the per-tenant counts kept as deltas. Listing (search, sort, pages) is `list`; the
//! set-based statements a batch applies with are `write`.

mod list;
mod write;

pub use list::{
    Cursor, EXACT_COUNT_LIMIT, ExportCursor, Filter, Page, SortKey, Start, Stretch, candidates_sql,
    export_chunk, offset_ids_sql, page, page_sql, stretch_sql,
};
pub use write::{
    Held, generic_plans_from_here, insert_new, lock_holding, update_existing, write_unless_held,
};

use crate::validate::Identifier;
use crate::validate::consent::{Channel, Consent, Consents, Reach};
use serde::Serialize;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// A contact as stored (identifiers already normalised).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StoredContact {
    pub id: Uuid,
    pub external_id: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub full_name: Option<String>,
    pub occupation: Option<String>,
    pub preferred_channel: Option<String>,
    pub gender: Option<String>,
    pub birthday: Option<Date>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    #[sqlx(json)]
    pub custom_attributes: serde_json::Map<String, serde_json::Value>,
    pub tags: Vec<String>,
    pub deleted_at: Option<OffsetDateTime>,
    /// Consent by channel (stored NULL when empty).
    #[sqlx(json)]
    pub consent: Consents,
    /// `active` or `passive` (`validate::consent::Reach`), the contact's and its addresses'.
    pub status: String,
    pub email_status: String,
    pub phone_status: String,
}

impl StoredContact {
    /// The value it holds of this identifier.
    pub fn identifier(&self, kind: Identifier) -> Option<&str> {
        match kind {
            Identifier::Phone => self.phone.as_deref(),
            Identifier::Email => self.email.as_deref(),
            Identifier::ExternalId => self.external_id.as_deref(),
            // Not held as text; the planner matches ids itself.
            Identifier::Id => None,
        }
    }

    /// A contact with only an id.
    pub fn empty(id: Uuid) -> Self {
        Self {
            id,
            external_id: None,
            phone: None,
            email: None,
            first_name: None,
            last_name: None,
            full_name: None,
            occupation: None,
            preferred_channel: None,
            gender: None,
            birthday: None,
            address: None,
            city: None,
            state: None,
            zip: None,
            custom_attributes: serde_json::Map::new(),
            tags: Vec::new(),
            deleted_at: None,
            consent: Consents::new(),
            status: Reach::Active.as_str().to_owned(),
            email_status: Reach::Active.as_str().to_owned(),
            phone_status: Reach::Active.as_str().to_owned(),
        }
    }
}

pub(super) const STORED_COLUMNS: &str =
    "id, external_id, phone, email, first_name, last_name, full_name, occupation,
    preferred_channel, gender, birthday, address, city, state, zip, custom_attributes, tags, deleted_at,
    coalesce(consent, '{}') AS consent, status, email_status, phone_status";

/// A contact as the API shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactView {
    pub id: Uuid,
    pub external_id: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub full_name: Option<String>,
    pub occupation: Option<String>,
    pub preferred_channel: Option<String>,
    pub gender: Option<String>,
    pub birthday: Option<Date>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    /// Values by custom field name.
    #[sqlx(json)]
    #[schema(value_type = Object)]
    pub custom_attributes: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
    pub tags: Vec<String>,
    /// The names of the groups it belongs to.
    pub groups: Vec<String>,
    /// Consent by channel; a channel never set is absent.
    #[sqlx(json)]
    #[schema(value_type = std::collections::BTreeMap<Channel, Consent>)]
    pub consent: Consents,
    /// `active`, or `passive`: kept, but to be sent nothing.
    #[schema(value_type = Reach)]
    pub status: String,
    /// `passive`: the email address is unreachable. Back to `active` when it changes.
    #[schema(value_type = Reach)]
    pub email_status: String,
    /// `passive`: the phone number is unreachable. Back to `active` when it changes.
    #[schema(value_type = Reach)]
    pub phone_status: String,
}

const VIEW_COLUMNS: &str =
    "id, external_id, phone, email, first_name, last_name, full_name, occupation,
    preferred_channel, gender, birthday, address, city, state, zip, custom_attributes,
    created_at, updated_at, deleted_at, tags,
    ARRAY(SELECT g.name FROM contact_groups cg JOIN groups g ON g.id = cg.group_id
          WHERE cg.contact_id = contacts.id ORDER BY g.name) AS groups,
    coalesce(consent, '{}') AS consent, status, email_status, phone_status";

/// One contact of the tenant, deleted or not.
pub async fn get(
    pool: &PgPool,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<ContactView>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {VIEW_COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Records that the tenant gained `live` contacts that are not deleted and `total` contacts in
/// all (negative to lose them), in the caller's transaction.
pub async fn count_changed(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    live: i64,
    total: i64,
) -> Result<(), sqlx::Error> {
    if live == 0 && total == 0 {
        return Ok(());
    }
    sqlx::query("INSERT INTO contact_count_deltas (tenant_id, live, total) VALUES ($1, $2, $3)")
        .bind(tenant_id)
        .bind(live)
        .bind(total)
        .execute(conn)
        .await?;
    Ok(())
}

/// The tenant's number of contacts: not deleted, or all of them.
pub async fn count<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    tenant_id: Uuid,
    include_deleted: bool,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT (coalesce((SELECT CASE WHEN $2 THEN total ELSE live END FROM contact_counts WHERE tenant_id = $1), 0)
               + coalesce((SELECT sum(CASE WHEN $2 THEN total ELSE live END) FROM contact_count_deltas WHERE tenant_id = $1), 0))::int8",
    )
    .bind(tenant_id)
    .bind(include_deleted)
    .fetch_one(executor)
    .await
}

/// Folds the count deltas into `contact_counts`, in one statement (as `groups::fold_counts`).
pub async fn fold_counts(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH moved AS (DELETE FROM contact_count_deltas RETURNING tenant_id, live, total),
              sums AS (SELECT tenant_id, sum(live) AS live, sum(total) AS total FROM moved GROUP BY tenant_id)
         INSERT INTO contact_counts (tenant_id, live, total)
         SELECT tenant_id, live, total FROM sums
         ON CONFLICT (tenant_id) DO UPDATE SET live = contact_counts.live + EXCLUDED.live,
                                               total = contact_counts.total + EXCLUDED.total",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// These contacts of the tenant, as the API shows them.
pub async fn views(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<ContactView>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {VIEW_COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id"
    )))
    .bind(tenant_id)
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Soft-deletes (`deleted`) or restores one contact of the tenant; returns it as it is now, or
/// `None` when the tenant has no such contact. Waits for a batch that holds it locked. Its
/// groups lose (or regain) it as a member in the same transaction.
pub async fn set_deleted(
    pool: &PgPool,
    tenant_id: Uuid,
    id: Uuid,
    deleted: bool,
) -> Result<Option<ContactView>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let was_deleted: Option<bool> = sqlx::query_scalar(
        "SELECT deleted_at IS NOT NULL FROM contacts WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(was_deleted) = was_deleted else {
        return Ok(None);
    };
    let view: Option<ContactView> = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE contacts SET
             deleted_at = CASE WHEN $3 THEN coalesce(deleted_at, now()) END,
             updated_at = CASE WHEN (deleted_at IS NOT NULL) = $3 THEN updated_at ELSE now() END
         WHERE tenant_id = $1 AND id = $2
         RETURNING {VIEW_COLUMNS}"
    )))
    .bind(tenant_id)
    .bind(id)
    .bind(deleted)
    .fetch_optional(&mut *tx)
    .await?;
    if was_deleted != deleted {
        let delta = if deleted { -1 } else { 1 };
        super::groups::members_changed_state(&mut tx, tenant_id, &[id], delta).await?;
        count_changed(&mut tx, tenant_id, delta, 0).await?;
    }
    tx.commit().await?;
    Ok(view)
}
