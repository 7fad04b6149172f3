//! The HTTP API (`../shared/API.md`): routes, the shared state, and the extractors that turn
//! bad paths and queries into problem+json answers.

pub mod auth;
pub mod contacts;
pub mod error;
pub mod fields;
pub mod groups;
pub mod health;
pub mod imports;
pub mod openapi;
pub mod ops;
pub mod results;
pub mod schema;
pub mod uploads;

use crate::broker::BrokerHealth;
use crate::settings::Settings;
use axum::Router;
use axum::extract::{FromRequestParts, Query};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use error::ApiError;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    /// Whether this process's relay holds a live broker connection.
    pub broker: BrokerHealth,
    /// Wakes this process's relay when intake stored new batches.
    pub relay_wake: Arc<Notify>,
    /// `/openapi.json`, serialised once.
    pub openapi: Arc<axum::body::Bytes>,
}

/// Every documented route: each handler's `#[utoipa::path]` gives both its route and its
/// part of `/openapi.json`, so the two cannot drift apart.
fn routes() -> OpenApiRouter<AppState> {
    let (schemas, paths, imports) = routes!(imports::list, uploads::create);
    // A CSV file is streamed to the database; `intake::upload` enforces its own limit.
    let imports = imports.layer(axum::extract::DefaultBodyLimit::disable());
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(ops::queues))
        .routes(routes!(ops::overview))
        .routes(routes!(ops::page))
        .routes(routes!(contacts::intake, contacts::list))
        .routes(routes!(contacts::get_one, contacts::delete_one))
        .routes(routes!(contacts::restore))
        .routes(routes!(fields::create, fields::list))
        .routes(routes!(groups::list))
        .routes((schemas, paths, imports))
        .routes(routes!(imports::status))
        .routes(routes!(imports::rows))
        .routes(routes!(imports::cancel))
        .routes(routes!(results::results_csv))
        .routes(routes!(results::errors_csv))
}

/// The OpenAPI document of `router()`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::finish(routes().split_for_parts().1)
}

/// `GET /openapi.json`.
#[utoipa::path(
    get, path = "/openapi.json", operation_id = "openapi", tag = "operations", summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document of the API", body = Object))
)]
async fn openapi_json(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.as_ref().clone(),
    )
        .into_response()
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.max_body_bytes;
    let (router, _) = routes().split_for_parts();
    router
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
