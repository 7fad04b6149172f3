//! The event outbox (`eventKeyForNewContacts`): written by the batch that creates the contacts,
//! in its transaction; published by the relay (`broker::relay`) with publisher confirms.

use super::contacts::{self, ContactView};
use serde::Serialize;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// The body of an event (API.md).
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
    crate::intake::notify_outbox(conn).await?;
    Ok(ids.len())
}
