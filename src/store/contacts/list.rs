//! Listing a tenant's contacts: filters (an identifier, a tag, a group, a search term), sort
//! keys with an index each, and pages.

use super::{ContactView, VIEW_COLUMNS};
use crate::validate::Identifier;
use crate::validate::consent::{Channel, ConsentStatus};
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

/// The column of an identifier.
fn identifier_column(identifier: Identifier) -> &'static str {
    match identifier {
        Identifier::Phone => "phone",
        Identifier::Email => "email",
        Identifier::ExternalId => "external_id",
        Identifier::Id => "id::text",
    }
}

/// Which contacts a page lists.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter<'a> {
    /// The one holding this identifier.
    pub exact: Option<(Identifier, &'a str)>,
    /// Those with this tag.
    pub tag: Option<&'a str>,
    /// Those in the group of this name.
    pub group: Option<&'a str>,
    /// Those whose names, phone or email contain this (case-insensitive).
    pub search: Option<&'a str>,
    /// Those whose consent on the channel is this status (`None`: never set).
    pub consent: Option<(Channel, Option<ConsentStatus>)>,
    pub include_deleted: bool,
}

/// What a page is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    FirstName,
    LastName,
    Phone,
    Email,
    #[default]
    CreatedAt,
}

impl SortKey {
    /// Reads the API name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "firstName" => Self::FirstName,
            "lastName" => Self::LastName,
            "phone" => Self::Phone,
            "email" => Self::Email,
            "createdAt" => Self::CreatedAt,
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        match self {
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::Phone => "phone",
            Self::Email => "email",
            Self::CreatedAt => "created_at",
        }
    }
}

/// The text `search` looks in; the same expression as the trigram index (migration 0013).
const SEARCH_TEXT: &str = "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' '
    || coalesce(full_name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone, ''))";

/// `%term%` for LIKE, with the term's own `%`, `_` and `\` taken literally.
pub fn like_pattern(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 2);
    out.push('%');
    for ch in term.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

/// The page's statement and its count's, for an exact look-up on `identifier` (if any) and a
/// sort. Parameters: $1 tenant, $2 identifier value, $3 include deleted, $4 tag (text[]),
/// $5 offset, $6 limit, $7 group name, $8 search (LIKE pattern), $9 a consent channel and $10
/// its status (NULL with a channel: unset); NULL turns a filter off. Public
/// so that the benchmark can EXPLAIN exactly what is run.
pub fn page_sql(
    identifier: Option<Identifier>,
    sort: SortKey,
    ascending: bool,
) -> (String, String) {
    let filter = filter_sql(identifier);
    let sort = sort.column();
    let direction = if ascending { "ASC" } else { "DESC" };
    (
        format!(
            "SELECT {VIEW_COLUMNS} FROM contacts WHERE {filter}
             ORDER BY {sort} {direction}, id {direction} OFFSET $5 LIMIT $6"
        ),
        format!("SELECT count(*) FROM contacts WHERE {filter}"),
    )
}

/// The WHERE of a listing, over the parameters `page_sql` names.
fn filter_sql(identifier: Option<Identifier>) -> String {
    let column = identifier.map_or("phone", identifier_column);
    format!(
        "tenant_id = $1 AND ($2::text IS NULL OR {column} = $2) AND ($3 OR deleted_at IS NULL)
         AND ($4::text[] IS NULL OR tags @> $4)
         AND ($7::text IS NULL OR EXISTS (
             SELECT 1 FROM contact_groups cg JOIN groups g ON g.id = cg.group_id
             WHERE g.tenant_id = $1 AND g.name = $7 AND cg.contact_id = contacts.id))
         AND ($8::text IS NULL OR {SEARCH_TEXT} LIKE $8)
         AND ($9::text IS NULL OR CASE WHEN $10::text IS NULL THEN consent->$9 IS NULL
                                       ELSE consent->$9->>'status' = $10 END)"
    )
}

/// Where an export is: the last contact it wrote, in creation order.
pub type ExportCursor = Option<(time::OffsetDateTime, Uuid)>;

/// The next `limit` contacts of an export after `after`, oldest first (keyset paging on the
/// `(tenant_id, created_at, id)` index: every chunk costs the same, however deep), with the
/// list's filters.
pub async fn export_chunk(
    pool: &PgPool,
    tenant_id: Uuid,
    filter: Filter<'_>,
    after: ExportCursor,
    limit: i64,
) -> Result<Vec<ContactView>, sqlx::Error> {
    let exact = filter.exact.map(|(identifier, _)| identifier);
    let sql = format!(
        "SELECT {VIEW_COLUMNS} FROM contacts WHERE {}
           AND ($11::timestamptz IS NULL OR (created_at, id) > ($11, $12))
         ORDER BY created_at, id OFFSET $5 LIMIT $6",
        filter_sql(exact)
    );
    let channel = filter.consent.map(|(c, _)| c.as_str());
    let status = filter
        .consent
        .and_then(|(_, s)| s)
        .map(ConsentStatus::as_str);
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(filter.exact.map(|(_, value)| value))
        .bind(filter.include_deleted)
        .bind(filter.tag.map(|t| vec![t.to_owned()]))
        .bind(0i64)
        .bind(limit)
        .bind(filter.group)
        .bind(filter.search.map(like_pattern))
        .bind(channel)
        .bind(status)
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, id)| id))
        .fetch_all(pool)
        .await
}

/// A page of the tenant's contacts: filtered, sorted by `sort` (ties by id, the same way),
/// ascending or not; with the number of contacts over every page.
pub async fn page(
    pool: &PgPool,
    tenant_id: Uuid,
    filter: Filter<'_>,
    sort: SortKey,
    ascending: bool,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ContactView>, i64), sqlx::Error> {
    let value = filter.exact.map(|(_, value)| value);
    let tag = filter.tag.map(|t| vec![t.to_owned()]);
    let group = filter.group;
    let search = filter.search.map(like_pattern);
    let include_deleted = filter.include_deleted;
    let channel = filter.consent.map(|(c, _)| c.as_str());
    let status = filter
        .consent
        .and_then(|(_, s)| s)
        .map(ConsentStatus::as_str);
    let (select, count) = page_sql(
        filter.exact.map(|(identifier, _)| identifier),
        sort,
        ascending,
    );
    let rows = sqlx::query_as(AssertSqlSafe(select))
        .bind(tenant_id)
        .bind(value)
        .bind(include_deleted)
        .bind(&tag)
        .bind(offset)
        .bind(limit)
        .bind(group)
        .bind(&search)
        .bind(channel)
        .bind(status)
        .fetch_all(pool)
        .await?;
    let unfiltered = filter.exact.is_none()
        && filter.tag.is_none()
        && filter.group.is_none()
        && filter.search.is_none()
        && filter.consent.is_none();
    if unfiltered {
        let total = super::count(pool, tenant_id, include_deleted).await?;
        return Ok((rows, total));
    }
    let (total,): (i64,) = sqlx::query_as(AssertSqlSafe(count))
        .bind(tenant_id)
        .bind(value)
        .bind(include_deleted)
        .bind(&tag)
        .bind(0i64)
        .bind(0i64)
        .bind(group)
        .bind(&search)
        .bind(channel)
        .bind(status)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}
