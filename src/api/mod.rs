//! The HTTP API (`docs/api.md`): routes, the shared state, and the extractors that turn
//! bad paths and queries into problem+json answers.

pub mod admin;
pub mod auth;
mod budget;
pub mod contacts;
mod drain;
pub mod error;
pub mod export;
pub mod fields;
pub mod groups;
pub mod health;
pub mod imports;
pub mod metrics;
pub mod openapi;
pub mod results;
pub mod schema;
pub mod single;
mod slots;
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
    /// Connections for statements that are one probe of a key (`store::connect_by_key`): a
    /// status poll, the rate limit's draw, storing a JSON import.
    pub by_key: PgPool,
    pub settings: Arc<Settings>,
    /// Whether this process's relay holds a live broker connection.
    pub broker: BrokerHealth,
    /// Wakes this process's relay when intake stored new batches.
    pub relay_wake: Arc<Notify>,
    /// `/openapi.json`, serialised once.
    pub openapi: Arc<axum::body::Bytes>,
    /// The files this process is receiving.
    pub uploads: Arc<slots::UploadSlots>,
    /// What is left of the budget for request bodies held in memory (`budget`).
    pub bodies: Arc<tokio::sync::Semaphore>,
    /// The tenants of the API keys seen lately (`auth`).
    pub known_keys: Arc<auth::KnownKeys>,
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
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(metrics::queues))
        .routes(routes!(admin::overview))
        .routes(routes!(admin::page))
        .routes(routes!(contacts::intake, contacts::list))
        .routes(routes!(
            contacts::get_one,
            contacts::delete_one,
            single::patch
        ))
        .routes(routes!(contacts::restore))
        .routes(routes!(export::export))
        .routes(routes!(single::upsert))
        .routes(routes!(fields::create, fields::list))
        .routes(routes!(groups::list))
        .routes((schemas, paths, imports))
        .routes(routes!(imports::status))
        .routes(routes!(imports::rows))
        .routes(routes!(imports::cancel))
        .routes(routes!(imports::commit))
        .routes(routes!(results::results_csv))
        .routes(routes!(results::errors_csv))
}

/// The budget for request bodies in memory that `settings` allow this process.
pub fn body_budget(settings: &Settings) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(budget::permits(
        settings.max_bodies_bytes,
    )))
}

/// The places for files in flight that `settings` allow this process.
pub fn upload_slots(settings: &Settings) -> Arc<slots::UploadSlots> {
    slots::UploadSlots::new(settings.max_concurrent_uploads, settings.max_tenant_uploads)
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
        .layer(axum::middleware::from_fn(answer_panics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            budget::hold_body_budget,
        ))
        .layer(axum::middleware::from_fn(drain::drain_unread_body))
        .with_state(state)
}

/// A handler that panics (a bug) answers a logged 500 problem instead of dropping the
/// connection without an answer; the process goes on serving.
async fn answer_panics(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use futures_util::FutureExt;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(%method, %path, panic = %message, "a request handler panicked");
            ApiError::internal().into_response()
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_500_problem_and_the_server_goes_on() {
        let app = Router::new()
            .route("/boom", axum::routing::get(boom))
            .route("/fine", axum::routing::get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(answer_panics));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let response = reqwest::get(format!("http://{addr}/boom"))
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(response.status(), 500);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let fine = reqwest::get(format!("http://{addr}/fine"))
            .await
            .expect("up");
        assert_eq!(fine.status(), 200);
    }
}
