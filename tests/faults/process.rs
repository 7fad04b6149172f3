//! The real `contact-import` binary as child processes of a test. A `Deployment` is one fresh
//! database and queue prefix that the test's processes share; a `Service` is one process,
//! configured through the environment as an operator would, SIGKILLed when its guard drops so
//! a failing test leaves nothing behind, its log kept in a file that a failing test prints.

use crate::common::{
    Client, amqp_url, database_name, remove_test_resources, test_settings, test_settings_on,
};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_contact-import");

/// The `application_name` of the test's own database connections.
pub const OBSERVER: &str = "fault-test-observer";

/// What a process runs: `run` (API + relay + workers), `serve` (API + relay), `work` (workers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Run,
    Serve,
    Work,
}

impl Role {
    fn command(self) -> &'static str {
        match self {
            Role::Run => "run",
            Role::Serve => "serve",
            Role::Work => "work",
        }
    }
}

/// One database and one queue prefix, shared by the processes a test starts.
pub struct Deployment {
    pub database_url: String,
    pub db_name: String,
    pub queue_prefix: String,
    log_dir: PathBuf,
    spawned: AtomicUsize,
    finished: bool,
}

impl Deployment {
    /// Creates the database (as `test_settings` does) and picks a queue prefix.
    pub async fn new() -> Deployment {
        Self::with(test_settings().await)
    }

    /// A deployment whose database is on the server of `admin` (a private one).
    pub async fn on(admin: &str) -> Deployment {
        Self::with(test_settings_on(admin).await)
    }

    fn with(settings: contact_import::settings::Settings) -> Deployment {
        let db_name = database_name(&settings);
        let log_dir = std::env::temp_dir()
            .join("contact-import-faults")
            .join(&settings.queue_prefix);
        std::fs::create_dir_all(&log_dir).expect("create the log directory");
        eprintln!(
            "deployment: database {db_name}, queue prefix {}, logs in {}",
            settings.queue_prefix,
            log_dir.display()
        );
        Deployment {
            database_url: settings.database_url,
            db_name,
            queue_prefix: settings.queue_prefix,
            log_dir,
            spawned: AtomicUsize::new(0),
            finished: false,
        }
    }

    /// Starts `contact-import <role>` with the test's settings, then `overrides`.
    pub fn spawn(&self, role: Role, overrides: &[(&str, &str)]) -> Service {
        let n = self.spawned.fetch_add(1, Ordering::SeqCst);
        let log = self.log_dir.join(format!("{n:02}-{}.log", role.command()));
        let out = File::create(&log).expect("create a log file");
        let err = out.try_clone().expect("clone the log file");
        let addr = overrides
            .iter()
            .find(|(name, _)| *name == "LISTEN_ADDR")
            .map(|(_, value)| value.parse().expect("LISTEN_ADDR"))
            .unwrap_or_else(free_port);
        let mut command = Command::new(BIN);
        command
            .arg(role.command())
            .env("DATABASE_URL", &self.database_url)
            .env("AMQP_URL", amqp_url())
            .env("LISTEN_ADDR", addr.to_string())
            .env("QUEUE_PREFIX", &self.queue_prefix)
            .env("WORKERS", "2")
            .env("PREFETCH", "2")
            .env("BATCH_SIZE", "500")
            .env("DB_MAX_CONNECTIONS", "6")
            .env("RELAY_POLL_MS", "200")
            .env("SHUTDOWN_GRACE_SECS", "10")
            .env("LOG_FORMAT", "text")
            .env("NO_COLOR", "1")
            .env(
                "RUST_LOG",
                std::env::var("FAULTS_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            // Requests are posted back to back; the fault tests are not about the rate limit.
            .env("RATE_LIMIT_RPS", "10000")
            .env("RATE_LIMIT_BURST", "10000");
        for (name, value) in overrides {
            command.env(name, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start contact-import");
        eprintln!(
            "started `{}` (pid {}) on {addr}, log {}",
            role.command(),
            child.id(),
            log.display()
        );
        Service {
            role,
            addr,
            child: Some(child),
            log,
        }
    }

    /// Creates a tenant with `contact-import tenant create`; returns its API key.
    pub async fn tenant(&self, name: &str) -> String {
        let output = Command::new(BIN)
            .args(["tenant", "create", name])
            .env("DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run `tenant create`");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "`tenant create` failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout.lines().last().expect("an API key").trim().to_owned()
    }

    /// A pool on the test database for the test's own queries, named `OBSERVER`.
    pub async fn pool(&self) -> PgPool {
        let options = PgConnectOptions::from_str(&self.database_url)
            .expect("database URL")
            .application_name(OBSERVER);
        PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .expect("connect to the test database")
    }

    /// Drops the queues, the exchange, the database and the logs. Stop the services first.
    pub async fn finish(mut self) {
        remove_test_resources(&self.db_name, &self.queue_prefix).await;
        if std::env::var_os("FAULTS_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        }
        self.finished = true;
    }
}

impl Drop for Deployment {
    /// A test that failed before `finish` still gives the shared broker and database back
    /// (its logs stay). The services, declared later, have been killed by then.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        eprintln!(
            "removing database {} and queues {}.* after a failure; logs kept in {}",
            self.db_name,
            self.queue_prefix,
            self.log_dir.display()
        );
        let (db_name, prefix) = (self.db_name.clone(), self.queue_prefix.clone());
        let cleanup = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(remove_test_resources(&db_name, &prefix));
            }
        });
        let _ = cleanup.join();
    }
}

/// A free local port: bind port 0, read it, let it go.
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local address")
}

/// One `contact-import` process.
pub struct Service {
    pub role: Role,
    /// Its `LISTEN_ADDR` (`work` does not listen).
    pub addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

impl Service {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// The base URL of its API.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (bounded) until `GET /healthz` answers 200.
    pub async fn wait_healthy(&mut self) {
        let client = Client::new(self.base());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "`{}` exited with {status} before it was healthy:\n{}",
                    self.role.command(),
                    self.log_tail(40)
                );
            }
            if let Ok(response) = client
                .request(reqwest::Method::GET, "/healthz")
                .send()
                .await
                && response.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{}` never became healthy:\n{}",
                self.role.command(),
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9`: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM with the `kill` command.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits up to `within` for the process to exit by itself; its status if it did.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- last lines of `{}` ({}) ----\n{}\n----",
                self.role.command(),
                self.log.display(),
                self.log_tail(30)
            );
        }
    }
}
