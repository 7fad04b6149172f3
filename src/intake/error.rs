//! Why a request cannot be stored. The intake knows no HTTP: `api` answers each variant with
//! its status and problem+json, `errors` pointing at every problem.

use serde::Serialize;

/// One thing wrong with a request, and where.
#[derive(Debug, Serialize, Clone, PartialEq, utoipa::ToSchema)]
pub struct FieldError {
    /// Where: a JSON pointer into the body (`/contacts/3`), or the name of a query parameter.
    pub pointer: String,
    /// What, for programs: `invalid_value`, `too_many_contacts`, `unknown_field`, ...
    pub code: String,
    /// What, for people.
    pub message: String,
}

impl FieldError {
    /// An item of `errors`.
    pub fn new(pointer: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// A request the intake did not store.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The body cannot be read as what it says it is (not JSON, a broken upload).
    #[error("{0}")]
    Malformed(String),
    /// Readable, but not acceptable; nothing was stored.
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// Larger than a limit.
    #[error("{0}")]
    TooLarge(String),
    /// Encoded in a way the intake does not read (`Content-Encoding` other than gzip).
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// The tenant has too much stored and not yet applied.
    #[error("{0}")]
    BacklogFull(String),
    /// The first request with this idempotency key is still being stored.
    #[error("{0}")]
    KeyInUse(String),
    /// No such import of the tenant.
    #[error("{0}")]
    NotFound(String),
    /// The import is not in a state the request can act on.
    #[error("{0}")]
    Conflict(String),
    /// What the request needs was deleted under the retention period.
    #[error("{0}")]
    Gone(String),
    /// The database failed (transient ones are worth a retry).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl IntakeError {
    /// A 422-kind refusal with the problems it found.
    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self::Invalid {
            detail: detail.into(),
            errors,
        }
    }
}
