//! The JSON intake end to end: `POST /api/v1/contacts` → PostgreSQL outbox → RabbitMQ →
//! workers → status and per-row results, against the real services. Also what every request
//! meets first: API keys and tenancy, request-level problems, idempotency keys, and the
//! status, rows and lists as they page.

use crate::app::{spawn_app, spawn_with};
use crate::checks::assert_counters_add_up;
use crate::common::{contacts, phone, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};

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
        .request(reqwest::Method::GET, "/api/v1/imports")
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
        .request(reqwest::Method::POST, "/api/v1/contacts")
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
        .request(reqwest::Method::POST, "/api/v1/contacts")
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
        .request(reqwest::Method::POST, "/api/v1/contacts")
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
async fn an_idempotency_key_replays_the_first_answer_and_imports_once() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let body = json!({"contacts": contacts(0, 10)});
    let send = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move {
            app.request(reqwest::Method::POST, "/api/v1/contacts")
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
    // Results are stored a batch at a time: pages that straddle batches, and a status page
    // that starts inside a batch and passes one without the status, see each row once.
    let mut seen = Vec::new();
    let mut after = -1;
    loop {
        let page = app
            .get_json(
                &key,
                &format!("/api/v1/imports/{first}/rows?after={after}&limit=7"),
            )
            .await;
        seen.extend(
            page["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["index"].as_i64().unwrap(), r["status"].clone())),
        );
        match page["nextAfter"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(
        seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..250).collect::<Vec<i64>>()
    );
    assert_eq!(seen[200].1, "failed");
    assert_eq!(seen[199].1, "created");
    let later = app
        .get_json(
            &key,
            &format!("/api/v1/imports/{first}/rows?status=failed&after=10&limit=1"),
        )
        .await;
    assert_eq!(later["rows"][0]["index"], 200);
    let created = app
        .get_json(
            &key,
            &format!("/api/v1/imports/{first}/rows?status=created&after=198&limit=2"),
        )
        .await;
    let indexes: Vec<i64> = created["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["index"].as_i64())
        .collect();
    assert_eq!(indexes, [199, 201]);
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

/// `Prefer: wait=N`: a small import that is final within N seconds is answered `200` with its
/// final status and every row, and `Preference-Applied`; one that is not (no worker runs) gets
/// the usual 202 once the N seconds are over; `wait=0` does not wait.
#[tokio::test]
async fn prefer_wait_answers_a_small_import_with_its_result() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let post = |prefer: &'static str, body: Value| {
        app.request(reqwest::Method::POST, "/api/v1/contacts")
            .bearer_auth(&key)
            .header("prefer", prefer)
            .json(&body)
            .send()
    };
    let body = json!({"contacts": [{"phone": phone(1)}, {"phone": "12"}]});
    let answer = post("respond-async, wait=30", body.clone()).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["preference-applied"], "wait=30");
    let done: Value = answer.json().await.unwrap();
    assert_eq!(done["status"], "completedWithErrors", "{done}");
    assert_eq!(
        (done["created"].as_i64(), done["failed"].as_i64()),
        (Some(1), Some(1))
    );
    let rows = done["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["errors"][0]["code"], "invalid_phone");
    let answer = post("wait=0", json!({"contacts": [{"phone": phone(2)}]}))
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    app.finish().await;

    // Without workers the import cannot finish: after the wait, the usual 202.
    let app = spawn_with(test_settings().await, Roles::API).await;
    let key = app.tenant("acme").await;
    let answer = app
        .request(reqwest::Method::POST, "/api/v1/contacts")
        .bearer_auth(&key)
        .header("prefer", "wait=1")
        .json(&json!({"contacts": [{"phone": phone(3)}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    assert!(answer.headers().get("preference-applied").is_none());
    app.finish().await;
}
