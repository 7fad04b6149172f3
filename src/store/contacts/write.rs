//! The set-based statements a batch applies with: one `SELECT … FOR UPDATE` of the contacts
//! its rows name, one `INSERT … SELECT FROM UNNEST` of the new ones, one `UPDATE … FROM
//! UNNEST` of the changed ones, whatever the number of rows.

use super::{STORED_COLUMNS, StoredContact};
use crate::validate::search;
use sqlx::{AssertSqlSafe, PgConnection};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// Locks and returns every contact of the tenant that holds one of these identifiers, in one
/// fixed order (the id's text) so that concurrent batches lock shared contacts in the same
/// order and cannot deadlock.
///
/// Two statements: `find_holding` probes the identifier indexes, one probe a value, and the
/// contacts found are then locked by key. The identifiers are checked again under the lock
/// (PostgreSQL re-evaluates the condition on a row that changed meanwhile), and a contact that
/// took one of them since is met by the insert's or update's unique violation, which retries
/// the batch. A first import finds nothing and locks nothing.
///
/// One statement `WHERE tenant_id = $1 AND (phone = ANY($2) OR email = ANY($3))` left the
/// access path to the planner, which chose a scan of the whole tenant filtered by the arrays
/// whenever that looked cheaper than the probes (with accurate statistics too, at 20,000
/// contacts in `tests/api/batches.rs`): during the first 125,000 rows of a
/// first import every batch read every contact of the tenant (auto_explain: 9 ms growing to
/// 58 ms a batch, 5.3 s of a 14 s import, against 4–6 ms probing). Before that it walked the
/// primary key for `ORDER BY id`, and served an empty `id = ANY('{}')` arm with a scan of
/// `contacts_no_email`.
pub async fn lock_holding(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    held: &Held,
) -> Result<Vec<StoredContact>, sqlx::Error> {
    let mut ids = find_holding(&mut *conn, tenant_id, held).await?;
    ids.extend_from_slice(&held.ids);
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    ids.sort_unstable();
    ids.dedup();
    let arms = held.arms(3);
    let sql = format!(
        "SELECT {STORED_COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = ANY($2) AND ({})
         ORDER BY id::text COLLATE \"C\" FOR UPDATE",
        arms.join(" OR ")
    );
    let query = sqlx::query_as(AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(&ids);
    held.bind_lists(query).fetch_all(conn).await
}

/// The ids of the contacts holding a phone, email or external id of `held`, unlocked: each
/// value is one probe of its kind's unique index `(tenant_id, value)`. The subquery fenced by
/// `OFFSET 0` is planned once for a single value, where that index is the cheapest path
/// whatever the statistics say of the tenant's size.
async fn find_holding(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    held: &Held,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let parts: Vec<String> = held
        .kinds()
        .into_iter()
        .filter(|(column, held)| *held && *column != "id")
        .enumerate()
        .map(|(i, (column, _))| {
            format!(
                "SELECT c.id FROM UNNEST(${}::text[]) AS k(value),
                     LATERAL (SELECT id FROM contacts
                              WHERE tenant_id = $1 AND {column} = k.value OFFSET 0) AS c",
                i + 2
            )
        })
        .collect();
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let sql = parts.join(" UNION ALL ");
    let mut query = sqlx::query_scalar(AssertSqlSafe(sql)).bind(tenant_id);
    for list in held.text_lists() {
        query = query.bind(list);
    }
    query.fetch_all(conn).await
}

/// Lets the rest of the caller's transaction use generic plans: a single contact's writes,
/// after its look-up (`lock_holding`) was planned for its values. The session plans every
/// statement for its parameters (`plan_cache_mode = force_custom_plan`, store::connect); the
/// writes have one plan whatever their arrays hold. (A batch's transaction uses generic plans
/// throughout, with sequential scans off: `store::begin_by_key`.)
pub async fn generic_plans_from_here(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
        .execute(conn)
        .await?;
    Ok(())
}

/// The identifiers a batch's rows carry, by kind: the contacts holding any are locked.
#[derive(Debug, Default)]
pub struct Held {
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub external_ids: Vec<String>,
    /// Contacts' own ids (`dedupeOn: "id"`).
    pub ids: Vec<Uuid>,
}

impl Held {
    /// Each kind's column, and whether the batch holds any value of it; in the order of
    /// `text_lists`, then `id`.
    fn kinds(&self) -> [(&'static str, bool); 4] {
        [
            ("phone", !self.phones.is_empty()),
            ("email", !self.emails.is_empty()),
            ("external_id", !self.external_ids.is_empty()),
            ("id", !self.ids.is_empty()),
        ]
    }

    /// The text kinds that hold values, in `kinds` order.
    fn text_lists(&self) -> impl Iterator<Item = &Vec<String>> {
        [&self.phones, &self.emails, &self.external_ids]
            .into_iter()
            .filter(|list| !list.is_empty())
    }

    /// `column IN (SELECT unnest($n))` for each kind held, numbered from `first`, bound by
    /// `bind_lists`. A set, not `column = ANY($n)`: in a generic plan (`store::begin_by_key`)
    /// the array is a parameter, and `= ANY` of a parameter compares each contact read with
    /// every value in turn (a thousand of each, 3 ms a batch), where a set is hashed once.
    fn arms(&self, first: usize) -> Vec<String> {
        self.kinds()
            .into_iter()
            .filter(|(_, held)| *held)
            .enumerate()
            .map(|(i, (column, _))| {
                let kind = if column == "id" { "uuid" } else { "text" };
                format!("{column} IN (SELECT unnest(${}::{kind}[]))", first + i)
            })
            .collect()
    }

    /// Binds the lists that `arms` numbered.
    fn bind_lists<'q, O>(
        &'q self,
        mut query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        for list in self.text_lists() {
            query = query.bind(list);
        }
        if !self.ids.is_empty() {
            query = query.bind(&self.ids);
        }
        query
    }
}

/// Column arrays for UNNEST, one entry per contact; the text columns borrow from the
/// contacts (a batch's thousand rows are not copied to be sent).
#[derive(Default)]
struct Columns<'a> {
    id: Vec<Uuid>,
    external_id: Vec<Option<&'a str>>,
    phone: Vec<Option<&'a str>>,
    email: Vec<Option<&'a str>>,
    first_name: Vec<Option<&'a str>>,
    last_name: Vec<Option<&'a str>>,
    full_name: Vec<Option<&'a str>>,
    occupation: Vec<Option<&'a str>>,
    preferred_channel: Vec<Option<&'a str>>,
    gender: Vec<Option<&'a str>>,
    birthday: Vec<Option<Date>>,
    address: Vec<Option<&'a str>>,
    city: Vec<Option<&'a str>>,
    state: Vec<Option<&'a str>>,
    zip: Vec<Option<&'a str>>,
    custom_attributes: Vec<String>,
    restore: Vec<bool>,
    /// Each contact's tags as a PostgreSQL array literal (UNNEST cannot take an array of
    /// arrays of different lengths).
    tags: Vec<String>,
    /// JSON text, or NULL for no channel.
    consent: Vec<Option<String>>,
    status: Vec<&'a str>,
    email_status: Vec<&'a str>,
    phone_status: Vec<&'a str>,
    /// Each contact's search words as a text[] literal (validate::search::words).
    search_words: Vec<String>,
    /// The time each id carries (UUIDv7): a new contact's created_at, so that the key
    /// (tenant_id, id) is its creation order (migration 0022).
    created_at: Vec<Option<OffsetDateTime>>,
}

