//! What operators watch: `GET /metrics` (OpenMetrics text for Prometheus) and
//! `GET /api/v1/ops/queues`.
//!
//! Queue depths are read from the broker at each scrape, not guessed. Imports, rows and the
//! outbox are read from PostgreSQL, so they are the same whichever `serve` process is scraped
//! and equal to the imports' own counters. The batch duration histogram is this process's own:
//! it counts the batches its workers applied (`run`).

use super::AppState;
use super::error::ApiError;
use crate::broker::{self, QueueStats, Topology};
use crate::store::tenants::Tenant;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::sync::atomic::Ordering;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

/// Every import status, so that each series exists (at 0) from the start.
const STATUSES: [&str; 6] = [
    "queued",
    "processing",
    "completed",
    "completedWithErrors",
    "failed",
    "cancelled",
];

/// `GET /metrics`. The broker's series are left out while it cannot be reached.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let topology = Topology::new(&state.settings.queue_prefix);
    let queues = match broker::queue_stats(&state.settings.amqp_url, &topology).await {
        Ok(queues) => queues,
        Err(e) => {
            tracing::warn!(error = %e, "metrics without queue depths: the broker did not answer");
            Vec::new()
        }
    };
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM imports GROUP BY status")
            .fetch_all(&state.pool)
            .await?;
    let (created, updated, skipped, failed): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(created), 0)::int8, coalesce(sum(updated), 0)::int8,
                coalesce(sum(skipped), 0)::int8, coalesce(sum(failed), 0)::int8
         FROM imports",
    )
    .fetch_one(&state.pool)
    .await?;
    let outbox_pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM import_batches
         WHERE (state = 'pending' AND published_at IS NULL) OR state = 'held'",
    )
    .fetch_one(&state.pool)
    .await?;

    let mut registry = Registry::default();
    let messages = Family::<QueueLabel, Gauge>::default();
    let consumers = Family::<QueueLabel, Gauge>::default();
    for q in &queues {
        let label = QueueLabel {
            queue: q.name.clone(),
        };
        messages.get_or_create(&label).set(i64::from(q.messages));
        consumers.get_or_create(&label).set(i64::from(q.consumers));
    }
    registry.register(
        "contact_import_queue_messages",
        "Messages ready in the queue, as the broker reports them",
        messages,
    );
    registry.register(
        "contact_import_queue_consumers",
        "Consumers of the queue, as the broker reports them",
        consumers,
    );
    let rows = Family::<OutcomeLabel, Counter>::default();
    for (outcome, n) in [
        ("created", created),
        ("updated", updated),
        ("skipped", skipped),
        ("failed", failed),
    ] {
        let label = OutcomeLabel {
            outcome: outcome.into(),
        };
        rows.get_or_create(&label)
            .inner()
            .store(n.max(0) as u64, Ordering::Relaxed);
    }
    registry.register(
        "contact_import_rows",
        "Rows processed, by outcome, over every import stored",
        rows,
    );
    registry.register(
        "contact_import_batch_duration_seconds",
        "Time to apply one batch, from its message to its commit (batches applied by this process)",
        crate::telemetry::batch_duration().clone(),
    );
    let pending = Gauge::<i64>::default();
    pending.set(outbox_pending);
    registry.register(
        "contact_import_outbox_pending",
        "Batches stored but not yet confirmed by the broker (waiting in the outbox, or held while their CSV file uploads)",
        pending,
    );
    let imports = Family::<StatusLabel, Gauge>::default();
    for status in STATUSES {
        let n = by_status
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        imports
            .get_or_create(&StatusLabel {
                status: status.into(),
            })
            .set(n);
    }
    registry.register(
        "contact_import_imports",
        "Imports by status, over every tenant",
        imports,
    );

    openmetrics(&registry)
}

/// What a `work` process serves on `METRICS_LISTEN`: its own batch durations, and liveness.
pub fn worker_router() -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(worker_metrics))
        .route("/healthz", axum::routing::get(super::health::healthz))
}

async fn worker_metrics() -> Result<Response, ApiError> {
    let mut registry = Registry::default();
    registry.register(
        "contact_import_batch_duration_seconds",
        "Time to apply one batch, from its message to its commit (batches applied by this process)",
        crate::telemetry::batch_duration().clone(),
    );
    openmetrics(&registry)
}

fn openmetrics(registry: &Registry) -> Result<Response, ApiError> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, registry)
        .map_err(|_| ApiError::internal())?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// The body of `GET /api/v1/ops/queues`.
#[derive(Debug, Serialize)]
pub struct Queues {
    pub queues: Vec<QueueStats>,
}

/// `GET /api/v1/ops/queues`: the batch queue and the dead-letter queue, from the broker; 503
/// while it cannot be reached.
pub async fn queues(
    State(state): State<AppState>,
    _tenant: Tenant,
) -> Result<Json<Queues>, ApiError> {
    let topology = Topology::new(&state.settings.queue_prefix);
    let queues = broker::queue_stats(&state.settings.amqp_url, &topology)
        .await
        .map_err(|e| ApiError::unavailable(format!("the broker cannot be reached: {e}")))?;
    Ok(Json(Queues { queues }))
}
