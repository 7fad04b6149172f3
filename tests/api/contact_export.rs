//! `GET /api/v1/contacts/export.csv` and `?format=ndjson`: every matching contact, streamed in
//! chunks, with its consent, statuses, tags, groups and custom fields; formula cells escaped;
//! the CSV imports back as it is.

use crate::app::spawn_with;
use crate::common::{phone, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};

#[tokio::test]
async fn every_matching_contact_is_exported_and_the_csv_imports_back_unchanged() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    app.define_field(&key, &json!({"name": "plan", "type": "string"}))
        .await;
    // 2,500 contacts: three chunks of the export.
    let contacts: Vec<Value> = (0..2500)
        .map(|n| {
            let mut c =
                json!({"phone": phone(n), "firstName": format!("P{n}"), "tags": ["t1", "t2"]});
            if n % 10 == 0 {
                c["consent"] = json!({"sms": "optedOut"});
            }
            if n == 7 {
                c["firstName"] = json!("=HYPERLINK(\"http://x\")");
                c["customAttributes"] = json!({"plan": "gold"});
            }
            c
        })
        .collect();
    let status = app
        .import_and_wait(&key, &json!({"contacts": contacts, "groupNames": ["Fair"]}))
        .await;
    assert_eq!(status["created"], 2500, "{status}");
    let gone = app
        .contact_by(&key, &format!("phone={}", phone(1).replace('+', "%2B")))
        .await
        .unwrap();
    let deleted = app
        .send(
            &key,
            reqwest::Method::DELETE,
            &format!("/api/v1/contacts/{}", gone["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(deleted.status(), 200);

    let answer = app.get(&key, "/api/v1/contacts/export.csv").await;
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = answer.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(&header[..4], ["id", "externalId", "phone", "email"]);
    assert!(
        header.contains(&"consent.sms".to_owned()) && header.contains(&"plan".to_owned()),
        "{header:?}"
    );
    assert_eq!(header.last().map(String::as_str), Some("updatedAt"));
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2499, "the deleted contact is left out");
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let seven = rows.iter().find(|r| r[at("phone")] == phone(7)).unwrap();
    assert_eq!(&seven[at("firstName")], "'=HYPERLINK(\"http://x\")");
    assert_eq!(&seven[at("plan")], "gold");
    assert_eq!(&seven[at("tags")], "t1;t2");
    assert_eq!(&seven[at("groups")], "Fair");
    let ten = rows.iter().find(|r| r[at("phone")] == phone(10)).unwrap();
    assert_eq!(&ten[at("consent.sms")], "optedOut");
    assert_eq!(&ten[at("status")], "active");
    let mut phones: Vec<&str> = rows.iter().map(|r| &r[at("phone")]).collect();
    phones.sort_unstable();
    phones.dedup();
    assert_eq!(phones.len(), 2499, "no contact twice across chunks");

    let all = app
        .get_text(&key, "/api/v1/contacts/export.csv?includeDeleted=true")
        .await;
    assert_eq!(all.lines().count(), 2501);
    let opted_out = app
        .get_text(&key, "/api/v1/contacts/export.csv?consent.sms=optedOut")
        .await;
    assert_eq!(opted_out.lines().count(), 251);
    let one = app
        .get_text(
            &key,
            &format!(
                "/api/v1/contacts/export.csv?phone={}",
                phone(10).replace('+', "%2B")
            ),
        )
        .await;
    assert_eq!(one.lines().count(), 2, "{one}");

    let ndjson = app
        .get(&key, "/api/v1/contacts/export.csv?format=ndjson&tag=t1")
        .await;
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = ndjson
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2499);
    let one = app
        .get_json(
            &key,
            &format!("/api/v1/contacts/{}", lines[0]["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        lines[0], one,
        "a line is the contact as GET /contacts/{{id}} gives it"
    );
    assert_eq!(
        app.get(&key, "/api/v1/contacts/export.csv?format=xml")
            .await
            .status(),
        422
    );

    // The export imports back: every contact matched and nothing changed.
    let before = app.get_text(&key, "/api/v1/contacts/export.csv").await;
    let id = app
        .import_csv(&key, "?importTag=false", before.clone())
        .await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(
        (status["updated"].as_i64(), status["failed"].as_i64()),
        (Some(2499), Some(0)),
        "{status}"
    );
    let after = app.get_text(&key, "/api/v1/contacts/export.csv").await;
    let without_updated_at = |csv: &str| -> Vec<String> {
        csv.lines()
            .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_owned())
            .collect()
    };
    assert_eq!(without_updated_at(&before), without_updated_at(&after));
    let seven = app
        .contact_by(&key, &format!("phone={}", phone(7).replace('+', "%2B")))
        .await
        .unwrap();
    assert_eq!(
        seven["firstName"], "=HYPERLINK(\"http://x\")",
        "an escaped formula imports back as it was"
    );
    app.finish().await;
}
