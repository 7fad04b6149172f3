//! What the user sees on stderr while an import runs: progress bars on a terminal; plain lines,
//! at most one every 5 s, when output goes to a log or CI, or with `--quiet`.

use super::status::{Accepted, ImportStatus};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest a plain progress line waits for the next.
const LINE_EVERY: Duration = Duration::from_secs(5);

const UPLOAD_BAR: &str = "{spinner} uploading [{wide_bar}] {decimal_bytes}/{decimal_total_bytes} \
                          {decimal_bytes_per_sec} eta {eta}";
const STORING: &str = "{spinner} {msg} {elapsed}";
const PROCESSING_BAR: &str = "{spinner} processing [{wide_bar}] {human_pos}/{human_len} rows\n  \
                              {rows_per_sec} · eta {eta} · {msg}";

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Bars,
    Lines,
}

impl Style {
    /// Bars only when both stdout and stderr are terminals and `--quiet` is not given.
    pub fn detect(quiet: bool) -> Style {
        if !quiet && std::io::stderr().is_terminal() && std::io::stdout().is_terminal() {
            Style::Bars
        } else {
            Style::Lines
        }
    }
}

/// Progress of the upload, fed by the body stream as it yields the file's chunks.
pub struct UploadMeter {
    bar: Option<ProgressBar>,
    total: u64,
    state: Mutex<UploadState>,
}

struct UploadState {
    sent: u64,
    started: Instant,
    ticker: Ticker,
    rate: Rate,
    done: bool,
}

