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

impl Filter<'_> {
    /// True when every contact of the tenant is listed (deleted ones too, or not).
    fn is_unfiltered(&self) -> bool {
        self.exact.is_none()
            && self.tag.is_none()
            && self.group.is_none()
            && self.search.is_none()
            && self.consent.is_none()
    }
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

/// A keyset page of a search's matches once they are known to be few (`EXACT_COUNT_LIMIT` or
/// less): their ids in an array, $13 (numbered pages: `search_page`). The planner cannot
/// estimate how many contacts a prefix query matches (it takes 2 % for any term), so left to
/// itself it walks the sort key's index and tests every contact: 400 ms at 890k contacts for a
/// term that matches one. Here the matches' sort keys are read by id (materialised: no index
/// walk), sorted, and only the page's rows are read whole.
pub fn candidates_sql(
    identifier: Option<Identifier>,
    sort: SortKey,
    ascending: bool,
    stretch: Stretch,
) -> String {
    let filter = filter_sql(identifier);
    let column = sort.column();
    let direction = if ascending { "ASC" } else { "DESC" };
    let order = order_by(sort, ascending);
    let (range, _) = stretch_range(sort, ascending, stretch);
    format!(
        "WITH candidate AS MATERIALIZED (
             SELECT id, {column} AS key FROM contacts
             WHERE id = ANY($13::uuid[]) AND {filter} AND {range}),
         chosen AS (
             SELECT id FROM candidate ORDER BY key {direction}, id {direction} LIMIT $6)
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
    let (mut rows, counted): (Vec<ContactView>, Option<(i64, bool)>) = match &start {
        Start::Offset(offset) if filter.is_unfiltered() => (
            offset_page(pool, &bound, sort, ascending, *offset, wanted).await?,
            None,
        ),
        Start::Offset(offset) if filter.search.is_some() => {
            let (rows, counted) = search_page(
                pool, &filter, &bound, identifier, sort, ascending, *offset, wanted,
            )
            .await?;
            (rows, Some(counted))
        }
        Start::Offset(offset) => (
            bound
                .query(page_sql(identifier, sort, ascending), *offset, wanted)
                .fetch_all(pool)
                .await?,
            None,
        ),
        Start::After(cursor) => {
            // A search's matches, when they are few: then the page is read from them (and
            // their number is the total).
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
            let mut rows = Vec::new();
            for stretch in Stretch::after(sort, ascending, cursor) {
                let missing = wanted - rows.len() as i64;
                if missing <= 0 {
                    break;
                }
                let sql = match matches {
                    Some(_) => candidates_sql(identifier, sort, ascending, stretch),
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
            let counted = match &matches {
                Some(ids) => Some((ids.len() as i64, false)),
                // A search's matches were just counted past the limit.
                None if filter.search.is_some() => {
                    Some((estimate(pool, &bound, identifier).await?, true))
                }
                None => None,
            };
            (rows, counted)
        }
    };
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|last| Cursor::after(last, sort, ascending))
    } else {
        None
    };
    let (total, total_is_estimate) = match counted {
        Some(counted) => counted,
        None => total(pool, &filter, &bound, identifier).await?,
    };
    Ok(Page {
        rows,
        total,
        total_is_estimate,
        next,
    })
}

/// How far into the sorted list a search's page is first looked for: this many contacts, in
/// order, tested one by one.
const SEARCH_WALK: i64 = 3_000;

/// The most matches of a search read through the words index and sorted; past it the list is
/// read in order and tested.
const SEARCH_CANDIDATES: i64 = 5_000;

/// True when a search may match a large share of the contacts: its terms are all words, which
/// names and email domains share. A term of digits starts or ends a phone and a term with an
/// `@` is an email, each one contact's own.
fn may_be_common(search: &str) -> bool {
    search
        .split_whitespace()
        .all(|term| !term.contains('@') && !term.chars().any(|c| c.is_ascii_digit()))
}

