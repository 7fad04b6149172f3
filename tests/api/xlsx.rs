//! `.xlsx` workbooks: the first sheet is read as a CSV file would be, typed cells included.

use crate::app::spawn_with;
use crate::common::test_settings;
use contact_import::startup::Roles;
use serde_json::{Value, json};

/// `.xlsx`: the first sheet is imported as a CSV file would be, as a raw body or as the
/// multipart file part, with the same options, mapping and results; a file past
/// `MAX_XLSX_BYTES` is a 413 and one that is not a workbook a 422, with nothing stored.
#[tokio::test]
async fn the_first_sheet_of_an_xlsx_file_is_imported_like_a_csv_file() {
    const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let mut settings = test_settings().await;
    settings.max_xlsx_bytes = 8 * 1024;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;
    app.define_field(&key, &json!({"name": "vip", "type": "boolean"}))
        .await;
    // tests/data/make_xlsx.py writes it.
    let workbook: &[u8] = include_bytes!("../data/contacts.xlsx");

    let response = app
        .request(
            reqwest::Method::POST,
            "/api/v1/imports?defaultRegion=MA&tags=sheet",
        )
        .bearer_auth(&key)
        .header("content-type", XLSX)
        .body(workbook.to_vec())
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    let id = answer["asyncSessionId"].as_str().expect("202").to_owned();
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(
        (
            status["created"].as_i64(),
            status["failed"].as_i64(),
            status["source"].as_str()
        ),
        (Some(2), Some(1), Some("csv")),
        "{status}"
    );
    let amina = app.contact_by(&key, "phone=%2B212612345678").await.unwrap();
    assert_eq!(amina["firstName"], "Amina");
    assert_eq!(amina["email"], "amina@example.com");
    assert_eq!(amina["birthday"], "1987-03-21", "a date cell");
    assert_eq!(amina["customAttributes"]["vip"], true, "a boolean cell");
    assert!(amina["tags"].as_array().unwrap().contains(&json!("sheet")));
    let youssef = app.contact_by(&key, "phone=%2B212612345679").await.unwrap();
    assert_eq!(youssef["customAttributes"]["vip"], false);
    assert!(
        app.contact_by(&key, "phone=%2B212612345600")
            .await
            .is_none(),
        "only the first sheet"
    );
    let failed = app.all_rows(&key, &id, "&status=failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["index"], 2);
    assert_eq!(failed[0]["errors"][0]["code"], "invalid_phone");
    let results = app
        .get(&key, &format!("/api/v1/imports/{id}/results.csv"))
        .await;
    let results = results.text().await.unwrap();
    assert_eq!(results.lines().count(), 4, "{results}");

    // The multipart file part, known by its file name.
    let boundary = "XlSxBoUnDaRy";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n{{\"defaultRegion\": \"MA\", \"overwrite\": false}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"Contacts.xlsx\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(workbook);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let answer = app.upload_multipart(&key, boundary, body, 202).await;
    let id = answer["asyncSessionId"].as_str().expect("202").to_owned();
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(
        (status["updated"].as_i64(), status["failed"].as_i64()),
        (Some(2), Some(1)),
        "{status}"
    );

    // Too big to hold: 413, and not a workbook: 422; nothing stored either way.
    let (before,): (i64,) = sqlx::query_as("SELECT count(*) FROM imports")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for (bytes, expected) in [
        (vec![b'x'; 9 * 1024], 413),
        (b"phone\n+212612345678\n".to_vec(), 422),
    ] {
        let response = app
            .request(reqwest::Method::POST, "/api/v1/imports")
            .bearer_auth(&key)
            .header("content-type", XLSX)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected);
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{problem}"
        );
    }
    let (after,): (i64,) = sqlx::query_as("SELECT count(*) FROM imports")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, after);
    app.finish().await;
}

/// A one-sheet workbook whose `<sheetData>` is `rows`, with a declared `dimension` if given.
fn workbook(rows: &str, dimension: Option<&str>) -> Vec<u8> {
    use std::io::Write;
    let sheet = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{}<sheetData>{rows}</sheetData></worksheet>"#,
        dimension
            .map(|d| format!(r#"<dimension ref="{d}"/>"#))
            .unwrap_or_default()
    );
    let rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_owned(),
        ),
        (
            "_rels/.rels",
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#),
        ),
        (
            "xl/workbook.xml",
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="{rel}"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#),
        ),
        ("xl/worksheets/sheet1.xml", sheet),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in parts {
        zip.start_file(name, options).expect("a zip part");
        zip.write_all(text.as_bytes()).expect("its text");
    }
    zip.finish().expect("the archive").into_inner()
}

/// A workbook whose small file unpacks past `MAX_XLSX_UNPACKED_BYTES` is a 413, and one whose
/// sheet declares more than Excel's 1,048,576 rows a 422 — both before anything is stored —
/// while a workbook within both is imported.
#[tokio::test]
async fn a_workbook_that_unpacks_too_far_or_has_too_many_rows_is_refused_unread() {
    const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let mut settings = test_settings().await;
    settings.max_xlsx_unpacked_bytes = 256 * 1024;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let row = |r: usize| {
        format!(r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>+2126{r:08}</t></is></c></row>"#)
    };
    let header = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c></row>"#;
    let rows = |n: usize| format!("{header}{}", (2..n + 2).map(row).collect::<String>());
    let bomb = workbook(&rows(20_000), None);
    assert!(bomb.len() < 200 * 1024, "{} bytes", bomb.len());
    let tall = workbook(&rows(2), Some("A1:A2000000"));
    let fine = workbook(&rows(100), None);
    let post = |bytes: Vec<u8>| {
        app.request(reqwest::Method::POST, "/api/v1/imports")
            .bearer_auth(&key)
            .header("content-type", XLSX)
            .body(bytes)
            .send()
    };
    let response = post(bomb).await.unwrap();
    assert_eq!(response.status(), 413);
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("MAX_XLSX_UNPACKED_BYTES")),
        "{problem}"
    );
    let response = post(tall).await.unwrap();
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["code"], "too_many_rows", "{problem}");
    let imports = app.get_json(&key, "/api/v1/imports").await;
    assert_eq!(
        imports["data"].as_array().map(Vec::len),
        Some(0),
        "{imports}"
    );
    let answer: Value = post(fine).await.unwrap().json().await.unwrap();
    let id = answer["asyncSessionId"].as_str().expect("202").to_owned();
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["created"], 100, "{status}");
    app.finish().await;
}
