//! Fault injection ("nothing lost, nothing twice"): the real binary runs as child processes
//! while the tests kill workers with SIGKILL, cut and refuse the broker connection, terminate
//! the database connections, publish duplicate and bogus batch messages, and stop the service
//! with SIGTERM in the middle of imports. Afterwards every accepted row has exactly one result,
//! the counters agree, and the contacts are those of a fault-free run.
//!
//! The tests that interrupt an import first import contacts 0..PRE (last name "Benali")
//! without a fault, then, under the fault, contacts 0..N with last name "Second": the first PRE
//! rows are updates, the rest creates, and every contact must end with "Second". Set
//! `FAULTS_KEEP_LOGS=1` to keep the processes' logs of passing tests too.

#[path = "faults/careful.rs"]
mod careful;
mod common;
#[path = "faults/crashes.rs"]
mod crashes;
#[path = "faults/invariants.rs"]
mod invariants;
#[path = "faults/process.rs"]
mod process;
#[path = "faults/proxy.rs"]
mod proxy;
#[path = "faults/servers.rs"]
mod servers;

use common::Client;
use invariants::{ExpectedContacts, ExpectedImport, assert_contacts, assert_import_accounted};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation};
use process::{Deployment, Role, Service};
use proxy::Proxy;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

/// Contacts imported before the fault, so that the fault hits updates as well as creates.
const PRE: usize = 3000;
/// Most contacts in one request.
const PER_REQUEST: usize = 3000;
/// The bound on waiting for imports to finish after a fault.
const FINISH_WITHIN: Duration = Duration::from_secs(300);

/// One request: contacts `from..from + count` (distinct valid phones), last name `last_name`.
fn request(from: usize, count: usize, last_name: &str) -> Value {
    let mut contacts = common::contacts(from, count);
    for contact in &mut contacts {
        contact["lastName"] = json!(last_name);
    }
    json!({ "contacts": contacts })
}

/// The requests (first row, row count) that carry contacts `0..total`.
fn chunks(total: usize) -> Vec<(usize, usize)> {
    (0..total)
        .step_by(PER_REQUEST)
        .map(|from| (from, PER_REQUEST.min(total - from)))
        .collect()
}

/// The imports of one phase: their ids and the rows each carries.
struct Phase {
    last_name: &'static str,
    imports: Vec<(Uuid, usize, usize)>,
}

impl Phase {
    fn new(last_name: &'static str) -> Phase {
        Phase {
            last_name,
            imports: Vec::new(),
        }
    }

    /// Posts one request of contacts `from..from + count`.
    async fn post(&mut self, api: &Client, key: &str, from: usize, count: usize) -> Uuid {
        let idempotency_key = format!("{}-{from}-{count}", self.last_name);
        let id = api
            .import_retrying(key, &request(from, count, self.last_name), &idempotency_key)
            .await;
        self.imports.push((id, from, count));
        id
    }

    fn ids(&self) -> Vec<Uuid> {
        self.imports.iter().map(|(id, _, _)| *id).collect()
    }

    fn rows(&self) -> usize {
        self.imports.iter().map(|(_, _, n)| n).sum()
    }

    /// What a fault-free run gives each import, when contacts `0..existing` were stored before.
    fn expected(&self, existing: usize) -> Vec<ExpectedImport> {
        self.imports
            .iter()
            .map(|&(id, from, count)| {
                let updated = existing.clamp(from, from + count) - from;
                ExpectedImport {
                    id,
                    phones: (from..from + count).map(common::phone).collect(),
                    created: (count - updated) as i64,
                    updated: updated as i64,
                }
            })
            .collect()
    }
}

/// Imports contacts 0..PRE with last name "Benali" and waits for it: the state before a fault.
async fn pre_import(api: &Client, key: &str, pool: &PgPool) {
    let mut phase = Phase::new("Benali");
    for (from, count) in chunks(PRE) {
        phase.post(api, key, from, count).await;
    }
    api.wait_all_finished(key, &phase.ids(), FINISH_WITHIN)
        .await;
    for expected in phase.expected(0) {
        assert_import_accounted(pool, &expected).await;
    }
}

