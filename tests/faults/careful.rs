//! The fault suite's requests: a careful API user during a fault. It retries what may fail for
//! a moment (connection refused, 5xx, 429) with the same `Idempotency-Key`, so a retry can never
//! import twice, and it polls imports until final.

use crate::common::{Client, FINAL};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

impl Client {
    /// Posts contacts until the service answers 202 (bounded); returns the import id.
    pub async fn import_retrying(&self, key: &str, body: &Value, idempotency_key: &str) -> Uuid {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let sent = self
                .request(reqwest::Method::POST, "/api/v1/contacts")
                .bearer_auth(key)
                .header("Idempotency-Key", idempotency_key)
                .json(body)
                .send()
                .await;
            let retry_in = match sent {
                Ok(response) if response.status() == 202 => {
                    let accepted: Value = response.json().await.expect("202 body");
                    let id = accepted["asyncSessionId"].as_str().expect("asyncSessionId");
                    return id.parse().expect("a uuid");
                }
                Ok(response) if response.status() == 429 => {
                    let seconds = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    Duration::from_secs(seconds)
                }
                Ok(response) if response.status().is_server_error() => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    eprintln!("POST {idempotency_key}: {status} {body}; retrying");
                    Duration::from_millis(300)
                }
                Ok(response) => {
                    let status = response.status();
                    panic!(
                        "POST {idempotency_key}: {status} {}",
                        response.text().await.unwrap_or_default()
                    );
                }
                Err(e) => {
                    eprintln!("POST {idempotency_key}: {e}; retrying");
                    Duration::from_millis(300)
                }
            };
            assert!(
                Instant::now() < deadline,
                "POST {idempotency_key} was never accepted"
            );
            tokio::time::sleep(retry_in).await;
        }
    }

    /// `GET /api/v1/imports/{id}`, retried while the service cannot answer (bounded).
    pub async fn status_retrying(&self, key: &str, id: Uuid) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let sent = self
                .request(reqwest::Method::GET, &format!("/api/v1/imports/{id}"))
                .bearer_auth(key)
                .send()
                .await;
            match sent {
                Ok(response) if response.status() == 200 => {
                    return response.json().await.expect("status body");
                }
                Ok(response) if response.status().is_server_error() => {}
                Ok(response) => panic!("GET import {id}: {}", response.status()),
                Err(_) => {}
            }
            assert!(Instant::now() < deadline, "GET import {id} kept failing");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls every import until each is final (bounded by `within`); their final statuses.
    pub async fn wait_all_finished(&self, key: &str, ids: &[Uuid], within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut finals = Vec::with_capacity(ids.len());
        for &id in ids {
            loop {
                let status = self.status_retrying(key, id).await;
                if status["status"]
                    .as_str()
                    .is_some_and(|s| FINAL.contains(&s))
                {
                    finals.push(status);
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "import {id} did not finish within {within:?}: {status}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        finals
    }

    /// The status code and body of `GET /readyz`, or `None` when the process does not answer.
    pub async fn readyz(&self) -> Option<(u16, String)> {
        let response = self
            .request(reqwest::Method::GET, "/readyz")
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.unwrap_or_default()))
    }
}
