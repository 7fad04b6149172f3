//! The limits that keep one tenant from crowding out the others: a POST rate shared by every
//! `serve` process, a cap on the rows a tenant has waiting, and the relay's round-robin.

use crate::app::spawn_with;
use crate::common::{contacts, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};

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

/// Sends `body` `tries` times as a plain client does (Python's `http.client`, say): the whole
/// request first, then the answer is read. Returns every answer's status and `content-type`,
/// or the error the client met instead of an answer.
async fn answers_to_big_posts(
    addr: std::net::SocketAddr,
    key: &str,
    body: &[u8],
    tries: usize,
) -> Vec<Result<(u16, String), String>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut seen = Vec::with_capacity(tries);
    for _ in 0..tries {
        let answer = async {
            let mut stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let head = format!(
                "POST /api/v1/contacts HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            stream
                .write_all(head.as_bytes())
                .await
                .map_err(|e| format!("send: {e}"))?;
            stream
                .write_all(body)
                .await
                .map_err(|e| format!("send: {e}"))?;
            let mut answer = Vec::new();
            stream
                .read_to_end(&mut answer)
                .await
                .map_err(|e| format!("read: {e}"))?;
            let text = String::from_utf8_lossy(&answer);
            let status = text
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| format!("no status line in {text:?}"))?;
            let kind = text
                .lines()
                .find_map(|l| l.strip_prefix("content-type: "))
                .unwrap_or_default()
                .to_owned();
            Ok::<_, String>((status, kind))
        };
        seen.push(
            tokio::time::timeout(std::time::Duration::from_secs(30), answer)
                .await
                .unwrap_or_else(|_| Err("no answer in 30 s".into())),
        );
    }
    seen
}

/// An answer given before the body is read (a wrong key, a body over the limit, the rate
/// limit) reaches a client that is still sending a 12 MB body (more than the sockets' buffers
/// hold, so an unread body resets the connection): the service drains what is left
/// (up to its bound) before it answers, so the client reads the problem, not a reset.
#[tokio::test]
async fn early_answers_reach_a_client_still_sending_its_body() {
    let mut settings = test_settings().await;
    settings.max_body_bytes = 1024 * 1024;
    settings.rate_limit_rps = 0.001;
    settings.rate_limit_burst = 1;
    let app = spawn_with(settings, Roles::API).await;
    let key = app.tenant("acme").await;
    let addr = app.addr;
    let big = vec![b' '; 12 * 1024 * 1024];

    let unauthorized = answers_to_big_posts(addr, "not-a-key", &big, 10).await;
    // Over the body limit: the tenant's one token goes to the first of these.
    let too_large = answers_to_big_posts(addr, &key, &big, 1).await;
    let rate_limited = answers_to_big_posts(addr, &key, &big, 10).await;
    let problem = "application/problem+json".to_owned();
    assert_eq!(
        unauthorized,
        vec![Ok((401, problem.clone())); 10],
        "401 before the body"
    );
    assert_eq!(too_large, vec![Ok((413, problem.clone()))], "413");
    assert_eq!(rate_limited, vec![Ok((429, problem)); 10], "429");
    app.finish().await;
}

/// Request bodies held in memory are bounded in all: with a budget of two bodies' worth, two
/// requests whose bodies are still arriving hold it, and a third is answered 503 at once,
/// before its body is read; once they are done the budget is back.
#[tokio::test]
async fn bodies_held_in_memory_are_bounded_and_a_request_past_the_budget_waits_its_turn() {
    let mut settings = test_settings().await;
    settings.max_body_bytes = 1024 * 1024;
    settings.max_bodies_bytes = 2 * 1024 * 1024;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let body = json!({"contacts": contacts(0, 10)}).to_string();
    // Two bodies sent in two parts, without a length: each takes MAX_BODY_BYTES of the budget.
    let mut held = Vec::new();
    for _ in 0..2 {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (first, rest) = body.split_at(10);
        let (first, rest) = (first.to_owned(), rest.to_owned());
        let stream = futures_util::stream::unfold((0, Some(released)), move |(step, released)| {
            let (first, rest) = (first.clone(), rest.clone());
            async move {
                match step {
                    0 => Some((Ok::<_, std::io::Error>(first), (1, released))),
                    1 => {
                        if let Some(released) = released {
                            let _ = released.await;
                        }
                        Some((Ok(rest), (2, None)))
                    }
                    _ => None,
                }
            }
        });
        let request = app
            .request(reqwest::Method::POST, "/api/v1/contacts")
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream));
        held.push((release, tokio::spawn(async move { request.send().await })));
    }
    // The third is refused once the two hold the budget (they take it as their headers arrive).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let refused = loop {
        let answer = app
            .post_contacts(&key, &json!({"contacts": contacts(10, 1)}))
            .await;
        if answer.status() == 503 {
            break answer;
        }
        assert_eq!(
            answer.status(),
            202,
            "either accepted (the two are not in yet) or refused"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the budget was never full"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(refused.headers().contains_key("retry-after"));
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("MAX_BODIES_BYTES")),
        "{problem}"
    );
    for (release, request) in held {
        release.send(()).expect("the request waits");
        let answer = request.await.unwrap().expect("an answer");
        assert_eq!(answer.status(), 202);
    }
    let answer = app
        .post_contacts(&key, &json!({"contacts": contacts(20, 1)}))
        .await;
    assert_eq!(answer.status(), 202, "the budget is back");
    app.finish().await;
}
