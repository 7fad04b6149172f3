//! What each row does to its contact: a bad row fails alone with its reasons, both request
//! shapes store the same contact, rows with one identifier fail as duplicates, the modes and
//! `overwrite` decide what a match changes, and `allOrNothing` applies no row when one fails.

use crate::app::{spawn_app, spawn_with};
use crate::checks::{assert_counters_add_up, codes, contacts_snapshot};
use crate::common::{contacts, phone, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};

#[tokio::test]
async fn a_contact_nested_too_deep_fails_alone_and_its_batch_goes_on() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    // Built as text: 5,000 levels of nesting in a custom attribute, past what any JSON parser
    // of the service reads, between two ordinary contacts of the same batch.
    let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    let body = format!(
        r#"{{"contacts": [
            {{"phone": "+212612345678", "firstName": "Before"}},
            {{"phone": "+212612345679", "customAttributes": {{"plan": {}}}}},
            {{"phone": "+212612345680", "customAttributes": {{"plan": {}}}}},
            {{"phone": "+212612345681", "firstName": "After"}}
        ]}}"#,
        nested(5000),
        nested(29)
    );
    let field = app
        .request(reqwest::Method::POST, "/api/v1/fields")
        .bearer_auth(&key)
        .json(&json!({"name": "plan", "type": "string"}))
        .send()
        .await
        .unwrap();
    assert_eq!(field.status(), 201);
    let response = app
        .request(reqwest::Method::POST, "/api/v1/contacts")
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    let id = answer["asyncSessionId"]
        .as_str()
        .expect("accepted")
        .to_owned();
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["status"], "completedWithErrors", "{status}");
    assert_eq!(status["created"], 2, "{status}");
    assert_eq!(status["failed"], 2, "{status}");
    assert_counters_add_up(&status);
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(rows[0]["status"], "created");
    assert_eq!(rows[3]["status"], "created");
    // Past 32 levels: refused at intake, as its own row.
    assert_eq!(codes(&rows[1], "errors"), ["invalid_row"], "{}", rows[1]);
    let message = rows[1]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("5002 levels"), "{message}");
    // 31 levels (the contact, its attributes, 29 arrays) are read: it fails as a value that
    // its string field does not take.
    assert_eq!(rows[2]["status"], "failed");
    assert_ne!(codes(&rows[2], "errors"), ["batch_failed"]);
    assert!(
        app.contact_by(&key, "phone=%2B212612345681")
            .await
            .is_some()
    );
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
            .request(reqwest::Method::POST, "/api/v1/fields")
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
    app.request(reqwest::Method::POST, "/api/v1/fields")
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
            .request(reqwest::Method::POST, "/api/v1/fields")
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

/// Migration 0021 moves stored row results into one row per batch: every result keeps its
/// row, status, contact and messages, and the rows page reads them back as before.
#[tokio::test]
async fn stored_row_results_keep_every_row_when_they_move_to_batches() {
    let (settings, pool, tenant) = older_database(20).await;
    let import = uuid::Uuid::now_v7();
    let contact = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO imports (id, tenant_id, source, status, options, total_rows, processed_rows,
                              created, failed, batch_count, batches_done)
         VALUES ($1, $2, 'api', 'completedWithErrors', '{}', 5, 5, 4, 1, 2, 2)",
    )
    .bind(import)
    .bind(tenant)
    .execute(&pool)
    .await
    .expect("an import");
    // Two batches, of 3 rows and 2, and their results in no particular order.
    sqlx::query(
        "INSERT INTO import_batches (import_id, batch_no, tenant_id, state, first_row, row_count)
         VALUES ($1, 0, $2, 'done', 0, 3), ($1, 1, $2, 'done', 3, 2)",
    )
    .bind(import)
    .bind(tenant)
    .execute(&pool)
    .await
    .expect("batches");
    sqlx::query(
        r#"INSERT INTO row_results (import_id, tenant_id, row_index, status, contact_id, errors, warnings)
           VALUES ($1, $2, 4, 'created', NULL, NULL, '[{"field":"email","code":"x","message":"w"}]'),
                  ($1, $2, 0, 'created', $3, NULL, NULL),
                  ($1, $2, 3, 'failed', NULL, '[{"field":"phone","code":"invalid_phone","message":"m"}]', NULL),
                  ($1, $2, 2, 'created', NULL, NULL, NULL),
                  ($1, $2, 1, 'created', NULL, NULL, NULL),
                  ($1, $2, 7, 'skipped', NULL, NULL, NULL)"#,
    )
    .bind(import)
    .bind(tenant)
    .bind(contact)
    .execute(&pool)
    .await
    .expect("row results");
    let as_rows = "SELECT row_index, status, contact_id, errors::text, warnings::text
                   FROM row_results ORDER BY row_index";
    type Row = (
        i32,
        String,
        Option<uuid::Uuid>,
        Option<String>,
        Option<String>,
    );
    let stored: Vec<Row> = sqlx::query_as(as_rows).fetch_all(&pool).await.unwrap();

    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .expect("migration 0021");
    let moved: Vec<Row> = sqlx::query_as(as_rows).fetch_all(&pool).await.unwrap();
    assert_eq!(moved, stored);
    let batches: Vec<(i32, i32, Vec<String>)> = sqlx::query_as(
        "SELECT first_row, row_count, present FROM batch_results ORDER BY first_row",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // Row 7 has no batch (none should exist): it keeps a row of its own.
    assert_eq!(
        batches,
        [
            (0, 3, vec!["created".to_owned()]),
            (3, 2, vec!["created".to_owned(), "failed".to_owned()]),
            (7, 1, vec!["skipped".to_owned()])
        ]
    );
    let page = contact_import::store::row_results::page(&pool, tenant, import, None, Some(1), 10)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|r| r.index).collect::<Vec<_>>(),
        [2, 3, 4, 7]
    );
    assert_eq!(page[1].errors[0]["code"], "invalid_phone");
    assert_eq!(page[2].warnings[0]["field"], "email");
    // Another tenant sees none of them.
    let other = contact_import::store::row_results::page(
        &pool,
        uuid::Uuid::now_v7(),
        import,
        None,
        None,
        10,
    )
    .await
    .unwrap();
    assert!(other.is_empty());
    pool.close().await;
    let db = crate::common::database_name(&settings);
    crate::common::remove_test_resources(&db, &settings.queue_prefix).await;
}

