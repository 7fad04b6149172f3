//! RabbitMQ plumbing: the topology (a durable quorum queue of batch references with a
//! dead-letter queue, and the events exchange), connections and operations with timeouts, the
//! supervisor that rebuilds a session with back-off after any failure, this process's broker
//! health, and queue depths. Every process re-declares the topology on every (re)connect. The
//! loops that publish and consume are `tasks`.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long any single broker operation may take before it counts as failed.
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries of one message before the broker dead-letters it.
pub const DELIVERY_LIMIT: i32 = 10;

/// Errors talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("broker did not answer within {0:?} ({1})")]
    Timeout(Duration, &'static str),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Other(String),
}

/// Runs a broker operation with `OP_TIMEOUT`.
pub async fn timed<T, E>(
    what: &'static str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, BrokerError>
where
    BrokerError: From<E>,
{
    match tokio::time::timeout(OP_TIMEOUT, fut).await {
        Ok(result) => result.map_err(BrokerError::from),
        Err(_) => Err(BrokerError::Timeout(OP_TIMEOUT, what)),
    }
}

/// Whether this process's relay holds a live broker connection, read from lapin's own
/// connection state so that readiness turns false the moment the connection drops.
#[derive(Clone, Default)]
pub struct BrokerHealth(std::sync::Arc<std::sync::Mutex<Option<lapin::ConnectionStatus>>>);

impl BrokerHealth {
    /// Watches this connection from now on.
    pub fn watch(&self, connection: &Connection) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(connection.status().clone());
        }
    }

    /// Forgets the connection (it failed or closed).
    pub fn clear(&self) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = None;
        }
    }

    /// True while the watched connection is connected.
    pub fn is_up(&self) -> bool {
        self.0
            .lock()
            .ok()
            .and_then(|slot| slot.as_ref().map(lapin::ConnectionStatus::connected))
            .unwrap_or(false)
    }
}