/// A page of a search, from `offset`, and its total (exact or not). The words index finds a
/// term's matches, but all of them at once: a common name's 41,000 cost 11–20 ms before the
/// first is read, then each is read to be sorted. So, cheapest first:
/// 1. a search that may be common is looked for in the first `SEARCH_WALK` contacts of the
///    list (a common name fills a page within a few hundred); the total is estimated from the
///    share that matched;
/// 2. otherwise up to `SEARCH_CANDIDATES` matches are read through the words index, with their
///    sort key, and sorted: the total is exact;
/// 3. past that, the list is read in order and tested as far as the page needs; in creation
///    order this is what the planner is made to do, as it cannot estimate how many contacts a
///    prefix matches (it takes 2 %), and a bitmap of every match then sorted took 150 ms.
#[allow(clippy::too_many_arguments)]
async fn search_page(
    pool: &PgPool,
    filter: &Filter<'_>,
    bound: &Bound<'_>,
    identifier: Option<Identifier>,
    sort: SortKey,
    ascending: bool,
    offset: i64,
    wanted: i64,
) -> Result<(Vec<ContactView>, (i64, bool)), sqlx::Error> {
    let where_ = filter_sql(identifier);
    let order = order_by(sort, ascending);
    let tenant_id = bound.tenant_id;
    if offset + wanted <= SEARCH_WALK && filter.search.is_some_and(may_be_common) {
        let found: Vec<(Uuid, i64)> = bound
            .query(
                format!(
                    "SELECT id, count(*) OVER () FROM (
                         SELECT * FROM contacts WHERE tenant_id = $1 AND ($3 OR deleted_at IS NULL)
                         ORDER BY {order} LIMIT {SEARCH_WALK}) AS contacts
                     WHERE {where_} ORDER BY {order} OFFSET $5 LIMIT $6"
                ),
                offset,
                wanted,
            )
            .fetch_all(pool)
            .await?;
        let listed = super::count(pool, tenant_id, bound.include_deleted).await?;
        let walked_all = listed <= SEARCH_WALK;
        if found.len() as i64 == wanted || (walked_all && !found.is_empty()) {
            let matched = found.first().map_or(0, |(_, n)| *n);
            let total = if walked_all {
                matched
            } else {
                (matched as f64 * listed as f64 / SEARCH_WALK as f64).round() as i64
            };
            // Counted exactly up to the limit, as every filter is.
            let exact = walked_all && matched <= EXACT_COUNT_LIMIT;
            let ids: Vec<Uuid> = found.into_iter().map(|(id, _)| id).collect();
            let rows = rows_in_order(pool, tenant_id, &ids, sort, ascending).await?;
            return Ok((rows, (total.max(matched), !exact)));
        }
    }
    let direction = if ascending { "ASC" } else { "DESC" };
    let found: Vec<(Option<Uuid>, i64)> = bound
        .query(
            format!(
                "WITH matched AS MATERIALIZED (
                     SELECT id, {column} AS key FROM contacts WHERE {where_}
                     LIMIT {limit})
                 SELECT page.id, counted.n
                 FROM (SELECT count(*) AS n FROM matched) AS counted
                 LEFT JOIN LATERAL (
                     SELECT id FROM matched ORDER BY key {direction}, id {direction}
                     OFFSET $5 LIMIT $6) AS page ON TRUE",
                column = sort.column(),
                limit = SEARCH_CANDIDATES + 1,
            ),
            offset,
            wanted,
        )
        .fetch_all(pool)
        .await?;
    let matched = found.first().map_or(0, |(_, n)| *n);
    if matched <= SEARCH_CANDIDATES {
        let ids: Vec<Uuid> = found.into_iter().filter_map(|(id, _)| id).collect();
        let rows = rows_in_order(pool, tenant_id, &ids, sort, ascending).await?;
        return Ok((rows, (matched, false)));
    }
    let mut tx = pool.begin().await?;
    if sort == SortKey::CreatedAt {
        sqlx::query("SET LOCAL enable_bitmapscan = off")
            .execute(&mut *tx)
            .await?;
    }
    let rows = bound
        .query(page_sql(identifier, sort, ascending), offset, wanted)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let total = estimate(pool, bound, identifier)
        .await?
        .max(SEARCH_CANDIDATES + 1);
    Ok((rows, (total, true)))
}

