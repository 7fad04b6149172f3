//! Listing a tenant's contacts: filters (an identifier, a tag, a group, a search term), sort
//! keys with an index each, and pages.

use super::{ContactView, VIEW_COLUMNS};
use crate::validate::consent::{Channel, ConsentStatus};
use crate::validate::{Identifier, search};
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
    /// Those matching this search text: each of its terms starts a word of the names or the
    /// email, or starts or ends the phone (migration 0019).
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

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstName => "firstName",
            Self::LastName => "lastName",
            Self::Phone => "phone",
            Self::Email => "email",
            Self::CreatedAt => "createdAt",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::Phone => "phone",
            Self::Email => "email",
            // Ids are UUIDv7 and a contact's created_at is its id's time (migration 0022):
            // the key (tenant_id, id) is the creation order.
            Self::CreatedAt => "id",
        }
    }
}

/// The page's statement (OFFSET paging), for an exact look-up on `identifier` (if any) and a
/// sort. Parameters: $1 tenant, $2 identifier value, $3 include deleted, $4 tag (text[]),
/// $5 offset, $6 limit, $7 group name, $8 the search's tsquery (`validate::search::query`), $9 a consent channel and $10 its status
/// (NULL with a channel: unset); NULL turns a filter off. Public so that the benchmark can
/// EXPLAIN exactly what is run.
pub fn page_sql(identifier: Option<Identifier>, sort: SortKey, ascending: bool) -> String {
    let filter = filter_sql(identifier);
    let order = order_by(sort, ascending);
    format!(
        "SELECT {VIEW_COLUMNS} FROM contacts WHERE {filter} ORDER BY {order} OFFSET $5 LIMIT $6"
    )
}

/// The statement of one stretch of a keyset page (`Stretch`), with `page_sql`'s parameters
/// and $11 the cursor's sort value, $12 its id. Public for the benchmark's EXPLAIN.
pub fn stretch_sql(
    identifier: Option<Identifier>,
    sort: SortKey,
    ascending: bool,
    stretch: Stretch,
) -> String {
    let filter = filter_sql(identifier);
    let (range, order) = stretch_range(sort, ascending, stretch);
    format!(
        "SELECT {VIEW_COLUMNS} FROM contacts WHERE {filter} AND {range} ORDER BY {order} LIMIT $6"
    )
}

/// The condition and `ORDER BY` of a stretch, over $11 (the cursor's value) and $12 (its id).
fn stretch_range(sort: SortKey, ascending: bool, stretch: Stretch) -> (String, String) {
    let column = sort.column();
    let (beyond, direction) = if ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    match stretch {
        Stretch::Valued { after: true } if sort == SortKey::CreatedAt => {
            (format!("id {beyond} $12"), order_by(sort, ascending))
        }
        Stretch::Valued { after: true } => (
            format!("({column}, id) {beyond} ($11::text, $12)"),
            order_by(sort, ascending),
        ),
        Stretch::Valued { after: false } => {
            (format!("{column} IS NOT NULL"), order_by(sort, ascending))
        }
        // Phone and email have unique indexes without the id: those without one are read in
        // id order through their own small partial index (migration 0019). The names' indexes
        // end with the id, so their NULLs are read in that order already.
        Stretch::Null { after } => {
            let order = match sort {
                SortKey::Phone | SortKey::Email => format!("id {direction}"),
                _ => order_by(sort, ascending),
            };
            let range = if after {
                format!("{column} IS NULL AND id {beyond} $12")
            } else {
                format!("{column} IS NULL")
            };
            (range, order)
        }
    }
}

/// A page of a search's matches once they are known to be few (`EXACT_COUNT_LIMIT` or less):
/// their ids in an array ($11 for an offset page, $13 after a cursor). The planner cannot
/// estimate how many contacts a prefix query matches (it takes 2 % for any term), so left to
/// itself it walks the sort key's index and tests every contact: 400 ms at 890k contacts for a
/// term that matches one. Here the matches' sort keys are read by id (materialised: no index
/// walk), sorted, and only the page's rows are read whole.
pub fn candidates_sql(
    identifier: Option<Identifier>,
    sort: SortKey,
    ascending: bool,
    stretch: Option<Stretch>,
) -> String {
    let filter = filter_sql(identifier);
    let column = sort.column();
    let direction = if ascending { "ASC" } else { "DESC" };
    let order = order_by(sort, ascending);
    let (ids, range, offset) = match stretch {
        Some(stretch) => ("$13", stretch_range(sort, ascending, stretch).0, "0"),
        None => ("$11", "TRUE".to_owned(), "$5"),
    };
    format!(
        "WITH candidate AS MATERIALIZED (
             SELECT id, {column} AS key FROM contacts
             WHERE id = ANY({ids}::uuid[]) AND {filter} AND {range}),
         chosen AS (
             SELECT id FROM candidate ORDER BY key {direction}, id {direction}
             OFFSET {offset} LIMIT $6)
         SELECT {VIEW_COLUMNS} FROM contacts
         WHERE tenant_id = $1 AND id IN (SELECT id FROM chosen)
         ORDER BY {order}"
    )
}

