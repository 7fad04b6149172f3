//! The outbox relay: publishes a small reference for every stored batch not yet confirmed by
//! the broker, with publisher confirms, and marks it published in the same database
//! transaction that selected it. A crash between publish and mark re-publishes the batch
//! later; the worker's done-marker makes that duplicate harmless.
//!
//! It publishes fairly (`fair`): only as many batches as there are free slots in flight,
//! shared round-robin between the tenants that have batches waiting. One relay pass runs at
//! a time across every `serve` process, behind a transaction-scoped advisory lock, so the
//! counts it decides on are not raced by another relay.

use super::fair::{self, Waiting};
use super::{BrokerError, BrokerHealth, Topology, connect, supervise, timed};
use crate::intake::OUTBOX_CHANNEL;
use crate::worker::BatchRef;
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

/// Key of the advisory lock that lets one relay pass run at a time ("relay").
const RELAY_LOCK: i64 = 0x0072_656c_6179;

/// How soon the relay looks again while batches wait for a free slot: finished batches free
/// slots without telling the relay, so it polls, briefly, only while something waits.
const HELD_BACK_POLL: Duration = Duration::from_millis(20);

/// The waiting tenants, oldest waiting batch first, each with how many batches it has waiting
/// (counted up to $1: no more can be granted in one pass).
const WAITING: &str = "
WITH RECURSIVE t AS (
    (SELECT tenant_id FROM import_batches
     WHERE published_at IS NULL AND state = 'pending' ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT b.tenant_id FROM import_batches b
            WHERE b.published_at IS NULL AND b.state = 'pending' AND b.tenant_id > t.tenant_id
            ORDER BY b.tenant_id LIMIT 1)
    FROM t WHERE t.tenant_id IS NOT NULL
)
SELECT t.tenant_id, w.n FROM t
CROSS JOIN LATERAL (
    SELECT min(created_at) AS oldest, count(*) AS n FROM (
        SELECT created_at FROM import_batches b
        WHERE b.tenant_id = t.tenant_id AND b.published_at IS NULL AND b.state = 'pending'
        ORDER BY created_at LIMIT $1) x
) w
WHERE t.tenant_id IS NOT NULL
ORDER BY w.oldest, t.tenant_id";

/// What one relay pass did.
#[derive(Debug, Default)]
struct Pass {
    published: usize,
    /// Batches are waiting that this pass did not publish (no free slot, or another relay's
    /// pass was running).
    held_back: bool,
}

/// What the relay needs.
pub struct Relay {
    pub pool: PgPool,
    pub amqp_url: String,
    pub topology: Topology,
    pub poll: Duration,
    pub health: BrokerHealth,
    pub wake: Arc<Notify>,
    /// A batch published this long ago and still pending, with the queue empty, is lost.
    pub republish_after: Duration,
    /// Batches in flight over all tenants (at least twice the queue's consumers).
    pub max_in_flight: i64,
    /// Batches in flight of one tenant while others wait.
    pub tenant_in_flight: i64,
}

/// Most events one relay pass publishes.
const EVENTS_PER_PASS: i64 = 1000;

/// How often the relay looks for lost batches.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen(OUTBOX_CHANNEL).await.ok()?;
    Some(listener)
}

