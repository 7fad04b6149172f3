//! Configuration: one `Settings` struct built by clap from flags with environment fallbacks.
//! Defaults run on a developer's machine (local PostgreSQL and RabbitMQ).

use std::net::SocketAddr;
use std::time::Duration;

/// Log line format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings shared by every sub-command.
#[derive(clap::Args, Clone)]
pub struct Settings {
    /// PostgreSQL connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/contact_import",
        hide_env_values = true
    )]
    pub database_url: String,

    /// RabbitMQ connection URL; for a cluster, its nodes' URLs, comma-separated (the service
    /// connects to one that answers and moves to another when its node is lost).
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,

    /// Address the HTTP API listens on.
    #[arg(long = "listen", env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Prefix of every queue and exchange; two prefixes on one broker never see each other.
    #[arg(long, env = "QUEUE_PREFIX", default_value = "contact_import")]
    pub queue_prefix: String,

    /// Batches processed at once by this process (`run` and `work`).
    #[arg(long, env = "WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// Batch messages each worker holds unacknowledged: the one it applies and, from 2, the
    /// next, which it reads and validates while the one before is written.
    #[arg(long, env = "PREFETCH", default_value_t = 2)]
    pub prefetch: u16,

    /// Rows per batch: the unit of work and of the exactly-once guarantee.
    #[arg(long, env = "BATCH_SIZE", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub batch_size: u32,

    /// Largest request body accepted, in bytes (larger answers 413).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest CSV upload accepted, in bytes (larger answers 413).
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Connections in this process's PostgreSQL pool; a process serving the API opens up to
    /// half as many again for its look-ups by key.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// How often the outbox relay looks for unpublished batches when nothing woke it, in ms.
    #[arg(long, env = "RELAY_POLL_MS", default_value_t = 1000)]
    pub relay_poll_ms: u64,

    /// Batches published and not yet done, over all tenants: the relay keeps the broker queue
    /// this short so that it can choose who goes next. Raised to twice the queue's consumers
    /// when more are connected.
    #[arg(long, env = "RELAY_MAX_IN_FLIGHT", default_value_t = 8)]
    pub relay_max_in_flight: u32,

    /// Batches of one tenant published and not yet done, while other tenants have batches
    /// waiting (a tenant alone may use all of RELAY_MAX_IN_FLIGHT).
    #[arg(long, env = "RELAY_TENANT_IN_FLIGHT", default_value_t = 4)]
    pub relay_tenant_in_flight: u32,

    /// Per-tenant rate of POST and DELETE requests under /api/v1/ (a token bucket shared by
    /// every `serve` process), per second.
    #[arg(long, env = "RATE_LIMIT_RPS", default_value_t = 10.0)]
    pub rate_limit_rps: f64,

    /// Requests a tenant may make at once above the rate.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 20)]
    pub rate_limit_burst: u32,

    /// Rows a tenant may have stored and not yet applied; intake beyond it answers 429.
    #[arg(long, env = "MAX_QUEUED_ROWS", default_value_t = 20_000_000)]
    pub max_queued_rows: u64,

    /// Bytes of rows a tenant may have stored and not yet applied, as stored (compressed; a new
    /// request counts its rows as sent); beyond it, 429.
    #[arg(long, env = "MAX_QUEUED_BYTES", default_value_t = 8 * 1024 * 1024 * 1024)]
    pub max_queued_bytes: u64,

    /// Seconds after which a published batch that is still pending, while the queue is empty,
    /// counts as lost and is published again.
    #[arg(long, env = "REPUBLISH_AFTER_SECS", default_value_t = 60)]
    pub republish_after_secs: u64,

    /// Seconds that in-flight batches get to finish after SIGTERM/SIGINT.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Days a finished import keeps its rows as sent and its row results; then they are
    /// deleted (the summary stays) and its rows and results files answer 410.
    #[arg(long, env = "RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,

    /// Token for the operations page `/ops` and its data (`Authorization: Bearer`); without
    /// one the page is off (404). Never logged.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// `work` only: serve `/metrics` (this process's batch durations) and `/healthz` here, for
    /// Prometheus and liveness probes. Off when unset (`run` and `serve` have the whole API).
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Largest `.xlsx` file `POST /api/v1/imports` takes: a spreadsheet is read whole (CSV is
    /// streamed, and has only MAX_UPLOAD_BYTES).
    #[arg(long, env = "MAX_XLSX_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_xlsx_bytes: u64,

    /// Most bytes the parts of an `.xlsx` file may unpack to, by their declared sizes (413
    /// beyond): a small file can hold a sheet of gigabytes. The sheet is read as a stream; its
    /// shared strings (at most 64 MiB) are read whole.
    #[arg(long, env = "MAX_XLSX_UNPACKED_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_xlsx_unpacked_bytes: u64,

    /// Files (CSV or .xlsx) one API process receives at once; more are answered 503 with
    /// Retry-After. Each holds a bounded amount of memory, so this bounds the process's.
    #[arg(long, env = "MAX_CONCURRENT_UPLOADS", default_value_t = 8)]
    pub max_concurrent_uploads: usize,

    /// Bytes of request bodies (other than file uploads, which are streamed) one API process
    /// holds in memory at once, counted by their Content-Length; more are answered 503.
    #[arg(long, env = "MAX_BODIES_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_bodies_bytes: u64,

    /// Files one tenant sends to one API process at once; more are answered 429.
    #[arg(long, env = "MAX_TENANT_UPLOADS", default_value_t = 2)]
    pub max_tenant_uploads: usize,

    /// Seconds before the first retry of a completion callback that failed; each retry waits
    /// twice as long (with jitter, at most an hour), for up to 24 hours.
    #[arg(long, env = "CALLBACK_RETRY_INITIAL_SECS", default_value_t = 5.0)]
    pub callback_retry_initial_secs: f64,

    /// Allow callback URLs whose host resolves to a loopback, private or link-local address
    /// (refused by default: a tenant must not reach the service's own network).
    #[arg(long, env = "CALLBACK_ALLOW_PRIVATE", default_value_t = false)]
    pub callback_allow_private: bool,

    /// Log line format: text for people, json for log shippers.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Settings {
    /// The relay's polling interval.
    pub fn relay_poll(&self) -> Duration {
        Duration::from_millis(self.relay_poll_ms.max(10))
    }

    /// The database URL with any password replaced, for log lines.
    pub fn database_url_redacted(&self) -> String {
        redact_url(&self.database_url)
    }

    /// The broker URLs with any password replaced, for log lines.
    pub fn amqp_url_redacted(&self) -> String {
        self.amqp_url
            .split(',')
            .map(|url| redact_url(url.trim()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Replaces the password of `scheme://user:password@host/...` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &url[scheme_end + 3 + at..]
        ),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_from_urls() {
        let cases = [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            (
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                "amqp://guest:***@127.0.0.1:5672/%2f",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h:5432/db", "postgres://h:5432/db"),
            ("not a url", "not a url"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_url(input), expected, "{input}");
        }
    }
}
