//! What operators watch: `GET /metrics` (OpenMetrics text for Prometheus),
//! `GET /api/v1/ops/queues`, and the metrics router of a `work` process.
//!
//! Queue depths are read from the broker at each scrape, not guessed. Imports, rows and the
//! outbox are read from PostgreSQL, so they are the same whichever `serve` process is scraped
//! and equal to the imports' own counters. The batch duration histogram is this process's own:
//! it counts the batches its workers applied (`run`).

use super::AppState;
use super::error::{ApiError, Problem};
use crate::broker::{self, QueueStats, Topology};
use crate::store::tenants::Tenant;
use crate::store::{self, RowStatus};
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

/// `GET /metrics`. The broker's series are left out while it cannot be reached.
#[utoipa::path(
    get, path = "/metrics", operation_id = "metrics", tag = "operations", summary = "Prometheus metrics (OpenMetrics text)",
    responses(
        (status = 200, description = "contact_import_queue_messages, contact_import_queue_consumers, contact_import_rows_total, contact_import_batch_duration_seconds, contact_import_outbox_pending, contact_import_imports, ...", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 500, description = "The metrics could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let topology = Topology::new(&state.settings.queue_prefix);
    let queues = match broker::queue_stats(&state.settings.amqp_url, &topology).await {
        Ok(queues) => queues,
        Err(e) => {
            tracing::warn!(error = %e, "metrics without queue depths: the broker did not answer");
            Vec::new()
        }
    };
    let counts = store::ops::metric_counts(&state.pool).await?;

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
    for (outcome, n) in RowStatus::ALL.iter().zip(counts.rows) {
        let label = OutcomeLabel {
            outcome: outcome.as_str().into(),
        };
        rows.get_or_create(&label)
            .inner()
            .store(n.max(0) as u64, Ordering::Relaxed);
    }
    registry.register(
        "contact_import_rows",
        "Rows processed, by outcome, over every import stored (dry runs left out: they change nothing)",
        rows,
    );
    registry.register(
        "contact_import_batch_duration_seconds",
        "Time to apply one batch, from its message to its commit (batches applied by this process)",
        crate::telemetry::batch_duration().clone(),
    );
    let pending = Gauge::<i64>::default();
    pending.set(counts.outbox_pending);
    registry.register(
        "contact_import_outbox_pending",
        "Batches stored but not yet confirmed by the broker (waiting in the outbox, or held while their CSV file uploads)",
        pending,
    );
    let events = Gauge::<i64>::default();
    events.set(counts.events_pending);
    registry.register(
        "contact_import_events_pending",
        "New-contact events stored but not yet confirmed by the broker",
        events,
    );
    let callback_states = Family::<StatusLabel, Gauge>::default();
    for (state, n) in &counts.callbacks {
        callback_states
            .get_or_create(&StatusLabel {
                status: state.as_str().into(),
            })
            .set(*n);
    }
    registry.register(
        "contact_import_callbacks",
        "Completion callbacks by delivery state (pending: not yet delivered, retries included; failed: given up after 24 hours)",
        callback_states,
    );
    let imports = Family::<StatusLabel, Gauge>::default();
    for (status, n) in &counts.imports {
        imports
            .get_or_create(&StatusLabel {
                status: status.as_str().into(),
            })
            .set(*n);
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Queues {
    pub queues: Vec<QueueStats>,
}

/// `GET /api/v1/ops/queues`: the batch queue and the dead-letter queue, from the broker; 503
/// while it cannot be reached.
#[utoipa::path(
    get, path = "/api/v1/ops/queues", operation_id = "listQueues", tag = "operations", summary = "Queue depths and consumers, from the broker",
    responses((status = 200, description = "The batch queue and the dead-letter queue", body = Queues))
)]
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
