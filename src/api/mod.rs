//! The HTTP API (`../shared/API.md`): routes, the shared state, and the extractors that turn
//! bad paths and queries into problem+json answers.

pub mod auth;
pub mod contacts;
pub mod error;
pub mod fields;
pub mod health;
pub mod imports;
pub mod ops;
pub mod results;
pub mod uploads;

use crate::broker::BrokerHealth;
use crate::settings::Settings;
use axum::Router;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::routing::{get, post};
use error::ApiError;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    /// Whether this process's relay holds a live broker connection.
    pub broker: BrokerHealth,
    /// Wakes this process's relay when intake stored new batches.
    pub relay_wake: Arc<Notify>,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.max_body_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/ops/queues", get(ops::queues))
        .route("/api/v1/ops/overview", get(ops::overview))
        .route("/ops", get(ops::page))
        .route(
            "/api/v1/contacts",
            post(contacts::intake).get(contacts::list),
        )
        .route(
            "/api/v1/contacts/{id}",
            get(contacts::get_one).delete(contacts::delete_one),
        )
        .route("/api/v1/contacts/{id}/restore", post(contacts::restore))
        .route("/api/v1/fields", post(fields::create).get(fields::list))
        .route(
            "/api/v1/imports",
            get(imports::list)
                .post(uploads::create)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/api/v1/imports/{id}", get(imports::status))
        .route("/api/v1/imports/{id}/rows", get(imports::rows))
        .route("/api/v1/imports/{id}/cancel", post(imports::cancel))
        .route(
            "/api/v1/imports/{id}/results.csv",
            get(results::results_csv),
        )
        .route("/api/v1/imports/{id}/errors.csv", get(results::errors_csv))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// `Query<T>` whose rejection is a 400 problem naming the bad parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))
    }
}

/// A path id that is not a UUID names nothing: 404, as for an id that does not exist.
pub fn parse_id(raw: &str, what: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::not_found(format!("no {what} {raw:?}")))
}