/// A test database as an older release left it (migrations up to `version` only), with a
/// tenant.
async fn older_database(
    version: i64,
) -> (contact_import::settings::Settings, sqlx::PgPool, uuid::Uuid) {
    let settings = test_settings().await;
    let pool = contact_import::store::connect(&settings.database_url, 2)
        .await
        .expect("connect");
    migrate_up_to(&pool, version).await;
    let tenant = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO tenants (id, name, signing_secret) VALUES ($1, 'acme', 's')")
        .bind(tenant)
        .execute(&pool)
        .await
        .expect("a tenant");
    (settings, pool, tenant)
}

/// Applies the migrations up to `version` only.
async fn migrate_up_to(pool: &sqlx::PgPool, version: i64) {
    let mut before = sqlx::migrate!("./migrations");
    let older: Vec<_> = before
        .migrations
        .iter()
        .filter(|m| m.version <= version)
        .cloned()
        .collect();
    before.migrations = older.into();
    before
        .run(pool)
        .await
        .unwrap_or_else(|e| panic!("migrations up to {version}: {e}"));
}

/// Migration 0022 keys contacts by (tenant_id, id) and drops the created_at index: stored
/// contacts take the time their UUIDv7 carries as created_at (so id order is creation order),
/// and keep their group memberships, which still go with a deleted contact.
#[tokio::test]
async fn stored_contacts_take_their_ids_time_and_keep_their_groups_when_keyed_by_tenant() {
    let (settings, pool, tenant) = older_database(21).await;
    let (first, second) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let group = uuid::Uuid::now_v7();
    // Stored the old way: created_at from the transaction, the later id first in time.
    sqlx::query(
        "INSERT INTO contacts (id, tenant_id, phone, created_at)
         VALUES ($1, $3, '+212612345678', now()), ($2, $3, '+212612345679', now() - interval '1 s')",
    )
    .bind(first)
    .bind(second)
    .bind(tenant)
    .execute(&pool)
    .await
    .expect("contacts");
    sqlx::query("INSERT INTO groups (id, tenant_id, name) VALUES ($1, $2, 'vip')")
        .bind(group)
        .bind(tenant)
        .execute(&pool)
        .await
        .expect("a group");
    sqlx::query(
        "INSERT INTO contact_groups (group_id, contact_id, tenant_id) VALUES ($1, $2, $4), ($1, $3, $4)",
    )
    .bind(group)
    .bind(first)
    .bind(second)
    .bind(tenant)
    .execute(&pool)
    .await
    .expect("memberships");

    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .expect("migration 0022");
    let stored: Vec<(uuid::Uuid, time::OffsetDateTime)> =
        sqlx::query_as("SELECT id, created_at FROM contacts ORDER BY created_at, id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [first, second]
    );
    for (id, at) in &stored {
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(
            at.unix_timestamp_nanos(),
            i128::from(secs) * 1_000_000_000 + i128::from(nanos)
        );
    }
    let key: String = sqlx::query_scalar(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'contacts'::regclass AND indisprimary",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // Keyed by (tenant_id, id); it carries deleted_at for deep pages (migration 0023).
    assert!(
        key.ends_with("btree (tenant_id, id) INCLUDE (deleted_at)"),
        "{key}"
    );
    sqlx::query("DELETE FROM contacts WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    let members: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT contact_id FROM contact_groups")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(members, [second]);
    pool.close().await;
    let db = crate::common::database_name(&settings);
    crate::common::remove_test_resources(&db, &settings.queue_prefix).await;
}
