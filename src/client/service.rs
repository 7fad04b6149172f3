//! The service as this client sees it: the four calls an import makes, and every way they can
//! fail turned into one [`ServiceError`] whose message says what to do (which URL, which key,
//! the problem+json `detail` and its `errors`).

use super::command::{ResultsKind, endpoint, shown};
use super::status::{Accepted, ImportStatus};
use reqwest::{Response, StatusCode, Url, header};
use serde::Deserialize;
use std::time::Duration;
use uuid::Uuid;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call to the service did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot reach the service at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error(
        "the service at {url} refused the API key (401 Unauthorized); check --api-key or CONTACT_IMPORT_API_KEY"
    )]
    Unauthorized { url: String },
    #[error(
        "import {id} not found at {url} (404): it no longer exists, or the API key belongs to another tenant"
    )]
    ImportNotFound { id: Uuid, url: String },
    #[error("{0}")]
    Problem(Problem),
    #[error("the call to {url} failed: {cause}")]
    Transport { url: String, cause: String },
}

impl ServiceError {
    /// Worth another try later: the service was away or overloaded for a moment.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Transport { .. } => true,
            Self::Problem(p) => p.status >= 500 || p.status == 429,
            Self::Unauthorized { .. } | Self::ImportNotFound { .. } => false,
        }
    }
}

/// An RFC 9457 problem answer, or what stands for one when the body is something else.
#[derive(Debug, Deserialize)]
pub struct Problem {
    #[serde(skip)]
    pub status: u16,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub errors: Vec<ProblemItem>,
}

/// One entry of a problem's `errors`.
#[derive(Debug, Deserialize)]
pub struct ProblemItem {
    #[serde(default)]
    pub pointer: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl Problem {
    /// Reads a non-2xx answer: problem+json if it is one, its first 200 characters otherwise.
    fn from_body(status: StatusCode, body: &str) -> Problem {
        match serde_json::from_str::<Problem>(body) {
            Ok(problem) => Problem {
                status: status.as_u16(),
                ..problem
            },
            Err(_) => {
                let text: String = body.trim().chars().take(200).collect();
                Problem {
                    status: status.as_u16(),
                    title: None,
                    detail: Some(format!("the service answered {status}: {text}")),
                    errors: Vec::new(),
                }
            }
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = format!("the service answered {}", self.status);
        let detail = self.detail.as_deref().or(self.title.as_deref());
        f.write_str(detail.unwrap_or(&status))?;
        for item in &self.errors {
            write!(f, "\n  {}: {}", item.pointer, item.message)?;
            if !item.code.is_empty() {
                write!(f, " ({})", item.code)?;
            }
        }
        Ok(())
    }
}

/// A client of one service with one tenant's API key.
pub struct Service {
    base: Url,
    api_key: String,
    http: reqwest::Client,
}

impl Service {
    /// A client of the service at `base`.
    pub fn new(base: Url, api_key: String) -> Result<Service, ServiceError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ServiceError::Transport {
                url: shown(&base),
                cause: cause(&e),
            })?;
        Ok(Service {
            base,
            api_key,
            http,
        })
    }

    /// Fails fast, before any upload, when the service is away or refuses the key.
    pub async fn check_access(&self) -> Result<(), ServiceError> {
        let mut url = endpoint(&self.base, "api/v1/imports");
        url.set_query(Some("limit=1"));
        let request = self.http.get(url).timeout(POLL_TIMEOUT);
        match self.send(request, None).await {
            Err(e @ (ServiceError::Unreachable { .. } | ServiceError::Unauthorized { .. })) => {
                Err(e)
            }
            _ => Ok(()),
        }
    }

    /// `POST /api/v1/imports?…` with the file as a raw body of `content_type`, gzip-compressed.
    pub async fn upload(
        &self,
        url: Url,
        content_type: &str,
        body: reqwest::Body,
        idempotency_key: Option<&str>,
    ) -> Result<Accepted, ServiceError> {
        // The body is compressed as it is read, so its length is not known before: chunked.
        let mut request = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_ENCODING, "gzip")
            .body(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.json(self.send(request, None).await?).await
    }

