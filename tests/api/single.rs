//! `POST /api/v1/contact`: one contact applied at once, with the bulk intake's rules, answered
//! with its outcome and the contact as stored.

use crate::app::spawn_with;
use crate::common::{phone, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};

/// Created (201), then updated (200) by the same identifier; skipped with the bulk intake's
/// warnings under insertOnly and updateOnly; groups and tags as the bulk options say; a bad
/// row is a 422 pointing into the contact, a clash of identifiers a 409, an option only an
/// import has a 422; an opt-out is as sticky as in an import.
#[tokio::test]
async fn one_contact_is_applied_at_once_with_the_bulk_rules() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let post = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move {
            let answer = app
                .request(reqwest::Method::POST, "/api/v1/contact")
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap())
        }
    };
    let (status, created) = post(json!({
        "contact": {"phone": "06 12 34 56 01", "firstName": "Amina", "consent": {"sms": "optedOut"}},
        "defaultRegion": "MA", "groupNames": ["Customers"], "tags": ["vip"],
    }))
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "created");
    let contact = &created["contact"];
    assert_eq!(contact["phone"], "+212612345601");
    assert_eq!(contact["groups"], json!(["Customers"]));
    assert_eq!(contact["tags"], json!(["vip"]));
    assert_eq!(contact["consent"]["sms"]["source"], "api");
    let id = contact["id"].as_str().unwrap().to_owned();
    let groups = app.get_json(&key, "/api/v1/groups").await;
    assert_eq!(groups["data"][0]["members"], 1, "{groups}");

    let (status, updated) = post(json!({
        "contact": {"phone": "+212612345601", "lastName": "Benali", "consent": {"sms": "optedIn"}},
        "tagsRemove": ["vip"],
    }))
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["status"], "updated");
    assert_eq!(updated["contact"]["id"], id.as_str());
    assert_eq!(updated["contact"]["firstName"], "Amina");
    assert_eq!(updated["contact"]["lastName"], "Benali");
    assert_eq!(updated["contact"]["tags"], json!([]));
    assert_eq!(updated["contact"]["consent"]["sms"]["status"], "optedOut");
    assert_eq!(updated["warnings"][0]["code"], "consent_kept", "{updated}");

    let (status, skipped) =
        post(json!({"contact": {"phone": "+212612345601"}, "mode": "insertOnly"})).await;
    assert_eq!(status, 200, "{skipped}");
    assert_eq!(
        (
            skipped["status"].as_str(),
            skipped["warnings"][0]["code"].as_str()
        ),
        (Some("skipped"), Some("already_exists"))
    );
    assert_eq!(skipped["contact"]["id"], id.as_str());
    let (status, missing) =
        post(json!({"contact": {"phone": phone(9)}, "mode": "updateOnly"})).await;
    assert_eq!(status, 200);
    assert_eq!(missing["contact"], Value::Null);
    assert_eq!(missing["warnings"][0]["code"], "not_found");

    let (status, problem) =
        post(json!({"contact": {"phone": "12", "email": "bad@", "customAttributes": {"nope": 1}}}))
            .await;
    assert_eq!(status, 422, "{problem}");
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert!(
        pointers.contains(&"/contact/phone")
            && pointers.contains(&"/contact/email")
            && pointers.contains(&"/contact/customAttributes/nope"),
        "{problem}"
    );

    let (status, _) =
        post(json!({"contact": {"phone": phone(2), "email": "other@example.com"}})).await;
    assert_eq!(status, 201);
    let (status, problem) =
        post(json!({"contact": {"phone": "+212612345601", "email": "other@example.com"}})).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "identifier_conflict");
    assert_eq!(problem["errors"][0]["pointer"], "/contact/email");
    let (status, problem) =
        post(json!({"contact": {"phone": phone(3)}, "callbackUrl": "https://example.com/x"})).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["pointer"], "/callbackUrl");
    // Nothing was written by the refusals.
    let listed = app.get_json(&key, "/api/v1/contacts").await;
    assert_eq!(listed["meta"]["total"], 2, "{listed}");
    app.finish().await;
}