/// The time a UUIDv7 carries, to the millisecond; `None` for another version.
fn id_time(id: Uuid) -> Option<OffsetDateTime> {
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    let at = OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    Some(at + time::Duration::nanoseconds(i64::from(nanos)))
}

/// `{"a","b"}`: a text[] literal, every element quoted and escaped.
fn array_literal(items: &[String]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for ch in item.chars() {
            if ch == '"' || ch == '\\' {
                out.push('\\');
            }
            out.push(ch);
        }
        out.push('"');
    }
    out.push('}');
    out
}

impl<'a> Columns<'a> {
    fn of(contacts: impl Iterator<Item = &'a StoredContact>) -> Self {
        let mut c = Self::default();
        for s in contacts {
            c.id.push(s.id);
            c.created_at.push(id_time(s.id));
            c.external_id.push(s.external_id.as_deref());
            c.phone.push(s.phone.as_deref());
            c.email.push(s.email.as_deref());
            c.first_name.push(s.first_name.as_deref());
            c.last_name.push(s.last_name.as_deref());
            c.full_name.push(s.full_name.as_deref());
            c.occupation.push(s.occupation.as_deref());
            c.preferred_channel.push(s.preferred_channel.as_deref());
            c.gender.push(s.gender.as_deref());
            c.birthday.push(s.birthday);
            c.address.push(s.address.as_deref());
            c.city.push(s.city.as_deref());
            c.state.push(s.state.as_deref());
            c.zip.push(s.zip.as_deref());
            c.custom_attributes
                .push(serde_json::Value::Object(s.custom_attributes.clone()).to_string());
            c.restore.push(s.deleted_at.is_none());
            c.tags.push(array_literal(&s.tags));
            c.consent.push(
                (!s.consent.is_empty())
                    .then(|| serde_json::to_string(&s.consent).unwrap_or_default()),
            );
            c.status.push(&s.status);
            c.email_status.push(&s.email_status);
            c.phone_status.push(&s.phone_status);
            c.search_words.push(array_literal(&search::words(
                [
                    s.first_name.as_deref(),
                    s.last_name.as_deref(),
                    s.full_name.as_deref(),
                ],
                s.email.as_deref(),
                s.phone.as_deref(),
            )));
        }
        c
    }

    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        query
            .bind(self.id)
            .bind(self.external_id)
            .bind(self.phone)
            .bind(self.email)
            .bind(self.first_name)
            .bind(self.last_name)
            .bind(self.full_name)
            .bind(self.occupation)
            .bind(self.preferred_channel)
            .bind(self.gender)
            .bind(self.birthday)
            .bind(self.address)
            .bind(self.city)
            .bind(self.state)
            .bind(self.zip)
            .bind(self.custom_attributes)
            .bind(self.restore)
            .bind(self.tags)
            .bind(self.consent)
            .bind(self.status)
            .bind(self.email_status)
            .bind(self.phone_status)
            .bind(self.search_words)
            .bind(self.created_at)
    }
}

