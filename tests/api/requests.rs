//! The API tests' requests: one request, one answer. A dropped connection or an unexpected
//! status fails the test at once (the fault suite's careful retries are in
//! `tests/faults/careful.rs`).

use crate::common::{Client, FINAL};
use serde_json::Value;
use std::time::Duration;

impl Client {
    /// `POST /api/v1/fields`: defines a custom field, expecting 201.
    pub async fn define_field(&self, key: &str, field: &Value) {
        let answer = self
            .request(reqwest::Method::POST, "/api/v1/fields")
            .bearer_auth(key)
            .json(field)
            .send()
            .await
            .expect("POST /api/v1/fields");
        assert_eq!(answer.status(), 201, "{field}");
    }

    /// `POST /api/v1/contacts` with a JSON body.
    pub async fn post_contacts(&self, key: &str, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, "/api/v1/contacts")
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("POST /api/v1/contacts")
    }

    /// `POST /api/v1/imports{query}` with a raw `text/csv` body.
    pub async fn upload_csv(
        &self,
        key: &str,
        query: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.request(reqwest::Method::POST, &format!("/api/v1/imports{query}"))
            .bearer_auth(key)
            .header("content-type", "text/csv")
            .body(body)
            .send()
            .await
            .expect("POST /api/v1/imports")
    }

    /// Uploads a CSV file, expects 202, returns its import's id.
    pub async fn import_csv(
        &self,
        key: &str,
        query: &str,
        body: impl Into<reqwest::Body>,
    ) -> String {
        let response = self.upload_csv(key, query, body).await;
        let status = response.status();
        let answer: Value = response.json().await.expect("JSON body");
        assert_eq!(status, 202, "{answer}");
        answer["asyncSessionId"]
            .as_str()
            .expect("asyncSessionId")
            .to_owned()
    }

    /// A multipart body (already encoded, with this boundary) to `POST /api/v1/imports`;
    /// returns the answer's JSON after checking its status.
    pub async fn upload_multipart(
        &self,
        key: &str,
        boundary: &str,
        body: impl Into<reqwest::Body>,
        expected: u16,
    ) -> Value {
        let response = self
            .request(reqwest::Method::POST, "/api/v1/imports")
            .bearer_auth(key)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .expect("POST /api/v1/imports");
        let status = response.status();
        let answer: Value = response.json().await.expect("a JSON answer");
        assert_eq!(status, expected, "{answer}");
        answer
    }

    /// A request without a body (`POST …/cancel`, `DELETE /api/v1/contacts/{id}`, …).
    pub async fn send(&self, key: &str, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.request(method, path)
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    /// `GET path` with the tenant's key.
    pub async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.send(key, reqwest::Method::GET, path).await
    }

    /// `GET path`, returns the body as text (whatever the status).
    pub async fn get_text(&self, key: &str, path: &str) -> String {
        self.get(key, path).await.text().await.expect("text body")
    }

    /// `GET path`, expects 200, returns the JSON body.
    pub async fn get_json(&self, key: &str, path: &str) -> Value {
        let response = self.get(key, path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON body")
    }

    /// Posts an import, expects 202, returns its id.
    pub async fn import(&self, key: &str, body: &Value) -> String {
        let response = self.post_contacts(key, body).await;
        let status = response.status();
        let answer: Value = response.json().await.expect("JSON body");
        assert_eq!(status, 202, "intake answered {answer}");
        answer["asyncSessionId"]
            .as_str()
            .expect("asyncSessionId")
            .to_owned()
    }

    /// Polls the import's status until it is final (bounded: 120 s).
    pub async fn wait_finished(&self, key: &str, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let status = self.get_json(key, &format!("/api/v1/imports/{id}")).await;
            match status["status"].as_str() {
                Some(s) if FINAL.contains(&s) => return status,
                _ if tokio::time::Instant::now() > deadline => {
                    panic!("import {id} did not finish: {status}")
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Imports and waits; returns the final status.
    pub async fn import_and_wait(&self, key: &str, body: &Value) -> Value {
        let id = self.import(key, body).await;
        self.wait_finished(key, &id).await
    }

    /// Every row result of an import, following `nextAfter`.
    pub async fn all_rows(&self, key: &str, id: &str, query: &str) -> Vec<Value> {
        let mut rows = Vec::new();
        let mut after: Option<i64> = None;
        loop {
            let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
            let page = self
                .get_json(
                    key,
                    &format!("/api/v1/imports/{id}/rows?limit=1000{query}{cursor}"),
                )
                .await;
            rows.extend(page["rows"].as_array().expect("rows").iter().cloned());
            match page["nextAfter"].as_i64() {
                Some(next) => after = Some(next),
                None => return rows,
            }
        }
    }

    /// The first contact that `query` finds, deleted ones included, if any.
    pub async fn contact_by(&self, key: &str, query: &str) -> Option<Value> {
        let page = self
            .get_json(
                key,
                &format!("/api/v1/contacts?{query}&includeDeleted=true"),
            )
            .await;
        page["data"].as_array().and_then(|d| d.first().cloned())
    }
}
