//! `contact-import import FILE.csv`: a client of a running service. It checks its options,
//! streams the file to `POST /api/v1/imports`, follows the import until it is final and saves
//! its results file. The exit status says whether the import went through; progress goes to
//! stderr, the summary line and the results path to stdout.

mod command;
mod progress;
mod results;
mod service;
mod status;
mod upload;

#[cfg(test)]
mod fake_service;

pub use command::Plan;
pub use progress::Style;
pub use status::{ImportStatus, Outcome};

use anyhow::{anyhow, bail};
use progress::{ProcessingMeter, UploadMeter};
use service::{Service, ServiceError};
use status::Accepted;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use upload::CsvFile;
use uuid::Uuid;

/// How long the service may stay unreachable while an import is followed.
const OUTAGE_LIMIT: Duration = Duration::from_secs(120);

/// Arguments of `contact-import import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The file to import: CSV (`,` or `;` delimited, a header row; any encoding), a vCard
    /// address book (`.vcf`) or an `.xlsx` workbook (its first sheet).
    pub file: PathBuf,
    /// Base URL of the service. Plain http only: this build has no TLS (reach an https service
    /// through a TLS-terminating proxy on this host).
    #[arg(
        long,
        env = "CONTACT_IMPORT_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// The tenant's API key (never printed).
    #[arg(long, env = "CONTACT_IMPORT_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Identifier that matches rows to stored contacts (service default: phone).
    #[arg(long, value_parser = ["phone", "email", "externalId"])]
    pub identifier: Option<String>,
    /// What happens on a match (service default: upsert).
    #[arg(long, value_parser = ["upsert", "insertOnly", "updateOnly", "createAll"])]
    pub mode: Option<String>,
    /// Do not overwrite stored values: only fill empty fields, only add tags and groups.
    #[arg(long)]
    pub no_overwrite: bool,
    /// Region (ISO 3166-1 alpha-2, e.g. MA) of phone numbers written without a country code.
    #[arg(long, value_name = "REGION")]
    pub default_region: Option<String>,
    /// Column mapping as JSON: {"CSV column": "field"}; `customAttributes.NAME` for a custom
    /// attribute, null to skip a column. Without it, headers matching field names are used.
    #[arg(long, value_name = "JSON", conflicts_with = "mapping_file")]
    pub mapping: Option<String>,
    /// The column mapping, from a JSON file.
    #[arg(long, value_name = "PATH")]
    pub mapping_file: Option<PathBuf>,
    /// Tag every imported contact (repeat, or separate with commas).
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Add every imported contact to this group, created if missing (repeat, or separate with
    /// commas).
    #[arg(long = "group", value_name = "NAME", value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Do not add the `import-YYYYMMDD-<id>` tag.
    #[arg(long)]
    pub no_import_tag: bool,
    /// An empty cell clears its field (by default it leaves the field as it is).
    #[arg(long)]
    pub empty_cells_clear: bool,
    /// The file's character encoding, a WHATWG label (windows-1252, iso-8859-1, utf-16le, …);
    /// by default the service detects it.
    #[arg(long, value_name = "LABEL")]
    pub encoding: Option<String>,
    /// How the file writes birthdays and date fields (service default: YYYY-MM-DD, which is
    /// always read too).
    #[arg(long, value_name = "FORMAT", value_parser = ["YYYY-MM-DD", "DD/MM/YYYY", "MM/DD/YYYY", "DD.MM.YYYY"])]
    pub date_format: Option<String>,
    /// Sent as `Idempotency-Key`: running again with the same key never imports twice.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Where to write the results [default: FILE.results.csv beside the input, or
    /// FILE.errors.csv with --errors-only].
    #[arg(long, value_name = "PATH")]
    pub results: Option<PathBuf>,
    /// Download only the failed rows (`errors.csv`) instead of every row (`results.csv`).
    #[arg(long)]
    pub errors_only: bool,
    /// Milliseconds between two status polls.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..))]
    pub poll_ms: u64,
    /// No progress bars: plain progress lines at most every 5 s (the default when stdout or
    /// stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// What a run did, once the import is final. `run` needs only the status; the client's tests
/// check the rest.
#[cfg_attr(not(test), allow(dead_code))]
pub struct Report {
    pub id: Uuid,
    pub status: ImportStatus,
    pub bytes_sent: u64,
    /// `None` when the import failed and its results could not be fetched.
    pub results: Option<PathBuf>,
}

/// Runs the import client; an error for a `failed` or `cancelled` import too.
pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let style = Style::detect(args.quiet);
    let plan = Plan::from_args(args)?;
    let report = execute(&plan, style).await?;
    match report.status.status.outcome() {
        Some(Outcome::Success) => Ok(()),
        _ => bail!(
            "import {} ended {}",
            report.id,
            report.status.status.as_str()
        ),
    }
}

/// Uploads the file, follows the import until it is final, saves its results.
pub async fn execute(plan: &Plan, style: Style) -> anyhow::Result<Report> {
    let file = CsvFile::open(&plan.file)?;
    plan.check_results_path()?;
    let service = Service::new(plan.base.clone(), plan.api_key.clone())?;
    service.check_access().await?;
    let (accepted, bytes_sent) = upload(&service, plan, file, style).await?;
    let id = accepted.async_session_id;
    let status = follow(&service, plan, &accepted, style).await?;
    println!("{}", status.summary_line(id));
    let results = download(&service, plan, id, &status).await?;
    if let Some(path) = &results {
        println!("{}", path.display());
    }
    Ok(Report {
        id,
        status,
        bytes_sent,
        results,
    })
}