const UNNEST: &str =
    "UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::text[], $10::text[], $11::text[], $12::date[], $13::text[], $14::text[],
    $15::text[], $16::text[], $17::text[], $18::bool[], $19::text[], $20::text[], $21::text[],
    $22::text[], $23::text[], $24::text[], $25::timestamptz[])
    AS u(id, external_id, phone, email, first_name, last_name, full_name, occupation,
         preferred_channel, gender, birthday, address, city, state, zip, custom_attributes, live,
         tags, consent, status, email_status, phone_status, search_words, created_at)";

/// Inserts new contacts; returns how many. A contact whose identifier a concurrent transaction
/// has just taken fails the statement with a unique violation (23505), which is transient: the
/// batch is retried and its look-up then finds that contact. A plain INSERT, because `ON
/// CONFLICT DO NOTHING` costs a speculative insertion per index and row (60% more time here).
pub async fn insert_new(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    contacts: &[StoredContact],
) -> Result<u64, sqlx::Error> {
    if contacts.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "INSERT INTO contacts (id, tenant_id, external_id, phone, email, first_name, last_name,
             full_name, occupation, preferred_channel, gender, birthday, address, city, state, zip,
             custom_attributes, tags, consent, status, email_status, phone_status, search_words,
             created_at, updated_at)
         SELECT u.id, $1, u.external_id, u.phone, u.email, u.first_name, u.last_name, u.full_name,
             u.occupation, u.preferred_channel, u.gender, u.birthday, u.address, u.city, u.state,
             u.zip, u.custom_attributes::jsonb, u.tags::text[], u.consent::jsonb, u.status,
             u.email_status, u.phone_status, array_to_tsvector(u.search_words::text[]),
             coalesce(u.created_at, now()), coalesce(u.created_at, now())
         FROM {UNNEST}"
    );
    let query = Columns::of(contacts.iter()).bind(sqlx::query(AssertSqlSafe(sql)).bind(tenant_id));
    Ok(query.execute(conn).await?.rows_affected())
}

/// Writes a plan made without reading every stored contact that holds one of its rows'
/// identifiers: inserts the new contacts and updates the changed ones, and lets the unique
/// indexes say whether a contact that was not read holds one of the identifiers written. True
/// when all was written; false when one was held, and then nothing was (the writes ran under a
/// savepoint, rolled back) and the caller plans again with every holder read (`lock_holding`).
///
/// A batch thereby reads only the contacts its rows name by their `dedupeOn` identifier (a
/// first import none at all), one probe per row instead of one per identifier; the unique
/// indexes check the rest as the rows go in, as they would anyway. Runs in a batch's
/// transaction (`store::begin_by_key`: generic plans, no sequential scans).
pub async fn write_unless_held(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    inserts: &[StoredContact],
    updates: &[StoredContact],
) -> Result<bool, sqlx::Error> {
    sqlx::raw_sql("SAVEPOINT unless_held")
        .execute(&mut *conn)
        .await?;
    let written = async {
        insert_new(&mut *conn, tenant_id, inserts).await?;
        update_existing(&mut *conn, tenant_id, updates).await
    }
    .await;
    match written {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT unless_held")
                .execute(conn)
                .await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Writes the new state of existing contacts; a contact whose `deleted_at` is `None` here is
/// restored.
pub async fn update_existing(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    contacts: &[StoredContact],
) -> Result<u64, sqlx::Error> {
    if contacts.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE contacts c SET external_id = u.external_id, phone = u.phone, email = u.email,
             first_name = u.first_name, last_name = u.last_name, full_name = u.full_name,
             occupation = u.occupation, preferred_channel = u.preferred_channel, gender = u.gender,
             birthday = u.birthday, address = u.address, city = u.city, state = u.state, zip = u.zip,
             custom_attributes = u.custom_attributes::jsonb, tags = u.tags::text[],
             consent = u.consent::jsonb, status = u.status, email_status = u.email_status,
             phone_status = u.phone_status,
             search_words = array_to_tsvector(u.search_words::text[]),
             deleted_at = CASE WHEN u.live THEN NULL ELSE c.deleted_at END,
             updated_at = now()
         FROM {UNNEST}
         WHERE c.tenant_id = $1 AND c.id = u.id"
    );
    let query = Columns::of(contacts.iter()).bind(sqlx::query(AssertSqlSafe(sql)).bind(tenant_id));
    Ok(query.execute(conn).await?.rows_affected())
}
