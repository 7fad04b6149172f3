//! The bounds on a file's shape: at most 1,000 columns (a 422, nothing stored), a record over
//! 1 MiB fails its own row and the file goes on, and a row with more fields than the header
//! fails alone without the service holding its extra fields.

use crate::app::spawn_app;
use crate::checks::codes;
use crate::common::phone;
use serde_json::Value;

#[tokio::test]
async fn a_file_with_more_than_a_thousand_columns_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let header = |columns: usize| {
        let mut header: Vec<String> = vec!["phone".into()];
        header.extend((1..columns).map(|n| format!("c{n}")));
        header.join(",")
    };
    for (columns, code) in [(20_000, "too_many_columns"), (200_000, "header_too_long")] {
        let file = format!("{}\n{},x\n", header(columns), phone(1));
        let response = app.upload_csv(&key, "", file).await;
        assert_eq!(response.status(), 422);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["code"], code, "{problem}");
    }
    // The count is in the message; a header past the record limit (200,000 columns are more
    // than 1 MiB) is refused before its columns are counted.
    let response = app
        .upload_csv(&key, "", format!("{}\n", header(20_000)))
        .await;
    let problem: Value = response.json().await.unwrap();
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("20000") && message.contains("1000"),
        "{message}"
    );
    let imports = app.get_json(&key, "/api/v1/imports").await;
    assert_eq!(
        imports["data"].as_array().map(Vec::len),
        Some(0),
        "{imports}"
    );
    // A thousand columns are fine.
    let row = format!("{}{}", phone(2), ",".repeat(999));
    let id = app
        .import_csv(&key, "", format!("{}\n{row}\n", header(1000)))
        .await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["created"], 1, "{status}");
    app.finish().await;
}

#[tokio::test]
async fn a_record_over_a_mebibyte_fails_alone_and_the_file_goes_on() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let huge = "n".repeat(3 * 1024 * 1024);
    let file = format!(
        "phone,firstName\n{},Before\n{},\"{huge}\"\n{},After\n{},\"{huge}\nwith a line break\"\n{},Last\n",
        phone(1),
        phone(2),
        phone(3),
        phone(4),
        phone(5),
    );
    let id = app.import_csv(&key, "", file).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["totalRows"], 5, "{status}");
    assert_eq!(status["created"], 3, "{status}");
    assert_eq!(status["failed"], 2, "{status}");
    let rows = app.all_rows(&key, &id, "").await;
    for overlong in [1, 3] {
        assert_eq!(codes(&rows[overlong], "errors"), ["invalid_row"]);
        let message = rows[overlong]["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("longer than 1048576 bytes"), "{message}");
    }
    for (index, name) in [(0, "Before"), (2, "After"), (4, "Last")] {
        assert_eq!(rows[index]["status"], "created", "{}", rows[index]);
        let contact = app
            .contact_by(
                &key,
                &format!("phone={}", phone(index + 1).replace('+', "%2B")),
            )
            .await
            .unwrap();
        assert_eq!(contact["firstName"], name);
    }
    app.finish().await;
}

#[tokio::test]
async fn a_row_with_many_more_fields_than_the_header_fails_alone() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let file = format!(
        "phone,firstName\n{},A\n{},B{}\n{},C\n",
        phone(1),
        phone(2),
        ",".repeat(100_000),
        phone(3)
    );
    let id = app.import_csv(&key, "", file).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(
        (status["created"].as_i64(), status["failed"].as_i64()),
        (Some(2), Some(1))
    );
    let rows = app.all_rows(&key, &id, "").await;
    let message = rows[1]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("100002 fields"), "{message}");
    // Its line in the results file has the header's columns, not a hundred thousand.
    let results = app
        .get_text(&key, &format!("/api/v1/imports/{id}/results.csv"))
        .await;
    let line = results.lines().nth(2).unwrap();
    assert!(line.len() < 1000, "{} bytes", line.len());
    app.finish().await;
}
