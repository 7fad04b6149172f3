//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the database and
//! the broker are reachable from here).

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use std::time::Duration;

/// `GET /healthz`.
#[utoipa::path(
    get, path = "/healthz", operation_id = "healthz", tag = "operations", summary = "Liveness: the process answers",
    responses((status = 200, description = "Up", body = crate::api::schema::Health))
)]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when both dependencies answer, 503 naming the one that does not.
#[utoipa::path(
    get, path = "/readyz", operation_id = "readyz", tag = "operations", summary = "Readiness: the database and the broker are reachable",
    responses(
        (status = 200, description = "Ready", body = crate::api::schema::Readiness),
        (status = 503, description = "Not ready; says which dependency is down", body = crate::api::schema::Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let database =
        tokio::time::timeout(Duration::from_secs(2), crate::store::ops::ping(&state.pool))
            .await
            .is_ok_and(|r| r.is_ok());
    let broker = state.broker.is_up();
    let status = if database && broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if status == StatusCode::OK { "ready" } else { "not ready" },
            "database": if database { "up" } else { "down" },
            "broker": if broker { "up" } else { "down" },
        })),
    )
}
