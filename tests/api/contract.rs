//! The OpenAPI contract: schemathesis (from PyPI; `deploy/test.sh` installs it into
//! `target/contract/venv`) against the running service and its `/openapi.json`.

use crate::app::{ADMIN_TOKEN, spawn_with};
use crate::common::{contacts, test_settings};
use contact_import::startup::Roles;
use serde_json::json;
use std::process::{Command, Stdio};

/// schemathesis, from `SCHEMATHESIS` or the venv `deploy/test.sh` makes.
fn schemathesis() -> std::path::PathBuf {
    if let Ok(path) = std::env::var("SCHEMATHESIS") {
        return path.into();
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/contract/venv/bin/st");
    assert!(
        path.exists(),
        "{} is missing: run `bash deploy/venv.sh target/contract/venv tests/contract/requirements.txt` (deploy/test.sh does), or set SCHEMATHESIS",
        path.display()
    );
    path
}

/// Every answer of the running service, to requests generated from its own `/openapi.json`
/// (valid and invalid ones, and sequences that follow the document's links from a new import to
/// its status, rows and files), is documented there: status, content type, headers and body
/// schema; no 5xx; unauthenticated calls are refused; invalid requests are rejected.
#[tokio::test]
async fn every_answer_keeps_the_openapi_contract() {
    let mut settings = test_settings().await;
    settings.admin_token = Some(ADMIN_TOKEN.to_owned());
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("contract").await;
    // Something for the look-ups to find: a field, and an import that created contacts.
    let field = app
        .request(reqwest::Method::POST, "/api/v1/fields")
        .bearer_auth(&key)
        .json(&json!({"name": "plan", "type": "enum", "options": ["free", "pro"]}))
        .send()
        .await
        .expect("create a field");
    assert_eq!(field.status(), 201);
    app.import_and_wait(&key, &json!({"contacts": contacts(0, 20)}))
        .await;

    // Found by this run: a page number past the last one overflowed the offset (a panic, and a
    // connection closed without an answer); it is a 422 now.
    let huge = app
        .get(
            &key,
            "/api/v1/contacts?page=9223372036854775807&perPage=1000",
        )
        .await;
    assert_eq!(huge.status(), 422);

    let st = schemathesis();
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/schemathesis.toml");
    let report_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&report_dir).expect("create target/test-artifacts");
    let seed = std::env::var("CONTRACT_SEED").unwrap_or_else(|_| "20261123".into());
    let examples = std::env::var("CONTRACT_MAX_EXAMPLES").unwrap_or_else(|_| "50".into());
    let spec = app.url("/openapi.json");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&st)
            .arg("--config-file")
            .arg(&config)
            // One worker: with two threads, Hypothesis (describing its strategies' lambdas by
            // parsing their source) sometimes hit CPython 3.11's "AST constructor recursion
            // depth mismatch" and the run ended in a runtime error that no answer caused.
            .args(["run", &spec, "--workers", "1", "--no-color"])
            .args(["--seed", &seed, "--max-examples", &examples])
            .args(["--report", "junit", "--report-dir"])
            .arg(&report_dir)
            // Hypothesis keeps its caches in the working directory.
            .current_dir(&report_dir)
            .env("CONTRACT_API_KEY", &key)
            .env("CONTRACT_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", st.display()))
    })
    .await
    .expect("schemathesis ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found answers that break the contract:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It really tested: every operation of the document was exercised (schemathesis leaves
    // out the document's own path, /openapi.json).
    assert!(
        stdout.contains("Tested: 25"),
        "schemathesis should test 25 operations:\n{stdout}"
    );
    app.finish().await;
}
