//! The BulkUpsert shape of `POST /api/v1/contacts` (`columns` + `contactDatas`): the same
//! import as the JSON intake's shape, so a client of that API can point at this service.

use crate::app::spawn_with;
use crate::common::{phone, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};

/// Contacts, by the fields they hold, leaving out what differs between two imports.
async fn stored(app: &crate::app::TestApp, key: &str) -> Vec<Value> {
    let page = app
        .get_json(key, "/api/v1/contacts?sort=phone&order=asc")
        .await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            for volatile in ["id", "createdAt", "updatedAt"] {
                c.as_object_mut().unwrap().remove(volatile);
            }
            for channel in ["email", "sms"] {
                if let Some(consent) = c["consent"].get_mut(channel) {
                    consent.as_object_mut().unwrap().remove("updatedAt");
                    consent.as_object_mut().unwrap().remove("source");
                }
            }
            c
        })
        .collect()
}

/// A BulkUpsert body gives the same contacts as the equivalent JSON; `insertIfNotExists: false`
/// only updates, `new_contact_key` renames, `failOnError` is all or nothing, an unknown column
/// is a 422 before anything is stored.
#[tokio::test]
async fn a_bulk_upsert_body_gives_the_same_contacts_as_the_equivalent_json() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let keys = [app.tenant("bulk").await, app.tenant("json").await];
    for key in &keys {
        app.define_field(key, &json!({"name": "plan", "type": "string"}))
            .await;
    }
    let bulk = json!({
        "columns": ["contact_key", "name", "surname", "email", "gsm", "birthday", "gender", "status", "email_permit", "gsm_permit", "gsm_status", "plan"],
        "contactDatas": [
            ["c1", "Ana", "Silva", "ana@example.com", phone(1), "1990-05-17", "F", "A", true, false, "P", "gold"],
            {"contact_key": "c2", "name": "Ben", "gsm": phone(2), "gender": "m", "status": "P"},
        ],
        "insertIfNotExists": true,
        "failOnError": false,
    });
    let equivalent = json!({
        "dedupeOn": "externalId",
        "contacts": [
            {"externalId": "c1", "firstName": "Ana", "lastName": "Silva", "email": "ana@example.com", "phone": phone(1),
             "birthday": "1990-05-17", "gender": "female", "status": "active", "phoneStatus": "passive",
             "consent": {"email": "optedIn", "sms": "optedOut"}, "customAttributes": {"plan": "gold"}},
            {"externalId": "c2", "firstName": "Ben", "phone": phone(2), "gender": "male", "status": "passive"},
        ],
    });
    let a = app.import_and_wait(&keys[0], &bulk).await;
    let b = app.import_and_wait(&keys[1], &equivalent).await;
    assert_eq!(
        (a["created"].as_i64(), b["created"].as_i64()),
        (Some(2), Some(2)),
        "{a} {b}"
    );
    assert_eq!(stored(&app, &keys[0]).await, stored(&app, &keys[1]).await);

    // insertIfNotExists: false (the default) only updates; new_contact_key renames.
    let update = json!({
        "columns": ["contact_key", "new_contact_key", "name"],
        "contactDatas": [["c1", "c1-renamed", "Ana-Maria"], ["c9", "x", "Nobody"]],
        "failOnError": false,
    });
    let status = app.import_and_wait(&keys[0], &update).await;
    assert_eq!(
        (status["updated"].as_i64(), status["skipped"].as_i64()),
        (Some(1), Some(1)),
        "{status}"
    );
    let renamed = app
        .contact_by(&keys[0], "externalId=c1-renamed")
        .await
        .unwrap();
    assert_eq!(renamed["firstName"], "Ana-Maria");
    // failOnError (the default): one bad row, nothing applied.
    let failing = json!({
        "columns": ["contact_key", "gsm"],
        "contactDatas": [["c2", phone(3)], ["c1-renamed", "12"]],
    });
    let status = app.import_and_wait(&keys[0], &failing).await;
    assert_eq!(status["status"], "failed", "{status}");
    let ben = app.contact_by(&keys[0], "externalId=c2").await.unwrap();
    assert_eq!(ben["phone"], phone(2).as_str(), "nothing applied");
    // An unknown column: 422, nothing stored.
    let refused = app
        .post_contacts(
            &keys[0],
            &json!({"columns": ["contact_key", "nickname"], "contactDatas": [["c1", "x"]]}),
        )
        .await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/columns/1", "{problem}");
    assert_eq!(problem["errors"][0]["code"], "unknown_column");
    app.finish().await;
}
