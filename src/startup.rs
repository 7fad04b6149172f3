//! Wires the parts into the processes of the command line: `run` (API + relay + workers),
//! `serve` (API + relay), `work` (workers). Also used by the integration tests, which start
//! the real service in-process on a fresh database, queue prefix and port.

use crate::api::{self, AppState};
use crate::broker::{BrokerHealth, Topology};
use crate::settings::Settings;
use crate::store;
use crate::tasks::consumer::Workers;
use crate::tasks::dead_letters::DeadLetters;
use crate::tasks::relay::Relay;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// Which parts a process runs.
#[derive(Clone, Copy, Debug)]
pub struct Roles {
    pub api: bool,
    pub workers: bool,
}

impl Roles {
    /// `run`: API, relay and workers.
    pub const ALL: Roles = Roles {
        api: true,
        workers: true,
    };
    /// `serve`: API and relay.
    pub const API: Roles = Roles {
        api: true,
        workers: false,
    };
    /// `work`: workers only.
    pub const WORKERS: Roles = Roles {
        api: false,
        workers: true,
    };
}

/// Opens the pool; a failure names the (password-less) URL.
pub async fn connect(settings: &Settings, max_connections: u32) -> anyhow::Result<sqlx::PgPool> {
    store::connect(&settings.database_url, max_connections)
        .await
        .with_context(|| {
            format!(
                "cannot connect to PostgreSQL at {}",
                settings.database_url_redacted()
            )
        })
}

/// A started service.
pub struct Running {
    /// The API's bound address, when it runs one.
    pub addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    grace: Duration,
}

/// Connects, migrates when the API runs, and starts the parts named by `roles`.
pub async fn start(settings: Settings, roles: Roles) -> anyhow::Result<Running> {
    let pool = connect(&settings, settings.db_max_connections).await?;
    // Load the phone number metadata now (~70 ms) rather than in the first request or batch.
    tokio::task::spawn_blocking(|| crate::validate::normalize_phone("+14155550100", None))
        .await?
        .ok();
    if roles.api {
        store::migrate(&pool)
            .await
            .context("cannot apply database migrations")?;
    }
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let topology = Topology::new(&settings.queue_prefix);
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    let mut addr = None;
    if roles.api {
        let broker = BrokerHealth::default();
        let relay_wake = Arc::new(Notify::new());
        let relay = Relay {
            pool: pool.clone(),
            amqp_url: settings.amqp_url.clone(),
            topology: topology.clone(),
            poll: settings.relay_poll(),
            health: broker.clone(),
            wake: relay_wake.clone(),
            republish_after: Duration::from_secs(settings.republish_after_secs),
            max_in_flight: i64::from(settings.relay_max_in_flight.max(1)),
            tenant_in_flight: i64::from(settings.relay_tenant_in_flight.max(1)),
        };
        tasks.spawn(relay.run(shutdown_rx.clone()));
        let dead_letters = DeadLetters {
            pool: pool.clone(),
            amqp_url: settings.amqp_url.clone(),
            topology: topology.clone(),
        };
        tasks.spawn(dead_letters.run(shutdown_rx.clone()));
        // Every second: a first import grows `contacts` from nothing, and until its first
        // analysis each batch's look-up is a sequential scan (measured: a third of a 200k-row
        // run's database time when this was 5 s).
        tasks.spawn(crate::tasks::maintenance::run(
            pool.clone(),
            Duration::from_secs(1),
            Duration::from_secs(u64::from(settings.retention_days) * 86_400),
            shutdown_rx.clone(),
        ));
        // Completion callbacks: delivered from a task of their own, so a slow receiver holds
        // no worker.
        tasks.spawn(crate::tasks::callbacks::run(
            pool.clone(),
            Duration::from_millis(250),
            Duration::from_secs_f64(settings.callback_retry_initial_secs.clamp(0.01, 3600.0)),
            settings.callback_allow_private,
            shutdown_rx.clone(),
        ));
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        addr = Some(listener.local_addr()?);
        // Half as many again, for the API's probes by key (status polls, rate draws, stores).
        let by_key = store::connect_by_key(
            &settings.database_url,
            (settings.db_max_connections / 2).max(2),
        )?;
        let state = AppState {
            pool: pool.clone(),
            by_key,
            settings: Arc::new(settings.clone()),
            broker,
            relay_wake,
            openapi: Arc::new(
                serde_json::to_vec(&api::openapi())
                    .context("cannot serialise the OpenAPI document")?
                    .into(),
            ),
            uploads: api::upload_slots(&settings),
            bodies: api::body_budget(&settings),
            known_keys: Default::default(),
        };
        let app = api::router(state);
        let mut stop = shutdown_rx.clone();
        tasks.spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        tracing::info!(listen = %addr.map(|a| a.to_string()).unwrap_or_default(), "API listening");
    }
    if roles.workers {
        let workers = Workers {
            pool: pool.clone(),
            amqp_url: settings.amqp_url.clone(),
            topology,
            count: settings.workers,
            prefetch: settings.prefetch,
        };
        tasks.spawn(workers.run(shutdown_rx.clone()));
        if let (false, Some(listen)) = (roles.api, settings.metrics_listen) {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} for metrics"))?;
            let mut stop = shutdown_rx;
            tasks.spawn(async move {
                let serve = axum::serve(listener, api::metrics::worker_router())
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "metrics server failed");
                }
            });
            tracing::info!(%listen, "worker metrics listening");
        }
    }
    Ok(Running {
        addr,
        shutdown,
        tasks,
        grace,
    })
}

impl Running {
    /// Stops accepting and consuming, lets in-flight work finish within the grace period.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        let drained = tokio::time::timeout(self.grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "grace period over; stopping with work in flight (it will be redelivered)"
            );
            self.tasks.abort_all();
        }
    }

    /// Runs until SIGINT or SIGTERM, then stops gracefully.
    pub async fn until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.stop().await;
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