/// `ORDER BY` of a sort: its key, then the id, both the same way (NULLs last going up, first
/// going down, as PostgreSQL orders them).
fn order_by(sort: SortKey, ascending: bool) -> String {
    let direction = if ascending { "ASC" } else { "DESC" };
    if sort == SortKey::CreatedAt {
        return format!("id {direction}");
    }
    format!("{} {direction}, id {direction}", sort.column())
}

/// A part of a sorted list that one index reads in order: the contacts that have a sort value,
/// or those that have none, from the start of the part or after a cursor in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stretch {
    Valued { after: bool },
    Null { after: bool },
}

impl Stretch {
    /// The stretches a page after `cursor` reads, in order: the rest of the cursor's own, then
    /// the whole of the one after it, if any.
    fn after(sort: SortKey, ascending: bool, cursor: &Cursor) -> Vec<Stretch> {
        let nullable = sort != SortKey::CreatedAt;
        match (cursor.value.is_some(), ascending) {
            (true, true) if nullable => vec![
                Stretch::Valued { after: true },
                Stretch::Null { after: false },
            ],
            (true, _) => vec![Stretch::Valued { after: true }],
            (false, true) => vec![Stretch::Null { after: true }],
            (false, false) => vec![
                Stretch::Null { after: true },
                Stretch::Valued { after: false },
            ],
        }
    }
}

/// A place in a sorted list: just after the contact with this sort value (`None`: it had
/// none) and id. It belongs to one sort and order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub sort: SortKey,
    pub ascending: bool,
    pub value: Option<String>,
    pub id: Uuid,
}

/// The cursor's fields as its token carries them.
#[derive(serde::Serialize, serde::Deserialize)]
struct CursorToken {
    s: String,
    o: String,
    v: Option<String>,
    id: Uuid,
}