/// The tenant's contacts of `ids`, whole, in the list's order.
async fn rows_in_order<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    tenant_id: Uuid,
    ids: &[Uuid],
    sort: SortKey,
    ascending: bool,
) -> Result<Vec<ContactView>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {VIEW_COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = ANY($2) ORDER BY {}",
        order_by(sort, ascending)
    )))
    .bind(tenant_id)
    .bind(ids)
    .fetch_all(executor)
    .await
}

/// A part of an unfiltered sorted list that one index reads in order (migration 0023): the
/// whole list, or for phone and email (unique, so ordered without the id) the contacts that
/// have one, then those that have none, by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Whole,
    Valued,
    Null,
}

impl Part {
    /// The statement reading the ids of this part from $3 on, $4 of them, in `ascending`
    /// order; $1 tenant, $2 include deleted. Every column it reads is in the index, so once
    /// the visibility map is set the contacts skipped are never read.
    fn ids_sql(self, sort: SortKey, ascending: bool) -> String {
        let direction = if ascending { "ASC" } else { "DESC" };
        let column = sort.column();
        let (range, order) = match self {
            Self::Whole => ("TRUE".to_owned(), order_by(sort, ascending)),
            Self::Valued => (
                format!("{column} IS NOT NULL"),
                format!("{column} {direction}"),
            ),
            Self::Null => (format!("{column} IS NULL"), format!("id {direction}")),
        };
        format!(
            "SELECT id FROM contacts WHERE tenant_id = $1 AND ($2 OR deleted_at IS NULL) AND {range}
             ORDER BY {order} OFFSET $3 LIMIT $4"
        )
    }
}

/// The statement reading the ids of an unfiltered list sorted by a name or the creation time
/// ($1 tenant, $2 include deleted, $3 offset, $4 limit). Public so that the tests and the
/// benchmark can EXPLAIN exactly what a deep page runs.
pub fn offset_ids_sql(sort: SortKey, ascending: bool) -> String {
    Part::Whole.ids_sql(sort, ascending)
}

/// `limit` contacts of an unfiltered list from `offset` on. A deep page costs what reading its
/// offset's index entries costs, and no more than half a part's: each part is read from its
/// nearer end (the kept count says where that is), its ids alone through the sort key's index,
/// then the page's contacts by key. One snapshot for all, so that the counts and the rows
/// agree.
async fn offset_page(
    pool: &PgPool,
    bound: &Bound<'_>,
    sort: SortKey,
    ascending: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<ContactView>, sqlx::Error> {
    let (tenant_id, include_deleted) = (bound.tenant_id, bound.include_deleted);
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let total = super::count(&mut *tx, tenant_id, include_deleted).await?;
    let parts = match sort {
        SortKey::Phone | SortKey::Email => {
            let without: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT count(*) FROM contacts
                 WHERE tenant_id = $1 AND ($2 OR deleted_at IS NULL) AND {} IS NULL",
                sort.column()
            )))
            .bind(tenant_id)
            .bind(include_deleted)
            .fetch_one(&mut *tx)
            .await?;
            let with = (total - without).max(0);
            // NULLs come last going up, first going down.
            if ascending {
                vec![(Part::Valued, with), (Part::Null, without)]
            } else {
                vec![(Part::Null, without), (Part::Valued, with)]
            }
        }
        _ => vec![(Part::Whole, total)],
    };
    let mut ids: Vec<Uuid> = Vec::new();
    let mut start = 0;
    for (part, size) in parts {
        // The page's overlap with this part, in the part's own positions.
        let from = (offset - start).clamp(0, size);
        let to = (offset + limit - start).clamp(0, size);
        start += size;
        if to <= from {
            continue;
        }
        // From the end when that skips less: then the part is read the other way round.
        let (skip, forward) = if from <= size - to {
            (from, ascending)
        } else {
            (size - to, !ascending)
        };
        let part_ids: Vec<Uuid> = sqlx::query_scalar(AssertSqlSafe(part.ids_sql(sort, forward)))
            .bind(tenant_id)
            .bind(include_deleted)
            .bind(skip)
            .bind(to - from)
            .fetch_all(&mut *tx)
            .await?;
        ids.extend(part_ids);
    }
    let rows = rows_in_order(&mut *tx, tenant_id, &ids, sort, ascending).await?;
    tx.commit().await?;
    Ok(rows)
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
    if filter.is_unfiltered() {
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