    /// `GET /api/v1/imports/{id}`.
    pub async fn status(&self, id: Uuid) -> Result<ImportStatus, ServiceError> {
        let url = endpoint(&self.base, &format!("api/v1/imports/{id}"));
        let request = self.http.get(url).timeout(POLL_TIMEOUT);
        self.json(self.send(request, Some(id)).await?).await
    }

    /// `GET /api/v1/imports/{id}/results.csv` (or `errors.csv`): the answer, body unread.
    pub async fn results(&self, id: Uuid, kind: ResultsKind) -> Result<Response, ServiceError> {
        let url = self.results_url(id, kind);
        self.send(self.http.get(url), Some(id)).await
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Where the results of `id` can be fetched.
    pub fn results_url(&self, id: Uuid, kind: ResultsKind) -> Url {
        endpoint(
            &self.base,
            &format!("api/v1/imports/{id}/{}", kind.file_name()),
        )
    }

    /// Where the status of `id` can be read.
    pub fn status_url(&self, id: Uuid) -> Url {
        endpoint(&self.base, &format!("api/v1/imports/{id}"))
    }

    /// Sends with the key; a non-2xx answer becomes its error (`import` names a 404).
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        import: Option<Uuid>,
    ) -> Result<Response, ServiceError> {
        let response = request
            .bearer_auth(&self.api_key)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let url = shown(&self.base);
        match (status, import) {
            (StatusCode::UNAUTHORIZED, _) => Err(ServiceError::Unauthorized { url }),
            (StatusCode::NOT_FOUND, Some(id)) => Err(ServiceError::ImportNotFound { id, url }),
            _ => {
                let body = response.text().await.unwrap_or_default();
                Err(ServiceError::Problem(Problem::from_body(status, &body)))
            }
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: Response,
    ) -> Result<T, ServiceError> {
        let url = response.url().clone();
        let body = response.bytes().await.map_err(|e| self.transport(&e))?;
        serde_json::from_slice(&body).map_err(|e| ServiceError::Transport {
            url: shown(&url),
            cause: format!("unexpected answer ({e})"),
        })
    }

    fn transport(&self, e: &reqwest::Error) -> ServiceError {
        let url = shown(&self.base);
        if e.is_connect() {
            ServiceError::Unreachable {
                url,
                cause: cause(e),
            }
        } else {
            ServiceError::Transport {
                url,
                cause: cause(e),
            }
        }
    }
}

/// The innermost cause of an error (`Connection refused (os error 111)`), which says more than
/// reqwest's own `error sending request for url (…)`.
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_prints_its_detail_then_each_error() {
        let body = r#"{"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
            "detail": "bad import options; nothing was stored",
            "errors": [{"pointer": "/identifier", "code": "invalid_value", "message": "unknown identifier"},
                       {"pointer": "/mapping", "code": "unknown_field", "message": "no field nickname"}]}"#;
        let problem = Problem::from_body(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(
            ServiceError::Problem(problem).to_string(),
            "bad import options; nothing was stored\n  /identifier: unknown identifier (invalid_value)\n  /mapping: no field nickname (unknown_field)"
        );
    }

    #[test]
    fn an_answer_that_is_not_a_problem_is_shown_as_text() {
        let problem = Problem::from_body(StatusCode::BAD_GATEWAY, "<html>bad gateway</html>\n");
        assert_eq!(
            problem.to_string(),
            "the service answered 502 Bad Gateway: <html>bad gateway</html>"
        );
        assert!(ServiceError::Problem(problem).is_transient());
    }

    #[test]
    fn only_outages_and_overload_are_retried() {
        let problem = |status| {
            ServiceError::Problem(Problem {
                status,
                title: None,
                detail: None,
                errors: Vec::new(),
            })
        };
        assert!(problem(503).is_transient());
        assert!(problem(429).is_transient());
        assert!(!problem(422).is_transient());
        let gone = ServiceError::ImportNotFound {
            id: Uuid::nil(),
            url: "http://h".into(),
        };
        assert!(!gone.is_transient());
    }
}
