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
#[utoipa::path(
    get, path = "/metrics", operation_id = "metrics", tag = "operations", summary = "Prometheus metrics (OpenMetrics text)",
    responses(
        (status = 200, description = "contact_import_queue_messages, contact_import_queue_consumers, contact_import_rows_total, contact_import_batch_duration_seconds, contact_import_outbox_pending, contact_import_imports, ...", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 500, description = "The metrics could not be read", body = crate::api::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = crate::api::error::Problem, content_type = "application/problem+json"),
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
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM imports GROUP BY status")
            .fetch_all(&state.pool)
            .await?;
    let (created, updated, skipped, failed): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(created), 0)::int8, coalesce(sum(updated), 0)::int8,
                coalesce(sum(skipped), 0)::int8, coalesce(sum(failed), 0)::int8
         FROM imports WHERE NOT coalesce((options->>'dryRun')::boolean, false)",
    )
    .fetch_one(&state.pool)
    .await?;
    let outbox_pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM import_batches
         WHERE (state = 'pending' AND published_at IS NULL) OR state = 'held'",
    )
    .fetch_one(&state.pool)
    .await?;
    let (events_pending, callbacks): (i64, Vec<(String, i64)>) = (
        sqlx::query_scalar("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
            .fetch_one(&state.pool)
            .await?,
        sqlx::query_as("SELECT state, count(*) FROM import_callbacks GROUP BY state")
            .fetch_all(&state.pool)
            .await?,
    );

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
        "Rows processed, by outcome, over every import stored (dry runs left out: they change nothing)",
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
    let events = Gauge::<i64>::default();
    events.set(events_pending);
    registry.register(
        "contact_import_events_pending",
        "New-contact events stored but not yet confirmed by the broker",
        events,
    );
    let callback_states = Family::<StatusLabel, Gauge>::default();
    for state in ["pending", "delivered", "failed"] {
        let n = callbacks
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n);
        callback_states
            .get_or_create(&StatusLabel {
                status: state.into(),
            })
            .set(n);
    }
    registry.register(
        "contact_import_callbacks",
        "Completion callbacks by delivery state (pending: not yet delivered, retries included; failed: given up after 24 hours)",
        callback_states,
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

/// The holder of `ADMIN_TOKEN`. Without a configured token the operations endpoints do not
/// exist (404); a wrong or missing token is 401.
pub struct Admin;

impl axum::extract::FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use sha2::{Digest, Sha256};
        let Some(expected) = state
            .settings
            .admin_token
            .as_deref()
            .filter(|t| !t.is_empty())
        else {
            return Err(ApiError::not_found("no such endpoint"));
        };
        let sent = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .unwrap_or_default();
        // Compare digests: equal length, and no early exit on the token's own bytes.
        if Sha256::digest(sent.as_bytes()) == Sha256::digest(expected.as_bytes()) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized(
                "send the admin token as Authorization: Bearer <ADMIN_TOKEN>",
            ))
        }
    }
}

/// `GET /ops`: the operations page (HTML and script in one file, no build step). It holds no
/// data: it asks `/api/v1/ops/overview` with the token its login form keeps for the session.
#[utoipa::path(
    get, path = "/ops", operation_id = "opsPage", tag = "operations", summary = "The live operations page (HTML; log in with ADMIN_TOKEN)",
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
        (status = 404, description = "Off: no ADMIN_TOKEN is configured", body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn page(State(state): State<AppState>) -> Response {
    if state
        .settings
        .admin_token
        .as_deref()
        .is_none_or(str::is_empty)
    {
        return ApiError::not_found("no such endpoint").into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        include_str!("ops.html"),
    )
        .into_response()
}

/// An import that is queued or processing, for the operations page.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunningImport {
    pub id: uuid::Uuid,
    pub tenant: String,
    pub source: String,
    pub status: String,
    pub total_rows: i32,
    pub processed_rows: i32,
    pub failed: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// An import that ended failed or with failed rows.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FinishedImport {
    pub id: uuid::Uuid,
    pub tenant: String,
    pub status: String,
    pub total_rows: i32,
    pub failed: i32,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<time::OffsetDateTime>,
}

/// The body of `GET /api/v1/ops/overview`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// From the broker; empty while it cannot be reached.
    pub queues: Vec<QueueStats>,
    pub broker_up: bool,
    /// Rows processed over every import: the page derives rows/s from two readings.
    pub rows_processed: i64,
    pub outbox_pending: i64,
    pub dead_batches: i64,
    pub running: Vec<RunningImport>,
    /// The last 10 imports to finish, whatever their outcome.
    pub recently_finished: Vec<FinishedImport>,
    /// The last 10 that failed or have failed rows.
    pub recent_failures: Vec<FinishedImport>,
}

/// `GET /api/v1/ops/overview` (admin): everything the operations page shows, across tenants.
#[utoipa::path(
    get, path = "/api/v1/ops/overview", operation_id = "opsOverview", tag = "operations", summary = "Everything the operations page shows, across tenants (admin)",
    responses(
        (status = 200, description = "Queues, throughput counters, running imports, recent failures", body = Overview),
        (status = 503, description = "The database is unavailable", body = crate::api::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn overview(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Overview>, ApiError> {
    let topology = Topology::new(&state.settings.queue_prefix);
    let queues = broker::queue_stats(&state.settings.amqp_url, &topology).await;
    let broker_up = queues.is_ok();
    let (rows_processed, outbox_pending, dead_batches): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT coalesce(sum(processed_rows), 0)::int8 FROM imports),
                (SELECT count(*) FROM import_batches
                 WHERE (state = 'pending' AND published_at IS NULL) OR state = 'held'),
                (SELECT count(*) FROM import_batches WHERE state = 'dead')",
    )
    .fetch_one(&state.pool)
    .await?;
    let running: Vec<RunningImport> = sqlx::query_as(
        "SELECT i.id, t.name AS tenant, i.source, i.status, i.total_rows, i.processed_rows,
                i.failed, i.created_at
         FROM imports i JOIN tenants t ON t.id = i.tenant_id
         WHERE i.status IN ('queued', 'processing')
         ORDER BY i.created_at LIMIT 50",
    )
    .fetch_all(&state.pool)
    .await?;
    let finished = |statuses: &'static str| {
        sqlx::query_as::<_, FinishedImport>(sqlx::AssertSqlSafe(format!(
            "SELECT i.id, t.name AS tenant, i.status, i.total_rows, i.failed, i.error, i.finished_at
             FROM imports i JOIN tenants t ON t.id = i.tenant_id
             WHERE i.status IN ({statuses}) AND i.finished_at IS NOT NULL
             ORDER BY i.finished_at DESC LIMIT 10"
        )))
        .fetch_all(&state.pool)
    };
    let recently_finished =
        finished("'completed', 'completedWithErrors', 'failed', 'cancelled'").await?;
    let recent_failures = finished("'failed', 'completedWithErrors'").await?;
    Ok(Json(Overview {
        queues: queues.unwrap_or_default(),
        broker_up,
        rows_processed,
        outbox_pending,
        dead_batches,
        running,
        recently_finished,
        recent_failures,
    }))
}
