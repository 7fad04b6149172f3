//! CSV files end to end: uploads as real clients send them (raw and multipart), the mapping,
//! duplicates in a file, empty cells, the results and errors files read back, and a dry run
//! of a file.

use crate::app::{TestApp, spawn_app, spawn_with};
use crate::checks::urlencode;
use crate::common::{phone, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};

async fn csv_file(app: &TestApp, key: &str, id: &str, name: &str) -> Vec<Vec<String>> {
    let response = app.get(key, &format!("/api/v1/imports/{id}/{name}")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn status_of(row: &Value) -> &str {
    row["status"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_file_is_imported_and_its_results_file_matches_it_row_by_row() {
    let mut settings = test_settings().await;
    settings.batch_size = 100;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let mut file = String::from("Phone,First Name,last_name,E-mail,Notes\n");
    for n in 0..1000 {
        let p = if n == 500 {
            "not a phone".to_owned()
        } else {
            phone(n)
        };
        file.push_str(&format!(
            "{p},First{n},Benali,person.{n}@example.com,note {n}\n"
        ));
    }
    let id = app.import_csv(&key, "", file.clone()).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["source"], "csv");
    assert_eq!(
        (
            status["totalRows"].as_i64(),
            status["created"].as_i64(),
            status["failed"].as_i64()
        ),
        (Some(1000), Some(999), Some(1))
    );

    let results = csv_file(&app, &key, &id, "results.csv").await;
    assert_eq!(
        results[0],
        [
            "Phone",
            "First Name",
            "last_name",
            "E-mail",
            "Notes",
            "import_status",
            "errors"
        ]
    );
    assert_eq!(results.len(), 1001);
    let original: Vec<Vec<&str>> = file
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    for (i, line) in results[1..].iter().enumerate() {
        assert_eq!(&line[..5], original[i].as_slice(), "row {i}");
        let expected = if i == 500 { "failed" } else { "created" };
        assert_eq!(line[5], expected, "row {i}");
    }
    assert!(
        results[501][6].contains("invalid_phone"),
        "{:?}",
        results[501]
    );
    let errors = csv_file(&app, &key, &id, "errors.csv").await;
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[1][1], "First500");

    let contact = app
        .contact_by(&key, &format!("phone={}", phone(42).replace('+', "%2B")))
        .await
        .unwrap();
    assert_eq!(
        (contact["firstName"].as_str(), contact["lastName"].as_str()),
        (Some("First42"), Some("Benali"))
    );
    assert_eq!(contact["email"], "person.42@example.com");
    app.finish().await;
}

#[tokio::test]
async fn files_as_people_send_them_are_read() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    // BOM, semicolons, CRLF, a quoted field with an embedded newline and delimiter, a ragged
    // row, a row that is not UTF-8, and blank trailing lines.
    let mut file: Vec<u8> = b"\xEF\xBB\xBFphone;firstName;city\r\n".to_vec();
    file.extend_from_slice(
        format!(
            "{};\"Amina\";\"Casa; \"\"the white\"\"\ncity\"\r\n",
            phone(1)
        )
        .as_bytes(),
    );
    file.extend_from_slice(format!("{};John\r\n", phone(2)).as_bytes());
    file.extend_from_slice(format!("{};Ren", phone(3)).as_bytes());
    file.extend_from_slice(b"\xE9;Paris\r\n");
    file.extend_from_slice(format!("{};Wei;Kuala Lumpur\r\n", phone(4)).as_bytes());
    file.extend_from_slice(b"\r\n\r\n");
    let id = app.import_csv(&key, "", file).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["totalRows"], 4, "{status}");
    let rows = app.all_rows(&key, &id, "").await;
    let statuses: Vec<&str> = rows.iter().map(status_of).collect();
    assert_eq!(statuses, ["created", "failed", "failed", "created"]);
    for i in [1, 2] {
        assert_eq!(rows[i]["errors"][0]["code"], "invalid_row", "{}", rows[i]);
    }
    assert!(
        rows[1]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("2 fields"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("UTF-8"),
        "{}",
        rows[2]
    );
    let amina = app
        .contact_by(&key, &format!("phone={}", phone(1).replace('+', "%2B")))
        .await
        .unwrap();
    assert_eq!(amina["city"], "Casa; \"the white\"\ncity");
    app.finish().await;
}

#[tokio::test]
async fn a_mapping_that_cannot_work_is_refused_before_anything_is_stored() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let file = format!("Mobile,Name,Other\n{},Amina,x\n", phone(1));
    let cases = [
        (
            json!({"Mobile": "phone", "Name": "nickname"}),
            "unknown_field",
        ),
        (
            json!({"Mobile": "phone", "Name": "firstName", "Other": "firstName"}),
            "duplicate_mapping",
        ),
        (json!({"Name": "firstName"}), "identifier_not_mapped"),
        (
            json!({"Mobile": "phone", "Missing": "email"}),
            "unknown_column",
        ),
    ];
    for (mapping, code) in cases {
        let query = format!("?mapping={}", urlencode(&mapping.to_string()));
        let response = app.upload_csv(&key, &query, file.clone()).await;
        assert_eq!(response.status(), 422, "{mapping}");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["code"] == code),
            "{code}: {problem}"
        );
    }
    // Without a mapping, no column is recognised as the phone.
    let response = app
        .upload_csv(&key, "", format!("Handy,Name\n{},Amina\n", phone(1)))
        .await;
    assert_eq!(response.status(), 422);
    let response = app.upload_csv(&key, "?mode=merge", file.clone()).await;
    assert_eq!(response.status(), 422);
    let response = app.upload_csv(&key, "", "phone,firstName\n").await;
    assert_eq!(response.status(), 422, "a header without rows");
    let (imports, batches): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM imports), (SELECT count(*) FROM import_batches)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((imports, batches), (0, 0));

    let query = format!(
        "?mapping={}",
        urlencode(&json!({"Mobile": "phone", "Name": "firstName", "Other": null}).to_string())
    );
    let id = app.import_csv(&key, &query, file).await;
    assert_eq!(app.wait_finished(&key, &id).await["created"], 1);
    app.finish().await;
}

