//! The core pipeline end to end: JSON intake → PostgreSQL outbox → RabbitMQ → workers →
//! status and per-row results, against the real services.

mod common;

use common::{TestApp, contacts, phone, spawn_app, spawn_with, test_settings};
use contact_import::startup::Roles;
use contact_import::worker::{self, BatchOutcome, BatchRef};
use serde_json::{Value, json};

fn codes(row: &Value, list: &str) -> Vec<String> {
    row[list]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_counters_add_up(status: &Value) {
    let n = |k: &str| status[k].as_i64().unwrap_or(-1);
    assert_eq!(
        n("created") + n("updated") + n("skipped") + n("failed"),
        n("processedRows"),
        "{status}"
    );
    assert_eq!(n("processedRows"), n("totalRows"), "{status}");
}

#[tokio::test]
async fn three_thousand_contacts_are_imported_and_every_row_is_accounted_for() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let body = json!({"contacts": contacts(0, 3000)});
    let response = app.post_contacts(&key, &body).await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["status"], "queued");
    assert_eq!(accepted["totalRows"], 3000);
    let id = accepted["asyncSessionId"].as_str().unwrap().to_owned();
    assert_eq!(accepted["statusUrl"], format!("/api/v1/imports/{id}"));

    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["created"], 3000);
    assert_eq!(status["progress"], 1.0);
    assert_eq!(status["source"], "api");
    assert!(status["startedAt"].is_string() && status["finishedAt"].is_string());
    assert_counters_add_up(&status);

    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(rows.len(), 3000);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["index"], i as i64);
        assert_eq!(row["status"], "created");
        assert!(row["contactId"].is_string());
    }
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 3000);

    let contact = app
        .contact_by(&key, &format!("phone={}", phone(1234).replace('+', "%2B")))
        .await
        .unwrap();
    assert_eq!(contact["email"], "person.1234@example.com");
    assert_eq!(contact["firstName"], "First1234");
    assert_eq!(contact["id"], rows[1234]["contactId"]);
    app.finish().await;
}