/// Posts these requests (first row, row count) of contacts with last name "Second".
async fn post_all(api: &Client, key: &str, requests: &[(usize, usize)]) -> Phase {
    let mut phase = Phase::new("Second");
    for &(from, count) in requests {
        phase.post(api, key, from, count).await;
    }
    phase
}

/// Posts these requests in the background, while the test injects its faults.
fn spawn_poster(api: &Client, key: &str, requests: Vec<(usize, usize)>) -> JoinHandle<Phase> {
    let (api, key) = (api.clone(), key.to_owned());
    tokio::spawn(async move { post_all(&api, &key, &requests).await })
}

/// After the fault: every import of `phase` accounted for, and every contact 0..rows carries
/// the phase's last name.
async fn assert_nothing_lost_nothing_twice(pool: &PgPool, phase: &Phase) {
    for expected in phase.expected(PRE) {
        assert_import_accounted(pool, &expected).await;
    }
    let contacts: ExpectedContacts = (0..phase.rows().max(PRE))
        .map(|n| {
            let last = if n < phase.rows() {
                phase.last_name
            } else {
                "Benali"
            };
            (common::phone(n), (format!("First{n}"), last.to_owned()))
        })
        .collect();
    assert_contacts(pool, &contacts).await;
}

/// Rows processed so far over every import, read from the database.
async fn processed(pool: &PgPool) -> i64 {
    let (sum,): (Option<i64>,) = sqlx::query_as("SELECT sum(processed_rows) FROM imports")
        .fetch_one(pool)
        .await
        .expect("sum processed rows");
    sum.unwrap_or(0)
}

