//! One error type for the HTTP boundary, answered as RFC 9457 `application/problem+json`
//! with `errors[]` items that point (JSON pointer) at what was wrong.

pub use crate::intake::FieldError;
use crate::intake::IntakeError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub slug: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<u64>,
}

/// An RFC 9457 problem: the body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(format = "uri")]
    pub kind: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, as a sentence.
    pub detail: String,
    /// Each thing wrong with the request and where; absent when there is nothing to point at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            slug,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 400: the body or query could not be read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed-request", detail)
    }

    /// 401: no or unknown API key.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 404: nothing of this tenant here.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 410: it existed, and was deleted under the retention period.
    pub fn gone(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "gone", detail)
    }

    /// 409: the thing exists already.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 413: the body is larger than the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 413 with its own explanation.
    pub fn too_large_because(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", detail)
    }

    /// 422: readable, but not acceptable; `errors` says what and where.
    pub fn unprocessable(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request", detail)
        }
    }

    /// 422 for a `callbackUrl` that cannot be called back.
    pub fn bad_callback(message: String) -> Self {
        Self::unprocessable(
            "callbackUrl cannot be used; nothing was stored",
            vec![FieldError::new("/callbackUrl", "invalid_value", message)],
        )
    }

    /// 429: the tenant's request rate is used up; a token is back in `retry_after` seconds.
    pub fn rate_limited(retry_after: f64, rate: f64, burst: u32) -> Self {
        Self {
            retry_after: Some(retry_after.ceil().max(1.0) as u64),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!(
                    "this API key's tenant is over its rate of {rate} requests a second (bursts of {burst}) for POST and DELETE; nothing was done, retry after the Retry-After seconds"
                ),
            )
        }
    }

    /// 429: the tenant has too much stored and not yet applied; try once some of it is done.
    pub fn backlog_full(detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(30),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "backlog-full", detail)
        }
    }

    /// The body could not be read: 413 past `limit` bytes, else 400.
    pub fn body(rejection: &axum::extract::rejection::BytesRejection, limit: usize) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::too_large(limit)
        } else {
            Self::bad_request(format!(
                "the body could not be read: {}",
                rejection.body_text()
            ))
        }
    }

    /// 429 (the tenant's own files) or 503 (the process's): too many uploads at once.
    pub fn too_many_uploads(detail: impl Into<String>, tenant: bool) -> Self {
        let (status, slug) = if tenant {
            (StatusCode::TOO_MANY_REQUESTS, "too-many-uploads")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "too-many-uploads")
        };
        Self {
            retry_after: Some(5),
            ..Self::new(status, slug, detail)
        }
    }

    /// 503: a dependency is down; try again later.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
        }
    }

    /// 500: our fault; the cause is logged, not shown.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an unexpected error occurred; it has been logged",
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::store::is_transient(&e) {
            tracing::warn!(error = %e, "database unavailable");
            Self::unavailable("the database is unavailable; nothing was stored, try again")
        } else {
            tracing::error!(error = %e, "database error");
            Self::internal()
        }
    }
}

impl From<IntakeError> for ApiError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Malformed(detail) => Self::bad_request(detail),
            IntakeError::Invalid { detail, errors } => Self::unprocessable(detail, errors),
            IntakeError::TooLarge(detail) => Self::too_large_because(detail),
            IntakeError::UnsupportedEncoding(detail) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-encoding",
                detail,
            ),
            IntakeError::BacklogFull(detail) => Self::backlog_full(detail),
            IntakeError::KeyInUse(detail) => Self::unavailable(detail),
            IntakeError::NotFound(detail) => Self::not_found(detail),
            IntakeError::Conflict(detail) => Self::conflict(detail),
            IntakeError::Gone(detail) => Self::gone(detail),
            IntakeError::Database(e) => Self::from(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = Problem {
            kind: format!("https://contact-import.dev/problems/{}", self.slug),
            title: title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            errors: self.errors,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
