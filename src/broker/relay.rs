//! The outbox relay: publishes a small reference for every stored batch not yet confirmed by
//! the broker, with publisher confirms, and marks it published in the same database
//! transaction that selected it. A crash between publish and mark re-publishes the batch
//! later; the worker's done-marker makes that duplicate harmless.

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

/// Batches published per database transaction.
const PAGE: i64 = 500;

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
}

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
        loop {
            if *shutdown.borrow() {
                let _ = connection.close(200, "shutdown".into()).await;
                return Ok(());
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = Instant::now();
                self.sweep_lost(&channel).await?;
            }
            let published = match self.publish_page(&channel).await {
                Ok(n) => n,
                // The database is away: keep the broker connection, try again shortly.
                Err(BrokerError::Database(e)) => {
                    tracing::warn!(error = %e, "outbox relay cannot reach the database; retrying");
                    listener = None;
                    0
                }
                Err(e) => return Err(e),
            };
            if published as i64 == PAGE {
                continue;
            }
            if listener.is_none() {
                listener = listen(&self.pool).await;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
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
    /// worked on, and nothing waiting in the queue) and puts them back in the outbox.
    async fn sweep_lost(&self, channel: &Channel) -> Result<(), BrokerError> {
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
            return Ok(());
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
        Ok(())
    }

    /// Publishes one page of unpublished batches; returns how many were confirmed.
    async fn publish_page(&self, channel: &Channel) -> Result<usize, BrokerError> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<(Uuid, i32)> = sqlx::query_as(
            "SELECT import_id, batch_no FROM import_batches
             WHERE published_at IS NULL AND state = 'pending'
             ORDER BY created_at, import_id, batch_no
             LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let queue = self.topology.batches();
        let mut confirms = Vec::with_capacity(due.len());
        for (import_id, batch_no) in &due {
            let body = serde_json::to_vec(&BatchRef {
                import_id: *import_id,
                batch_no: *batch_no,
            })
            .map_err(|e| BrokerError::Other(e.to_string()))?;
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
        for ((import_id, batch_no), confirm) in due.iter().zip(confirms) {
            match timed("publisher confirm", confirm).await? {
                Confirmation::Ack(None) => {
                    imports.push(*import_id);
                    batches.push(*batch_no);
                }
                Confirmation::Ack(Some(returned)) => {
                    return Err(BrokerError::Other(format!(
                        "the broker returned a batch message unrouted ({}); re-declaring the topology",
                        returned.reply_text
                    )));
                }
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    tracing::warn!(import_id = %import_id, batch_no, "broker refused a batch message; it will be published again");
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
        Ok(imports.len())
    }
}