#[tokio::test]
async fn rows_of_one_file_with_the_same_identifier_both_fail_even_in_different_batches() {
    let mut settings = test_settings().await;
    settings.batch_size = 3;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let file = "phone,firstName\n+212612345678,A\n+212612345600,B\n+212612345601,C\n0612345678,D\n00212 612 345 678,E\n";
    let id = app.import_csv(&key, "?defaultRegion=MA", file).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(
        (status["created"].as_i64(), status["failed"].as_i64()),
        (Some(2), Some(3))
    );
    let failed = app.all_rows(&key, &id, "&status=failed").await;
    let indexes: Vec<i64> = failed
        .iter()
        .map(|r| r["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 3, 4]);
    assert!(
        failed
            .iter()
            .all(|r| r["errors"][0]["code"] == "duplicate_in_file")
    );
    app.finish().await;
}

#[tokio::test]
async fn multipart_uploads_carry_their_options_and_formulas_are_escaped() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let boundary = "XyZbOuNdArY";
    let options = json!({"identifier": "email", "mapping": {"Mail": "email", "Who": "firstName", "Tel": "phone"}});
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"options\"\r\nContent-Type: application/json\r\n\r\n{options}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.csv\"\r\nContent-Type: text/csv\r\n\r\n\
         Mail,Who,Tel\r\nA@Example.com,=HYPERLINK(\"http://evil\"),+212612345678\r\nbad-email,Bob,\r\n\r\n--{boundary}--\r\n"
    );
    let answer = app.upload_multipart(&key, boundary, body, 202).await;
    let id = answer["asyncSessionId"].as_str().unwrap().to_owned();
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(
        (status["created"].as_i64(), status["failed"].as_i64()),
        (Some(1), Some(1))
    );
    let contact = app.contact_by(&key, "email=a%40example.com").await.unwrap();
    assert_eq!(contact["phone"], "+212612345678");
    let results = csv_file(&app, &key, &id, "results.csv").await;
    assert_eq!(results[1][1], "'=HYPERLINK(\"http://evil\")");
    assert_eq!(results[1][2], "+212612345678");
    app.finish().await;
}

