//! `dryRun`: an import that applies nothing but gives every row the outcome the real run of
//! the same request then gives it, for JSON and for a CSV file.

use crate::app::spawn_app;
use crate::checks::{assert_counters_add_up, codes, contacts_snapshot};
use crate::common::{contacts, phone};
use serde_json::{Value, json};

/// A row as a dry run and the real run must agree on it.
fn verdict(row: &Value) -> (Value, Value, Vec<String>, Vec<String>) {
    (
        row["index"].clone(),
        row["status"].clone(),
        codes(row, "errors"),
        codes(row, "warnings"),
    )
}

/// `dryRun`: every row gets the outcome it would get (counters too) and nothing else changes;
/// the real run of the same request then does exactly that, row by row.
#[tokio::test]
async fn a_dry_run_predicts_the_real_run_row_by_row_and_changes_nothing() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    app.import_and_wait(&key, &json!({"contacts": contacts(0, 10)}))
        .await;
    let deleted = app.contact_by(&key, "phone=%2B212600000003").await.unwrap();
    let path = format!("/api/v1/contacts/{}", deleted["id"].as_str().unwrap());
    assert_eq!(
        app.send(&key, reqwest::Method::DELETE, &path)
            .await
            .status(),
        200
    );

    // Over three batches: new contacts, updates (some changing nothing), and each kind of
    // row-level problem.
    let mut rows = contacts(5, 1200);
    for row in rows.iter_mut().take(3) {
        row["firstName"] = json!("Renamed");
    }
    rows.extend([
        json!({"phone": phone(3), "firstName": "Back"}),
        json!({"phone": phone(1), "email": "person.0@example.com"}),
        json!({"phone": "not a phone"}),
        json!({"phone": phone(5000)}),
        json!({"phone": phone(5000), "firstName": "Twin"}),
    ]);
    let before = contacts_snapshot(&app).await;

    let dry_id = app
        .import(&key, &json!({"dryRun": true, "contacts": rows}))
        .await;
    let dry = app.wait_finished(&key, &dry_id).await;
    assert_eq!(dry["dryRun"], true, "{dry}");
    assert_counters_add_up(&dry);
    assert_eq!(
        contacts_snapshot(&app).await,
        before,
        "a dry run changes no contact"
    );
    let dry_rows = app.all_rows(&key, &dry_id, "").await;

    let real_id = app.import(&key, &json!({"contacts": rows})).await;
    let real = app.wait_finished(&key, &real_id).await;
    assert_eq!(real["dryRun"], false, "{real}");
    for counter in ["created", "updated", "skipped", "failed", "processedRows"] {
        assert_eq!(dry[counter], real[counter], "{counter}: {dry} / {real}");
    }
    assert!(real["created"].as_i64() > Some(1000), "{real}");
    let real_rows = app.all_rows(&key, &real_id, "").await;
    assert_eq!(dry_rows.len(), real_rows.len());
    for (d, r) in dry_rows.iter().zip(&real_rows) {
        assert_eq!(verdict(d), verdict(r), "dry {d} / real {r}");
        if d["status"] == "created" {
            assert!(d["contactId"].is_null(), "nothing was created: {d}");
            assert!(r["contactId"].is_string(), "{r}");
        } else {
            assert_eq!(d["contactId"], r["contactId"], "dry {d} / real {r}");
        }
    }
    // Each kind of outcome was predicted.
    let seen: std::collections::BTreeSet<String> = dry_rows
        .iter()
        .flat_map(|r| {
            let mut all = codes(r, "errors");
            all.extend(codes(r, "warnings"));
            all.push(r["status"].as_str().unwrap_or_default().to_owned());
            all
        })
        .collect();
    for expected in [
        "created",
        "updated",
        "skipped",
        "failed",
        "deleted_contact",
        "identifier_conflict",
        "invalid_phone",
        "duplicate_in_file",
    ] {
        assert!(seen.contains(expected), "{expected} missing from {seen:?}");
    }

    // A CSV file, dry: the rows' outcomes, and still no contact.
    let before = contacts_snapshot(&app).await;
    let csv = format!(
        "phone,first_name\n{},New\n{},Known\nnonsense,Bad\n",
        phone(9000),
        phone(0)
    );
    let response = app.upload_csv(&key, "?dryRun=true", csv).await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["asyncSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["dryRun"], true);
    assert_eq!(
        (
            status["created"].as_i64(),
            status["updated"].as_i64(),
            status["failed"].as_i64()
        ),
        (Some(1), Some(1), Some(1)),
        "{status}"
    );
    assert_eq!(contacts_snapshot(&app).await, before);
    assert!(
        app.contact_by(&key, "phone=%2B212600009000")
            .await
            .is_none()
    );
    app.finish().await;
}