impl Cursor {
    /// The opaque token the API gives as `meta.nextCursor` (URL-safe base64 of a small JSON).
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        let token = CursorToken {
            s: self.sort.as_str().to_owned(),
            o: if self.ascending { "asc" } else { "desc" }.to_owned(),
            v: self.value.clone(),
            id: self.id,
        };
        let json = serde_json::to_vec(&token).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads a token of `encode`; `None` for anything else.
    pub fn decode(token: &str) -> Option<Self> {
        use base64::Engine as _;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .ok()?;
        let token: CursorToken = serde_json::from_slice(&json).ok()?;
        let ascending = match token.o.as_str() {
            "asc" => true,
            "desc" => false,
            _ => return None,
        };
        let sort = SortKey::parse(&token.s)?;
        if sort == SortKey::CreatedAt {
            // Its value is a time; anything else would fail the statement, not the request.
            time::OffsetDateTime::parse(
                token.v.as_deref()?,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()?;
        }
        Some(Self {
            sort,
            ascending,
            value: token.v,
            id: token.id,
        })
    }

    /// The place just after `contact` in the list sorted by `sort`.
    pub fn after(contact: &ContactView, sort: SortKey, ascending: bool) -> Self {
        let value = match sort {
            SortKey::FirstName => contact.first_name.clone(),
            SortKey::LastName => contact.last_name.clone(),
            SortKey::Phone => contact.phone.clone(),
            SortKey::Email => contact.email.clone(),
            SortKey::CreatedAt => contact
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .ok(),
        };
        Self {
            sort,
            ascending,
            value,
            id: contact.id,
        }
    }
}

/// Where a page starts.
#[derive(Clone, Debug)]
pub enum Start {
    /// This many contacts into the list (`page`).
    Offset(i64),
    /// Just after a cursor (`after`); its sort is the page's.
    After(Cursor),
}

/// The number of matches counted exactly; past it, `meta.total` is the planner's estimate.
pub const EXACT_COUNT_LIMIT: i64 = 1_000;

/// A page of contacts.
#[derive(Debug)]
pub struct Page {
    pub rows: Vec<ContactView>,
    /// The contacts matching, over every page.
    pub total: i64,
    /// `total` is the planner's estimate: more than `EXACT_COUNT_LIMIT` matched.
    pub total_is_estimate: bool,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// The WHERE of a listing, over the parameters `page_sql` names.
fn filter_sql(identifier: Option<Identifier>) -> String {
    let column = identifier.map_or("phone", identifier_column);
    format!(
        "tenant_id = $1 AND ($2::text IS NULL OR {column} = $2) AND ($3 OR deleted_at IS NULL)
         AND ($4::text[] IS NULL OR (tags @> $4 AND tags <> '{{}}'))
         AND ($7::text IS NULL OR EXISTS (
             SELECT 1 FROM contact_groups cg JOIN groups g ON g.id = cg.group_id
             WHERE g.tenant_id = $1 AND g.name = $7 AND cg.contact_id = contacts.id))
         AND ($8::text IS NULL OR search_words @@ $8::tsquery)
         AND ($9::text IS NULL OR CASE WHEN $10::text IS NULL THEN consent->$9 IS NULL
                                       ELSE consent->$9->>'status' = $10 END)"
    )
}

/// Where an export is: the last contact it wrote, in creation order.
pub type ExportCursor = Option<Uuid>;

/// The next `limit` contacts of an export after `after`, oldest first (keyset paging on the
/// `(tenant_id, id)` key, which is creation order: every chunk costs the same, however deep),
/// with the list's filters.
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
           AND ($11::uuid IS NULL OR id > $11)
         ORDER BY id OFFSET $5 LIMIT $6",
        filter_sql(exact)
    );
    let bound = Bound::new(tenant_id, &filter);
    if bound.matches_nothing {
        return Ok(Vec::new());
    }
    bound.query(sql, 0, limit).bind(after).fetch_all(pool).await
}

/// The filter's parameters ($1 to $4 and $7 to $10 of `page_sql`), bound in their places.
struct Bound<'a> {
    tenant_id: Uuid,
    value: Option<&'a str>,
    include_deleted: bool,
    tag: Option<Vec<String>>,
    group: Option<&'a str>,
    /// The search's tsquery.
    search: Option<String>,
    /// A search was asked for that has no term (punctuation only): nothing matches.
    matches_nothing: bool,
    channel: Option<&'static str>,
    status: Option<&'static str>,
}

impl<'a> Bound<'a> {
    fn new(tenant_id: Uuid, filter: &Filter<'a>) -> Self {
        Self {
            tenant_id,
            value: filter.exact.map(|(_, value)| value),
            include_deleted: filter.include_deleted,
            tag: filter.tag.map(|t| vec![t.to_owned()]),
            group: filter.group,
            search: filter.search.and_then(search::query),
            matches_nothing: filter.search.is_some_and(|s| search::query(s).is_none()),
            channel: filter.consent.map(|(c, _)| c.as_str()),
            status: filter
                .consent
                .and_then(|(_, s)| s)
                .map(ConsentStatus::as_str),
        }
    }

    /// `sql` with the filter's parameters and $5 offset, $6 limit bound.
    fn query<'q, O>(
        &'q self,
        sql: String,
        offset: i64,
        limit: i64,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        sqlx::query_as(AssertSqlSafe(sql))
            .bind(self.tenant_id)
            .bind(self.value)
            .bind(self.include_deleted)
            .bind(&self.tag)
            .bind(offset)
            .bind(limit)
            .bind(self.group)
            .bind(&self.search)
            .bind(self.channel)
            .bind(self.status)
    }
}

