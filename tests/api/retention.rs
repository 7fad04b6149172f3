//! Retention: past `RETENTION_DAYS` an import keeps its summary and loses its rows as sent and
//! its row results; contacts are never deleted.

use crate::app::spawn_app;
use crate::common::contacts;
use serde_json::{Value, json};

/// An import finished more than RETENTION_DAYS ago keeps its summary, but its rows as sent and
/// its row results are deleted: its rows and results files answer 410. A younger import keeps
/// everything, and the contacts themselves are not touched.
#[tokio::test]
async fn past_the_retention_period_rows_and_results_answer_410_and_the_summary_stays() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let old = app.import(&key, &json!({"contacts": contacts(0, 3)})).await;
    app.wait_finished(&key, &old).await;
    let young = app
        .import(&key, &json!({"contacts": contacts(10, 2)}))
        .await;
    app.wait_finished(&key, &young).await;
    let old_id: uuid::Uuid = old.parse().expect("an import id");
    sqlx::query("UPDATE imports SET finished_at = now() - interval '31 days' WHERE id = $1")
        .bind(old_id)
        .execute(&app.pool)
        .await
        .expect("age the import");

    let retention = std::time::Duration::from_secs(30 * 86_400);
    let purged = contact_import::store::maintenance::purge_expired(&app.pool, retention)
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    let again = contact_import::store::maintenance::purge_expired(&app.pool, retention)
        .await
        .expect("purge again");
    assert_eq!(again, 0, "a purged import is not purged twice");

    let status = app.get_json(&key, &format!("/api/v1/imports/{old}")).await;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["created"], 3);
    assert!(status["purgedAt"].is_string(), "{status}");
    for path in ["rows", "results.csv", "errors.csv"] {
        let response = app
            .get(&key, &format!("/api/v1/imports/{old}/{path}"))
            .await;
        assert_eq!(response.status(), 410, "{path}");
        let problem: Value = response.json().await.expect("problem+json");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("retention")),
            "{problem}"
        );
    }
    let (batches, results): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM import_batches WHERE import_id = $1),
                (SELECT count(*) FROM row_results WHERE import_id = $1)",
    )
    .bind(old_id)
    .fetch_one(&app.pool)
    .await
    .expect("count what is left");
    assert_eq!((batches, results), (0, 0));

    let status = app
        .get_json(&key, &format!("/api/v1/imports/{young}"))
        .await;
    assert!(status.get("purgedAt").is_none(), "{status}");
    assert_eq!(app.all_rows(&key, &young, "").await.len(), 2);
    let (contacts,): (i64,) = sqlx::query_as("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .expect("count contacts");
    assert_eq!(contacts, 5, "retention never deletes contacts");
    app.finish().await;
}
