//! Request bodies held in memory, bounded in all. Every endpoint but the file upload reads
//! its whole body before it answers (a JSON intake body is up to `MAX_BODY_BYTES`), so many
//! large or slowly sent bodies at once could hold any amount of memory. Each such request
//! first takes its size (its `Content-Length`, or `MAX_BODY_BYTES` when it does not say or is
//! compressed) from
//! a budget of `MAX_BODIES_BYTES` for this process, and gives it back with its answer; when the
//! budget is spent the answer is a 503 with `Retry-After`, before the body is read. File
//! uploads are streamed and bounded by their own slots (`slots`).

use super::AppState;
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The budget is counted in KiB, so that a permit count holds any body size.
const UNIT: u64 = 1024;

/// The permits `max_bytes` of bodies make.
pub fn permits(max_bytes: u64) -> usize {
    usize::try_from(max_bytes.div_ceil(UNIT)).unwrap_or(usize::MAX >> 4)
}

/// The layer.
pub async fn hold_body_budget(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let streamed = request.method() == Method::POST && request.uri().path() == "/api/v1/imports";
    let bodiless = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if streamed || bodiless {
        return next.run(request).await;
    }
    let limit = state.settings.max_body_bytes as u64;
    // A compressed body may unpack to the limit, whatever its length.
    let compressed = request.headers().contains_key(header::CONTENT_ENCODING);
    let size = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .filter(|_| !compressed)
        .unwrap_or(limit)
        .min(limit);
    let wanted = u32::try_from(size.div_ceil(UNIT)).unwrap_or(u32::MAX);
    let Ok(_held) = state.bodies.clone().try_acquire_many_owned(wanted) else {
        return ApiError::unavailable(format!(
            "this process holds as many request bodies as it may ({} bytes, MAX_BODIES_BYTES); nothing was stored, try again shortly",
            state.settings.max_bodies_bytes
        ))
        .into_response();
    };
    next.run(request).await
}
