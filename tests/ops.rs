//! Operations, as their users meet them:
//! - the operations page in a real headless Chromium, driven over WebDriver (Debian's
//!   `chromium` and `chromium-driver`; `deploy/test.sh` installs them when missing): sign in
//!   with the admin token, start an import, and watch the page show it progressing to done. The
//!   last screenshot is kept in `target/test-artifacts/ops-page.png`;
//! - the OpenAPI contract: schemathesis (from PyPI; `deploy/test.sh` installs it into
//!   `target/contract/venv`) against the running service and its `/openapi.json`.

mod common;

use common::{spawn_with, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

const ADMIN_TOKEN: &str = "ops-test-admin-token";

/// A chromedriver child process, killed when dropped.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} ({e}): install chromium and chromium-driver (deploy/test.sh does)")
            });
        let mut driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .ok();
            if let Some(response) = ready
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let session = driver
            .call(
                reqwest::Method::POST,
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                 "--disable-dev-shm-usage", "--window-size=1280,1000"]
                    }
                }}}),
            )
            .await;
        driver.session = session["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_owned();
        driver
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let request = self.http.request(method, &url);
        let request = if body.is_null() {
            request
        } else {
            request.json(&body)
        };
        let answer: Value = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
            .json()
            .await
            .expect("a WebDriver answer");
        assert!(
            answer["value"]["error"].is_null(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    async fn session_call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body).await
    }

    async fn open(&self, url: &str) {
        self.session_call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .session_call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.session_call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.session_call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            json!({}),
        )
        .await;
    }

    async fn script(&self, script: &str, args: Value) -> Value {
        self.session_call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    async fn screenshot(&self, name: &str) {
        let png = self
            .session_call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let bytes = base64_decode(png.as_str().expect("a base64 screenshot"));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
        std::fs::write(dir.join(name), bytes).expect("write the screenshot");
    }

    async fn quit(&self) {
        self.session_call(reqwest::Method::DELETE, "", Value::Null)
            .await;
    }
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// What the page shows of one import: where it is listed, its status and its progress.
async fn seen(driver: &Driver, id: &str) -> Value {
    driver
        .script(
            "const id = arguments[0];
             const running = document.querySelector(`#running tr[data-import=\"${id}\"]`);
             if (running) {
               const bar = running.querySelector('progress');
               return {table: 'running', status: running.dataset.status, value: bar.value, max: bar.max};
             }
             const done = document.querySelector(`#finished tr[data-import=\"${id}\"]`);
             if (done) return {table: 'finished', status: done.dataset.status};
             return {table: null};",
            json!([id]),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_page_shows_an_import_progressing_to_done() {
    let mut settings = test_settings().await;
    settings.admin_token = Some(ADMIN_TOKEN.into());
    // One worker and small batches: the import takes a few seconds, long enough to watch.
    settings.workers = 1;
    settings.batch_size = 20;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;

    // Without the token the data is refused; the page itself holds no data.
    let anonymous = app
        .client
        .get(app.url("/api/v1/ops/overview"))
        .send()
        .await
        .expect("GET overview");
    assert_eq!(anonymous.status(), 401);

    let driver = Driver::start().await;
    driver.open(&app.url("/ops")).await;
    driver.type_into("#token", ADMIN_TOKEN).await;
    driver.click("#sign-in").await;

    let mut csv = String::from("phone,first_name\n");
    for n in 0..6000 {
        csv.push_str(&format!("{},Row{n}\n", common::phone(n)));
    }
    let response = app.upload_csv(&key, "", csv).await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("JSON");
    let id = answer["asyncSessionId"].as_str().expect("an id").to_owned();

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut progress = Vec::new();
    loop {
        let shown = seen(&driver, &id).await;
        match shown["table"].as_str() {
            Some("running") => {
                let value = shown["value"].as_f64().expect("a progress value");
                if progress.last() != Some(&value) {
                    progress.push(value);
                }
                if progress.len() == 2 {
                    driver.screenshot("ops-page-running.png").await;
                }
            }
            Some("finished") => {
                assert_eq!(shown["status"], "completed", "{shown}");
                break;
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed the import finished; progress seen: {progress:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    driver.screenshot("ops-page.png").await;
    assert!(
        progress.iter().any(|v| *v > 0.0 && *v < 6000.0),
        "the page should show the import part-way: {progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress goes forward: {progress:?}"
    );
    let rate = driver
        .script(
            "return document.getElementById('rate').textContent;",
            json!([]),
        )
        .await;
    assert_ne!(rate, "–", "rows/s is shown");
    driver.quit().await;
    app.finish().await;
}

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
        .client
        .post(app.url("/api/v1/fields"))
        .bearer_auth(&key)
        .json(&json!({"name": "plan", "type": "enum", "options": ["free", "pro"]}))
        .send()
        .await
        .expect("create a field");
    assert_eq!(field.status(), 201);
    app.import_and_wait(&key, &json!({"contacts": common::contacts(0, 20)}))
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
            .args(["run", &spec, "--workers", "2", "--no-color"])
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
        stdout.contains("Tested: 21"),
        "schemathesis should test 21 operations:\n{stdout}"
    );
    app.finish().await;
}
