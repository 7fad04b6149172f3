//! The dead-letter consumer. A message lands in `{prefix}.batches.dlq` when the broker gave
//! up on it (its delivery limit was reached, e.g. because every worker holding it crashed).
//! This consumer records such a batch as dead in the database — its rows fail, its import
//! finishes — and acks. The database is the record of dead batches (`contact-import dlq`).

use crate::broker::{BrokerError, DELIVERY_LIMIT, Topology, connect, supervise, timed};
use crate::worker::{self, BatchRef};
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use sqlx::PgPool;
use tokio::sync::watch;

/// What the dead-letter consumer needs.
#[derive(Clone)]
pub struct DeadLetters {
    pub pool: PgPool,
    pub amqp_url: String,
    pub topology: Topology,
}

impl DeadLetters {
    /// Consumes the dead-letter queue until `shutdown` turns true.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        supervise("dead-letter consumer", shutdown, |shutdown| {
            let this = self.clone();
            async move { this.session(shutdown).await }
        })
        .await;
    }

    async fn session(&self, mut shutdown: watch::Receiver<bool>) -> Result<(), BrokerError> {
        let connection = connect(&self.amqp_url, "contact-import dead letters").await?;
        let channel = timed("open channel", connection.create_channel()).await?;
        self.topology.declare(&channel).await?;
        timed(
            "set prefetch",
            channel.basic_qos(16, BasicQosOptions::default()),
        )
        .await?;
        let mut consumer = timed(
            "consume",
            channel.basic_consume(
                self.topology.dead_letters().as_str().into(),
                format!("dead-letters-{}", std::process::id())
                    .as_str()
                    .into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        loop {
            let delivery = tokio::select! {
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => delivery,
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(BrokerError::Other("the dead-letter consumer stream ended".into())),
                },
                _ = shutdown.changed() => {
                    let _ = connection.close(200, "shutdown".into()).await;
                    return Ok(());
                }
            };
            let recorded = match serde_json::from_slice::<BatchRef>(&delivery.data) {
                Ok(batch) => {
                    let reason = format!(
                        "the broker dead-lettered it after {DELIVERY_LIMIT} deliveries without an acknowledgement"
                    );
                    worker::mark_dead(&self.pool, batch, &reason)
                        .await
                        .map(|_| ())
                }
                Err(e) => {
                    tracing::error!(error = %e, "unreadable message in the dead-letter queue; dropped");
                    Ok(())
                }
            };
            match recorded {
                Ok(()) => timed("ack", delivery.ack(BasicAckOptions::default())).await?,
                Err(e) => {
                    tracing::warn!(error = %e, "could not record a dead-lettered batch; it stays in the queue");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    timed(
                        "nack",
                        delivery.nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        }),
                    )
                    .await?
                }
            };
        }
    }
}
