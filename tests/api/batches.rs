//! What the worker guarantees for each batch, the test playing the broker: a batch delivered
//! twice or two batches at once apply nothing twice and lose nothing; a batch that cannot be
//! applied, or that the broker dead-letters, is dead, its rows fail, and a replay applies it.

use crate::app::{TestApp, spawn_with};
use crate::checks::{assert_counters_add_up, codes};
use crate::common::{contacts, phone, test_settings};
use contact_import::startup::Roles;
use contact_import::worker::{self, BatchOutcome, BatchRef};
use serde_json::json;

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

/// The first batch of the import `id`.
async fn first_batch_of(app: &TestApp, id: &str) -> BatchRef {
    pending_batches(app)
        .await
        .into_iter()
        .find(|b| b.import_id.to_string() == id)
        .unwrap_or_else(|| panic!("a batch of the import {id}"))
}

/// How many contacts are stored, and how many distinct phones they hold.
async fn contacts_and_phones(app: &TestApp) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT phone) FROM contacts")
        .fetch_one(&app.pool)
        .await
        .unwrap()
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
    assert_eq!(contacts_and_phones(&app).await, (500, 500));
    app.finish().await;
}

/// A batch reads only the stored contacts its rows name by their `dedupeOn` identifier (none
/// while every contact of the tenant is its import's own) and lets the unique indexes find the
/// others as it writes: a batch whose writes meet an identifier held by a contact it did not
/// read writes nothing of that attempt and is planned against every holder. Every row is
/// applied once, with the outcome of a full look-up.
#[tokio::test]
async fn a_batch_that_meets_an_identifier_held_by_a_contact_it_did_not_read_is_planned_again() {
    let mut settings = test_settings().await;
    settings.batch_size = 3;
    let app = spawn_with(settings, Roles::API).await;
    let key = app.tenant("acme").await;
    let run_all = |import_id: String| {
        let app = &app;
        async move {
            let import_id: uuid::Uuid = import_id.parse().unwrap();
            for batch in pending_batches(app).await {
                if batch.import_id == import_id {
                    let outcome = worker::run_batch(&app.pool, batch).await.unwrap();
                    assert!(matches!(outcome, BatchOutcome::Applied(_)), "{outcome:?}");
                }
            }
        }
    };
    let stored = app
        .import(
            &key,
            &json!({"contacts": [
            {"phone": phone(90), "email": "kept@example.com", "firstName": "Stored"},
            {"phone": phone(91), "firstName": "Stored"}]}),
        )
        .await;
    run_all(stored).await;

    // Batch 1 is new contacts only; batch 2's row 4 takes the email of a contact no row names
    // by phone, and row 5 updates another; batch 3 comes after the import met a contact.
    let p = |n: usize| json!({"phone": phone(n)});
    let id = app
        .import(
            &key,
            &json!({"contacts": [
            p(0), p(1), p(2),
            p(3), {"phone": phone(4), "email": "kept@example.com"},
            {"phone": phone(91), "lastName": "Again"},
            p(5), p(6)]}),
        )
        .await;
    run_all(id.clone()).await;

    let status = app.wait_finished(&key, &id).await;
    assert_eq!(
        (
            status["created"].as_i64(),
            status["updated"].as_i64(),
            status["failed"].as_i64()
        ),
        (Some(6), Some(1), Some(1)),
        "{status}"
    );
    assert_counters_add_up(&status);
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(codes(&rows[4], "errors"), ["identifier_conflict"]);
    assert_eq!(rows[5]["status"], "updated");
    let again = app.contact_by(&key, "phone=%2B212600000091").await.unwrap();
    assert_eq!(
        (&again["firstName"], &again["lastName"]),
        (&json!("Stored"), &json!("Again"))
    );
    assert_eq!(contacts_and_phones(&app).await, (8, 8));

    // A tenant with no contacts: its import's batches read nothing, and batch 2's row 3 takes
    // the email that row 0 of batch 1 gave a new contact.
    let blank = app.tenant("blank").await;
    let id = app
        .import(
            &blank,
            &json!({"contacts": [
            {"phone": phone(20), "email": "first@example.com"}, p(21), p(22),
            {"phone": phone(23), "email": "first@example.com"}, p(24)]}),
        )
        .await;
    run_all(id.clone()).await;
    let status = app.wait_finished(&blank, &id).await;
    assert_eq!(
        (status["created"].as_i64(), status["failed"].as_i64()),
        (Some(4), Some(1)),
        "{status}"
    );
    let rows = app.all_rows(&blank, &id, "").await;
    assert_eq!(codes(&rows[3], "errors"), ["identifier_conflict"]);
    assert_eq!(rows[4]["status"], "created");
    app.finish().await;
}

