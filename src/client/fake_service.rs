//! The client against a fake of the service's CSV endpoints (axum on a random port): the
//! upload is streamed whole, the status is followed, the results land in place, and each
//! failure reads as one clear sentence.

use super::status::State;
use super::{ImportArgs, Plan, Style, execute, run};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

const KEY: &str = "key-of-acme";
const RESULTS: &str = "phone,first_name,import_status,errors\n+212612345678,Amina,created,\n12345,Broken,failed,invalid_phone\n";
const ERRORS: &str = "phone,first_name,import_status,errors\n12345,Broken,failed,invalid_phone\n";

/// What the fake saw and how it answers.
struct Fake {
    id: Uuid,
    final_status: &'static str,
    import_found: bool,
    /// Status polls answered 503 before the first real answer.
    outage_polls: u32,
    received: AtomicU64,
    /// The file the last upload carried, decompressed.
    file: Mutex<Vec<u8>>,
    polls: AtomicU32,
    query: Mutex<Option<String>>,
    headers: Mutex<Option<HeaderMap>>,
}

impl Fake {
    fn new(final_status: &'static str) -> Fake {
        Fake {
            id: Uuid::now_v7(),
            final_status,
            import_found: true,
            outage_polls: 0,
            received: AtomicU64::new(0),
            file: Mutex::new(Vec::new()),
            polls: AtomicU32::new(0),
            query: Mutex::new(None),
            headers: Mutex::new(None),
        }
    }
}

async fn serve(fake: Fake) -> (Arc<Fake>, String) {
    let fake = Arc::new(fake);
    let app = Router::new()
        .route("/api/v1/imports", get(list).post(accept))
        .route("/api/v1/imports/{id}", get(status))
        .route("/api/v1/imports/{id}/{file}", get(results))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, url)
}

fn problem(status: StatusCode, detail: &str, errors: serde_json::Value) -> Response {
    let body = serde_json::json!({"title": "problem", "status": status.as_u16(),
        "detail": detail, "errors": errors});
    let json = [(header::CONTENT_TYPE, "application/problem+json")];
    (status, json, body.to_string()).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {KEY}");
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
}

fn refused() -> Response {
    problem(
        StatusCode::UNAUTHORIZED,
        "unknown API key",
        serde_json::json!([]),
    )
}

async fn list(headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return refused();
    }
    axum::Json(serde_json::json!({"data": []})).into_response()
}

async fn accept(
    Shared(fake): Shared<Arc<Fake>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // What the client sent, decompressed: it gzips its files.
    let mut body = body.into_data_stream();
    let mut sent = Vec::new();
    while let Some(chunk) = body.next().await {
        sent.extend_from_slice(&chunk.unwrap());
    }
    let gzip = headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let file = if gzip {
        let mut file = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(sent.as_slice()),
            &mut file,
        )
        .expect("a gzip body");
        file
    } else {
        sent
    };
    *fake.file.lock().unwrap() = file.clone();
    fake.received.fetch_add(file.len() as u64, Ordering::SeqCst);
    if !authorized(&headers) {
        return refused();
    }
    *fake.query.lock().unwrap() = query.clone();
    *fake.headers.lock().unwrap() = Some(headers);
    if query.unwrap_or_default().contains("tags=reject") {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad import options; nothing was stored",
            serde_json::json!([{"pointer": "/mapping", "code": "unknown_field",
                "message": "no field nickname"}]),
        );
    }
    let body = serde_json::json!({"asyncSessionId": fake.id, "status": "queued", "totalRows": 3,
        "statusUrl": format!("/api/v1/imports/{}", fake.id)});
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

async fn status(Shared(fake): Shared<Arc<Fake>>, UrlPath(id): UrlPath<Uuid>) -> Response {
    if id != fake.id || !fake.import_found {
        return problem(StatusCode::NOT_FOUND, "no import", serde_json::json!([]));
    }
    let poll = fake.polls.fetch_add(1, Ordering::SeqCst);
    if poll < fake.outage_polls {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "restarting",
            serde_json::json!([]),
        );
    }
    let first = poll == fake.outage_polls;
    let (status, processed, created, failed) = match first {
        true => ("processing", 1, 1, 0),
        false => (fake.final_status, 3, 2, 1),
    };
    axum::Json(
        serde_json::json!({"asyncSessionId": id, "source": "csv", "status": status,
        "totalRows": 3, "processedRows": processed, "created": created, "updated": 0,
        "skipped": 0, "failed": failed}),
    )
    .into_response()
}