async fn upload(
    service: &Service,
    plan: &Plan,
    file: CsvFile,
    style: Style,
) -> anyhow::Result<(Accepted, u64)> {
    let len = file.size();
    let meter = Arc::new(UploadMeter::new(style, len));
    let body = file.into_body(meter.clone());
    let sending = service.upload(
        plan.upload_url(),
        plan.content_type,
        body,
        plan.idempotency_key.as_deref(),
    );
    let answered = tokio::select! {
        answered = sending => Some(answered),
        () = ctrl_c() => None,
    };
    let sent = meter.bytes_sent();
    let accepted = match answered {
        Some(Ok(accepted)) => accepted,
        Some(Err(e)) => {
            meter.clear();
            return Err(upload_failed(e, plan, sent, len));
        }
        None => {
            meter.clear();
            return Err(upload_interrupted(service, plan, sent, len));
        }
    };
    meter.accepted(&accepted);
    Ok((accepted, sent))
}

fn upload_failed(e: ServiceError, plan: &Plan, sent: u64, len: u64) -> anyhow::Error {
    match e {
        ServiceError::Transport { .. } if sent < len => anyhow!(
            "the upload of {} stopped after {} of {}: {e}",
            plan.file.display(),
            progress::human_bytes(sent),
            progress::human_bytes(len)
        ),
        ServiceError::Transport { .. } => anyhow!(
            "{e}; the whole of {} was sent, so the import may exist: see GET /api/v1/imports",
            plan.file.display()
        ),
        e => e.into(),
    }
}

fn upload_interrupted(service: &Service, plan: &Plan, sent: u64, len: u64) -> anyhow::Error {
    let retry = match &plan.idempotency_key {
        Some(_) => "; running again with the same --idempotency-key never imports twice",
        None => "",
    };
    if sent < len {
        anyhow!(
            "interrupted during the upload of {}: nothing was imported{retry}",
            plan.file.display()
        )
    } else {
        anyhow!(
            "interrupted while the service stored {}: the import may exist, see {}{retry}",
            plan.file.display(),
            command::endpoint(service.base(), "api/v1/imports")
        )
    }
}

async fn follow(
    service: &Service,
    plan: &Plan,
    accepted: &Accepted,
    style: Style,
) -> anyhow::Result<ImportStatus> {
    let id = accepted.async_session_id;
    let mut meter = ProcessingMeter::new(style, accepted.total_rows);
    let polled = tokio::select! {
        polled = poll_until_final(service, id, plan.poll, &mut meter) => Some(polled),
        () = ctrl_c() => None,
    };
    match polled {
        Some(Ok(status)) => {
            meter.finish();
            Ok(status)
        }
        Some(Err(e)) if e.is_transient() => {
            meter.abandon();
            Err(anyhow!(
                "{e}, for {}s now; import {id} goes on in the service: {}",
                OUTAGE_LIMIT.as_secs(),
                how_to_check(service, plan, id)
            ))
        }
        Some(Err(e)) => {
            meter.abandon();
            Err(e.into())
        }
        None => {
            meter.abandon();
            Err(anyhow!(
                "interrupted; import {id} goes on in the service: {}",
                how_to_check(service, plan, id)
            ))
        }
    }
}

/// Polls until the import is final; gives up on an error that is not transient, or on one
/// that has lasted [`OUTAGE_LIMIT`].
async fn poll_until_final(
    service: &Service,
    id: Uuid,
    every: Duration,
    meter: &mut ProcessingMeter,
) -> Result<ImportStatus, ServiceError> {
    let mut outage: Option<Instant> = None;
    loop {
        match service.status(id).await {
            Ok(status) => {
                outage = None;
                meter.update(&status);
                if status.status.outcome().is_some() {
                    return Ok(status);
                }
            }
            Err(e) if e.is_transient() => match outage {
                None => {
                    meter.note(&format!("{e}; trying again"));
                    outage = Some(Instant::now());
                }
                Some(since) if since.elapsed() > OUTAGE_LIMIT => return Err(e),
                Some(_) => {}
            },
            Err(e) => return Err(e),
        }
        tokio::time::sleep(every).await;
    }
}

/// Fetches the results; for a failed or cancelled import a failure is only a warning.
async fn download(
    service: &Service,
    plan: &Plan,
    id: Uuid,
    status: &ImportStatus,
) -> anyhow::Result<Option<PathBuf>> {
    let saving = async {
        let response = service.results(id, plan.kind).await?;
        results::save(response, &plan.results).await
    };
    let saved = tokio::select! {
        saved = saving => saved,
        () = ctrl_c() => Err(anyhow!("interrupted")),
    };
    match (saved, status.status.outcome()) {
        (Ok(_), _) => Ok(Some(plan.results.clone())),
        (Err(e), Some(Outcome::Success)) => Err(anyhow!(
            "the results of import {id} were not saved: {e:#}; {}",
            how_to_check(service, plan, id)
        )),
        (Err(e), _) => {
            eprintln!("warning: no results file: {e:#}");
            Ok(None)
        }
    }
}

/// How to see an import later without this client; the key is never printed.
fn how_to_check(service: &Service, plan: &Plan, id: Uuid) -> String {
    let auth = "-H \"Authorization: Bearer $CONTACT_IMPORT_API_KEY\"";
    format!(
        "check it with\n  curl {auth} {}\nand fetch its results with\n  curl {auth} -o {} {}",
        service.status_url(id),
        plan.results.display(),
        service.results_url(id, plan.kind)
    )
}

/// Resolves on Ctrl-C; never when the signal cannot be watched.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