impl UploadMeter {
    /// A meter for a file of `total` bytes.
    pub fn new(style: Style, total: u64) -> UploadMeter {
        let bar = (style == Style::Bars).then(|| {
            let bar = ProgressBar::new(total).with_style(bar_style(UPLOAD_BAR));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        UploadMeter {
            bar,
            total,
            state: Mutex::new(UploadState {
                sent: 0,
                started: now,
                ticker: Ticker::default(),
                rate: Rate::new(now),
                done: false,
            }),
        }
    }

    /// `n` more bytes went into the request body.
    pub fn sent(&self, n: u64) {
        let mut state = lock(&self.state);
        state.sent += n;
        if state.sent >= self.total {
            // hyper stops polling a body once it has its Content-Length: this is the end
            self.sent_all_locked(&mut state);
        } else if let Some(bar) = &self.bar {
            bar.set_position(state.sent);
        } else {
            let now = Instant::now();
            if state.ticker.due(now) {
                let sent = state.sent;
                let per_sec = state.rate.per_sec(now, sent);
                eprintln!("{}", upload_line(sent, self.total, per_sec));
            }
        }
    }

    /// The body has ended: the service now stores the file before it answers.
    pub fn sent_all(&self) {
        self.sent_all_locked(&mut lock(&self.state));
    }

    fn sent_all_locked(&self, state: &mut UploadState) {
        if std::mem::replace(&mut state.done, true) {
            return;
        }
        let line = uploaded_line(state.sent, state.started.elapsed());
        match &self.bar {
            Some(bar) => {
                bar.set_position(state.sent);
                bar.println(line);
                bar.set_style(bar_style(STORING));
                bar.set_message("the service is storing the file");
                bar.reset_elapsed();
            }
            None => eprintln!("{line}; the service is storing it"),
        }
    }

    /// Bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        lock(&self.state).sent
    }

    /// The service answered 202.
    pub fn accepted(&self, accepted: &Accepted) {
        self.clear();
        eprintln!(
            "import {} accepted: {} rows",
            accepted.async_session_id, accepted.total_rows
        );
    }

    /// Takes the bar off the screen (the upload failed or was interrupted).
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Progress of the rows, fed by each status poll.
pub struct ProcessingMeter {
    bar: Option<ProgressBar>,
    ticker: Ticker,
    rate: Rate,
}

impl ProcessingMeter {
    /// A meter for an import of `total_rows`.
    pub fn new(style: Style, total_rows: u64) -> ProcessingMeter {
        let bar = (style == Style::Bars).then(|| {
            let style = bar_style(PROCESSING_BAR).with_key("rows_per_sec", rows_per_sec);
            let bar = ProgressBar::new(total_rows).with_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        ProcessingMeter {
            bar,
            ticker: Ticker::default(),
            rate: Rate::new(Instant::now()),
        }
    }

    /// Shows a fresh status.
    pub fn update(&mut self, status: &ImportStatus) {
        if let Some(bar) = &self.bar {
            bar.set_length(status.total_rows);
            bar.set_position(status.processed_rows);
            bar.set_message(status.counts());
            return;
        }
        let now = Instant::now();
        let final_line = status.status.outcome().is_some();
        if self.ticker.due(now) || final_line {
            let per_sec = self.rate.per_sec(now, status.processed_rows);
            eprintln!(
                "{}",
                processing_line(status.processed_rows, status.total_rows, per_sec)
            );
        }
    }

    /// A line above the bar (or a plain line), such as a retry notice.
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// The import is final: the bar stays on screen, stopped.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }

    /// The user stopped following the import: the bar stays where it was.
    pub fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}

/// Tells whether a plain line is due: the first at once, then one every [`LINE_EVERY`].
#[derive(Default)]
struct Ticker {
    last: Option<Instant>,
}

impl Ticker {
    fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= LINE_EVERY);
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// Units per second since the previous reading.
struct Rate {
    at: Instant,
    value: u64,
}

impl Rate {
    fn new(now: Instant) -> Rate {
        Rate { at: now, value: 0 }
    }

    fn per_sec(&mut self, now: Instant, value: u64) -> u64 {
        let secs = now.duration_since(self.at).as_secs_f64();
        let delta = value.saturating_sub(self.value) as f64;
        self.at = now;
        self.value = value;
        if secs > 0.0 {
            (delta / secs).round() as u64
        } else {
            0
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn rows_per_sec(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0} rows/s", state.per_sec());
}

/// `45%` of `part` in `whole`, rounded down; an empty whole is done.
fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        100
    } else {
        (u128::from(part.min(whole)) * 100 / u128::from(whole)) as u64
    }
}

/// A byte count in decimal units: `512 B`, `120.0 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `uploading 45% (54.0 MB of 120.0 MB, 10.2 MB/s)`.
pub fn upload_line(sent: u64, total: u64, bytes_per_sec: u64) -> String {
    format!(
        "uploading {}% ({} of {}, {}/s)",
        percent(sent, total),
        human_bytes(sent),
        human_bytes(total),
        human_bytes(bytes_per_sec)
    )
}

/// `uploaded 120.0 MB in 12.3s`.
pub fn uploaded_line(bytes: u64, elapsed: Duration) -> String {
    format!(
        "uploaded {} in {:.1}s",
        human_bytes(bytes),
        elapsed.as_secs_f64()
    )
}

/// `processing 45% (450000/1000000 rows, 81234 rows/s)`.
pub fn processing_line(processed: u64, total: u64, rows_per_sec: u64) -> String {
    format!(
        "processing {}% ({processed}/{total} rows, {rows_per_sec} rows/s)",
        percent(processed, total)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_processing_lines_read_as_documented() {
        let cases = [
            (
                450_000,
                1_000_000,
                81_234,
                "processing 45% (450000/1000000 rows, 81234 rows/s)",
            ),
            (0, 10, 0, "processing 0% (0/10 rows, 0 rows/s)"),
            (999, 1000, 5, "processing 99% (999/1000 rows, 5 rows/s)"),
            (1000, 1000, 5, "processing 100% (1000/1000 rows, 5 rows/s)"),
            (0, 0, 0, "processing 100% (0/0 rows, 0 rows/s)"),
        ];
        for (processed, total, rate, expected) in cases {
            assert_eq!(processing_line(processed, total, rate), expected);
        }
    }

    #[test]
    fn upload_lines_use_decimal_units() {
        assert_eq!(
            uploaded_line(120_000_000, Duration::from_millis(12_340)),
            "uploaded 120.0 MB in 12.3s"
        );
        assert_eq!(
            upload_line(54_000_000, 120_000_000, 10_200_000),
            "uploading 45% (54.0 MB of 120.0 MB, 10.2 MB/s)"
        );
    }

    #[test]
    fn bytes_read_in_the_largest_fitting_unit() {
        let cases = [
            (0, "0 B"),
            (999, "999 B"),
            (1000, "1.0 kB"),
            (1_234_567, "1.2 MB"),
            (999_999_999, "1.0 GB"),
            (1_073_741_824, "1.1 GB"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(human_bytes(bytes), expected, "{bytes}");
        }
    }

    #[test]
    fn a_plain_line_is_due_at_once_then_every_five_seconds() {
        let start = Instant::now();
        let mut ticker = Ticker::default();
        assert!(ticker.due(start));
        assert!(!ticker.due(start + Duration::from_secs(4)));
        assert!(ticker.due(start + Duration::from_secs(5)));
        assert!(!ticker.due(start + Duration::from_secs(9)));
    }

    #[test]
    fn the_rate_is_measured_since_the_previous_reading() {
        let start = Instant::now();
        let mut rate = Rate::new(start);
        assert_eq!(rate.per_sec(start + Duration::from_secs(2), 1000), 500);
        assert_eq!(rate.per_sec(start + Duration::from_secs(4), 1000), 0);
        assert_eq!(rate.per_sec(start + Duration::from_secs(4), 2000), 0);
    }

    #[test]
    fn the_bar_templates_parse() {
        for template in [UPLOAD_BAR, STORING, PROCESSING_BAR] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }
}
