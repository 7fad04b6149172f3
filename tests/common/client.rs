//! The one HTTP client of the tests: the base URL of one service and a connection pool, with a
//! 30 s bound on every request so that a test never hangs on an answer. Each suite adds the
//! requests it makes: `tests/api/requests.rs` one request, one answer (a 5xx or a dropped
//! connection fails the test); `tests/faults/careful.rs` a careful user's retries with the same
//! `Idempotency-Key` while a fault lasts.

use std::time::Duration;

/// Statuses after which an import changes no more.
pub const FINAL: [&str; 4] = ["completed", "completedWithErrors", "failed", "cancelled"];

/// A client of the service at one base URL; the tenant's key goes with each request.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of the service at `base` (`http://127.0.0.1:port`).
    pub fn new(base: String) -> Client {
        Client {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path`, without a key: add what the test needs, then send it.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }
}
