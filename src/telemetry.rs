//! Logging through `tracing`: human text or JSON lines, filtered by `RUST_LOG`
//! (default `info`). No secret or contact field is ever written to a log line.

use crate::settings::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Seconds each batch took to apply, from its message to its commit, in this process.
pub fn batch_duration() -> &'static prometheus_client::metrics::histogram::Histogram {
    use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
    static HISTOGRAM: std::sync::LazyLock<Histogram> =
        std::sync::LazyLock::new(|| Histogram::new(exponential_buckets(0.005, 2.0, 12)));
    &HISTOGRAM
}
