//! What operators rely on: health and readiness, `/metrics` and the queue depths, planner
//! statistics kept fresh without autovacuum, and the operations page in a real headless
//! Chromium, driven over WebDriver (Debian's `chromium` and `chromium-driver`;
//! `deploy/test.sh` installs them when missing): sign in with the admin token, start an
//! import, and watch the page show it progressing to done. The last screenshot is kept in
//! `target/test-artifacts/ops-page.png`.

use crate::app::{ADMIN_TOKEN, spawn_app, spawn_with};
use crate::common::{contacts, phone, test_settings};
use crate::webdriver::Driver;
use contact_import::startup::Roles;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test]
async fn health_and_readiness_report_the_dependencies() {
    let app = spawn_app().await;
    let health = app
        .request(reqwest::Method::GET, "/healthz")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Readiness turns 200 once the relay has connected to the broker.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready = app
            .request(reqwest::Method::GET, "/readyz")
            .send()
            .await
            .unwrap();
        if ready.status() == 200 {
            let body: Value = ready.json().await.unwrap();
            assert_eq!(body["database"], "up");
            assert_eq!(body["broker"], "up");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.finish().await;
}

/// `/metrics` after an import: the row counters are the import's, the imports gauge counts it,
/// the outbox is empty, the queue series come from the broker (its consumers are this
/// process's workers), and `/api/v1/ops/queues` shows the same queues.
#[tokio::test]
async fn metrics_and_queue_depths_match_the_imports() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let mut rows = contacts(0, 5);
    rows.push(json!({"phone": "not a phone"}));
    let status = app.import_and_wait(&key, &json!({"contacts": rows})).await;
    assert_eq!(status["status"], "completedWithErrors", "{status}");

    let response = app
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("metrics text");
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    for outcome in ["created", "updated", "skipped", "failed"] {
        assert_eq!(
            value(&format!(
                r#"contact_import_rows_total{{outcome="{outcome}"}}"#
            )),
            status[outcome].as_f64().expect("a count"),
            "{outcome}"
        );
    }
    assert_eq!(
        value(r#"contact_import_imports{status="completedWithErrors"}"#),
        1.0
    );
    assert_eq!(value(r#"contact_import_imports{status="queued"}"#), 0.0);
    assert_eq!(value("contact_import_outbox_pending"), 0.0);
    assert_eq!(value("contact_import_events_pending"), 0.0);
    assert_eq!(value(r#"contact_import_callbacks{status="pending"}"#), 0.0);
    assert!(value("contact_import_batch_duration_seconds_count") >= 1.0);
    let batches = format!("{}.batches", app.settings.queue_prefix);
    assert_eq!(
        value(&format!(
            r#"contact_import_queue_messages{{queue="{batches}"}}"#
        )),
        0.0
    );
    assert_eq!(
        value(&format!(
            r#"contact_import_queue_consumers{{queue="{batches}"}}"#
        )),
        app.settings.workers as f64
    );

    let queues = app.get_json(&key, "/api/v1/ops/queues").await;
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .filter_map(|q| q["name"].as_str())
        .collect();
    let dead = format!("{}.batches.dlq", app.settings.queue_prefix);
    assert_eq!(names, [batches.as_str(), dead.as_str()], "{queues}");
    assert_eq!(queues["queues"][0]["consumers"], app.settings.workers);
    let anonymous = app
        .request(reqwest::Method::GET, "/api/v1/ops/queues")
        .send()
        .await
        .expect("GET without a key");
    assert_eq!(anonymous.status(), 401);
    app.finish().await;
}

#[tokio::test]
async fn after_a_big_import_the_service_refreshes_the_planner_statistics_itself() {
    // Autovacuum may be off (it is on CI machines): the service must not depend on it.
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    app.import_and_wait(&key, &json!({"contacts": contacts(0, 3000)}))
        .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    wait_until(
        &app.pool,
        deadline,
        "last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL",
        "contacts was never analysed",
    )
    .await;
    let (estimate,): (f32,) =
        sqlx::query_as("SELECT reltuples FROM pg_class WHERE relname = 'contacts'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    // The first analysis comes once 1,000 rows changed (the next once four times the rows of
    // then changed): however the batches fell between the maintenance task's ticks, the
    // statistics know at least 1,000 of the 3,000 rows, not an empty table.
    assert!(estimate >= 1000.0, "statistics still say {estimate} rows");

    // Once imports pause it vacuums `contacts` too, so that a deep page skips its offset in
    // the index alone (migration 0023): no contact is read but the page's.
    wait_until(
        &app.pool,
        deadline,
        "n_ins_since_vacuum < 1000",
        "contacts was never vacuumed",
    )
    .await;
    use contact_import::store::contacts::{SortKey, offset_ids_sql};
    let tenant: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'acme'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for sort in [SortKey::CreatedAt, SortKey::LastName] {
        let (plan,): (Value,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, FORMAT JSON) {}",
            offset_ids_sql(sort, false)
        )))
        .bind(tenant)
        .bind(false)
        .bind(1400_i64)
        .bind(101_i64)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let scan = &plan[0]["Plan"]["Plans"][0];
        assert_eq!(scan["Node Type"], "Index Only Scan", "{sort:?}: {plan}");
        assert_eq!(scan["Heap Fetches"], 0, "{sort:?}: {plan}");
        assert_eq!(scan["Actual Rows"], 1501, "{sort:?}: {plan}");
    }
    app.finish().await;
}

/// Polls `contacts`' row of `pg_stat_user_tables` until `condition` holds of it; fails with
/// `never` once `deadline` has passed.
async fn wait_until(
    pool: &sqlx::PgPool,
    deadline: tokio::time::Instant,
    condition: &str,
    never: &str,
) {
    loop {
        let holds: Option<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {condition} FROM pg_stat_user_tables WHERE relname = 'contacts'"
        )))
        .fetch_optional(pool)
        .await
        .unwrap();
        if holds == Some(true) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{never}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
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
        .request(reqwest::Method::GET, "/api/v1/ops/overview")
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
        csv.push_str(&format!("{},Row{n}\n", phone(n)));
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

/// `AMQP_URL` may list a cluster's nodes: each connection goes to one that answers, and a node
/// that is gone (here a port nothing listens on) is passed over, by the processes' connections
/// and by the running service alike.
#[tokio::test]
async fn a_list_of_broker_nodes_is_tried_in_turn_and_a_dead_node_is_passed_over() {
    let dead = "amqp://guest:guest@127.0.0.1:1/%2f";
    let nodes = format!("{dead}, {}", crate::common::amqp_url());
    // Connections start at a rotating node: of three, at least one starts at the dead one.
    for _ in 0..3 {
        let connection = contact_import::broker::connect(&nodes, "node list test")
            .await
            .expect("the live node answers");
        assert!(connection.status().connected());
        let _ = connection.close(200, "bye".into()).await;
    }
    assert!(
        contact_import::broker::connect(dead, "node list test")
            .await
            .is_err()
    );
    let mut settings = test_settings().await;
    settings.amqp_url = nodes;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let status = app
        .import_and_wait(&key, &json!({"contacts": contacts(0, 1200)}))
        .await;
    assert_eq!(status["created"], 1200, "{status}");
    app.finish().await;
}
