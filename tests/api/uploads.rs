//! An upload's life apart from its rows: cancelled before its batches start, cut off by the
//! client half-way, or abandoned by a process that crashed while receiving it. Either way the
//! import ends and nothing of it is applied.

use crate::app::{spawn_app, spawn_with};
use crate::common::{phone, test_settings};
use contact_import::startup::Roles;
use serde_json::Value;

#[tokio::test]
async fn a_cancelled_import_skips_and_counts_what_has_not_started() {
    let mut settings = test_settings().await;
    settings.batch_size = 10;
    // No workers: nothing starts, so everything is cancelled.
    let app = spawn_with(settings, Roles::API).await;
    let key = app.tenant("acme").await;
    let mut file = String::from("phone\n");
    for n in 0..50 {
        file.push_str(&format!("{}\n", phone(n)));
    }
    let id = app.import_csv(&key, "", file).await;
    let response = app
        .send(
            &key,
            reqwest::Method::POST,
            &format!("/api/v1/imports/{id}/cancel"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let status: Value = response.json().await.unwrap();
    assert_eq!(status["status"], "cancelled");
    assert_eq!(
        (status["processedRows"].as_i64(), status["skipped"].as_i64()),
        (Some(50), Some(50))
    );
    assert!(status["finishedAt"].is_string());
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(rows.len(), 50);
    assert!(
        rows.iter()
            .all(|r| r["status"] == "skipped" && r["warnings"][0]["code"] == "cancelled")
    );
    let again = app
        .send(
            &key,
            reqwest::Method::POST,
            &format!("/api/v1/imports/{id}/cancel"),
        )
        .await;
    assert_eq!(again.status(), 409);
    let other = app.tenant("other").await;
    let foreign = app
        .send(
            &other,
            reqwest::Method::POST,
            &format!("/api/v1/imports/{id}/cancel"),
        )
        .await;
    assert_eq!(foreign.status(), 404);
    let (contacts,): (i64,) = sqlx::query_as("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(contacts, 0);
    app.finish().await;
}

#[tokio::test]
async fn an_upload_cut_off_half_way_leaves_a_failed_import_and_applies_nothing() {
    let mut settings = test_settings().await;
    settings.batch_size = 10;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let mut head = String::from("phone,firstName\n");
    for n in 0..100 {
        head.push_str(&format!("{},P{n}\n", phone(n)));
    }
    // The body sends its first part, waits until the service has started storing the file
    // (its import exists), then breaks off.
    let pool = app.pool.clone();
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(0, move |step| {
        let (pool, head) = (pool.clone(), head.clone());
        async move {
            match step {
                0 => Some((Ok(head), 1)),
                1 => {
                    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
                    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM imports")
                        .fetch_one(&pool)
                        .await
                        .unwrap()
                        == 0
                    {
                        assert!(
                            tokio::time::Instant::now() < deadline,
                            "the service never started storing the upload"
                        );
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    Some((Err(std::io::Error::other("client went away")), 2))
                }
                _ => None,
            }
        }
    }));
    let result = app
        .request(reqwest::Method::POST, "/api/v1/imports")
        .bearer_auth(&key)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await;
    assert!(result.is_err() || result.is_ok_and(|r| r.status().is_client_error()));
    // The service notices the cut on its own; poll until the import it had started is failed.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let import = loop {
        let list = app.get_json(&key, "/api/v1/imports").await;
        if let Some(import) = list["data"]
            .as_array()
            .and_then(|d| d.first())
            .filter(|i| i["status"] == "failed")
        {
            break import.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed import: {list}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        import["error"]
            .as_str()
            .unwrap()
            .contains("nothing was applied"),
        "{import}"
    );
    assert_eq!(
        (
            import["totalRows"].as_i64(),
            import["processedRows"].as_i64()
        ),
        (Some(0), Some(0))
    );
    let (batches, contacts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM import_batches), (SELECT count(*) FROM contacts)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((batches, contacts), (0, 0));
    app.finish().await;
}

#[tokio::test]
async fn an_upload_abandoned_by_a_crashed_process_is_failed_later_and_applies_nothing() {
    use contact_import::store::maintenance::fail_abandoned_uploads;
    use std::time::Duration;
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    // What a process that died while receiving a file leaves behind: a queued CSV import with
    // held batches, the last stored a while ago. Beside it, one being received right now.
    let tenant: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for (id, age) in [
        (uuid::Uuid::now_v7(), "20 minutes"),
        (uuid::Uuid::now_v7(), "1 second"),
    ] {
        // One transaction: the service's maintenance task (every second) sees both or neither.
        let mut tx = app.pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO imports (id, tenant_id, source, status, options, total_rows, batch_count, created_at)
             VALUES ($1, $2, 'csv', 'queued', '{\"dedupeOn\":\"phone\",\"mode\":\"upsert\",\"overwrite\":true,\"defaultRegion\":null,\"restoreDeleted\":false}', 0, 0, now() - $3::interval)",
        )
        .bind(id)
        .bind(tenant)
        .bind(age)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO import_batches (import_id, tenant_id, batch_no, first_row, row_count, payload, state, created_at)
             VALUES ($1, $2, 0, 0, 1, '[]', 'held', now() - $3::interval)",
        )
        .bind(id)
        .bind(tenant)
        .bind(age)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    // The service's own maintenance task may have done it already; either way it is done once.
    fail_abandoned_uploads(&app.pool, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(
        fail_abandoned_uploads(&app.pool, Duration::from_secs(600))
            .await
            .unwrap(),
        0
    );
    let list = app.get_json(&key, "/api/v1/imports").await;
    let statuses: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["status"].as_str())
        .collect();
    assert_eq!(statuses, ["queued", "failed"]);
    assert!(
        list["data"][1]["error"]
            .as_str()
            .unwrap()
            .contains("nothing was applied")
    );
    let (held,): (i64,) = sqlx::query_as("SELECT count(*) FROM import_batches")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(held, 1, "only the live upload keeps its batch");
    app.finish().await;
}

/// A file upload whose body is its header row now and the rest when `release` is told; the
/// answer comes once it is all sent.
fn held_upload(
    app: &crate::app::TestApp,
    key: &str,
    rows: std::ops::Range<usize>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<reqwest::Response>,
) {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let body_rows: String = rows.map(|n| format!("{},P{n}\n", phone(n))).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(
        (0, Some(released), body_rows),
        |(step, released, rows)| async move {
            match step {
                0 => Some((
                    Ok::<_, std::io::Error>("phone,firstName\n".to_owned()),
                    (1, released, rows),
                )),
                1 => {
                    if let Some(released) = released {
                        let _ = released.await;
                    }
                    Some((Ok(rows), (2, None, String::new())))
                }
                _ => None,
            }
        },
    ));
    let request = app
        .request(reqwest::Method::POST, "/api/v1/imports")
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(body);
    (
        release,
        tokio::spawn(async move { request.send().await.expect("an answer") }),
    )
}

/// Waits until `n` imports of the tenant exist: their uploads hold their places by then.
async fn wait_imports(app: &crate::app::TestApp, key: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let list = app.get_json(key, "/api/v1/imports").await;
        if list["data"].as_array().map(Vec::len) == Some(n) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A process receives a bounded number of files at once, since each holds some memory: past
/// a tenant's own share its next upload is a 429, past the process's a 503, both with
/// Retry-After and before the body is read; the uploads under way go on, and their places
/// come back when they are stored.
#[tokio::test]
async fn the_files_received_at_once_are_bounded_per_tenant_and_per_process() {
    let mut settings = test_settings().await;
    settings.max_concurrent_uploads = 3;
    settings.max_tenant_uploads = 2;
    let app = spawn_with(settings, Roles::ALL).await;
    let (a, b) = (app.tenant("a").await, app.tenant("b").await);
    let file = |from: usize| format!("phone,firstName\n{},X\n", phone(from));

    let (release_a1, a1) = held_upload(&app, &a, 0..50);
    let (release_a2, a2) = held_upload(&app, &a, 50..100);
    wait_imports(&app, &a, 2).await;
    let refused = app.upload_csv(&a, "", file(1000)).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "5");
    let (release_b1, b1) = held_upload(&app, &b, 100..150);
    wait_imports(&app, &b, 1).await;
    let refused = app.upload_csv(&b, "", file(1001)).await;
    assert_eq!(refused.status(), 503);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("MAX_CONCURRENT_UPLOADS")),
        "{problem}"
    );

    for release in [release_a1, release_a2, release_b1] {
        release.send(()).expect("the upload waits");
    }
    for upload in [a1, a2, b1] {
        let answer = upload.await.unwrap();
        assert_eq!(answer.status(), 202);
    }
    // The places are back.
    let id = app.import_csv(&a, "", file(1002)).await;
    let status = app.wait_finished(&a, &id).await;
    assert_eq!(status["created"], 1, "{status}");
    app.finish().await;
}