/// An empty cell leaves the field as it is, unless `emptyCellsClear` is true (then it clears
/// it, as `null` does in JSON).
#[tokio::test]
async fn empty_cells_leave_fields_unless_empty_cells_clear() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let upload = |query: &'static str, csv: String| {
        let app = &app;
        let key = key.clone();
        async move {
            let response = app.upload_csv(&key, query, csv).await;
            let answer: Value = response.json().await.unwrap();
            let id = answer["asyncSessionId"].as_str().expect("202").to_owned();
            app.wait_finished(&key, &id).await
        }
    };
    upload(
        "",
        format!("phone,first_name,city\n{},Amina,Rabat\n", phone(0)),
    )
    .await;
    let status = upload("", format!("phone,first_name,city\n{},,Fes\n", phone(0))).await;
    assert_eq!(status["updated"], 1, "{status}");
    let c = app.contact_by(&key, "phone=%2B212600000000").await.unwrap();
    assert_eq!(
        (c["firstName"].as_str(), c["city"].as_str()),
        (Some("Amina"), Some("Fes"))
    );

    upload(
        "?emptyCellsClear=true",
        format!("phone,first_name,city\n{},,Fes\n", phone(0)),
    )
    .await;
    let c = app.contact_by(&key, "phone=%2B212600000000").await.unwrap();
    assert!(c["firstName"].is_null(), "{c}");
    assert_eq!(c["city"], "Fes");
    app.finish().await;
}

/// A dry run of a file predicts, row by row, what the real run of the same file then does.
#[tokio::test]
async fn a_dry_run_of_a_file_predicts_its_real_run() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    app.upload_csv(
        &key,
        "",
        format!("phone,first_name\n{},Known\n{},Same\n", phone(1), phone(2)),
    )
    .await;
    let mut csv = String::from("phone,first_name,email\n");
    for n in 0..1200 {
        csv.push_str(&format!("{},Row{n},\n", phone(n)));
    }
    csv.push_str(&format!(
        "{},Same,\nnonsense,Bad,\n{},Twin,\n{},Twin,\n,NoPhone,\n",
        phone(2),
        phone(5000),
        phone(5000)
    ));
    csv.push_str(&format!("{},Clash,person.1@example.com\n", phone(6000)));
    // The first upload may still be running: wait for every import to end.
    let listed = app.get_json(&key, "/api/v1/imports").await;
    for import in listed["data"].as_array().unwrap() {
        app.wait_finished(&key, import["asyncSessionId"].as_str().unwrap())
            .await;
    }
    let run = |query: &'static str| {
        let app = &app;
        let key = key.clone();
        let csv = csv.clone();
        async move {
            let response = app.upload_csv(&key, query, csv).await;
            let answer: Value = response.json().await.unwrap();
            let id = answer["asyncSessionId"].as_str().expect("202").to_owned();
            let status = app.wait_finished(&key, &id).await;
            (status, app.all_rows(&key, &id, "").await)
        }
    };
    let (dry, dry_rows) = run("?dryRun=true").await;
    let (real, real_rows) = run("").await;
    assert_eq!(dry["dryRun"], true);
    for counter in ["created", "updated", "skipped", "failed", "processedRows"] {
        assert_eq!(dry[counter], real[counter], "{counter}: {dry} / {real}");
    }
    assert_eq!(dry_rows.len(), real_rows.len());
    let verdict = |r: &Value| {
        (
            r["index"].clone(),
            r["status"].clone(),
            r["errors"].clone(),
            r["warnings"].clone(),
        )
    };
    for (d, r) in dry_rows.iter().zip(&real_rows) {
        assert_eq!(verdict(d), verdict(r), "dry {d} / real {r}");
    }
    assert!(real["failed"].as_i64() >= Some(4), "{real}");
    app.finish().await;
}