/// Queue and exchange names under one prefix.
#[derive(Clone, Debug)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    /// Names under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The work queue of batch references.
    pub fn batches(&self) -> String {
        format!("{}.batches", self.prefix)
    }

    /// Where batches that failed `DELIVERY_LIMIT` times end up.
    pub fn dead_letters(&self) -> String {
        format!("{}.batches.dlq", self.prefix)
    }

    /// The dead-letter exchange.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.prefix)
    }

    /// The topic exchange of events (`eventKeyForNewContacts`): bind a queue to it.
    pub fn events(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// Deletes the queues and the exchange, messages and all (test and benchmark clean-up);
    /// what is already gone is skipped.
    pub async fn delete(&self, url: &str) {
        let Ok(connection) = connect(url, "contact-import clean-up").await else {
            return;
        };
        if let Ok(channel) = connection.create_channel().await {
            for queue in [self.batches(), self.dead_letters()] {
                let _ = channel
                    .queue_delete(queue.as_str().into(), Default::default())
                    .await;
            }
            for exchange in [self.dead_letter_exchange(), self.events()] {
                let _ = channel
                    .exchange_delete(exchange.as_str().into(), Default::default())
                    .await;
            }
        }
        let _ = connection.close(200, "bye".into()).await;
    }

    /// Declares everything; idempotent. The queue arguments never change between versions,
    /// because RabbitMQ refuses a re-declaration with other arguments.
    pub async fn declare(&self, channel: &Channel) -> Result<(), BrokerError> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let quorum = |extra: &[(&str, AMQPValue)]| {
            let mut args = FieldTable::default();
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString(LongString::from("quorum")),
            );
            for (k, v) in extra {
                args.insert((*k).into(), v.clone());
            }
            args
        };
        timed(
            "declare dead-letter exchange",
            channel.exchange_declare(
                self.dead_letter_exchange().as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await?;
        timed(
            "declare dead-letter queue",
            channel.queue_declare(self.dead_letters().as_str().into(), durable, quorum(&[])),
        )
        .await?;
        timed(
            "bind dead-letter queue",
            channel.queue_bind(
                self.dead_letters().as_str().into(),
                self.dead_letter_exchange().as_str().into(),
                self.batches().as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        let args = quorum(&[
            ("x-delivery-limit", AMQPValue::LongInt(DELIVERY_LIMIT)),
            (
                "x-dead-letter-exchange",
                AMQPValue::LongString(LongString::from(self.dead_letter_exchange().as_str())),
            ),
            (
                "x-dead-letter-routing-key",
                AMQPValue::LongString(LongString::from(self.batches().as_str())),
            ),
            (
                "x-dead-letter-strategy",
                AMQPValue::LongString(LongString::from("at-least-once")),
            ),
            (
                "x-overflow",
                AMQPValue::LongString(LongString::from("reject-publish")),
            ),
        ]);
        timed(
            "declare batch queue",
            channel.queue_declare(self.batches().as_str().into(), durable, args),
        )
        .await?;
        timed(
            "declare event exchange",
            channel.exchange_declare(
                self.events().as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await?;
        Ok(())
    }
}

/// The nodes of `urls`: one AMQP URL, or several nodes of a cluster, comma-separated.
pub fn nodes(urls: &str) -> Vec<&str> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// Where each connect starts in the list of nodes: one further each time, so that a session
/// that failed (its node may be gone) reconnects to another node first, and the processes'
/// connections spread over the cluster.
static NEXT_NODE: AtomicUsize = AtomicUsize::new(0);

/// Connects to a node of `urls` (one URL, or a cluster's nodes, comma-separated): the first
/// that answers, trying each in turn from a rotating start. Each try has `OP_TIMEOUT`.
pub async fn connect(urls: &str, name: &str) -> Result<Connection, BrokerError> {
    let nodes = nodes(urls);
    let first = NEXT_NODE.fetch_add(1, Ordering::Relaxed);
    let mut failure = BrokerError::Other("no AMQP URL is configured".into());
    for i in 0..nodes.len() {
        let url = nodes[(first + i) % nodes.len()];
        let properties =
            ConnectionProperties::default().with_connection_name(LongString::from(name));
        match timed("connect", Connection::connect(url, properties)).await {
            Ok(connection) => return Ok(connection),
            Err(e) => {
                if nodes.len() > 1 {
                    tracing::warn!(node = %crate::settings::redact_url(url), error = %e, "{name}: broker node did not answer; trying the next");
                }
                failure = e;
            }
        }
    }
    Err(failure)
}

/// One queue's depth and consumers, as the broker reports them.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct QueueStats {
    pub name: String,
    pub messages: u32,
    pub consumers: u32,
}

/// Reads the depth and consumer count of the batch queue and the dead-letter queue from the
/// broker (a passive declare each, on a short-lived connection). A queue not declared yet is
/// left out.
pub async fn queue_stats(url: &str, topology: &Topology) -> Result<Vec<QueueStats>, BrokerError> {
    let connection = connect(url, "contact-import queue stats").await?;
    let mut stats = Vec::new();
    for name in [topology.batches(), topology.dead_letters()] {
        // A passive declare of a missing queue closes its channel: one channel per queue.
        let channel = timed("open channel", connection.create_channel()).await?;
        let declared = timed(
            "inspect queue",
            channel.queue_declare(
                name.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            ),
        )
        .await;
        if let Ok(queue) = declared {
            stats.push(QueueStats {
                name,
                messages: queue.message_count(),
                consumers: queue.consumer_count(),
            });
            let _ = channel.close(200, "done".into()).await;
        }
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(stats)
}

/// Exponential back-off with jitter for reconnect loops, capped at 30 s, never giving up.
fn reconnect_backoff() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Runs `session` until it returns `Ok` (a clean stop) or `shutdown` turns true; after an
/// error, logs it and starts a new session after an exponential back-off with jitter. The
/// back-off starts over after a session that ran for a while.
pub async fn supervise<F, Fut>(
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
    mut session: F,
) where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = Result<(), BrokerError>>,
{
    let mut backoff = reconnect_backoff();
    while !*shutdown.borrow() {
        let started = Instant::now();
        match session(shutdown.clone()).await {
            Ok(()) => break,
            Err(e) => {
                if started.elapsed() > Duration::from_secs(10) {
                    backoff = reconnect_backoff();
                }
                let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "{what} lost its connection; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}