#[tokio::test]
async fn api_keys_are_required_and_tenants_never_see_each_other() {
    let app = spawn_app().await;
    let alice = app.tenant("alice").await;
    let bob = app.tenant("bob").await;
    let no_key = app
        .client
        .get(app.url("/api/v1/imports"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    assert_eq!(no_key.headers()["content-type"], "application/problem+json");
    assert_eq!(
        app.get("ci_not_a_key", "/api/v1/imports").await.status(),
        401
    );
    let posted = app
        .client
        .post(app.url("/api/v1/contacts"))
        .json(&json!({"contacts": contacts(0, 1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 401);

    let id = app
        .import(&alice, &json!({"contacts": contacts(0, 2)}))
        .await;
    let status = app.wait_finished(&alice, &id).await;
    assert_eq!(status["created"], 2);
    let contact_id = app.all_rows(&alice, &id, "").await[0]["contactId"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(
        app.get(&bob, &format!("/api/v1/imports/{id}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get(&bob, &format!("/api/v1/imports/{id}/rows"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get(&bob, &format!("/api/v1/contacts/{contact_id}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get(&alice, &format!("/api/v1/contacts/{contact_id}"))
            .await
            .status(),
        200
    );
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        app.get(&alice, &format!("/api/v1/imports/{unknown}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get(&alice, "/api/v1/imports/not-a-uuid").await.status(),
        404
    );
    let bobs = app.get_json(&bob, "/api/v1/imports").await;
    assert_eq!(bobs["data"].as_array().unwrap().len(), 0);
    let bobs = app
        .get_json(
            &bob,
            &format!("/api/v1/contacts?phone={}", phone(0).replace('+', "%2B")),
        )
        .await;
    assert_eq!(bobs["meta"]["total"], 0);

    // Bob importing the same phone gets his own contact.
    let id = app.import(&bob, &json!({"contacts": contacts(0, 1)})).await;
    assert_eq!(app.wait_finished(&bob, &id).await["created"], 1);
    app.finish().await;
}

#[tokio::test]
async fn request_level_problems_are_answered_with_problem_json_and_store_nothing() {
    let mut settings = test_settings().await;
    settings.max_body_bytes = 64 * 1024;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;

    let malformed = app
        .client
        .post(app.url("/api/v1/contacts"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"contacts\": [\n {\"phone\": \"+212612345678\",}\n]}")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        malformed.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = malformed.json().await.unwrap();
    assert_eq!(problem["status"], 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("line 2"),
        "{problem}"
    );

    let too_big = app
        .client
        .post(app.url("/api/v1/contacts"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(vec![b' '; 65 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);

    let cases = [
        (json!({"contacts": []}), "/contacts", "no_contacts"),
        (json!({}), "/contacts", "missing_contacts"),
        (
            json!({"contacts": vec![json!({"phone": "+212612345678"}); 3001]}),
            "/contacts/3000",
            "too_many_contacts",
        ),
        (
            json!({"contacts": contacts(0, 1), "dedupeOn": "fax"}),
            "/dedupeOn",
            "invalid_value",
        ),
        (
            json!({"contacts": contacts(0, 1), "mode": "merge"}),
            "/mode",
            "invalid_value",
        ),
        (
            json!({"contacts": contacts(0, 1), "defaultRegion": "XX"}),
            "/defaultRegion",
            "invalid_value",
        ),
        (
            json!({"contacts": contacts(0, 1), "overwrite": "yes"}),
            "/overwrite",
            "invalid_value",
        ),
        (
            json!({"contacts": contacts(0, 1), "callbackUrl": 7}),
            "/callbackUrl",
            "invalid_value",
        ),
        (
            json!({"contacts": contacts(0, 1), "dryRun": "yes"}),
            "/dryRun",
            "invalid_value",
        ),
        (
            json!({"contacts": [{"phone": "+212612345678"}, {"phone": "+212612345679", "customAttributes": {"plan": "gold"}}]}),
            "/contacts/1/customAttributes/plan",
            "unknown_field",
        ),
        (
            json!({"contacts": [{"phone": "+212612345678", "fields": [{"id": "tier", "value": 1}]}]}),
            "/contacts/0/fields/0/id",
            "unknown_field",
        ),
    ];
    // The 3001-contact body is larger than this app's 64 KiB limit: use a second app for it.
    let roomy = spawn_app().await;
    let roomy_key = roomy.tenant("acme").await;
    for (body, pointer, code) in cases {
        let (target, key) = if pointer == "/contacts/3000" {
            (&roomy, &roomy_key)
        } else {
            (&app, &key)
        };
        let response = target.post_contacts(key, &body).await;
        assert_eq!(response.status(), 422, "{pointer}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["pointer"] == pointer && e["code"] == code),
            "expected {code} at {pointer}: {problem}"
        );
    }
    for target in [&app, &roomy] {
        let (imports,): (i64,) = sqlx::query_as("SELECT count(*) FROM imports")
            .fetch_one(&target.pool)
            .await
            .unwrap();
        assert_eq!(imports, 0);
    }
    roomy.finish().await;
    app.finish().await;
}

#[tokio::test]
async fn a_bad_row_fails_alone_with_its_reasons() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let fields = [
        json!({"name": "balance", "type": "number"}),
        json!({"name": "plan", "type": "enum", "options": ["free", "premium"]}),
    ];
    for field in &fields {
        let r = app
            .client
            .post(app.url("/api/v1/fields"))
            .bearer_auth(&key)
            .json(field)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let long = "x".repeat(300);
    let body = json!({"contacts": [
        {"phone": "+212612345678", "firstName": "Good"},
        {"phone": "12345"},
        {"phone": "+212612345679", "email": "not-an-email"},
        {"phone": "+212612345680", "birthday": "2023-02-29"},
        {"email": "nophone@example.com"},
        {"phone": "+212612345681", "firstName": "Nul\u{0}Byte"},
        {"phone": "+212612345682", "customAttributes": {"balance": "lots"}},
        {"phone": "+212612345683", "customAttributes": {"plan": "gold"}},
        {"phone": "+212612345684", "lastName": long},
        {"phone": "+212612345685", "gender": "robot"},
        42,
        {"phone": "+212612345686", "customAttributes": {"balance": "12.5", "plan": "premium"}},
    ]});
    let id = app.import(&key, &body).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["status"], "completedWithErrors");
    assert_eq!(status["created"], 2);
    assert_eq!(status["failed"], 10);
    assert_counters_add_up(&status);
    let rows = app.all_rows(&key, &id, "").await;
    let expected = [
        (1, "phone", "invalid_phone"),
        (2, "email", "invalid_email"),
        (3, "birthday", "invalid_date"),
        (4, "phone", "missing_identifier"),
        (5, "firstName", "invalid_value"),
        (6, "customAttributes.balance", "invalid_value"),
        (7, "customAttributes.plan", "invalid_value"),
        (8, "lastName", "too_long"),
        (9, "gender", "invalid_value"),
        (10, "", "invalid_row"),
    ];
    for (index, field, code) in expected {
        let row = &rows[index];
        assert_eq!(row["status"], "failed", "row {index}: {row}");
        assert!(row["contactId"].is_null());
        let errors = row["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["field"] == field
                && e["code"] == code
                && e["message"].as_str().is_some_and(|m| !m.is_empty())),
            "row {index}: expected {code} on {field}: {row}"
        );
    }
    assert_eq!(rows[0]["status"], "created");
    assert_eq!(rows[11]["status"], "created");
    let failed = app.all_rows(&key, &id, "&status=failed").await;
    assert_eq!(failed.len(), 10);
    let contact = app.contact_by(&key, "phone=%2B212612345686").await.unwrap();
    assert_eq!(
        contact["customAttributes"],
        json!({"balance": 12.5, "plan": "premium"})
    );
    app.finish().await;
}

#[tokio::test]
async fn flat_and_reteno_shapes_store_the_same_contact() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let field = json!({"name": "tier", "type": "string"});
    app.client
        .post(app.url("/api/v1/fields"))
        .bearer_auth(&key)
        .json(&field)
        .send()
        .await
        .unwrap();
    let flat = json!({
        "primaryPhone": "0612345678", "primaryEmail": " Amina@Example.COM ",
        "firstName": "Amina", "lastName": "El Amrani", "gender": "Female", "birthday": "1990-05-17",
        "address": "12 Rue Atlas", "city": "Casablanca", "state": "Casablanca-Settat", "zip": "20000",
        "customAttributes": {"tier": "gold"}, "externalId": "crm-1",
    });
    let reteno = json!({
        "channels": [{"type": "sms", "value": "+212 6 12 34 56 79"}, {"type": "email", "value": "amina2@example.com"}],
        "firstName": "Amina", "lastName": "El Amrani", "gender": "female", "birthday": "1990-05-17",
        "address": {"address": "12 Rue Atlas", "town": "Casablanca", "region": "Casablanca-Settat", "postcode": "20000"},
        "fields": [{"id": "tier", "value": "gold"}], "externalId": "crm-2",
    });
    let status = app
        .import_and_wait(
            &key,
            &json!({"contacts": [flat, reteno], "defaultRegion": "MA"}),
        )
        .await;
    assert_eq!(status["created"], 2, "{status}");
    let a = app.contact_by(&key, "externalId=crm-1").await.unwrap();
    let b = app.contact_by(&key, "externalId=crm-2").await.unwrap();
    assert_eq!(a["phone"], "+212612345678");
    assert_eq!(a["email"], "amina@example.com");
    assert_eq!(b["phone"], "+212612345679");
    assert_eq!(b["email"], "amina2@example.com");
    for field in [
        "firstName",
        "lastName",
        "gender",
        "birthday",
        "address",
        "city",
        "state",
        "zip",
        "customAttributes",
    ] {
        assert_eq!(a[field], b[field], "{field}");
    }
    assert_eq!(a["gender"], "female");
    assert_eq!(a["birthday"], "1990-05-17");
    assert_eq!(a["city"], "Casablanca");
    assert_eq!(a["zip"], "20000");
    app.finish().await;
}

#[tokio::test]
async fn rows_with_the_same_identifier_fail_as_duplicates_across_batches() {
    let mut settings = test_settings().await;
    settings.batch_size = 2;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let body = json!({"defaultRegion": "MA", "contacts": [
        {"phone": "+212612345678"},
        {"phone": "+212612345600"},
        {"phone": "+212612345601"},
        {"phone": "06 12 34 56 78"},
        {"phone": "00212612345678"},
    ]});
    let id = app.import(&key, &body).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["failed"], 3);
    assert_eq!(status["created"], 2);
    let rows = app.all_rows(&key, &id, "").await;
    for i in [0, 3, 4] {
        assert_eq!(codes(&rows[i], "errors"), ["duplicate_in_file"], "row {i}");
    }
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 2);
    app.finish().await;
}

#[tokio::test]
async fn modes_decide_what_a_match_or_a_miss_does() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    app.import_and_wait(&key, &json!({"contacts": contacts(0, 2)}))
        .await;

    let insert_only = app
        .import_and_wait(
            &key,
            &json!({"mode": "insertOnly", "contacts": contacts(1, 2)}),
        )
        .await;
    assert_eq!(
        (
            insert_only["skipped"].as_i64(),
            insert_only["created"].as_i64()
        ),
        (Some(1), Some(1))
    );

    let update_only = app
        .import_and_wait(&key, &json!({"mode": "updateOnly", "contacts": [
            {"phone": phone(0), "firstName": "Renamed"}, {"phone": phone(99), "firstName": "Nobody"}]}))
        .await;
    assert_eq!(
        (
            update_only["updated"].as_i64(),
            update_only["skipped"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        app.contact_by(&key, "phone=%2B212600000000").await.unwrap()["firstName"],
        "Renamed"
    );
    assert!(
        app.contact_by(&key, "phone=%2B212600000099")
            .await
            .is_none()
    );

    let upsert = app
        .import_and_wait(
            &key,
            &json!({"contacts": [{"phone": phone(0), "lastName": "New"}, {"phone": phone(50)}]}),
        )
        .await;
    assert_eq!(
        (upsert["updated"].as_i64(), upsert["created"].as_i64()),
        (Some(1), Some(1))
    );

    // createAll never matches: a new contact per row, and identifiers stay unique.
    let id = app
        .import(
            &key,
            &json!({"mode": "createAll", "dedupeOn": "externalId", "contacts": [
        {"externalId": "x-1"}, {"externalId": "x-2", "phone": phone(0)}]}),
        )
        .await;
    let create_all = app.wait_finished(&key, &id).await;
    assert_eq!(
        (
            create_all["created"].as_i64(),
            create_all["failed"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(codes(&rows[1], "errors"), ["identifier_conflict"]);

    // A row that would give its contact another contact's email fails; the batch goes on.
    let id = app.import(&key, &json!({"contacts": [
        {"phone": phone(1), "email": "person.0@example.com"}, {"phone": phone(2), "firstName": "Fine"}]})).await;
    let status = app.wait_finished(&key, &id).await;
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(
        codes(&rows[0], "errors"),
        ["identifier_conflict"],
        "{status}"
    );
    assert_eq!(rows[1]["status"], "updated");
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 5);
    app.finish().await;
}

#[tokio::test]
async fn overwrite_null_and_custom_attributes_follow_the_contract() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    for field in [
        json!({"name": "plan", "type": "string"}),
        json!({"name": "vip", "type": "boolean"}),
        json!({"name": "since", "type": "date"}),
    ] {
        let r = app
            .client
            .post(app.url("/api/v1/fields"))
            .bearer_auth(&key)
            .json(&field)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let p = phone(7);
    app.import_and_wait(
        &key,
        &json!({"contacts": [{"phone": p, "firstName": "Old", "occupation": "nurse",
        "customAttributes": {"plan": "free", "vip": false}}]}),
    )
    .await;

    // overwrite: false fills only empty fields and never clears.
    app.import_and_wait(&key, &json!({"overwrite": false, "contacts": [{"phone": p, "firstName": "New",
        "lastName": "Filled", "occupation": null, "customAttributes": {"plan": "premium", "since": "2020-01-31"}}]})).await;
    let c = app
        .contact_by(&key, &format!("phone={}", p.replace('+', "%2B")))
        .await
        .unwrap();
    assert_eq!(c["firstName"], "Old");
    assert_eq!(c["lastName"], "Filled");
    assert_eq!(c["occupation"], "nurse");
    assert_eq!(
        c["customAttributes"],
        json!({"plan": "free", "vip": false, "since": "2020-01-31"})
    );

    // overwrite (default): values replace, null clears, absent fields and attributes stay.
    app.import_and_wait(
        &key,
        &json!({"contacts": [{"phone": p, "firstName": "New", "occupation": null,
        "customAttributes": {"vip": "yes", "since": null}}]}),
    )
    .await;
    let c = app
        .contact_by(&key, &format!("phone={}", p.replace('+', "%2B")))
        .await
        .unwrap();
    assert_eq!(c["firstName"], "New");
    assert_eq!(c["lastName"], "Filled");
    assert!(c["occupation"].is_null());
    assert_eq!(c["customAttributes"], json!({"plan": "free", "vip": true}));
    app.finish().await;
}

/// `DELETE /api/v1/contacts/{id}` soft-deletes: the contact leaves the list, keeps its
/// identifiers, and a later import skips it with `deleted_contact` unless `restoreDeleted`;
/// `POST …/restore` undoes it. Another tenant cannot touch it.
#[tokio::test]
async fn soft_deleted_contacts_are_skipped_unless_restored() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    app.import_and_wait(&key, &json!({"contacts": contacts(0, 1)}))
        .await;
    let stored = app.contact_by(&key, "phone=%2B212600000000").await.unwrap();
    let contact = stored["id"].as_str().expect("an id").to_owned();
    let other = app.tenant("other").await;
    let path = format!("/api/v1/contacts/{contact}");
    let refused = app.send(&other, reqwest::Method::DELETE, &path).await;
    assert_eq!(refused.status(), 404, "another tenant's contact");
    let deleted = app.send(&key, reqwest::Method::DELETE, &path).await;
    assert_eq!(deleted.status(), 200);
    let deleted: Value = deleted.json().await.unwrap();
    assert!(deleted["deletedAt"].is_string(), "{deleted}");
    let listed = app
        .get_json(&key, "/api/v1/contacts?phone=%2B212600000000")
        .await;
    assert_eq!(listed["data"], json!([]), "a deleted contact is not listed");

    let id = app
        .import(
            &key,
            &json!({"contacts": [{"phone": phone(0), "firstName": "Back"}]}),
        )
        .await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["skipped"], 1);
    let row = &app.all_rows(&key, &id, "").await[0];
    assert_eq!(codes(row, "warnings"), ["deleted_contact"]);
    assert!(row["contactId"].is_string());
    let c = app.contact_by(&key, "phone=%2B212600000000").await.unwrap();
    assert!(c["deletedAt"].is_string());
    assert_eq!(c["firstName"], "First0");

    let status = app.import_and_wait(&key, &json!({"restoreDeleted": true, "contacts": [{"phone": phone(0), "firstName": "Back"}]})).await;
    assert_eq!(status["updated"], 1);
    let c = app.contact_by(&key, "phone=%2B212600000000").await.unwrap();
    assert!(c["deletedAt"].is_null());
    assert_eq!(c["firstName"], "Back");

    // Deleted again through the API, then restored through it.
    let again = app.send(&key, reqwest::Method::DELETE, &path).await;
    assert_eq!(again.status(), 200);
    let restored = app
        .send(&key, reqwest::Method::POST, &format!("{path}/restore"))
        .await;
    assert_eq!(restored.status(), 200);
    let restored: Value = restored.json().await.unwrap();
    assert!(restored["deletedAt"].is_null(), "{restored}");
    assert_eq!(restored["firstName"], "Back");
    let listed = app
        .get_json(&key, "/api/v1/contacts?phone=%2B212600000000")
        .await;
    assert_eq!(listed["data"][0]["id"], contact.as_str());
    let missing = app
        .send(
            &key,
            reqwest::Method::POST,
            &format!("/api/v1/contacts/{}/restore", uuid::Uuid::new_v4()),
        )
        .await;
    assert_eq!(missing.status(), 404);
    app.finish().await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_imports_once() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let body = json!({"contacts": contacts(0, 10)});
    let send = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move {
            app.client
                .post(app.url("/api/v1/contacts"))
                .bearer_auth(key)
                .header("Idempotency-Key", "order-42")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let (first, second) = tokio::join!(send(body.clone()), send(body.clone()));
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (202, 202)
    );
    let first: Value = first.json().await.unwrap();
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["asyncSessionId"], second["asyncSessionId"]);
    let later = send(body.clone()).await;
    assert_eq!(later.status(), 202);
    assert_eq!(
        later.json::<Value>().await.unwrap()["asyncSessionId"],
        first["asyncSessionId"]
    );

    let other = send(json!({"contacts": contacts(100, 1)})).await;
    assert_eq!(other.status(), 422);

    app.wait_finished(&key, first["asyncSessionId"].as_str().unwrap())
        .await;
    let (imports,): (i64,) = sqlx::query_as("SELECT count(*) FROM imports")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (contacts,): (i64,) = sqlx::query_as("SELECT count(*) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((imports, contacts), (1, 10));
    app.finish().await;
}

#[tokio::test]
async fn custom_fields_are_typed_and_listed() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let post = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move {
            app.client
                .post(app.url("/api/v1/fields"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    for (body, expected) in [
        (json!({"name": "account_balance", "type": "number"}), 201),
        (
            json!({"name": "level", "type": "enum", "options": ["a", "b"]}),
            201,
        ),
        (json!({"name": "account_balance", "type": "string"}), 409),
        (json!({"name": "x", "type": "colour"}), 422),
        (json!({"name": "bad name!", "type": "string"}), 422),
        (json!({"name": "e", "type": "enum"}), 422),
        (json!({"type": "string"}), 422),
    ] {
        let response = post(body.clone()).await;
        assert_eq!(response.status(), expected, "{body}");
    }
    let list = app.get_json(&key, "/api/v1/fields").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["account_balance", "level"]);
    assert_eq!(list["data"][1]["type"], "enum");
    assert_eq!(list["data"][1]["options"], json!(["a", "b"]));
    app.finish().await;
}

async fn pending_batches(app: &TestApp) -> Vec<BatchRef> {
    let rows: Vec<(uuid::Uuid, i32)> = sqlx::query_as(
        "SELECT import_id, batch_no FROM import_batches ORDER BY import_id, batch_no",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(import_id, batch_no)| BatchRef {
            import_id,
            batch_no,
            tenant_id: None,
        })
        .collect()
}

#[tokio::test]
async fn a_redelivered_batch_applies_nothing_twice() {
    // No workers: the test plays the worker, delivering the same batch twice at once and again later.
    let app = spawn_with(test_settings().await, Roles::API).await;
    let key = app.tenant("acme").await;
    let id = app
        .import(&key, &json!({"contacts": contacts(0, 300)}))
        .await;
    let batch = pending_batches(&app).await[0];
    let (a, b) = tokio::join!(
        worker::run_batch(&app.pool, batch),
        worker::run_batch(&app.pool, batch)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, BatchOutcome::Applied(_)))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&BatchOutcome::AlreadyDone));
    assert_eq!(
        worker::run_batch(&app.pool, batch).await.unwrap(),
        BatchOutcome::AlreadyDone
    );
    let unknown = BatchRef {
        import_id: uuid::Uuid::new_v4(),
        batch_no: 0,
        tenant_id: None,
    };
    assert_eq!(
        worker::run_batch(&app.pool, unknown).await.unwrap(),
        BatchOutcome::Unknown
    );

    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["created"], 300);
    assert_eq!(status["processedRows"], 300);
    let (results, contacts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM row_results), (SELECT count(*) FROM contacts)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((results, contacts), (300, 300));
    app.finish().await;
}

#[tokio::test]
async fn concurrent_batches_upserting_the_same_phones_lose_and_duplicate_nothing() {
    let app = spawn_with(test_settings().await, Roles::API).await;
    let key = app.tenant("acme").await;
    let first = app
        .import(&key, &json!({"contacts": contacts(0, 500)}))
        .await;
    let mut reversed = contacts(0, 500);
    reversed.reverse();
    for c in &mut reversed {
        c["lastName"] = json!("Second");
    }
    let second = app.import(&key, &json!({"contacts": reversed})).await;
    let batches = pending_batches(&app).await;
    assert_eq!(batches.len(), 2);
    let (a, b) = tokio::join!(
        worker::run_batch(&app.pool, batches[0]),
        worker::run_batch(&app.pool, batches[1])
    );
    assert!(matches!(a.unwrap(), BatchOutcome::Applied(_)));
    assert!(matches!(b.unwrap(), BatchOutcome::Applied(_)));
    let s1 = app.wait_finished(&key, &first).await;
    let s2 = app.wait_finished(&key, &second).await;
    let created = s1["created"].as_i64().unwrap() + s2["created"].as_i64().unwrap();
    let updated = s1["updated"].as_i64().unwrap() + s2["updated"].as_i64().unwrap();
    assert_eq!((created, updated), (500, 500), "{s1} {s2}");
    let (contacts, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT phone) FROM contacts")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((contacts, distinct), (500, 500));
    app.finish().await;
}

#[tokio::test]
async fn status_rows_and_lists_page_as_documented() {
    let mut settings = test_settings().await;
    settings.batch_size = 100;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let mut body = contacts(0, 250);
    body[10]["phone"] = json!("nope");
    body[200]["email"] = json!("bad@");
    let first = app.import(&key, &json!({"contacts": body})).await;
    let status = app.wait_finished(&key, &first).await;
    assert_eq!(
        (status["created"].as_i64(), status["failed"].as_i64()),
        (Some(248), Some(2))
    );

    let page = app
        .get_json(&key, &format!("/api/v1/imports/{first}/rows?limit=100"))
        .await;
    assert_eq!(page["rows"].as_array().unwrap().len(), 100);
    assert_eq!(page["nextAfter"], 99);
    let page = app
        .get_json(
            &key,
            &format!("/api/v1/imports/{first}/rows?after=99&limit=100"),
        )
        .await;
    assert_eq!(page["rows"][0]["index"], 100);
    let failed = app
        .get_json(&key, &format!("/api/v1/imports/{first}/rows?status=failed"))
        .await;
    let indexes: Vec<i64> = failed["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["index"].as_i64())
        .collect();
    assert_eq!(indexes, [10, 200]);
    assert!(failed["nextAfter"].is_null());
    assert_eq!(
        app.get(&key, &format!("/api/v1/imports/{first}/rows?status=weird"))
            .await
            .status(),
        422
    );

    let second = app
        .import(&key, &json!({"contacts": contacts(1000, 1)}))
        .await;
    app.wait_finished(&key, &second).await;
    let list = app.get_json(&key, "/api/v1/imports?limit=1").await;
    assert_eq!(list["data"][0]["asyncSessionId"], second.as_str());
    let next = list["nextBefore"].as_str().unwrap().to_owned();
    let list = app
        .get_json(&key, &format!("/api/v1/imports?limit=1&before={next}"))
        .await;
    assert_eq!(list["data"][0]["asyncSessionId"], first.as_str());

    let by_email = app
        .contact_by(&key, "email=PERSON.5%40example.com")
        .await
        .unwrap();
    assert_eq!(by_email["phone"], phone(5));
    let spaced = app
        .get_json(&key, "/api/v1/contacts?phone=212600000005")
        .await;
    assert_eq!(spaced["data"][0]["id"], by_email["id"]);
    let all = app
        .get_json(&key, "/api/v1/contacts?perPage=10&page=2")
        .await;
    assert_eq!(all["meta"]["total"], 249);
    assert_eq!(all["data"].as_array().unwrap().len(), 10);
    app.finish().await;
}

#[tokio::test]
async fn health_and_readiness_report_the_dependencies() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Readiness turns 200 once the relay has connected to the broker.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        if ready.status() == 200 {
            let body: Value = ready.json().await.unwrap();
            assert_eq!(body["database"], "up");
            assert_eq!(body["broker"], "up");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.finish().await;
}

async fn start_workers(app: &TestApp) -> contact_import::startup::Running {
    contact_import::startup::start(app.settings.clone(), Roles::WORKERS)
        .await
        .expect("start workers")
}

#[tokio::test]
async fn a_batch_that_cannot_be_applied_is_dead_its_rows_fail_and_replay_redrives_it() {
    let mut settings = test_settings().await;
    settings.batch_size = 2;
    let app = spawn_with(settings, Roles::API).await;
    let key = app.tenant("acme").await;
    let id = app.import(&key, &json!({"contacts": contacts(0, 4)})).await;
    // Batch 1's stored payload is damaged: no delivery can ever apply it.
    let original: Vec<u8> =
        sqlx::query_scalar("SELECT payload FROM import_batches WHERE batch_no = 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    sqlx::query("UPDATE import_batches SET payload = 'not json' WHERE batch_no = 1")
        .execute(&app.pool)
        .await
        .unwrap();
    let workers = start_workers(&app).await;

    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["status"], "completedWithErrors", "{status}");
    assert_eq!(
        (status["created"].as_i64(), status["failed"].as_i64()),
        (Some(2), Some(2))
    );
    assert_counters_add_up(&status);
    let failed = app.all_rows(&key, &id, "&status=failed").await;
    assert_eq!(
        failed
            .iter()
            .map(|r| r["index"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(codes(&failed[0], "errors"), ["batch_failed"]);
    assert!(
        failed[0]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("payload"),
        "{}",
        failed[0]
    );
    let dead = contact_import::store::batches::list_dead(&app.pool, None)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].batch_no, 1);

    // The operator repairs the cause and replays: the rows are applied, the counts taken back.
    sqlx::query("UPDATE import_batches SET payload = $1 WHERE batch_no = 1")
        .bind(&original)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        contact_import::store::batches::replay_dead(&app.pool, None)
            .await
            .unwrap(),
        1
    );
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        (status["created"].as_i64(), status["failed"].as_i64()),
        (Some(4), Some(0))
    );
    assert_counters_add_up(&status);
    assert_eq!(app.all_rows(&key, &id, "").await.len(), 4);
    assert!(
        contact_import::store::batches::list_dead(&app.pool, None)
            .await
            .unwrap()
            .is_empty()
    );
    workers.stop().await;
    app.finish().await;
}

#[tokio::test]
async fn a_message_the_broker_dead_letters_is_recorded_and_the_import_finishes() {
    use lapin::BasicProperties;
    use lapin::options::BasicPublishOptions;
    // No workers: the batch sits in the queue until the "broker" dead-letters it.
    let app = spawn_with(test_settings().await, Roles::API).await;
    let key = app.tenant("acme").await;
    let id = app.import(&key, &json!({"contacts": contacts(0, 3)})).await;
    let batch = pending_batches(&app).await[0];
    let topology = contact_import::broker::Topology::new(&app.settings.queue_prefix);
    let connection = contact_import::broker::connect(&app.settings.amqp_url, "test")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    topology.declare(&channel).await.unwrap();
    let body = serde_json::to_vec(&batch).unwrap();
    channel
        .basic_publish(
            "".into(),
            topology.dead_letters().as_str().into(),
            BasicPublishOptions::default(),
            &body,
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["failed"], 3);
    assert_counters_add_up(&status);
    let rows = app.all_rows(&key, &id, "").await;
    assert!(
        rows.iter().all(|r| codes(r, "errors") == ["batch_failed"]),
        "{rows:?}"
    );

    // Replayed with workers running, the same batch is applied; the stale message already in
    // the queue finds it done and changes nothing.
    contact_import::store::batches::replay_dead(&app.pool, Some(batch.import_id))
        .await
        .unwrap();
    let workers = start_workers(&app).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["created"], 3);
    assert_counters_add_up(&status);
    let _ = connection.close(200, "bye".into()).await;
    workers.stop().await;
    app.finish().await;
}

#[tokio::test]
async fn after_a_big_import_the_service_refreshes_the_planner_statistics_itself() {
    // Autovacuum may be off (it is on CI machines): the service must not depend on it.
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    app.import_and_wait(&key, &json!({"contacts": contacts(0, 3000)}))
        .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let analysed: Option<bool> = sqlx::query_scalar(
            "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'contacts'",
        )
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        if analysed == Some(true) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "contacts was never analysed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (estimate,): (f32,) =
        sqlx::query_as("SELECT reltuples FROM pg_class WHERE relname = 'contacts'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(estimate >= 2500.0, "statistics still say {estimate} rows");
    app.finish().await;
}

/// A big import of one tenant does not queue another tenant's small import behind it: the
/// relay shares the slots in flight round-robin (here 2 in all and 1 per tenant while both
/// wait, with one worker), so the small one is done after a few of the big one's batches —
/// in arrival order it would wait for all the big one's remaining batches.
#[tokio::test]
async fn a_small_import_is_not_queued_behind_another_tenants_big_one() {
    let mut settings = test_settings().await;
    settings.workers = 1;
    settings.batch_size = 20;
    settings.relay_max_in_flight = 2;
    settings.relay_tenant_in_flight = 1;
    let app = spawn_with(settings, Roles::ALL).await;
    let (big, small) = (app.tenant("big").await, app.tenant("small").await);
    let mut big_ids = Vec::new();
    for i in 0..3 {
        let body = json!({"contacts": contacts(i * 600, 600)});
        big_ids.push(app.import(&big, &body).await);
    }
    let small_id = app
        .import(&small, &json!({"contacts": contacts(0, 40)}))
        .await;
    let status = app.wait_finished(&small, &small_id).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["created"], 40, "{status}");

    let (big_done, big_total): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE b.done_at > s.created_at AND b.done_at <= s.finished_at),
                count(*)
         FROM import_batches b JOIN imports s ON s.id = $2
         WHERE b.import_id = ANY($1)",
    )
    .bind(
        big_ids
            .iter()
            .map(|id| id.parse::<uuid::Uuid>().expect("an import id"))
            .collect::<Vec<_>>(),
    )
    .bind(small_id.parse::<uuid::Uuid>().expect("an import id"))
    .fetch_one(&app.pool)
    .await
    .expect("count the big import's batches");
    assert_eq!(big_total, 90);
    // Counted from the small import's arrival: the big one's batches that the worker applied
    // while the requests were still being posted do not count against the relay.
    assert!(
        big_done <= 6,
        "{big_done} of the big import's 90 batches were done while the small import waited"
    );
    for id in &big_ids {
        let status = app.wait_finished(&big, id).await;
        assert_eq!(status["status"], "completed", "{status}");
        assert_eq!(status["created"], 600, "{status}");
    }
    app.finish().await;
}

/// `/metrics` after an import: the row counters are the import's, the imports gauge counts it,
/// the outbox is empty, the queue series come from the broker (its consumers are this
/// process's workers), and `/api/v1/ops/queues` shows the same queues.
#[tokio::test]
async fn metrics_and_queue_depths_match_the_imports() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let mut rows = contacts(0, 5);
    rows.push(json!({"phone": "not a phone"}));
    let status = app.import_and_wait(&key, &json!({"contacts": rows})).await;
    assert_eq!(status["status"], "completedWithErrors", "{status}");

    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("metrics text");
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    for outcome in ["created", "updated", "skipped", "failed"] {
        assert_eq!(
            value(&format!(
                r#"contact_import_rows_total{{outcome="{outcome}"}}"#
            )),
            status[outcome].as_f64().expect("a count"),
            "{outcome}"
        );
    }
    assert_eq!(
        value(r#"contact_import_imports{status="completedWithErrors"}"#),
        1.0
    );
    assert_eq!(value(r#"contact_import_imports{status="queued"}"#), 0.0);
    assert_eq!(value("contact_import_outbox_pending"), 0.0);
    assert_eq!(value("contact_import_events_pending"), 0.0);
    assert_eq!(value(r#"contact_import_callbacks{status="pending"}"#), 0.0);
    assert!(value("contact_import_batch_duration_seconds_count") >= 1.0);
    let batches = format!("{}.batches", app.settings.queue_prefix);
    assert_eq!(
        value(&format!(
            r#"contact_import_queue_messages{{queue="{batches}"}}"#
        )),
        0.0
    );
    assert_eq!(
        value(&format!(
            r#"contact_import_queue_consumers{{queue="{batches}"}}"#
        )),
        app.settings.workers as f64
    );

    let queues = app.get_json(&key, "/api/v1/ops/queues").await;
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .filter_map(|q| q["name"].as_str())
        .collect();
    let dead = format!("{}.batches.dlq", app.settings.queue_prefix);
    assert_eq!(names, [batches.as_str(), dead.as_str()], "{queues}");
    assert_eq!(queues["queues"][0]["consumers"], app.settings.workers);
    let anonymous = app
        .client
        .get(app.url("/api/v1/ops/queues"))
        .send()
        .await
        .expect("GET without a key");
    assert_eq!(anonymous.status(), 401);
    app.finish().await;
}

/// A tenant's POST rate is one token bucket for every `serve` process: two processes on one
/// database share it; reads are not limited; another tenant has a bucket of its own.
#[tokio::test]
async fn the_rate_limit_holds_across_two_serve_processes() {
    let mut settings = test_settings().await;
    settings.rate_limit_rps = 0.5;
    settings.rate_limit_burst = 3;
    let first = spawn_with(settings.clone(), Roles::API).await;
    let second = spawn_with(settings, Roles::API).await;
    let key = first.tenant("acme").await;
    let body = json!({"contacts": contacts(0, 1)});
    for app in [&first, &second, &first] {
        let response = app.post_contacts(&key, &body).await;
        assert_eq!(response.status(), 202, "within the burst of 3");
    }
    for app in [&second, &first] {
        let response = app.post_contacts(&key, &body).await;
        assert_eq!(response.status(), 429);
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .expect("Retry-After")
            .parse()
            .expect("Retry-After in seconds");
        assert!(
            (1..=2).contains(&retry_after),
            "one token every 2 s: {retry_after}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.expect("problem+json");
        assert_eq!(problem["status"], 429);
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("0.5 requests a second")),
            "{problem}"
        );
    }
    assert_eq!(second.get(&key, "/api/v1/imports").await.status(), 200);
    let other = second.tenant("other").await;
    assert_eq!(second.post_contacts(&other, &body).await.status(), 202);
    second.finish().await;
    first.finish().await;
}

/// A tenant cannot queue more than MAX_QUEUED_ROWS rows that are not yet applied: the request
/// that would pass it gets 429 with the numbers, stores nothing, and a smaller one still fits.
#[tokio::test]
async fn intake_beyond_the_tenants_backlog_cap_is_refused() {
    let mut settings = test_settings().await;
    settings.max_queued_rows = 5;
    // No workers: nothing is applied, so what is accepted stays queued.
    let app = spawn_with(settings, Roles::API).await;
    let key = app.tenant("acme").await;
    let three = json!({"contacts": contacts(0, 3)});
    assert_eq!(app.post_contacts(&key, &three).await.status(), 202);
    let response = app.post_contacts(&key, &three).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Value = response.json().await.expect("problem+json");
    let detail = problem["detail"].as_str().expect("detail");
    assert!(
        detail.contains("3 rows stored") && detail.contains("limit of 5"),
        "{detail}"
    );
    let (imports,): (i64,) = sqlx::query_as("SELECT count(*) FROM imports")
        .fetch_one(&app.pool)
        .await
        .expect("count imports");
    assert_eq!(imports, 1, "the refused request stored nothing");
    let two = json!({"contacts": contacts(10, 2)});
    assert_eq!(app.post_contacts(&key, &two).await.status(), 202);
    app.finish().await;
}

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

/// The contacts table as text, to show that nothing changed.
async fn contacts_snapshot(app: &TestApp) -> (i64, String) {
    sqlx::query_as(
        "SELECT count(*), coalesce(md5(string_agg(c::text, ',' ORDER BY c.id)), '') FROM contacts c",
    )
    .fetch_one(&app.pool)
    .await
    .expect("contacts snapshot")
}

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

/// `allOrNothing`: one failed row and no row is applied (the others are skipped with
/// `not_applied`, the import ends `failed`); without a failed row it is an ordinary import.
#[tokio::test]
async fn all_or_nothing_applies_no_row_when_one_fails() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let mut rows = contacts(0, 1200);
    rows[1100] = json!({"phone": "not a phone", "firstName": "Bad"});
    let id = app
        .import(&key, &json!({"allOrNothing": true, "contacts": rows}))
        .await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert!(
        status["error"]
            .as_str()
            .is_some_and(|e| e.contains("allOrNothing")),
        "{status}"
    );
    assert_eq!(
        (status["failed"].as_i64(), status["skipped"].as_i64()),
        (Some(1), Some(1199)),
        "{status}"
    );
    assert_counters_add_up(&status);
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(codes(&rows[1100], "errors"), ["invalid_phone"]);
    assert!(
        rows.iter()
            .filter(|r| r["index"] != 1100)
            .all(|r| r["status"] == "skipped" && codes(r, "warnings") == ["not_applied"]),
        "every other row is skipped with not_applied"
    );
    assert_eq!(contacts_snapshot(&app).await.0, 0, "no contact was created");
    // One batch, so that it is one transaction (batches hold 500 rows here).
    let (batches,): (i32,) = sqlx::query_as("SELECT batch_count FROM imports WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&id).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(batches, 1);

    let status = app
        .import_and_wait(
            &key,
            &json!({"allOrNothing": true, "contacts": contacts(0, 1200)}),
        )
        .await;
    assert_eq!(
        (status["status"].as_str(), status["created"].as_i64()),
        (Some("completed"), Some(1200)),
        "{status}"
    );

    // A file is applied batch by batch: the option is refused there, with the reason.
    let response = app
        .upload_csv(&key, "?allOrNothing=true", "phone\n+212600000001\n")
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["pointer"], "/allOrNothing",
        "{problem}"
    );
    app.finish().await;
}

/// Tags: a contact's own `tags` replace its set with `overwrite` and are only added without;
/// the request's `tags` are added and `tagsRemove` removed; a CSV import tags its contacts with
/// its own tag unless `importTag` is false; `?tag=` lists the contacts with one.
#[tokio::test]
async fn tags_follow_overwrite_and_the_request_and_filter_the_list() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let tags_of = |c: Option<Value>| -> Vec<String> {
        c.and_then(|c| {
            c["tags"].as_array().map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
    };
    let mut rows = contacts(0, 3);
    rows[0]["tags"] = json!(["vip", " vip ", "quote\"back\\slash"]);
    rows[1]["tags"] = json!(["x"]);
    let status = app
        .import_and_wait(&key, &json!({"contacts": rows, "tags": ["2026"]}))
        .await;
    assert_eq!(status["created"], 3, "{status}");
    let c0 = "phone=%2B212600000000";
    let c1 = "phone=%2B212600000001";
    let c2 = "phone=%2B212600000002";
    assert_eq!(
        tags_of(app.contact_by(&key, c0).await),
        ["vip", "quote\"back\\slash", "2026"]
    );
    assert_eq!(tags_of(app.contact_by(&key, c1).await), ["x", "2026"]);
    assert_eq!(tags_of(app.contact_by(&key, c2).await), ["2026"]);

    // overwrite (the default): a contact's own tags replace its set; tagsRemove removes.
    let status = app
        .import_and_wait(
            &key,
            &json!({"tagsRemove": ["2026"], "contacts": [
                {"phone": phone(0), "tags": ["new"]}, {"phone": phone(1)}]}),
        )
        .await;
    assert_eq!(status["updated"], 2, "{status}");
    assert_eq!(tags_of(app.contact_by(&key, c0).await), ["new"]);
    assert_eq!(tags_of(app.contact_by(&key, c1).await), ["x"]);

    // overwrite false only ever adds: own tags are added, null clears nothing.
    app.import_and_wait(
        &key,
        &json!({"overwrite": false, "contacts": [
            {"phone": phone(0), "tags": null}, {"phone": phone(1), "tags": ["y", "x"]}]}),
    )
    .await;
    assert_eq!(tags_of(app.contact_by(&key, c0).await), ["new"]);
    assert_eq!(tags_of(app.contact_by(&key, c1).await), ["x", "y"]);

    let listed = app.get_json(&key, "/api/v1/contacts?tag=x").await;
    assert_eq!(listed["meta"]["total"], 1, "{listed}");
    assert_eq!(listed["data"][0]["phone"], phone(1));
    let none = app.get_json(&key, "/api/v1/contacts?tag=nobody").await;
    assert_eq!(none["meta"]["total"], 0);

    // A bad tag fails its row; a bad request-level tag is a 422 that points at it.
    let id = app
        .import(
            &key,
            &json!({"contacts": [{"phone": phone(5), "tags": ["ok", 7]}]}),
        )
        .await;
    app.wait_finished(&key, &id).await;
    let row = &app.all_rows(&key, &id, "").await[0];
    assert_eq!(row["errors"][0]["field"], "tags", "{row}");
    let refused = app
        .post_contacts(
            &key,
            &json!({"contacts": contacts(6, 1), "tags": ["ok", ""]}),
        )
        .await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/tags/1", "{problem}");

    // A CSV import tags what it applies with its own tag, and with the request's.
    let csv = format!("phone\n{}\n", phone(10));
    let response = app.upload_csv(&key, "?tags=from-csv,2026", csv).await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["asyncSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_finished(&key, &id).await;
    let today = time::OffsetDateTime::now_utc().date();
    let own = format!(
        "import-{:04}{:02}{:02}-{}",
        today.year(),
        u8::from(today.month()),
        today.day(),
        &id[..8]
    );
    assert_eq!(
        tags_of(app.contact_by(&key, "phone=%2B212600000010").await),
        ["from-csv", "2026", own.as_str()]
    );
    let listed = app
        .get_json(&key, &format!("/api/v1/contacts?tag={own}"))
        .await;
    assert_eq!(listed["meta"]["total"], 1, "{listed}");
    let csv = format!("phone\n{}\n", phone(11));
    let response = app.upload_csv(&key, "?importTag=false", csv).await;
    let id = response.json::<Value>().await.unwrap()["asyncSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_finished(&key, &id).await;
    assert!(tags_of(app.contact_by(&key, "phone=%2B212600000011").await).is_empty());
    app.finish().await;
}

/// The tenant's groups by name and member count, from `GET /api/v1/groups`.
async fn group_counts(app: &TestApp, key: &str) -> std::collections::BTreeMap<String, i64> {
    let groups = app.get_json(key, "/api/v1/groups").await;
    groups["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or_default().to_owned(),
                g["members"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

/// Groups: created on first use, joined and left by applied contacts, with member counts (live
/// contacts) right after every import, delete and restore, before and after the counts are
/// folded; `?group=` lists the members; a dry run creates nothing.
#[tokio::test]
async fn group_members_and_counts_follow_imports_deletes_and_restores() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let counts = |pairs: &[(&str, i64)]| {
        pairs
            .iter()
            .map(|(n, c)| ((*n).to_owned(), *c))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    app.import_and_wait(
        &key,
        &json!({"groupNames": ["Customers", "VIP"], "contacts": contacts(0, 5)}),
    )
    .await;
    assert_eq!(
        group_counts(&app, &key).await,
        counts(&[("Customers", 5), ("VIP", 5)])
    );
    let c0 = app.contact_by(&key, "phone=%2B212600000000").await.unwrap();
    assert_eq!(c0["groups"], json!(["Customers", "VIP"]));

    // 3 and 4 are updated, 5 and 6 created: all join Customers and leave VIP.
    app.import_and_wait(
        &key,
        &json!({"groupNames": ["Customers"], "groupNamesExclude": ["VIP"], "contacts": contacts(3, 4)}),
    )
    .await;
    assert_eq!(
        group_counts(&app, &key).await,
        counts(&[("Customers", 7), ("VIP", 3)])
    );
    let vip = app.get_json(&key, "/api/v1/contacts?group=VIP").await;
    assert_eq!(vip["meta"]["total"], 3, "{vip}");

    // A deleted contact is no member; restored, it is one again.
    let path = format!("/api/v1/contacts/{}", c0["id"].as_str().unwrap());
    assert_eq!(
        app.send(&key, reqwest::Method::DELETE, &path)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.send(&key, reqwest::Method::DELETE, &path)
            .await
            .status(),
        200
    );
    assert_eq!(
        group_counts(&app, &key).await,
        counts(&[("Customers", 6), ("VIP", 2)]),
        "deleting twice counts once"
    );
    let vip = app.get_json(&key, "/api/v1/contacts?group=VIP").await;
    assert_eq!(vip["meta"]["total"], 2, "{vip}");
    // Restored by an import (restoreDeleted), which also adds it to a new group.
    app.import_and_wait(
        &key,
        &json!({"restoreDeleted": true, "groupNames": ["Back"], "contacts": [{"phone": phone(0)}]}),
    )
    .await;
    assert_eq!(
        group_counts(&app, &key).await,
        counts(&[("Back", 1), ("Customers", 7), ("VIP", 3)])
    );
    // A skipped row (deleted contact, no restore) joins nothing; the group exists, empty.
    let c1 = app.contact_by(&key, "phone=%2B212600000001").await.unwrap();
    let path = format!("/api/v1/contacts/{}", c1["id"].as_str().unwrap());
    assert_eq!(
        app.send(&key, reqwest::Method::DELETE, &path)
            .await
            .status(),
        200
    );
    app.import_and_wait(
        &key,
        &json!({"groupNames": ["Late"], "contacts": [{"phone": phone(1)}]}),
    )
    .await;
    let restored = app
        .send(&key, reqwest::Method::POST, &format!("{path}/restore"))
        .await;
    assert_eq!(restored.status(), 200);
    let expected = counts(&[("Back", 1), ("Customers", 7), ("Late", 0), ("VIP", 3)]);
    assert_eq!(group_counts(&app, &key).await, expected);

    // A dry run creates no group and joins nothing.
    app.import_and_wait(
        &key,
        &json!({"dryRun": true, "groupNames": ["Dry", "VIP"], "contacts": contacts(20, 3)}),
    )
    .await;
    assert_eq!(group_counts(&app, &key).await, expected);

    // A CSV import takes the same options.
    let csv = format!("phone\n{}\n{}\n", phone(30), phone(31));
    let response = app
        .upload_csv(&key, "?groupNames=From%20CSV,VIP", csv)
        .await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["asyncSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_finished(&key, &id).await;
    let expected = counts(&[
        ("Back", 1),
        ("Customers", 7),
        ("From CSV", 2),
        ("Late", 0),
        ("VIP", 5),
    ]);
    assert_eq!(group_counts(&app, &key).await, expected);

    // The counts are the same once the deltas are folded (the service folds every second).
    contact_import::store::groups::fold_counts(&app.pool)
        .await
        .expect("fold");
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM group_member_deltas")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(group_counts(&app, &key).await, expected);
    let (live_members,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM contact_groups cg JOIN contacts c ON c.id = cg.contact_id
         WHERE c.deleted_at IS NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(live_members, expected.values().sum::<i64>());

    let other = app.tenant("other").await;
    assert!(group_counts(&app, &other).await.is_empty());
    let none = app.get_json(&other, "/api/v1/contacts?group=VIP").await;
    assert_eq!(none["meta"]["total"], 0);
    app.finish().await;
}

/// Waits until every stored event is confirmed by the broker; returns how many are stored.
async fn events_published(app: &TestApp) -> i64 {
    common::eventually("every stored event published", || async {
        let (waiting, total): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE published_at IS NULL), count(*) FROM event_outbox",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (waiting == 0).then_some(total)
    })
    .await
}

/// `eventKeyForNewContacts`: exactly one persistent message per created contact on
/// `{prefix}.events` (none for updates), none more for a duplicated batch message, and a
/// re-publish carries the same eventId.
#[tokio::test]
async fn each_created_contact_yields_exactly_one_event() {
    use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let topology = contact_import::broker::Topology::new(&app.settings.queue_prefix);
    let connection = contact_import::broker::connect(&app.settings.amqp_url, "test")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    topology.declare(&channel).await.unwrap();
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.name().as_str().into(),
            topology.events().as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let get = || async {
        channel
            .basic_get(
                queue.name().as_str().into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
    };

    app.import_and_wait(&key, &json!({"contacts": contacts(0, 2)}))
        .await;
    let id = app
        .import(
            &key,
            &json!({"eventKeyForNewContacts": "crm.contact.created", "groupNames": ["New"], "contacts": contacts(0, 5)}),
        )
        .await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(
        (status["created"].as_i64(), status["updated"].as_i64()),
        (Some(3), Some(2))
    );
    let created: std::collections::BTreeSet<String> = app
        .all_rows(&key, &id, "&status=created")
        .await
        .iter()
        .filter_map(|r| r["contactId"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(events_published(&app).await, 3);

    let mut seen = std::collections::BTreeMap::new();
    while let Some(message) = get().await {
        assert_eq!(message.delivery.routing_key.as_str(), "crm.contact.created");
        assert_eq!(
            message.delivery.properties.delivery_mode(),
            &Some(2),
            "persistent"
        );
        let body: Value = serde_json::from_slice(&message.delivery.data).unwrap();
        assert_eq!(body["eventKey"], "crm.contact.created");
        assert_eq!(body["tenant"], "acme");
        assert_eq!(body["asyncSessionId"], id.as_str());
        assert_eq!(body["contact"]["id"], body["contactId"]);
        assert_eq!(body["contact"]["groups"], json!(["New"]));
        assert!(body["occurredAt"].is_string());
        let event_id = body["eventId"].as_str().unwrap().to_owned();
        assert_eq!(
            message
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(|m| m.as_str()),
            Some(event_id.as_str())
        );
        seen.insert(event_id, body["contactId"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        seen.len(),
        3,
        "one event per created contact, none per update"
    );
    assert_eq!(
        seen.values()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        created
    );

    // The batch's message delivered again: the batch is done, nothing new is stored.
    let batch = BatchRef {
        import_id: uuid::Uuid::parse_str(&id).unwrap(),
        batch_no: 0,
        tenant_id: None,
    };
    assert_eq!(
        worker::run_batch(&app.pool, batch).await.unwrap(),
        BatchOutcome::AlreadyDone
    );
    // A dry run and a run that creates nothing store no event either.
    app.import_and_wait(
        &key,
        &json!({"dryRun": true, "eventKeyForNewContacts": "x", "contacts": contacts(100, 3)}),
    )
    .await;
    app.import_and_wait(
        &key,
        &json!({"eventKeyForNewContacts": "x", "contacts": contacts(0, 3)}),
    )
    .await;
    assert_eq!(events_published(&app).await, 3);
    assert!(get().await.is_none(), "no event beyond the three");

    // Published again (as after a crash between publish and mark): the same eventId.
    let again = seen.keys().next().unwrap().clone();
    sqlx::query("UPDATE event_outbox SET published_at = NULL WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&again).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(events_published(&app).await, 3);
    let message = get().await.expect("the event, published again");
    let body: Value = serde_json::from_slice(&message.delivery.data).unwrap();
    assert_eq!(body["eventId"], again.as_str());
    assert!(get().await.is_none());
    let _ = connection.close(200, "bye".into()).await;
    app.finish().await;
}

/// A receiver for completion callbacks: answers 500 to the first `failures` POSTs, then 200;
/// keeps every body with its `X-Signature`.
async fn callback_receiver(
    failures: usize,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>,
) {
    use axum::http::{HeaderMap, StatusCode};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/done",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let signature = headers
                    .get("x-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let mut log = log.lock().unwrap();
                log.push((signature, body.to_vec()));
                if log.len() <= failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// Polls the import until its callback is in `state`; returns the status.
async fn callback_in_state(app: &TestApp, key: &str, id: &str, state: &str) -> Value {
    common::eventually(&format!("the callback {state}"), || async {
        let status = app.get_json(key, &format!("/api/v1/imports/{id}")).await;
        (status["callback"]["state"] == state).then_some(status)
    })
    .await
}

/// `callbackUrl`: once final, the status is POSTed, signed with the tenant's secret; a receiver
/// that fails twice gets it on the third try; the delivery shows in the status; a receiver that
/// never succeeds is given up after 24 hours.
#[tokio::test]
async fn a_completion_callback_is_signed_retried_and_shown_in_the_status() {
    let mut settings = test_settings().await;
    // The receiver listens on 127.0.0.1.
    settings.callback_allow_private = true;
    settings.callback_retry_initial_secs = 0.05;
    let app = spawn_with(settings, Roles::ALL).await;
    let tenant = contact_import::store::tenants::create(&app.pool, "acme")
        .await
        .unwrap();
    let key = tenant.api_key;
    let (addr, seen) = callback_receiver(2).await;
    let id = app
        .import(
            &key,
            &json!({"callbackUrl": format!("http://{addr}/done"), "contacts": contacts(0, 3)}),
        )
        .await;
    let status = callback_in_state(&app, &key, &id, "delivered").await;
    assert_eq!(status["callback"]["attempts"], 3, "{status}");
    assert!(
        status["callback"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{status}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for (signature, body) in &seen {
        assert_eq!(
            signature,
            &contact_import::callback::signature(&tenant.signing_secret, body),
            "signed with the tenant's secret"
        );
        let sent: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(sent["asyncSessionId"], id.as_str());
        assert_eq!(sent["status"], "completed");
        assert_eq!(sent["created"], 3);
    }
    // Another secret does not verify.
    assert_ne!(
        seen[0].0,
        contact_import::callback::signature("whsec_other", &seen[0].1)
    );

    // A receiver that never succeeds: retried, then given up once 24 hours have passed.
    let (addr, _) = callback_receiver(usize::MAX).await;
    let id = app
        .import(
            &key,
            &json!({"callbackUrl": format!("http://{addr}/done"), "contacts": contacts(10, 1)}),
        )
        .await;
    app.wait_finished(&key, &id).await;
    sqlx::query("UPDATE imports SET finished_at = now() - interval '25 hours' WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&id).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let status = callback_in_state(&app, &key, &id, "failed").await;
    assert!(
        status["callback"]["attempts"].as_i64() >= Some(1),
        "{status}"
    );

    // A dry run calls nobody back.
    let (addr, seen) = callback_receiver(0).await;
    let status = app
        .import_and_wait(
            &key,
            &json!({"dryRun": true, "callbackUrl": format!("http://{addr}/done"), "contacts": contacts(20, 1)}),
        )
        .await;
    assert!(status.get("callback").is_none(), "{status}");
    assert!(seen.lock().unwrap().is_empty());
    app.finish().await;
}

/// Callback URLs that would reach the service's own network are refused at intake (422), on
/// both intakes, and nothing is stored.
#[tokio::test]
async fn private_and_malformed_callback_urls_are_refused() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    for url in [
        "http://127.0.0.1:9/done",
        "http://localhost/done",
        "http://10.0.0.5/done",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/done",
        "ftp://example.com/done",
        "not a url",
    ] {
        let response = app
            .post_contacts(
                &key,
                &json!({"callbackUrl": url, "contacts": contacts(0, 1)}),
            )
            .await;
        assert_eq!(response.status(), 422, "{url}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(
            problem["errors"][0]["pointer"], "/callbackUrl",
            "{url}: {problem}"
        );
    }
    let response = app
        .upload_csv(
            &key,
            "?callbackUrl=http://192.168.1.1/done",
            "phone\n+212600000001\n",
        )
        .await;
    assert_eq!(response.status(), 422);
    let (imports,): (i64,) = sqlx::query_as("SELECT count(*) FROM imports")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(imports, 0, "nothing was stored");
    app.finish().await;
}

/// `search` finds a substring of the names, phone or email, in any case; `sort` and `order`
/// order the pages (ties by id), and the pages add up.
#[tokio::test]
async fn contacts_are_searched_sorted_and_paged() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    app.import_and_wait(&key, &json!({"contacts": [
        {"phone": phone(0), "firstName": "Amina", "lastName": "Zahir", "email": "amina@example.com"},
        {"phone": phone(1), "firstName": "Youssef", "lastName": "Alami", "email": "y.alami@corp.ma"},
        {"phone": phone(2), "firstName": "Karim", "lastName": "Benali", "email": "kb@example.com"},
        {"phone": phone(3), "firstName": "Sara"},
    ]}))
    .await;
    let first_names = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["firstName"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    for (query, expected) in [
        ("search=ala", vec!["Youssef"]),
        ("search=ALAMI", vec!["Youssef"]),
        ("search=corp.ma", vec!["Youssef"]),
        ("search=600000002", vec!["Karim"]),
        (
            "search=example.com&sort=firstName&order=asc",
            vec!["Amina", "Karim"],
        ),
        ("search=%25", vec![]),
        ("search=_", vec![]),
        (
            "sort=firstName&order=asc",
            vec!["Amina", "Karim", "Sara", "Youssef"],
        ),
        (
            "sort=firstName&order=desc",
            vec!["Youssef", "Sara", "Karim", "Amina"],
        ),
        // No last name: last going up, first going down.
        (
            "sort=lastName&order=asc",
            vec!["Youssef", "Karim", "Amina", "Sara"],
        ),
        (
            "sort=lastName&order=desc",
            vec!["Sara", "Amina", "Karim", "Youssef"],
        ),
        (
            "sort=email&order=asc",
            vec!["Amina", "Karim", "Youssef", "Sara"],
        ),
        (
            "sort=phone&order=desc",
            vec!["Sara", "Karim", "Youssef", "Amina"],
        ),
        (
            "sort=createdAt&order=asc",
            vec!["Amina", "Youssef", "Karim", "Sara"],
        ),
    ] {
        let page = app
            .get_json(&key, &format!("/api/v1/contacts?{query}"))
            .await;
        assert_eq!(first_names(&page), expected, "{query}");
        assert_eq!(page["meta"]["total"], expected.len(), "{query}");
    }
    let second = app
        .get_json(
            &key,
            "/api/v1/contacts?sort=firstName&order=asc&perPage=3&page=2",
        )
        .await;
    assert_eq!(first_names(&second), ["Youssef"]);
    assert_eq!(second["meta"]["total"], 4);
    // Without filters, meta.total comes from the kept counts: right after a delete, a restore
    // and an import that restores, before and after the counts are folded.
    let total = |page: &Value| page["meta"]["total"].as_i64();
    let sara = app.contact_by(&key, "phone=%2B212600000003").await.unwrap();
    let path = format!("/api/v1/contacts/{}", sara["id"].as_str().unwrap());
    assert_eq!(
        app.send(&key, reqwest::Method::DELETE, &path)
            .await
            .status(),
        200
    );
    assert_eq!(
        total(&app.get_json(&key, "/api/v1/contacts").await),
        Some(3)
    );
    assert_eq!(
        total(
            &app.get_json(&key, "/api/v1/contacts?includeDeleted=true")
                .await
        ),
        Some(4)
    );
    contact_import::store::contacts::fold_counts(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        total(&app.get_json(&key, "/api/v1/contacts").await),
        Some(3)
    );
    app.import_and_wait(
        &key,
        &json!({"restoreDeleted": true, "contacts": [{"phone": phone(3)}, {"phone": phone(4)}]}),
    )
    .await;
    assert_eq!(
        total(&app.get_json(&key, "/api/v1/contacts").await),
        Some(5)
    );
    assert_eq!(
        total(
            &app.get_json(&key, "/api/v1/contacts?includeDeleted=true")
                .await
        ),
        Some(5)
    );
    let other = app.tenant("other").await;
    assert_eq!(
        total(&app.get_json(&other, "/api/v1/contacts").await),
        Some(0)
    );

    for query in ["sort=age", "order=up", "search="] {
        let response = app.get(&key, &format!("/api/v1/contacts?{query}")).await;
        if query == "search=" {
            assert_eq!(response.status(), 200, "an empty search is no search");
        } else {
            assert_eq!(response.status(), 422, "{query}");
        }
    }
    app.finish().await;
}
