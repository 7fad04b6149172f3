//! Spawns the real service in-process against the real PostgreSQL and RabbitMQ: a fresh
//! database, a fresh queue prefix and a random port per test, so tests run in parallel.

#![allow(dead_code)]

use contact_import::settings::{LogFormat, Settings};
use contact_import::startup::{self, Roles, Running};
use contact_import::store;
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// The admin URL tests create their databases from.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// The broker tests use.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn database_url(admin: &str, name: &str) -> String {
    match admin.rfind('/') {
        Some(i) if !admin[..i].ends_with('/') => format!("{}/{name}", &admin[..i]),
        _ => format!("{admin}/{name}"),
    }
}

/// Deletes a test's queues, exchange and database.
pub async fn remove_test_resources(db_name: &str, queue_prefix: &str) {
    contact_import::broker::Topology::new(queue_prefix)
        .delete(&amqp_url())
        .await;
    if let Ok(admin) = store::connect(&admin_url(), 1).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await;
        admin.close().await;
    }
}

/// A running service and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub settings: Settings,
    pub db_name: String,
    running: Option<Running>,
}

/// Settings for a test: its own database and queue prefix, a random port.
pub async fn test_settings() -> Settings {
    if std::env::var("RUST_LOG").is_ok() {
        contact_import::telemetry::init(LogFormat::Text);
    }
    let db_name = format!("ci_test_{}", Uuid::new_v4().simple());
    let admin = admin_url();
    let admin_pool = store::connect(&admin, 1)
        .await
        .expect("connect to the admin database");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}")))
        .execute(&admin_pool)
        .await
        .expect("create the test database");
    admin_pool.close().await;
    Settings {
        database_url: database_url(&admin, &db_name),
        amqp_url: amqp_url(),
        listen: "127.0.0.1:0".parse().expect("address"),
        queue_prefix: format!("test_{}", Uuid::new_v4().simple()),
        workers: 2,
        prefetch: 1,
        batch_size: 500,
        max_body_bytes: 32 * 1024 * 1024,
        max_upload_bytes: 1024 * 1024 * 1024,
        db_max_connections: 8,
        relay_poll_ms: 200,
        // Tests post back to back; the limits have tests of their own.
        rate_limit_rps: 10_000.0,
        rate_limit_burst: 10_000,
        max_queued_rows: 100_000_000,
        max_queued_bytes: 1 << 40,
        relay_max_in_flight: 16,
        relay_tenant_in_flight: 4,
        metrics_listen: None,
        admin_token: None,
        callback_retry_initial_secs: 5.0,
        callback_allow_private: false,
        max_xlsx_bytes: 32 * 1024 * 1024,
        retention_days: 30,
        republish_after_secs: 60,
        shutdown_grace_secs: 10,
        log_format: LogFormat::Text,
    }
}

/// The whole service (API, relay, workers).
pub async fn spawn_app() -> TestApp {
    spawn_with(test_settings().await, Roles::ALL).await
}

/// The name of the database a test's settings point at.
pub fn database_name(settings: &Settings) -> String {
    settings
        .database_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The service with given settings and roles.
pub async fn spawn_with(settings: Settings, roles: Roles) -> TestApp {
    let db_name = database_name(&settings);
    let running = startup::start(settings.clone(), roles)
        .await
        .expect("start the service");
    let addr = running.addr.expect("the API listens");
    let pool = store::connect(&settings.database_url, 4)
        .await
        .expect("connect to the test database");
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        pool,
        settings,
        db_name,
        running: Some(running),
    }
}

impl TestApp {
    /// Creates a tenant; returns its API key.
    pub async fn tenant(&self, name: &str) -> String {
        store::tenants::create(&self.pool, name)
            .await
            .expect("create tenant")
            .api_key
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_contacts(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/contacts"))
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
        self.client
            .post(self.url(&format!("/api/v1/imports{query}")))
            .bearer_auth(key)
            .header("content-type", "text/csv")
            .body(body)
            .send()
            .await
            .expect("POST /api/v1/imports")
    }

    /// A request without a body (`POST …/cancel`, `DELETE /api/v1/contacts/{id}`, …).
    pub async fn send(&self, key: &str, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET")
    }

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
                Some("completed" | "completedWithErrors" | "failed" | "cancelled") => {
                    return status;
                }
                _ if tokio::time::Instant::now() > deadline => {
                    panic!("import {id} did not finish: {status}")
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
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
            .client
            .post(self.url("/api/v1/imports"))
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

    /// The contact holding this phone, if any.
    pub async fn contact_by(&self, key: &str, query: &str) -> Option<Value> {
        let page = self
            .get_json(
                key,
                &format!("/api/v1/contacts?{query}&includeDeleted=true"),
            )
            .await;
        page["data"].as_array().and_then(|d| d.first().cloned())
    }

    /// Stops the service and drops its database and queues.
    pub async fn finish(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        self.pool.close().await;
        remove_test_resources(&self.db_name, &self.settings.queue_prefix).await;
    }
}

/// A realistic, valid Moroccan mobile number in E.164, distinct per `n`.
pub fn phone(n: usize) -> String {
    format!("+2126{:08}", n % 100_000_000)
}

/// `count` flat contacts with distinct phones starting at `from`.
pub fn contacts(from: usize, count: usize) -> Vec<Value> {
    (from..from + count)
        .map(|n| {
            serde_json::json!({
                "phone": phone(n),
                "email": format!("Person.{n}@Example.com"),
                "firstName": format!("First{n}"),
                "lastName": "Benali",
            })
        })
        .collect()
}

/// Polls `check` every 50 ms until it gives a value (bounded: 30 s, then fails naming `what`).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
