//! The worker side: N consumers (one channel each, bounded prefetch) that run one batch at a
//! time and decide ack or nack from its `BatchOutcome` in one place. A consumer stream that
//! ends or errors means the channel or connection is gone: the whole session is rebuilt.
//!
//! With a prefetch of two or more, a consumer takes its next message while its current batch
//! is being applied, and reads and validates that batch meanwhile (`worker::prepare`), so the
//! CPU of validation overlaps the database's work on the batch before. The message is handled
//! like any other afterwards; until then it is unacked, and goes back to the queue if the
//! consumer stops.

use crate::broker::{BrokerError, DELIVERY_LIMIT, Topology, connect, supervise, timed};
use crate::worker::{self, BatchError, BatchOutcome, BatchRef, Prepared};
use futures_util::StreamExt;
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

/// What the workers need.
#[derive(Clone)]
pub struct Workers {
    pub pool: PgPool,
    pub amqp_url: String,
    pub topology: Topology,
    pub count: usize,
    pub prefetch: u16,
}

impl Workers {
    /// Consumes until `shutdown` turns true; in-flight batches finish first.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        supervise("workers", shutdown, |shutdown| {
            let this = self.clone();
            async move { this.session(&shutdown).await }
        })
        .await;
        tracing::info!("workers stopped");
    }

    async fn session(&self, shutdown: &watch::Receiver<bool>) -> Result<(), BrokerError> {
        let connection =
            std::sync::Arc::new(connect(&self.amqp_url, "contact-import worker").await?);
        let setup = timed("open channel", connection.create_channel()).await?;
        self.topology.declare(&setup).await?;
        let _ = setup.close(200, "declared".into()).await;
        let mut consumers = JoinSet::new();
        for n in 0..self.count.max(1) {
            let this = self.clone();
            let connection = connection.clone();
            let shutdown = shutdown.clone();
            consumers.spawn(async move { this.consume(&connection, n, shutdown).await });
        }
        tracing::info!(workers = self.count, "workers connected");
        // The first consumer to stop decides: a clean stop (shutdown) lets the others finish
        // their batch; a broken one tears the session down to rebuild it.
        let mut outcome = Ok(());
        while let Some(joined) = consumers.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    outcome = Err(e);
                    consumers.abort_all();
                }
                Err(e) if e.is_cancelled() => {}
                Err(e) => {
                    outcome = Err(BrokerError::Other(format!("consumer task failed: {e}")));
                    consumers.abort_all();
                }
            }
        }
        let _ = connection.close(200, "bye".into()).await;
        outcome
    }

    async fn consume(
        &self,
        connection: &Connection,
        n: usize,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), BrokerError> {
        let channel = timed("open channel", connection.create_channel()).await?;
        timed(
            "set prefetch",
            channel.basic_qos(self.prefetch.max(1), BasicQosOptions::default()),
        )
        .await?;
        let mut consumer = timed(
            "consume",
            channel.basic_consume(
                self.topology.batches().as_str().into(),
                format!("worker-{}-{n}", std::process::id()).as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        let look_ahead = self.prefetch >= 2;
        let mut ahead: Option<Ahead> = None;
        loop {
            let (delivery, prepared) = match ahead.take() {
                Some(next) => {
                    let prepared = match next.prepared {
                        Some(reading) => reading.await.ok().flatten(),
                        None => None,
                    };
                    (next.delivery, prepared)
                }
                None => {
                    let next = tokio::select! {
                        next = consumer.next() => next,
                        _ = shutdown.changed() => {
                            let _ = channel.close(200, "shutdown".into()).await;
                            return Ok(());
                        }
                    };
                    (delivered(next)?, None)
                }
            };
            // The batch is handled to its ack whatever the next message brings: a broken
            // stream is reported once it is done.
            let mut broken = None;
            let handling = self.handle(delivery, prepared);
            tokio::pin!(handling);
            loop {
                tokio::select! {
                    handled = &mut handling => {
                        handled?;
                        break;
                    }
                    next = consumer.next(), if look_ahead && ahead.is_none() && broken.is_none() => {
                        match delivered(next) {
                            Ok(delivery) => ahead = Some(self.read_ahead(delivery)),
                            Err(e) => broken = Some(e),
                        }
                    }
                }
            }
            if let Some(e) = broken {
                return Err(e);
            }
            if *shutdown.borrow() {
                let _ = channel.close(200, "shutdown".into()).await;
                return Ok(());
            }
        }
    }

    /// Starts reading and validating a message's batch ahead, when the message names one.
    fn read_ahead(&self, delivery: Delivery) -> Ahead {
        let prepared = serde_json::from_slice::<BatchRef>(&delivery.data)
            .ok()
            .map(|batch| tokio::spawn(worker::prepare(self.pool.clone(), batch)));
        Ahead { delivery, prepared }
    }

    async fn handle(
        &self,
        delivery: Delivery,
        prepared: Option<Prepared>,
    ) -> Result<(), BrokerError> {
        let batch: BatchRef = match serde_json::from_slice(&delivery.data) {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e, "unreadable batch message; dead-lettering it");
                timed(
                    "reject",
                    delivery.nack(BasicNackOptions {
                        requeue: false,
                        ..BasicNackOptions::default()
                    }),
                )
                .await?;
                return Ok(());
            }
        };
        // Every line logged while handling the message names the batch and its tenant.
        let span = tracing::info_span!(
            "message",
            import_id = %batch.import_id,
            batch_no = batch.batch_no,
            tenant_id = batch.tenant_id.map(tracing::field::display),
        );
        self.handle_batch(delivery, batch, prepared)
            .instrument(span)
            .await
    }

    async fn handle_batch(
        &self,
        delivery: Delivery,
        batch: BatchRef,
        prepared: Option<Prepared>,
    ) -> Result<(), BrokerError> {
        let deliveries = delivery_count(&delivery) + 1;
        let outcome = worker::run_prepared(&self.pool, batch, prepared).await;
        let done = match outcome {
            Ok(BatchOutcome::Applied(_)) | Ok(BatchOutcome::AlreadyDone) => true,
            Ok(BatchOutcome::Unknown) => {
                tracing::warn!("message for a batch that does not exist; dropped");
                true
            }
            Err(e @ BatchError::Transient(_)) if deliveries < i64::from(DELIVERY_LIMIT) => {
                tracing::warn!(deliveries, error = %e, "batch failed for now; returning it to the queue");
                false
            }
            Err(e) => {
                let reason = format!("{e} (delivery {deliveries} of at most {DELIVERY_LIMIT})");
                // Recorded in the database, then acked. If even that fails the message goes
                // back, and past the delivery limit the broker dead-letters it to the DLQ,
                // whose consumer records it.
                match worker::mark_dead(&self.pool, batch, &reason).await {
                    Ok(_) => true,
                    Err(db) => {
                        tracing::error!(error = %db, "could not record a dead batch; returning it to the queue");
                        false
                    }
                }
            }
        };
        let acked = if done {
            timed("ack", delivery.ack(BasicAckOptions::default())).await?
        } else {
            timed(
                "nack",
                delivery.nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                }),
            )
            .await?
        };
        if !acked {
            // The channel is gone: the broker redelivers, and the done-marker makes that harmless.
            return Err(BrokerError::Other(
                "the channel closed before the ack".into(),
            ));
        }
        Ok(())
    }
}

/// The next message of a consumer, taken while its current batch is applied, and its batch
/// being read and validated (none when the message names no batch).
struct Ahead {
    delivery: Delivery,
    prepared: Option<JoinHandle<Option<Prepared>>>,
}

/// A message from the consumer stream; its end or error means the channel is gone.
fn delivered(next: Option<Result<Delivery, lapin::Error>>) -> Result<Delivery, BrokerError> {
    match next {
        Some(Ok(delivery)) => Ok(delivery),
        Some(Err(e)) => Err(e.into()),
        None => Err(BrokerError::Other("the consumer stream ended".into())),
    }
}

/// Earlier deliveries of this message, as the quorum queue counts them (`x-delivery-count`).
pub fn delivery_count(delivery: &Delivery) -> i64 {
    use lapin::types::AMQPValue;
    let Some(headers) = delivery.properties.headers() else {
        return 0;
    };
    match headers.inner().get("x-delivery-count") {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortUInt(n)) => i64::from(*n),
        _ => 0,
    }
}
