//! What an import tells other systems: one event per created contact on the events exchange,
//! and a signed completion callback, retried until delivered, to a URL that is not the
//! service's own network.

use crate::app::{TestApp, spawn_app, spawn_with};
use crate::common::{contacts, test_settings};
use contact_import::startup::Roles;
use contact_import::worker::{self, BatchOutcome, BatchRef};
use serde_json::{Value, json};
use std::time::Duration;

/// Polls `check` every 50 ms until it gives a value (bounded: 30 s, then fails naming `what`).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every stored event is confirmed by the broker; returns how many are stored.
async fn events_published(app: &TestApp) -> i64 {
    eventually("every stored event published", || async {
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
    eventually(&format!("the callback {state}"), || async {
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
