//! Spawns the real service in-process against the real PostgreSQL and RabbitMQ: a fresh
//! database, a fresh queue prefix and a random port per test, so tests run in parallel.

use crate::common::{Client, database_name, remove_test_resources, test_settings};
use contact_import::settings::Settings;
use contact_import::startup::{self, Roles, Running};
use contact_import::store;
use sqlx::PgPool;
use std::ops::Deref;

/// The `ADMIN_TOKEN` of the apps whose tests need one.
pub const ADMIN_TOKEN: &str = "ops-test-admin-token";

/// A running service, its database and a client for it.
pub struct TestApp {
    pub client: Client,
    /// Where the API listens.
    pub addr: std::net::SocketAddr,
    pub pool: PgPool,
    pub settings: Settings,
    db_name: String,
    running: Option<Running>,
}

/// A test talks to the service through the app's client: `app.import(&key, &body)`.
impl Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// The whole service (API, relay, workers).
pub async fn spawn_app() -> TestApp {
    spawn_with(test_settings().await, Roles::ALL).await
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
        client: Client::new(format!("http://{addr}")),
        addr,
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

    /// Stops the service and drops its database and queues.
    pub async fn finish(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        self.pool.close().await;
        remove_test_resources(&self.db_name, &self.settings.queue_prefix).await;
    }
}