async fn start_workers(app: &TestApp) -> contact_import::startup::Running {
    contact_import::startup::start(app.settings.clone(), Roles::WORKERS)
        .await
        .expect("start workers")
}

/// Overwrites the stored payload of batch `batch_no` (the test's only import).
async fn set_payload(app: &TestApp, batch_no: i32, payload: &[u8]) {
    sqlx::query("UPDATE import_batches SET payload = $1 WHERE batch_no = $2")
        .bind(payload)
        .bind(batch_no)
        .execute(&app.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn payloads_are_stored_packed_and_those_stored_as_json_before_still_apply() {
    let mut settings = test_settings().await;
    settings.batch_size = 2;
    let app = spawn_with(settings, Roles::API).await;
    let key = app.tenant("acme").await;
    let id = app.import(&key, &json!({"contacts": contacts(0, 4)})).await;
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM import_batches ORDER BY batch_no")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored.len(), 2);
    for payload in &stored {
        // An lz4 frame (magic number 0x184D2204), as `lz4 -d` reads it.
        assert_eq!(payload[..4], [0x04, 0x22, 0x4d, 0x18], "{payload:?}");
    }
    // Batch 1 as a service before migration 0029 stored it: the JSON array itself.
    set_payload(&app, 1, &serde_json::to_vec(&contacts(2, 2)).unwrap()).await;
    let workers = start_workers(&app).await;

    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["created"].as_i64(), Some(4), "{status}");
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(rows.len(), 4);
    let csv = app
        .get_text(&key, &format!("/api/v1/imports/{id}/results.csv"))
        .await;
    for n in 0..4 {
        assert!(csv.contains(&format!("First{n}")), "{csv}");
    }
    workers.stop().await;
    app.finish().await;
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
    set_payload(&app, 1, b"not json").await;
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
    set_payload(&app, 1, &original).await;
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

/// The look-up that locks a batch's stored contacts reads one index entry per identifier, at
/// any size of the tenant. One `phone = ANY(…) OR email = ANY(…)` statement was left to the
/// planner, which read every contact of the tenant whenever that looked cheaper than the
/// probes (at 20,000 contacts here; in a first import up to 125,000): counted in this
/// transaction's statistics, that read 20,000 rows or index entries for 1,004 identifiers.
#[tokio::test]
async fn the_locking_look_up_reads_an_index_entry_per_identifier_not_the_tenant() {
    use contact_import::store::contacts::{Held, lock_holding};
    let app = spawn_with(test_settings().await, Roles::API).await;
    let tenant_id = contact_import::store::tenants::create(&app.pool, "acme")
        .await
        .unwrap()
        .tenant
        .id;
    sqlx::query(
        "INSERT INTO contacts (id, tenant_id, phone, email, search_words)
         SELECT gen_random_uuid(), $1, '+4480000' || lpad(i::text, 5, '0'), 'd' || i || '@example.com', ''
         FROM generate_series(1, 20000) AS i",
    )
    .bind(tenant_id)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE contacts")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut held = Held::default();
    for i in 1..=500 {
        held.phones.push(format!("+4490000{i:05}"));
        held.emails.push(format!("e{i}@example.com"));
    }
    // Three stored contacts: one by its phone, one by its email, one by both.
    held.phones
        .extend(["+448000000007".into(), "+448000000009".into()]);
    held.emails
        .extend(["d8@example.com".into(), "d9@example.com".into()]);

    let mut tx = app.pool.begin().await.unwrap();
    let found = lock_holding(&mut tx, tenant_id, &held).await.unwrap();
    let mut phones: Vec<_> = found.iter().filter_map(|c| c.phone.clone()).collect();
    phones.sort();
    assert_eq!(
        phones,
        ["+448000000007", "+448000000008", "+448000000009"],
        "the contacts holding the identifiers, each once"
    );
    let (entries, probes): (i64, i64) = sqlx::query_as(
        "SELECT sum(pg_stat_get_xact_tuples_returned(indexrelid))::bigint
                    + pg_stat_get_xact_tuples_returned('contacts'::regclass),
                sum(pg_stat_get_xact_numscans(indexrelid))::bigint
                    + pg_stat_get_xact_numscans('contacts'::regclass)
         FROM pg_index WHERE indrelid = 'contacts'::regclass",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        entries <= 1_010,
        "{entries} index entries and rows read in {probes} scans for 1,004 identifiers"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_batch_read_ahead_is_validated_again_when_an_erasure_changed_it_meanwhile() {
    // No workers: the test plays a consumer that reads its next batch ahead (a prefetch of 2).
    let app = spawn_with(test_settings().await, Roles::API).await;
    let key = app.tenant("acme").await;
    let first = app.import(&key, &json!({"contacts": contacts(0, 2)})).await;
    for batch in pending_batches(&app).await {
        worker::run_batch(&app.pool, batch).await.unwrap();
    }
    assert_eq!(app.wait_finished(&key, &first).await["created"], 2);
    let stored = app
        .contact_by(&key, &format!("phone={}", phone(0).replace('+', "%2B")))
        .await
        .expect("the first contact");

    // The contact again, and a new one: read and validated ahead, then the contact is erased,
    // which scrubs its row from the pending batch.
    let second = app
        .import(
            &key,
            &json!({"contacts": [
                {"phone": phone(0), "firstName": "Again"},
                {"phone": phone(7), "firstName": "Newcomer"},
            ]}),
        )
        .await;
    let batch = first_batch_of(&app, &second).await;
    let prepared = worker::prepare(app.pool.clone(), batch)
        .await
        .expect("a pending batch is read ahead");
    let erased = app
        .send(
            &key,
            reqwest::Method::DELETE,
            &format!(
                "/api/v1/contacts/{}?erase=true",
                stored["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(erased.status(), 204);

    assert!(matches!(
        worker::run_prepared(&app.pool, batch, Some(prepared))
            .await
            .unwrap(),
        BatchOutcome::Applied(_)
    ));
    let status = app.wait_finished(&key, &second).await;
    let rows = app.all_rows(&key, &second, "").await;
    let statuses: Vec<&str> = rows.iter().filter_map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["erased", "created"], "{status}");
    let listed = app.get_json(&key, "/api/v1/contacts").await;
    assert_eq!(
        listed["meta"]["total"], 2,
        "the erased contact stays erased: {listed}"
    );

    // Read ahead and unchanged: applied from what was read ahead, as without it.
    let third = app
        .import(&key, &json!({"contacts": contacts(10, 3)}))
        .await;
    let batch = first_batch_of(&app, &third).await;
    let prepared = worker::prepare(app.pool.clone(), batch).await;
    assert!(prepared.is_some());
    assert!(matches!(
        worker::run_prepared(&app.pool, batch, prepared)
            .await
            .unwrap(),
        BatchOutcome::Applied(_)
    ));
    assert_eq!(app.wait_finished(&key, &third).await["created"], 3);
    assert!(
        worker::prepare(app.pool.clone(), batch).await.is_none(),
        "a batch done is not read ahead"
    );
    app.finish().await;
}
