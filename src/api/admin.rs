//! The operators' side of the API, behind `ADMIN_TOKEN`: the `Admin` extractor, the
//! operations page `/ops` (one HTML file polling the overview), and
//! `GET /api/v1/ops/overview`, which reads across tenants.

use super::AppState;
use super::error::{ApiError, Problem};
use crate::broker::{self, QueueStats, Topology};
use crate::store;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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
        (status = 404, description = "Off: no ADMIN_TOKEN is configured", body = Problem, content_type = "application/problem+json"),
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

/// The body of `GET /api/v1/ops/overview`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// From the broker; empty while it cannot be reached.
    pub queues: Vec<QueueStats>,
    pub broker_up: bool,
    /// What the database says: counters, running and recent imports.
    #[serde(flatten)]
    pub imports: store::ops::Overview,
}

/// `GET /api/v1/ops/overview` (admin): everything the operations page shows, across tenants.
#[utoipa::path(
    get, path = "/api/v1/ops/overview", operation_id = "opsOverview", tag = "operations", summary = "Everything the operations page shows, across tenants (admin)",
    responses(
        (status = 200, description = "Queues, throughput counters, running imports, recent failures", body = Overview),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn overview(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Overview>, ApiError> {
    let topology = Topology::new(&state.settings.queue_prefix);
    let queues = broker::queue_stats(&state.settings.amqp_url, &topology).await;
    let broker_up = queues.is_ok();
    Ok(Json(Overview {
        queues: queues.unwrap_or_default(),
        broker_up,
        imports: store::ops::overview(&state.pool).await?,
    }))
}
