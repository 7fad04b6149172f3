//! The event outbox (`eventKeyForNewContacts`): written by the batch that creates the contacts,
//! in its transaction; published by the relay (`tasks::relay`) with publisher confirms, then
//! marked, and deleted a day later.

use super::contacts::{self, ContactView};
use serde::Serialize;
use sqlx::PgConnection;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// The body of an event (docs/api.md, "Events for new contacts").
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NewContactEvent<'a> {
    event_id: Uuid,
    event_key: &'a str,
    tenant: &'a str,
    async_session_id: Uuid,
    contact_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    contact: &'a ContactView,
}

/// Stores one event per created contact, as it now is (tags and groups included), and wakes
/// the relays. Returns how many.
pub async fn record_new_contacts(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    import_id: Uuid,
    event_key: &str,
    created: &[Uuid],
) -> Result<usize, sqlx::Error> {
    if created.is_empty() {
        return Ok(0);
    }
    let tenant: String = sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_one(&mut *conn)
        .await?;
    let views = contacts::views(&mut *conn, tenant_id, created).await?;
    let occurred_at = OffsetDateTime::now_utc();
    let mut ids = Vec::with_capacity(views.len());
    let mut bodies = Vec::with_capacity(views.len());
    for contact in &views {
        let event = NewContactEvent {
            event_id: Uuid::now_v7(),
            event_key,
            tenant: &tenant,
            async_session_id: import_id,
            contact_id: contact.id,
            occurred_at,
            contact,
        };
        let body = serde_json::to_vec(&event)
            .map_err(|e| sqlx::Error::Encode(format!("event body: {e}").into()))?;
        ids.push(event.event_id);
        bodies.push(body);
    }
    sqlx::query(
        "INSERT INTO event_outbox (id, tenant_id, import_id, routing_key, body)
         SELECT u.id, $1, $2, $3, u.body FROM UNNEST($4::uuid[], $5::bytea[]) AS u(id, body)",
    )
    .bind(tenant_id)
    .bind(import_id)
    .bind(event_key)
    .bind(&ids)
    .bind(&bodies)
    .execute(&mut *conn)
    .await?;
    super::batches::notify_outbox(conn).await?;
    Ok(ids.len())
}

/// An event to publish.
#[derive(Debug, sqlx::FromRow)]
pub struct Unpublished {
    pub id: Uuid,
    pub routing_key: String,
    pub body: Vec<u8>,
}

/// Locks up to `limit` unpublished events, oldest first, in the relay's transaction; several
/// relays share the work (`SKIP LOCKED`).
pub async fn claim_unpublished(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<Unpublished>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, routing_key, body FROM event_outbox WHERE published_at IS NULL
         ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Marks events published (the broker confirmed them).
pub async fn mark_published(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE event_outbox SET published_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes up to 10,000 events the broker confirmed more than `after` ago: the outbox is not
/// an archive. Returns how many.
pub async fn forget_published(pool: &sqlx::PgPool, after: Duration) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "DELETE FROM event_outbox WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM event_outbox WHERE published_at < now() - make_interval(secs => $1)
             LIMIT 10000))",
    )
    .bind(after.as_secs_f64())
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}