/// A page of the tenant's contacts: filtered, sorted by `sort` (ties by id, the same way),
/// ascending or not, from `start`; with the number of contacts over every page (exact up to
/// `EXACT_COUNT_LIMIT`) and where the next page starts.
pub async fn page(
    pool: &PgPool,
    tenant_id: Uuid,
    filter: Filter<'_>,
    sort: SortKey,
    ascending: bool,
    start: Start,
    limit: i64,
) -> Result<Page, sqlx::Error> {
    let identifier = filter.exact.map(|(identifier, _)| identifier);
    let bound = Bound::new(tenant_id, &filter);
    if bound.matches_nothing {
        return Ok(Page {
            rows: Vec::new(),
            total: 0,
            total_is_estimate: false,
            next: None,
        });
    }
    // One more than the page, to know whether another follows.
    let wanted = limit + 1;
    // A search's matches, when they are few: then the page is read from them (and their
    // number is the total).
    let matches = match filter.search {
        Some(_) => {
            let ids: Vec<(Uuid,)> = bound
                .query(
                    format!(
                        "SELECT id FROM contacts WHERE {} LIMIT $6",
                        filter_sql(identifier)
                    ),
                    0,
                    EXACT_COUNT_LIMIT + 1,
                )
                .fetch_all(pool)
                .await?;
            (ids.len() as i64 <= EXACT_COUNT_LIMIT)
                .then(|| ids.into_iter().map(|(id,)| id).collect::<Vec<Uuid>>())
        }
        None => None,
    };
    let mut rows: Vec<ContactView> = match &start {
        Start::Offset(offset) => {
            let sql = match matches {
                Some(_) => candidates_sql(identifier, sort, ascending, None),
                None => page_sql(identifier, sort, ascending),
            };
            let query = bound.query(sql, *offset, wanted);
            match &matches {
                Some(ids) => query.bind(ids),
                None => query,
            }
            .fetch_all(pool)
            .await?
        }
        Start::After(cursor) => {
            let mut rows = Vec::new();
            for stretch in Stretch::after(sort, ascending, cursor) {
                let missing = wanted - rows.len() as i64;
                if missing <= 0 {
                    break;
                }
                let sql = match matches {
                    Some(_) => candidates_sql(identifier, sort, ascending, Some(stretch)),
                    None => stretch_sql(identifier, sort, ascending, stretch),
                };
                let query = bound
                    .query(sql, 0, missing)
                    .bind(cursor.value.as_deref())
                    .bind(cursor.id);
                let part: Vec<ContactView> = match &matches {
                    Some(ids) => query.bind(ids),
                    None => query,
                }
                .fetch_all(pool)
                .await?;
                rows.extend(part);
            }
            rows
        }
    };
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|last| Cursor::after(last, sort, ascending))
    } else {
        None
    };
    let (total, total_is_estimate) = match &matches {
        Some(ids) => (ids.len() as i64, false),
        // A search's matches were just counted past the limit.
        None if filter.search.is_some() => (estimate(pool, &bound, identifier).await?, true),
        None => total(pool, &filter, &bound, identifier).await?,
    };
    Ok(Page {
        rows,
        total,
        total_is_estimate,
        next,
    })
}

/// The number of contacts matching `filter`: the kept counts without a filter; else counted,
/// up to `EXACT_COUNT_LIMIT`, past which the planner's estimate is taken (counting a match of
/// hundreds of thousands costs more than the page).
async fn total(
    pool: &PgPool,
    filter: &Filter<'_>,
    bound: &Bound<'_>,
    identifier: Option<Identifier>,
) -> Result<(i64, bool), sqlx::Error> {
    let unfiltered = filter.exact.is_none()
        && filter.tag.is_none()
        && filter.group.is_none()
        && filter.search.is_none()
        && filter.consent.is_none();
    if unfiltered {
        let total = super::count(pool, bound.tenant_id, filter.include_deleted).await?;
        return Ok((total, false));
    }
    let where_ = filter_sql(identifier);
    let (counted,): (i64,) = bound
        .query(
            format!("SELECT count(*) FROM (SELECT FROM contacts WHERE {where_} LIMIT $6) AS m"),
            0,
            EXACT_COUNT_LIMIT + 1,
        )
        .fetch_one(pool)
        .await?;
    if counted <= EXACT_COUNT_LIMIT {
        return Ok((counted, false));
    }
    Ok((estimate(pool, bound, identifier).await?, true))
}

/// The planner's estimate of the contacts matching, at least `EXACT_COUNT_LIMIT + 1` (the
/// caller counted that many).
async fn estimate(
    pool: &PgPool,
    bound: &Bound<'_>,
    identifier: Option<Identifier>,
) -> Result<i64, sqlx::Error> {
    let where_ = filter_sql(identifier);
    let plan: (serde_json::Value,) = bound
        .query(
            format!("EXPLAIN (FORMAT JSON) SELECT FROM contacts WHERE {where_} OFFSET $5 LIMIT $6"),
            0,
            i64::MAX,
        )
        .fetch_one(pool)
        .await?;
    let estimate = plan.0[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0) as i64;
    Ok(estimate.max(EXACT_COUNT_LIMIT + 1))
}