impl Relay {
    /// Runs until `shutdown` turns true, reconnecting with back-off after any broker failure.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        supervise("outbox relay", shutdown, |mut shutdown| {
            let this = &self;
            async move {
                let result = this.session(&mut shutdown).await;
                this.health.clear();
                result
            }
        })
        .await;
        self.health.clear();
    }

    async fn session(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), BrokerError> {
        let connection = connect(&self.amqp_url, "contact-import relay").await?;
        let channel = timed("open channel", connection.create_channel()).await?;
        self.topology.declare(&channel).await?;
        timed(
            "enable confirms",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        self.health.watch(&connection);
        tracing::info!("outbox relay connected");
        let mut listener = listen(&self.pool).await;
        let mut last_sweep = Instant::now();
        let mut consumers = 0;
        loop {
            if *shutdown.borrow() {
                let _ = connection.close(200, "shutdown".into()).await;
                return Ok(());
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = Instant::now();
                consumers = self.sweep_lost(&channel).await?;
            }
            let max_in_flight = self.max_in_flight.max(2 * i64::from(consumers));
            let pass = match self.publish_fair(&channel, max_in_flight).await {
                Ok(mut pass) => match self.publish_events(&channel).await {
                    Ok(more) => {
                        pass.held_back |= more;
                        pass
                    }
                    Err(BrokerError::Database(e)) => {
                        tracing::warn!(error = %e, "outbox relay cannot reach the database for events; retrying");
                        pass
                    }
                    Err(e) => return Err(e),
                },
                // The database is away: keep the broker connection, try again shortly.
                Err(BrokerError::Database(e)) => {
                    tracing::warn!(error = %e, "outbox relay cannot reach the database; retrying");
                    listener = None;
                    Pass::default()
                }
                Err(e) => return Err(e),
            };
            if listener.is_none() {
                listener = listen(&self.pool).await;
            }
            tracing::trace!(
                published = pass.published,
                held_back = pass.held_back,
                "relay pass"
            );
            let wait = if pass.held_back {
                HELD_BACK_POLL
            } else {
                self.poll
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
                notified = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                } => {
                    if notified.is_err() {
                        listener = None;
                    }
                }
            }
        }
    }

    /// Finds batches whose message was lost (published long ago, still pending, not being
    /// worked on, and nothing waiting in the queue) and puts them back in the outbox. Returns
    /// the queue's consumer count.
    async fn sweep_lost(&self, channel: &Channel) -> Result<u32, BrokerError> {
        let queue = timed(
            "inspect queue",
            channel.queue_declare(
                self.topology.batches().as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await?;
        if queue.message_count() > 0 {
            return Ok(queue.consumer_count());
        }
        let result = sqlx::query(
            "UPDATE import_batches SET published_at = NULL
             WHERE (import_id, batch_no) IN (
                 SELECT import_id, batch_no FROM import_batches
                 WHERE state = 'pending' AND published_at < now() - make_interval(secs => $1)
                 LIMIT 1000 FOR UPDATE SKIP LOCKED)",
        )
        .bind(self.republish_after.as_secs_f64())
        .execute(&self.pool)
        .await;
        match result {
            Ok(r) if r.rows_affected() > 0 => {
                tracing::warn!(
                    batches = r.rows_affected(),
                    "batches published long ago were never applied; publishing them again"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox sweep could not reach the database"),
        }
        Ok(queue.consumer_count())
    }

    /// Publishes up to `EVENTS_PER_PASS` stored events to the events exchange with publisher
    /// confirms and marks them, in one transaction; true when more are waiting. Several relays
    /// share the work (`SKIP LOCKED`).
    async fn publish_events(&self, channel: &Channel) -> Result<bool, BrokerError> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<(Uuid, String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, routing_key, body FROM event_outbox WHERE published_at IS NULL
             ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(EVENTS_PER_PASS)
        .fetch_all(&mut *tx)
        .await?;
        if due.is_empty() {
            return Ok(false);
        }
        let exchange = self.topology.events();
        let mut confirms = Vec::with_capacity(due.len());
        for (id, key, body) in &due {
            let confirm = timed(
                "publish event",
                channel.basic_publish(
                    exchange.as_str().into(),
                    key.as_str().into(),
                    BasicPublishOptions::default(),
                    body,
                    BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_message_id(id.to_string().into())
                        .with_content_type("application/json".into()),
                ),
            )
            .await?;
            confirms.push(confirm);
        }
        let mut published = Vec::with_capacity(due.len());
        for ((id, _, _), confirm) in due.iter().zip(confirms) {
            match timed("event confirm", confirm).await? {
                Confirmation::Ack(_) => published.push(*id),
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    tracing::warn!(event_id = %id, "broker refused an event; it will be published again");
                }
            }
        }
        sqlx::query("UPDATE event_outbox SET published_at = now() WHERE id = ANY($1)")
            .bind(&published)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::debug!(published = published.len(), "outbox relay published events");
        Ok(due.len() as i64 == EVENTS_PER_PASS)
    }

    /// Publishes the batches that `fair::shares` grants now, in one transaction.
    async fn publish_fair(
        &self,
        channel: &Channel,
        max_in_flight: i64,
    ) -> Result<Pass, BrokerError> {
        let mut tx = self.pool.begin().await?;
        let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !ours {
            // Another relay is mid-pass; look again shortly.
            return Ok(Pass {
                published: 0,
                held_back: true,
            });
        }
        let waiting: Vec<(Uuid, i64)> = sqlx::query_as(WAITING)
            .bind(max_in_flight)
            .fetch_all(&mut *tx)
            .await?;
        if waiting.is_empty() {
            return Ok(Pass::default());
        }
        let in_flight: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT tenant_id, count(*) FROM import_batches
             WHERE state = 'pending' AND published_at IS NOT NULL GROUP BY tenant_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let total_in_flight = in_flight.iter().map(|(_, n)| n).sum();
        let waiting: Vec<Waiting> = waiting
            .into_iter()
            .map(|(tenant_id, unpublished)| Waiting {
                tenant_id,
                in_flight: in_flight
                    .iter()
                    .find(|(t, _)| *t == tenant_id)
                    .map_or(0, |(_, n)| *n),
                unpublished,
            })
            .collect();
        let shares = fair::shares(
            &waiting,
            total_in_flight,
            max_in_flight,
            self.tenant_in_flight,
        );
        let granted: i64 = shares.iter().map(|(_, n)| n).sum();
        let held_back = granted < waiting.iter().map(|w| w.unpublished).sum::<i64>();
        let mut per_tenant = Vec::with_capacity(shares.len());
        for (tenant_id, n) in &shares {
            let batches: Vec<BatchRef> = sqlx::query_as::<_, (Uuid, i32)>(
                "SELECT import_id, batch_no FROM import_batches
                 WHERE tenant_id = $1 AND published_at IS NULL AND state = 'pending'
                 ORDER BY created_at, import_id, batch_no
                 LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(tenant_id)
            .bind(n)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(import_id, batch_no)| BatchRef {
                import_id,
                batch_no,
                tenant_id: Some(*tenant_id),
            })
            .collect();
            per_tenant.push(batches);
        }
        // Round-robin in the queue too: one batch of each tenant in turn.
        let mut due = Vec::with_capacity(granted as usize);
        for round in 0.. {
            let before = due.len();
            due.extend(per_tenant.iter().filter_map(|b| b.get(round).copied()));
            if due.len() == before {
                break;
            }
        }
        if due.is_empty() {
            return Ok(Pass {
                published: 0,
                held_back,
            });
        }
        let queue = self.topology.batches();
        let mut confirms = Vec::with_capacity(due.len());
        for batch in &due {
            let body = serde_json::to_vec(batch).map_err(|e| BrokerError::Other(e.to_string()))?;
            let confirm = timed(
                "publish",
                channel.basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &body,
                    BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_content_type("application/json".into()),
                ),
            )
            .await?;
            confirms.push(confirm);
        }
        let (mut imports, mut batches) = (Vec::new(), Vec::new());
        for (batch, confirm) in due.iter().zip(confirms) {
            match timed("publisher confirm", confirm).await? {
                Confirmation::Ack(None) => {
                    imports.push(batch.import_id);
                    batches.push(batch.batch_no);
                }
                Confirmation::Ack(Some(returned)) => {
                    return Err(BrokerError::Other(format!(
                        "the broker returned a batch message unrouted ({}); re-declaring the topology",
                        returned.reply_text
                    )));
                }
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    tracing::warn!(import_id = %batch.import_id, batch_no = batch.batch_no, tenant_id = ?batch.tenant_id, "broker refused a batch message; it will be published again");
                }
            }
        }
        sqlx::query(
            "UPDATE import_batches b SET published_at = now(), publish_count = publish_count + 1
             FROM UNNEST($1::uuid[], $2::int[]) AS u(import_id, batch_no)
             WHERE b.import_id = u.import_id AND b.batch_no = u.batch_no",
        )
        .bind(&imports)
        .bind(&batches)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::debug!(published = imports.len(), "outbox relay published batches");
        Ok(Pass {
            published: imports.len(),
            held_back,
        })
    }
}
