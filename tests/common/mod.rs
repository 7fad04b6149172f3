//! What both test binaries share (`tests/api`, the features; `tests/faults.rs`, the fault
//! suite): every test gets a fresh database and a fresh queue prefix on the real PostgreSQL and
//! RabbitMQ, and gives them back; the contacts the tests import; the one HTTP client.

mod client;

pub use client::{Client, FINAL};
use contact_import::settings::{LogFormat, Settings};
use contact_import::store;
use serde_json::Value;
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

/// Settings for a test: its own database and queue prefix, a random port.
pub async fn test_settings() -> Settings {
    test_settings_on(&admin_url()).await
}

/// `test_settings`, with the database created on the server of `admin` (a private one).
pub async fn test_settings_on(admin: &str) -> Settings {
    test_settings_with(admin, "").await
}

/// `test_settings_on`, with `database_options` after `CREATE DATABASE name` (a collation, say).
pub async fn test_settings_with(admin: &str, database_options: &str) -> Settings {
    if std::env::var("RUST_LOG").is_ok() {
        contact_import::telemetry::init(LogFormat::Text);
    }
    let db_name = format!("ci_test_{}", Uuid::new_v4().simple());
    let admin = admin.to_owned();
    let admin_pool = store::connect(&admin, 1)
        .await
        .expect("connect to the admin database");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE {db_name} {database_options}"
    )))
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
        prefetch: 2,
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
        max_xlsx_unpacked_bytes: 512 * 1024 * 1024,
        max_concurrent_uploads: 8,
        max_bodies_bytes: 256 * 1024 * 1024,
        max_tenant_uploads: 2,
        retention_days: 30,
        republish_after_secs: 60,
        shutdown_grace_secs: 10,
        log_format: LogFormat::Text,
    }
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
