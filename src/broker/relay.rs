//! The outbox relay: publishes a small reference for every stored batch not yet confirmed by
//! the broker, with publisher confirms, and marks it published in the same database
//! transaction that selected it. A crash between publish and mark re-publishes the batch
//! later; the worker's done-marker makes that duplicate harmless.

use super::{BrokerError, Topology, connect, reconnect_backoff, timed};
use crate::intake::OUTBOX_CHANNEL;
use crate::worker::BatchRef;
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
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
    pub broker_up: Arc<AtomicBool>,
    pub wake: Arc<Notify>,
}

impl Relay {
    /// Runs until `shutdown` turns true, reconnecting with back-off after any failure.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = reconnect_backoff();
        while !*shutdown.borrow() {
            match self.session(&mut shutdown).await {
                Ok(()) => break,
                Err(e) => {
                    self.broker_up.store(false, Ordering::Relaxed);
                    let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "outbox relay lost its connection; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        self.broker_up.store(false, Ordering::Relaxed);
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
        self.broker_up.store(true, Ordering::Relaxed);
        tracing::info!("outbox relay connected");
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen(OUTBOX_CHANNEL).await {
                Ok(()) => Some(l),
                Err(_) => None,
            },
            Err(_) => None,
        };
        loop {
            if *shutdown.borrow() {
                let _ = connection.close(200, "shutdown".into()).await;
                return Ok(());
            }
            let published = self.publish_page(&channel).await?;
            if published as i64 == PAGE {
                continue;
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