async fn results(UrlPath((_, file)): UrlPath<(Uuid, String)>) -> Response {
    match file.as_str() {
        "results.csv" => RESULTS.into_response(),
        "errors.csv" => ERRORS.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ImportArgs,
}

/// A folder of its own with a CSV file of `rows` rows.
fn csv_file(rows: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("client-{}", Uuid::new_v4()));
    std::fs::create_dir(&dir).unwrap();
    let mut text = String::from("phone,first_name\n");
    for i in 0..rows {
        text.push_str(&format!("+2126{i:08},Name {i}\n"));
    }
    let path = dir.join("contacts.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn args(file: &Path, url: &str, key: &str, extra: &[&str]) -> ImportArgs {
    let file = file.to_str().unwrap();
    let argv = [
        "import",
        file,
        "--url",
        url,
        "--api-key",
        key,
        "--poll-ms",
        "20",
    ];
    Cli::try_parse_from(argv.iter().chain(extra)).unwrap().args
}

fn plan(file: &Path, url: &str, key: &str, extra: &[&str]) -> Plan {
    Plan::from_args(args(file, url, key, extra)).unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_file_is_streamed_whole_followed_and_its_results_saved_beside_it() {
    let (fake, url) = serve(Fake::new("completedWithErrors")).await;
    let file = csv_file(150_000);
    let len = std::fs::metadata(&file).unwrap().len();
    assert!(len > 3_000_000, "several chunks: {len}");
    let extra = [
        "--tag",
        "vip",
        "--tag",
        "new",
        "--group",
        "Customers",
        "--mapping",
        r#"{"phone": "phone", "first_name": "firstName"}"#,
        "--idempotency-key",
        "first",
    ];
    let report = execute(&plan(&file, &url, KEY, &extra), Style::Lines)
        .await
        .unwrap();

    assert_eq!(report.bytes_sent, len);
    assert_eq!(fake.received.load(Ordering::SeqCst), len);
    assert_eq!(
        *fake.file.lock().unwrap(),
        std::fs::read(&file).unwrap(),
        "the file arrives whole, once decompressed"
    );
    assert_eq!(report.id, fake.id);
    assert_eq!(report.status.status, State::CompletedWithErrors);
    assert_eq!((report.status.created, report.status.failed), (2, 1));
    let results = file.with_file_name("contacts.results.csv");
    assert_eq!(report.results.as_deref(), Some(results.as_path()));
    assert_eq!(std::fs::read_to_string(&results).unwrap(), RESULTS);
    let dir = file.parent().unwrap();
    assert_eq!(files_in(dir), ["contacts.csv", "contacts.results.csv"]);

    let query = fake.query.lock().unwrap().clone().unwrap();
    assert_eq!(
        query,
        "mapping=%7B%22first_name%22%3A%22firstName%22%2C%22phone%22%3A%22phone%22%7D&tags=vip%2Cnew&groupNames=Customers"
    );
    let headers = fake.headers.lock().unwrap().clone().unwrap();
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv");
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(headers["idempotency-key"], "first");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn errors_only_saves_the_failed_rows_where_asked() {
    let (_fake, url) = serve(Fake::new("completed")).await;
    let file = csv_file(3);
    let target = file.with_file_name("failed-rows.csv");
    let extra = ["--errors-only", "--results", target.to_str().unwrap()];
    execute(&plan(&file, &url, KEY, &extra), Style::Lines)
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), ERRORS);
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_failed_import_fails_the_command_yet_leaves_its_results() {
    let (fake, url) = serve(Fake::new("failed")).await;
    let file = csv_file(3);
    let err = run(args(&file, &url, KEY, &["--quiet"])).await.unwrap_err();
    assert_eq!(err.to_string(), format!("import {} ended failed", fake.id));
    assert!(file.with_file_name("contacts.results.csv").exists());
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_refused_key_is_said_before_any_byte_is_uploaded() {
    let (fake, url) = serve(Fake::new("completed")).await;
    let file = csv_file(3);
    let err = execute(&plan(&file, &url, "wrong", &[]), Style::Lines)
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "the service at {url} refused the API key (401 Unauthorized); check --api-key or CONTACT_IMPORT_API_KEY"
        )
    );
    assert_eq!(fake.received.load(Ordering::SeqCst), 0);
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_refused_upload_shows_the_problem_detail_and_each_error() {
    let (_fake, url) = serve(Fake::new("completed")).await;
    let file = csv_file(3);
    let err = execute(&plan(&file, &url, KEY, &["--tag", "reject"]), Style::Lines)
        .await
        .err()
        .unwrap();
    assert_eq!(
        format!("{err:#}"),
        "bad import options; nothing was stored\n  /mapping: no field nickname (unknown_field)"
    );
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn an_unreachable_service_is_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let file = csv_file(3);
    let err = execute(&plan(&file, &url, KEY, &[]), Style::Lines)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with(&format!("cannot reach the service at {url}: ")),
        "{err}"
    );
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn an_import_that_vanishes_while_followed_is_named() {
    let (fake, url) = serve(Fake {
        import_found: false,
        ..Fake::new("completed")
    })
    .await;
    let file = csv_file(3);
    let err = execute(&plan(&file, &url, KEY, &[]), Style::Lines)
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "import {} not found at {url} (404): it no longer exists, or the API key belongs to another tenant",
            fake.id
        )
    );
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_short_outage_while_following_is_ridden_out() {
    let (fake, url) = serve(Fake {
        outage_polls: 3,
        ..Fake::new("completed")
    })
    .await;
    let file = csv_file(3);
    let report = execute(&plan(&file, &url, KEY, &[]), Style::Lines)
        .await
        .unwrap();
    assert_eq!(report.status.status, State::Completed);
    assert_eq!(fake.polls.load(Ordering::SeqCst), 5);
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_missing_file_is_named_before_the_service_is_called() {
    let err = execute(
        &plan(
            Path::new("/no/such/contacts.csv"),
            "http://127.0.0.1:9",
            KEY,
            &[],
        ),
        Style::Lines,
    )
    .await
    .err()
    .unwrap();
    assert!(
        format!("{err:#}").starts_with("cannot read /no/such/contacts.csv: "),
        "{err:#}"
    );
}