/// Waits (bounded) until more than `rows` rows have been processed.
async fn wait_processed_beyond(pool: &PgPool, rows: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if processed(pool).await > rows {
            return;
        }
        assert!(Instant::now() < deadline, "no progress beyond {rows} rows");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Batches stored and not yet applied: the work a fault can hit.
async fn pending_batches(pool: &PgPool) -> i64 {
    let (pending,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM import_batches WHERE state = 'pending'")
            .fetch_one(pool)
            .await
            .expect("count pending batches");
    pending
}

/// Waits up to `within` until some batch is pending; returns how many are.
async fn wait_pending(pool: &PgPool, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let pending = pending_batches(pool).await;
        if pending > 0 || Instant::now() >= deadline {
            return pending;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits up to 2 s until a worker holds a batch open in PostgreSQL (its transaction has the
/// batch row locked `FOR UPDATE` and reads its import); returns how many there are then.
async fn wait_batch_transaction(pool: &PgPool) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (open,): (i64,) = sqlx::query_as(
            "SELECT count(DISTINCT b.pid) FROM pg_locks b JOIN pg_locks i ON i.pid = b.pid
             WHERE b.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND b.relation = 'import_batches'::regclass AND b.mode = 'RowShareLock'
               AND i.relation = 'imports'::regclass AND b.pid <> pg_backend_pid()",
        )
        .fetch_one(pool)
        .await
        .expect("look for batch transactions");
        if open > 0 || Instant::now() >= deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts `serve` and waits until it is healthy.
async fn start_api(deployment: &Deployment, overrides: &[(&str, &str)]) -> Service {
    let mut api = deployment.spawn(Role::Serve, overrides);
    api.wait_healthy().await;
    api
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_killed_with_sigkill_mid_batch_lose_and_duplicate_nothing() {
    let started = Instant::now();
    let deployment = Deployment::new().await;
    let serve = start_api(&deployment, &[]).await;
    let api = Client::new(serve.base());
    let key = deployment.tenant("acme").await;
    let pool = deployment.pool().await;
    let mut worker = deployment.spawn(Role::Work, &[]);
    pre_import(&api, &key, &pool).await;

    // 250,000 rows in 84 requests, posted while the worker is being killed.
    let total = 250_000;
    let poster = spawn_poster(&api, &key, chunks(total));
    let schedule = [0.4, 1.0, 0.6, 1.4, 0.5, 1.2, 0.8];
    let mut before = processed(&pool).await;
    for (n, delay) in schedule.iter().enumerate() {
        // Kill only a worker that is busy: it has applied something since it started.
        wait_processed_beyond(&pool, before).await;
        tokio::time::sleep(Duration::from_secs_f64(*delay)).await;
        let open = wait_batch_transaction(&pool).await;
        let pending = pending_batches(&pool).await;
        assert!(
            pending > 0,
            "nothing left to interrupt: make the import longer"
        );
        let (at, pid) = (processed(&pool).await, worker.pid());
        worker.kill();
        eprintln!(
            "fault {}: kill -9 worker pid {pid} after {delay} s, {open} batch transactions open ({pending} batches pending, {at} rows processed)",
            n + 1
        );
        worker = deployment.spawn(Role::Work, &[]);
        before = at;
    }
    let phase = poster.await.expect("the poster");
    assert_eq!(phase.imports.len(), total.div_ceil(PER_REQUEST));
    eprintln!("faults over; one worker left running until every import finishes");
    api.wait_all_finished(&key, &phase.ids(), FINISH_WITHIN)
        .await;
    assert_nothing_lost_nothing_twice(&pool, &phase).await;

    drop(worker);
    drop(serve);
    pool.close().await;
    deployment.finish().await;
    eprintln!("sigkill test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_connections_cut_and_refused_mid_import_lose_and_duplicate_nothing() {
    let started = Instant::now();
    let proxy = Proxy::start("127.0.0.1:5672".parse().expect("address")).await;
    let amqp = proxy.amqp_url();
    let deployment = Deployment::new().await;
    let serve = start_api(&deployment, &[("AMQP_URL", &amqp)]).await;
    let api = Client::new(serve.base());
    let key = deployment.tenant("acme").await;
    let pool = deployment.pool().await;
    let worker = deployment.spawn(Role::Work, &[("AMQP_URL", &amqp)]);
    wait_readyz(&api, 200, Duration::from_secs(60)).await;
    pre_import(&api, &key, &pool).await;
    // Every broker connection of both processes, once they are all up.
    let connections = proxy.open();
    assert!(
        connections >= 2,
        "the API and the worker should both be connected"
    );

    // The client keeps posting during the cuts, and during the outage.
    let total = 25 * PER_REQUEST;
    let requests = chunks(total);
    let poster = spawn_poster(&api, &key, requests[..20].to_vec());
    for (n, delay) in [0.7, 1.2, 0.9].iter().enumerate() {
        wait_reconnected(&proxy, connections).await;
        tokio::time::sleep(Duration::from_secs_f64(*delay)).await;
        let pending = wait_pending(&pool, Duration::from_secs(60)).await;
        assert!(
            pending > 0,
            "nothing left to cut through: make the import longer"
        );
        let cut = proxy.cut();
        eprintln!(
            "fault {}: cut {cut} broker connections ({pending} batches pending, {} rows processed)",
            n + 1,
            processed(&pool).await
        );
    }
    let mut phase = poster.await.expect("the poster");

    // One more cut, seen through /readyz: 503 once the API has noticed, 200 once reconnected.
    wait_reconnected(&proxy, connections).await;
    let cut = proxy.cut();
    let since = Instant::now();
    eprintln!(
        "fault 4: cut {cut} broker connections ({} batches pending, {} rows processed)",
        pending_batches(&pool).await,
        processed(&pool).await
    );
    wait_readyz(&api, 503, Duration::from_secs(15)).await;
    let noticed = since.elapsed();
    wait_readyz(&api, 200, Duration::from_secs(60)).await;
    eprintln!(
        "/readyz answered 503 after {noticed:?}, 200 again after {:?}",
        since.elapsed()
    );

    // Then, just after the service became ready again and has published what it had to, the
    // broker is unreachable for about 5 s: the API must report itself not ready, and still
    // accept requests (they are durable in PostgreSQL).
    wait_outbox_drained(&pool).await;
    let cut = proxy.refuse();
    let outage = Instant::now();
    let pending = pending_batches(&pool).await;
    eprintln!(
        "fault 5: cut {cut} broker connections and refuse new ones for 5 s ({pending} batches pending, {} rows processed)",
        processed(&pool).await
    );
    // Whatever is left of the import (perhaps nothing, on a fast machine), the requests posted
    // during the outage below are stored and wait for the broker to come back.
    // Readiness follows the broker by itself: for 5 s no request makes the relay publish.
    let mut not_ready = None;
    while not_ready.is_none() && outage.elapsed() < Duration::from_secs(5) {
        if let Some((503, body)) = api.readyz().await {
            not_ready = Some((outage.elapsed(), body));
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut late = None;
    let poster = spawn_poster(&api, &key, requests[20..].to_vec());
    while outage.elapsed() < Duration::from_secs(5) || !poster.is_finished() {
        if not_ready.is_none()
            && late.is_none()
            && let Some((503, _)) = api.readyz().await
        {
            late = Some(outage.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    phase
        .imports
        .extend(poster.await.expect("the poster").imports);
    proxy.accept();
    eprintln!(
        "broker reachable again after {:?} ({} batches pending, {} rows processed); /readyz answered 503 after {:?}",
        outage.elapsed(),
        pending_batches(&pool).await,
        processed(&pool).await,
        not_ready.as_ref().map(|(after, _)| *after).or(late)
    );
    wait_readyz(&api, 200, Duration::from_secs(60)).await;
    eprintln!("/readyz answers 200 again after {:?}", outage.elapsed());

    api.wait_all_finished(&key, &phase.ids(), FINISH_WITHIN)
        .await;
    assert_nothing_lost_nothing_twice(&pool, &phase).await;
    // Checked last, so that a readiness problem does not hide the state of the data.
    assert!(
        not_ready.is_some(),
        "GET /readyz kept answering 200 for the first 5 s the broker was unreachable \
         (first 503 after {late:?})"
    );

    drop(worker);
    drop(serve);
    pool.close().await;
    deployment.finish().await;
    eprintln!("broker test took {:?}", started.elapsed());
}

/// Waits (bounded) until the processes hold `connections` broker connections through the
/// proxy again, so that a cut hits a connected service.
async fn wait_reconnected(proxy: &Proxy, connections: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while proxy.open() < connections {
        assert!(
            Instant::now() < deadline,
            "the processes did not reconnect to the broker: {} of {connections} connections",
            proxy.open()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits up to 5 s until every stored batch has been published to the broker.
async fn wait_outbox_drained(pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let (unpublished,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM import_batches WHERE state = 'pending' AND published_at IS NULL",
        )
        .fetch_one(pool)
        .await
        .expect("count unpublished batches");
        if unpublished == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `GET /readyz` answers `status`; fails after `within`.
async fn wait_readyz(api: &Client, status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match api.readyz().await {
            Some((answer, _)) if answer == status => return,
            answer => assert!(
                Instant::now() < deadline,
                "GET /readyz did not answer {status} within {within:?}: {answer:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_connections_terminated_mid_import_lose_and_duplicate_nothing() {
    let started = Instant::now();
    let deployment = Deployment::new().await;
    let serve = start_api(&deployment, &[]).await;
    let api = Client::new(serve.base());
    let key = deployment.tenant("acme").await;
    let worker = deployment.spawn(Role::Work, &[]);
    let pool = deployment.pool().await;
    pre_import(&api, &key, &pool).await;

    let admin = contact_import::store::connect(&common::admin_url(), 1)
        .await
        .expect("connect to the admin database");
    // Long enough that most of the ten faults meet pending batches on a fast host too (15
    // requests were applied in about 1.5 s there, before the fourth fault).
    let total = 50 * PER_REQUEST;
    let poster = spawn_poster(&api, &key, chunks(total));
    let delays = [0.3, 0.7, 0.4, 0.9, 0.5, 0.6, 0.8, 0.4, 1.0, 0.5];
    let (mut round, mut terminated_total, mut mid_import) = (0, 0, 0);
    // At least ten rounds, and on until every request has been accepted.
    while round < delays.len() || (!poster.is_finished() && round < 100) {
        tokio::time::sleep(Duration::from_secs_f64(delays[round % delays.len()])).await;
        let pending = wait_pending(&pool, Duration::from_secs(2)).await;
        if pending > 0 {
            mid_import += 1;
        }
        // Every connection of the service's processes; the test's own pool is spared.
        let (terminated,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name <> $2) AS t",
        )
        .bind(&deployment.db_name)
        .bind(process::OBSERVER)
        .fetch_one(&admin)
        .await
        .expect("terminate backends");
        terminated_total += terminated;
        round += 1;
        eprintln!(
            "fault {round}: terminated {terminated} PostgreSQL connections ({pending} batches pending, {} rows processed)",
            processed(&pool).await
        );
    }
    assert!(
        mid_import >= 5,
        "only {mid_import} terminations hit pending work: make the import longer"
    );
    let phase = poster.await.expect("the poster");
    eprintln!(
        "faults over ({terminated_total} connections terminated, {} rows processed)",
        processed(&pool).await
    );

    api.wait_all_finished(&key, &phase.ids(), FINISH_WITHIN)
        .await;
    assert_nothing_lost_nothing_twice(&pool, &phase).await;

    drop(worker);
    drop(serve);
    pool.close().await;
    admin.close().await;
    deployment.finish().await;
    eprintln!("database test took {:?}", started.elapsed());
}

/// A fingerprint of everything an import wrote: its row, its results, its contacts.
async fn fingerprint(pool: &PgPool, id: Uuid) -> (Value, Option<String>, Option<String>) {
    let (import,): (Value,) =
        sqlx::query_as("SELECT to_jsonb(i) - 'updated_at' FROM imports i WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .expect("read the import");
    let (results,): (Option<String>,) = sqlx::query_as(
        "SELECT md5(string_agg(row_index || ':' || status || ':' || coalesce(contact_id::text, '')
                               || ':' || coalesce(errors::text, '') || ':' || coalesce(warnings::text, ''),
                               ',' ORDER BY row_index))
         FROM row_results WHERE import_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("fingerprint the row results");
    let (contacts,): (Option<String>,) = sqlx::query_as(
        "SELECT md5(string_agg(to_jsonb(c)::text, ',' ORDER BY c.id))
         FROM contacts c WHERE c.id IN (SELECT contact_id FROM row_results WHERE import_id = $1)",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("fingerprint the contacts");
    (import, results, contacts)
}

/// Publishes batch messages as the relay does (default exchange, persistent, confirmed).
async fn publish_batch_messages(queue: &str, messages: &[Value]) {
    let connection = contact_import::broker::connect(&common::amqp_url(), "fault test publisher")
        .await
        .expect("connect to the broker");
    let channel = connection.create_channel().await.expect("a channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    for message in messages {
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                message.to_string().as_bytes(),
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into()),
            )
            .await
            .expect("publish");
        let confirmation = confirm.await.expect("confirm");
        assert!(
            matches!(confirmation, Confirmation::Ack(None)),
            "the broker did not take {message}: {confirmation:?}"
        );
        eprintln!("fault: published {message} to {queue}");
    }
    let _ = connection.close(200, "bye".into()).await;
}

/// Ready messages in a queue (passive declare).
async fn queue_depth(queue: &str) -> u32 {
    let connection = contact_import::broker::connect(&common::amqp_url(), "fault test inspector")
        .await
        .expect("connect to the broker");
    let channel = connection.create_channel().await.expect("a channel");
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the queue exists");
    let _ = connection.close(200, "bye".into()).await;
    declared.message_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_and_unknown_batch_messages_are_consumed_without_effect() {
    let started = Instant::now();
    let deployment = Deployment::new().await;
    // One worker with prefetch 1 takes messages strictly in queue order.
    let mut run = deployment.spawn(
        Role::Run,
        &[("WORKERS", "1"), ("PREFETCH", "1"), ("BATCH_SIZE", "100")],
    );
    run.wait_healthy().await;
    let api = Client::new(run.base());
    let key = deployment.tenant("acme").await;
    let pool = deployment.pool().await;

    let mut first = Phase::new("Benali");
    let id = first.post(&api, &key, 0, 300).await;
    api.wait_all_finished(&key, &[id], FINISH_WITHIN).await;
    for expected in first.expected(0) {
        assert_import_accounted(&pool, &expected).await;
    }
    let before = fingerprint(&pool, id).await;

    let queue = format!("{}.batches", deployment.queue_prefix);
    let dead_letters = format!("{}.batches.dlq", deployment.queue_prefix);
    publish_batch_messages(
        &queue,
        &[
            json!({"importId": id, "batchNo": 0}),
            json!({"importId": id, "batchNo": 0}),
            json!({"importId": id, "batchNo": 2}),
            json!({"importId": id, "batchNo": 2}),
            json!({"importId": Uuid::new_v4(), "batchNo": 0}),
        ],
    )
    .await;

    // Queued behind those messages: once it is done, they were all handled.
    let mut second = Phase::new("Benali");
    let sentinel = second.post(&api, &key, 300, 100).await;
    api.wait_all_finished(&key, &[sentinel], FINISH_WITHIN)
        .await;

    assert_eq!(
        fingerprint(&pool, id).await,
        before,
        "a duplicate batch message changed the import, its results or its contacts"
    );
    assert_import_accounted(
        &pool,
        &ExpectedImport {
            id: sentinel,
            phones: (300..400).map(common::phone).collect(),
            created: 100,
            updated: 0,
        },
    )
    .await;
    let contacts: ExpectedContacts = (0..400)
        .map(|n| (common::phone(n), (format!("First{n}"), "Benali".to_owned())))
        .collect();
    assert_contacts(&pool, &contacts).await;
    assert_eq!(queue_depth(&queue).await, 0, "messages left in {queue}");
    assert_eq!(
        queue_depth(&dead_letters).await,
        0,
        "messages dead-lettered to {dead_letters}"
    );

    drop(run);
    pool.close().await;
    deployment.finish().await;
    eprintln!("duplicate message test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_import_drains_exits_cleanly_and_a_restart_finishes_the_import() {
    let started = Instant::now();
    let deployment = Deployment::new().await;
    let grace = Duration::from_secs(10);
    let grace_env = grace.as_secs().to_string();
    // Restarted on the same address, so the client's retries find it again.
    let listen = process::free_port().to_string();
    let overrides = [
        ("SHUTDOWN_GRACE_SECS", grace_env.as_str()),
        ("LISTEN_ADDR", listen.as_str()),
    ];
    let mut run = deployment.spawn(Role::Run, &overrides);
    run.wait_healthy().await;
    let api = Client::new(run.base());
    let key = deployment.tenant("acme").await;
    let pool = deployment.pool().await;
    pre_import(&api, &key, &pool).await;

    // The client keeps posting through the restarts, retrying with its idempotency keys.
    let total = 10 * PER_REQUEST;
    let poster = spawn_poster(&api, &key, chunks(total));
    let mut at = PRE as i64;
    for round in 1..=2 {
        // Signal a process that is busy: it has applied something since it started.
        wait_processed_beyond(&pool, at).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pending = wait_pending(&pool, Duration::from_secs(60)).await;
        assert!(
            pending > 0,
            "nothing left to interrupt: make the import longer"
        );
        eprintln!(
            "fault {round}: SIGTERM to `run` pid {} ({pending} batches pending, {} rows processed)",
            run.pid(),
            processed(&pool).await
        );
        let sent = Instant::now();
        run.terminate();
        let exit = run.wait_exit(grace + Duration::from_secs(5)).await;
        let took = sent.elapsed();
        eprintln!("`run` exited with {exit:?} after {took:?}");
        let exit = exit.unwrap_or_else(|| {
            panic!(
                "`run` did not exit within {:?} of SIGTERM:\n{}",
                grace + Duration::from_secs(5),
                run.log_tail(30)
            )
        });
        assert!(
            exit.success(),
            "`run` exited with {exit}:\n{}",
            run.log_tail(30)
        );
        assert!(
            took <= grace,
            "`run` took {took:?} to stop, more than its grace period"
        );
        at = processed(&pool).await;
        run = deployment.spawn(Role::Run, &overrides);
        run.wait_healthy().await;
    }
    let phase = poster.await.expect("the poster");
    api.wait_all_finished(&key, &phase.ids(), FINISH_WITHIN)
        .await;
    assert_nothing_lost_nothing_twice(&pool, &phase).await;

    drop(run);
    pool.close().await;
    deployment.finish().await;
    eprintln!("sigterm test took {:?}", started.elapsed());
}

/// With `LOG_FORMAT=json` every log line of the real binary is one JSON object; every line
/// about a batch names its import, batch number and tenant; and no line holds the API key,
/// the signing secret or any contact's field, failed rows included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_each_batch_and_hold_no_secret_or_contact_field() {
    let deployment = Deployment::new().await;
    let mut run = deployment.spawn(Role::Run, &[("LOG_FORMAT", "json"), ("RUST_LOG", "info")]);
    run.wait_healthy().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_contact-import"))
        .args(["tenant", "create", "acme"])
        .env("DATABASE_URL", &deployment.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run `tenant create`");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("signing secret: "))
        .expect("a signing secret")
        .trim()
        .to_owned();
    let key = stdout.lines().last().expect("an API key").trim().to_owned();

    let api = Client::new(run.base());
    let body = json!({"contacts": [
        {"externalId": "crm-SECRET-1", "phone": "+212612340001", "email": "zebulon.secret@example.org",
         "firstName": "Zebulon", "lastName": "Quartermaine", "city": "Xanadu"},
        {"phone": "12", "email": "quintessa@@bad", "firstName": "Quintessa"},
    ]});
    let id = api.import_retrying(&key, &body, "json-logs-1").await;
    let finals = api.wait_all_finished(&key, &[id], FINISH_WITHIN).await;
    assert_eq!(finals[0]["status"], "completedWithErrors", "{}", finals[0]);
    run.terminate();
    run.wait_exit(Duration::from_secs(30)).await;

    let log = run.log_tail(usize::MAX);
    let mut batch_lines = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(
            parsed.as_ref().is_ok_and(Value::is_object),
            "not a JSON object: {line}"
        );
        if line.contains("\"batch_no\"") {
            batch_lines += 1;
            assert!(
                line.contains("\"import_id\"") && line.contains("\"tenant_id\""),
                "a batch's line without its import or tenant: {line}"
            );
        }
        for secret in [
            key.as_str(),
            secret.as_str(),
            "crm-SECRET",
            "612340001",
            "zebulon",
            "Zebulon",
            "Quartermaine",
            "Xanadu",
            "quintessa",
            "Quintessa",
        ] {
            assert!(!line.contains(secret), "{secret:?} in a log line: {line}");
        }
    }
    assert!(batch_lines >= 1, "no line about the batch:\n{log}");
    deployment.finish().await;
}

/// A `work` process with METRICS_LISTEN serves its own batch durations and a liveness answer,
/// for Prometheus and the workers' probes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_serves_its_batch_durations() {
    let deployment = Deployment::new().await;
    let serve = start_api(&deployment, &[]).await;
    let metrics = process::free_port();
    let _worker = deployment.spawn(Role::Work, &[("METRICS_LISTEN", &metrics.to_string())]);
    let api = Client::new(serve.base());
    let key = deployment.tenant("acme").await;
    let id = api
        .import_retrying(
            &key,
            &json!({"contacts": [{"phone": "+212612340002"}]}),
            "worker-metrics-1",
        )
        .await;
    api.wait_all_finished(&key, &[id], FINISH_WITHIN).await;

    let worker = Client::new(format!("http://{metrics}"));
    let health = worker
        .request(reqwest::Method::GET, "/healthz")
        .send()
        .await
        .expect("GET /healthz of the worker");
    assert_eq!(health.status(), 200);
    let text = worker
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .expect("GET /metrics of the worker")
        .text()
        .await
        .expect("metrics text");
    let count: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("contact_import_batch_duration_seconds_count ")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no batch duration count in\n{text}"));
    assert_eq!(count, 1.0, "the worker applied the one batch");
    deployment.finish().await;
}
