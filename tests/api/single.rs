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

/// `PATCH /api/v1/contacts/{id}` is a JSON merge patch: the members sent change, `null`
/// clears, attributes merge by name, tags replace, consent merges by channel, an identifier
/// may change (normalised), a clash is a 409, a bad value a 422 pointing at its member, an
/// unknown contact a 404 and a deleted one a 409.
#[tokio::test]
async fn a_merge_patch_changes_what_it_sends() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    app.define_field(&key, &json!({"name": "plan", "type": "string"}))
        .await;
    let status = app
        .import_and_wait(
            &key,
            &json!({"contacts": [
                {"phone": phone(1), "firstName": "Ana", "lastName": "Silva", "tags": ["a", "b"],
                 "customAttributes": {"plan": "free"}, "consent": {"sms": "optedOut"}},
                {"phone": phone(2), "email": "taken@example.com"},
            ]}),
        )
        .await;
    assert_eq!(status["created"], 2);
    let ana = app
        .contact_by(&key, &format!("phone={}", phone(1).replace('+', "%2B")))
        .await
        .unwrap();
    let id = ana["id"].as_str().unwrap().to_owned();
    let patch = |body: Value, id: String| {
        let app = &app;
        let key = key.clone();
        async move {
            let answer = app
                .request(reqwest::Method::PATCH, &format!("/api/v1/contacts/{id}"))
                .bearer_auth(key)
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap())
        }
    };
    let (status, patched) = patch(
        json!({"lastName": null, "email": " Ana@Example.COM ", "tags": ["c"],
               "customAttributes": {"plan": null}, "consent": {"sms": "optedIn", "email": "no"}}),
        id.clone(),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["firstName"], "Ana");
    assert_eq!(patched["lastName"], Value::Null);
    assert_eq!(patched["email"], "ana@example.com");
    assert_eq!(patched["tags"], json!(["c"]));
    assert_eq!(patched["customAttributes"], json!({}));
    assert_eq!(
        patched["consent"]["sms"]["status"], "optedIn",
        "a patch is an explicit edit"
    );
    assert_eq!(patched["consent"]["email"]["status"], "optedOut");
    let (status, changed) = patch(json!({"phone": phone(3)}), id.clone()).await;
    assert_eq!(
        (status, changed["phone"].as_str()),
        (200, Some(phone(3).as_str()))
    );

    let (status, problem) = patch(json!({"email": "taken@example.com"}), id.clone()).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/email");
    let (status, problem) = patch(json!({"phone": "12", "birthday": "soon"}), id.clone()).await;
    assert_eq!(status, 422, "{problem}");
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert_eq!(pointers, ["/phone", "/birthday"]);
    let (status, _) = patch(json!({"firstName": "X"}), uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(status, 404);
    let deleted = app
        .send(
            &key,
            reqwest::Method::DELETE,
            &format!("/api/v1/contacts/{id}"),
        )
        .await;
    assert_eq!(deleted.status(), 200);
    let (status, problem) = patch(json!({"firstName": "X"}), id.clone()).await;
    assert_eq!(status, 409, "{problem}");
    app.finish().await;
}

/// `dedupeOn: "id"` (update only) matches rows by the contact's own id, so a bulk import can
/// change identifiers; a row that would take another contact's is `identifier_conflict`; any
/// mode but updateOnly is a 422.
#[tokio::test]
async fn rows_matched_on_the_contacts_own_id_may_change_their_identifiers() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    app.import_and_wait(
        &key,
        &json!({"contacts": [{"phone": phone(1), "externalId": "a"}, {"phone": phone(2), "externalId": "b"}]}),
    )
    .await;
    let list = app
        .get_json(&key, "/api/v1/contacts?sort=phone&order=asc")
        .await;
    let ids: Vec<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let status = app
        .import_and_wait(
            &key,
            &json!({"dedupeOn": "id", "mode": "updateOnly", "contacts": [
                {"id": ids[0], "phone": phone(11), "externalId": "a2"},
                {"id": ids[1], "externalId": "a2"},
                {"id": uuid::Uuid::now_v7().to_string(), "phone": phone(13)},
                {"id": "not-a-uuid"},
                {"phone": phone(14)},
            ]}),
        )
        .await;
    assert_eq!(
        (
            status["updated"].as_i64(),
            status["skipped"].as_i64(),
            status["failed"].as_i64()
        ),
        (Some(1), Some(1), Some(3)),
        "{status}"
    );
    let rows = app
        .all_rows(&key, status["asyncSessionId"].as_str().unwrap(), "")
        .await;
    let codes: Vec<Value> = rows
        .iter()
        .map(|r| r["errors"][0]["code"].clone())
        .collect();
    assert_eq!(codes[1], "identifier_conflict");
    assert_eq!(rows[2]["warnings"][0]["code"], "not_found");
    assert_eq!(codes[3], "invalid_value");
    assert_eq!(codes[4], "missing_identifier");
    let moved = app
        .get_json(&key, &format!("/api/v1/contacts/{}", ids[0]))
        .await;
    assert_eq!(
        (moved["phone"].as_str(), moved["externalId"].as_str()),
        (Some(phone(11).as_str()), Some("a2"))
    );
    let refused = app
        .post_contacts(
            &key,
            &json!({"dedupeOn": "id", "contacts": [{"id": ids[0]}]}),
        )
        .await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/dedupeOn");
    app.finish().await;
}
