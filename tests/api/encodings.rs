//! `Content-Encoding: gzip` on both intakes: a compressed body imports as the same body sent
//! plain, every size limit counts the decompressed bytes (a small body that unpacks past one
//! is a 413), and an encoding the service does not read is a 415.

use crate::app::spawn_with;
use crate::checks::urlencode;
use crate::common::{contacts, phone, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};
use std::io::Write;

/// The import id of a 202 answer.
async fn accepted(answer: reqwest::Response) -> String {
    assert_eq!(answer.status(), 202);
    let body: Value = answer.json().await.expect("a JSON answer");
    body["asyncSessionId"]
        .as_str()
        .expect("asyncSessionId")
        .to_owned()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("compress")
}

#[tokio::test]
async fn gzip_bodies_import_as_their_plain_selves_and_their_limits_count_what_they_unpack_to() {
    let mut settings = test_settings().await;
    settings.max_body_bytes = 256 * 1024;
    settings.max_upload_bytes = 1024 * 1024;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let post =
        |path: &'static str, content_type: &'static str, encoding: &'static str, body: Vec<u8>| {
            app.request(reqwest::Method::POST, path)
                .bearer_auth(&key)
                .header("content-type", content_type)
                .header("content-encoding", encoding)
                .body(body)
                .send()
        };

    // JSON: 200 contacts, compressed.
    let body = json!({"contacts": contacts(0, 200)}).to_string();
    let answer = post(
        "/api/v1/contacts",
        "application/json",
        "gzip",
        gzip(body.as_bytes()),
    )
    .await
    .unwrap();
    let id = accepted(answer).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["created"], 200, "{status}");

    // CSV: 2,000 rows, compressed, streamed.
    let mut file = String::from("phone,firstName\n");
    for n in 1000..3000 {
        file.push_str(&format!("{},P{n}\n", phone(n)));
    }
    let compressed = gzip(file.as_bytes());
    assert!(compressed.len() < file.len() / 2);
    let answer = post("/api/v1/imports", "text/csv", "gzip", compressed)
        .await
        .unwrap();
    let id = accepted(answer).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["created"], 2000, "{status}");
    let contact = app
        .contact_by(&key, &format!("phone={}", phone(2999).replace('+', "%2B")))
        .await;
    assert_eq!(contact.unwrap()["firstName"], "P2999");

    // Small bodies that unpack past their limits: 413, nothing stored.
    let imports_before = app.get_json(&key, "/api/v1/imports").await["data"]
        .as_array()
        .map(Vec::len);
    let padded = format!(
        r#"{{"contacts": [{{"phone": "{}"}}], "x": "{}"}}"#,
        phone(1),
        " ".repeat(1_000_000)
    );
    let answer = post(
        "/api/v1/contacts",
        "application/json",
        "gzip",
        gzip(padded.as_bytes()),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 413);
    let mut bomb = String::from("phone,firstName\n");
    while bomb.len() < 3 * 1024 * 1024 {
        bomb.push_str("+212612345678,Same\n");
    }
    let answer = post("/api/v1/imports", "text/csv", "gzip", gzip(bomb.as_bytes()))
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
    let problem: Value = answer.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("decompressed")),
        "{problem}"
    );
    // An encoding the service does not read: 415.
    for (path, content_type) in [
        ("/api/v1/contacts", "application/json"),
        ("/api/v1/imports", "text/csv"),
    ] {
        let answer = post(path, content_type, "br", b"whatever".to_vec())
            .await
            .unwrap();
        assert_eq!(answer.status(), 415);
        assert_eq!(answer.headers()["content-type"], "application/problem+json");
    }
    // The file's limit is met while it streams, after its import was created: that import
    // is failed and applied nothing, as any upload cut off; the other refusals stored nothing.
    let imports = app.get_json(&key, "/api/v1/imports").await;
    let data = imports["data"].as_array().unwrap();
    assert_eq!(Some(data.len()), imports_before.map(|n| n + 1), "{imports}");
    assert_eq!(data[0]["status"], "failed", "{}", data[0]);
    assert_eq!(data[0]["processedRows"], 0);
    app.finish().await;
}

/// Files in the encodings people's tools write: a French Excel "CSV" (Windows-1252, `;`)
/// imports without being told its encoding, a UTF-16 file with its byte-order mark too, a
/// named encoding is used as named, and a label that names none is a 422.
#[tokio::test]
async fn legacy_encodings_are_detected_or_named_and_transcoded() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let phone_of = |n: usize| phone(n).replace('+', "%2B");

    // Windows-1252, detected: é is the byte E9.
    let mut french = b"T\xE9l\xE9phone;Pr\xE9nom;Ville\r\n".to_vec();
    french.extend_from_slice(format!("{};Ren", phone(1)).as_bytes());
    french.extend_from_slice(b"\xE9;Orl\xE9ans\r\n");
    let mapping = serde_json::to_string(
        &json!({"Téléphone": "phone", "Prénom": "firstName", "Ville": "city"}),
    )
    .unwrap();
    let query = format!("?mapping={}", urlencode(&mapping));
    let id = app.import_csv(&key, &query, french.clone()).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["created"], 1, "{status}");
    let rene = app
        .contact_by(&key, &format!("phone={}", phone_of(1)))
        .await
        .unwrap();
    assert_eq!(
        (rene["firstName"].as_str(), rene["city"].as_str()),
        (Some("René"), Some("Orléans"))
    );

    // UTF-16LE with its BOM.
    let text = format!("phone,firstName\n{},Zoë\n", phone(2));
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let id = app.import_csv(&key, "", utf16).await;
    app.wait_finished(&key, &id).await;
    let zoe = app
        .contact_by(&key, &format!("phone={}", phone_of(2)))
        .await
        .unwrap();
    assert_eq!(zoe["firstName"], "Zoë");

    // Named: ISO-8859-15 reads A4 as the euro sign (Windows-1252 would not).
    let mut named = b"phone,firstName\n".to_vec();
    named.extend_from_slice(format!("{},Price", phone(3)).as_bytes());
    named.extend_from_slice(b"\xA4\n");
    let id = app.import_csv(&key, "?encoding=iso-8859-15", named).await;
    app.wait_finished(&key, &id).await;
    let euro = app
        .contact_by(&key, &format!("phone={}", phone_of(3)))
        .await
        .unwrap();
    assert_eq!(euro["firstName"], "Price€");

    let refused = app.upload_csv(&key, "?encoding=klingon", french).await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/encoding", "{problem}");
    app.finish().await;
}
