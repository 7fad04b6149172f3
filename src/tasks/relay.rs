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
use crate::broker::{BrokerError, BrokerHealth, Topology, connect, supervise, timed};
use crate::store::batches::OUTBOX_CHANNEL;
use crate::store::{self, events, outbox};
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// How soon the relay looks again while batches wait for a free slot: finished batches free
/// slots without telling the relay, so it polls, briefly, only while something waits.
const HELD_BACK_POLL: Duration = Duration::from_millis(20);

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
        match outbox::unpublish_lost(&self.pool, self.republish_after).await {
            Ok(lost) if lost > 0 => {
                tracing::warn!(
                    batches = lost,
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
        let mut tx = store::begin_by_key(&self.pool).await?;
        let due = events::claim_unpublished(&mut tx, EVENTS_PER_PASS).await?;
        if due.is_empty() {
            return Ok(false);
        }
        let exchange = self.topology.events();
        let mut confirms = Vec::with_capacity(due.len());
        for event in &due {
            let confirm = timed(
                "publish event",
                channel.basic_publish(
                    exchange.as_str().into(),
                    event.routing_key.as_str().into(),
                    BasicPublishOptions::default(),
                    &event.body,
                    BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_message_id(event.id.to_string().into())
                        .with_content_type("application/json".into()),
                ),
            )
            .await?;
            confirms.push(confirm);
        }
        let mut published = Vec::with_capacity(due.len());
        for (event, confirm) in due.iter().zip(confirms) {
            match timed("event confirm", confirm).await? {
                Confirmation::Ack(_) => published.push(event.id),
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    tracing::warn!(event_id = %event.id, "broker refused an event; it will be published again");
                }
            }
        }
        events::mark_published(&mut tx, &published).await?;
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
        let mut tx = store::begin_by_key(&self.pool).await?;
        if !outbox::try_lock_pass(&mut tx).await? {
            // Another relay is mid-pass; look again shortly.
            return Ok(Pass {
                published: 0,
                held_back: true,
            });
        }
        let waiting = outbox::waiting(&mut tx, max_in_flight).await?;
        if waiting.is_empty() {
            return Ok(Pass::default());
        }
        let in_flight = outbox::in_flight(&mut tx).await?;
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
            per_tenant.push(outbox::claim(&mut tx, *tenant_id, *n).await?);
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
        let mut published = Vec::with_capacity(due.len());
        let mut refused = 0;
        for (batch, confirm) in due.iter().zip(confirms) {
            match timed("publisher confirm", confirm).await? {
                Confirmation::Ack(None) => published.push(*batch),
                Confirmation::Ack(Some(returned)) => {
                    return Err(BrokerError::Other(format!(
                        "the broker returned a batch message unrouted ({}); re-declaring the topology",
                        returned.reply_text
                    )));
                }
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    refused += 1;
                    tracing::warn!(import_id = %batch.import_id, batch_no = batch.batch_no, tenant_id = ?batch.tenant_id, "broker refused a batch message; it will be published again");
                }
            }
        }
        // Every message of the pass refused: the channel may be stuck, not the queue. Seen with
        // RabbitMQ 3.10 after a quorum queue's leader was killed: a channel opened during the
        // election had every publish refused for minutes while the new leader took the
        // workers' acks. A new connection and channel (with back-off, perhaps to another node)
        // costs little when the queue itself is down.
        if published.is_empty() && refused > 0 {
            return Err(BrokerError::Other(format!(
                "the broker refused all {refused} batch messages of a pass; reconnecting"
            )));
        }
        outbox::mark_published(&mut tx, &published).await?;
        tx.commit().await?;
        tracing::debug!(
            published = published.len(),
            "outbox relay published batches"
        );
        Ok(Pass {
            published: published.len(),
            held_back,
        })
    }
}
