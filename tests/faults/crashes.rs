//! Crashes of the servers themselves, not only of their connections: a private PostgreSQL
//! killed with SIGKILL mid-import and started again (crash recovery from its WAL), a private
//! RabbitMQ node killed and started again, and a three-node RabbitMQ cluster whose node in use
//! is killed mid-import and left down. Each ends with the usual invariants: one result per
//! accepted row, counters that add up, no contact twice, the contacts of a fault-free run.

use super::{
    Deployment, FINISH_WITHIN, Role, assert_nothing_lost_nothing_twice, chunks, pre_import,
    processed, spawn_poster, start_api, wait_processed_beyond, wait_readyz,
};
use crate::common::Client;
use crate::servers::{PgServer, RabbitNode};
use std::time::Duration;

/// A node name no other test run uses.
fn node_name(role: &str) -> String {
    format!("ci{role}{}", uuid::Uuid::new_v4().simple())
}

/// Runs `serve` and `work` on `deployment` (with `overrides`), imports the contacts of the
/// state before a fault, posts 60,000 more, and once 3,000 of those are applied runs `fault`
/// (given the API's client); then waits for every import and checks the invariants.
async fn import_through<F, Fut>(deployment: Deployment, overrides: &[(&str, &str)], fault: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()>,
{
    let serve = start_api(&deployment, overrides).await;
    let api = Client::new(serve.base());
    let key = deployment.tenant("acme").await;
    let pool = deployment.pool().await;
    let worker = deployment.spawn(Role::Work, overrides);
    pre_import(&api, &key, &pool).await;

    let poster = spawn_poster(&api, &key, chunks(60_000));
    let before = processed(&pool).await;
    wait_processed_beyond(&pool, before + 3000).await;
    fault(api.clone()).await;
    let phase = poster.await.expect("the poster");
    api.wait_all_finished(&key, &phase.ids(), FINISH_WITHIN)
        .await;
    assert_nothing_lost_nothing_twice(&pool, &phase).await;
    wait_readyz(&api, 200, Duration::from_secs(30)).await;

    drop(worker);
    drop(serve);
    pool.close().await;
    deployment.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_postgresql_killed_mid_import_and_restarted_loses_and_duplicates_nothing() {
    let server = PgServer::start().await;
    let deployment = Deployment::on(&server.admin_url()).await;
    let server = &server;
    import_through(deployment, &[], |api| async move {
        server.crash();
        // The service sees it gone (readiness says so) before it comes back.
        wait_readyz(&api, 503, Duration::from_secs(30)).await;
        server.restart().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_rabbitmq_killed_mid_import_and_restarted_loses_and_duplicates_nothing() {
    let node = RabbitNode::start(&node_name("one"));
    let url = node.url();
    let deployment = Deployment::new().await;
    let queues = [
        format!("{}.batches", deployment.queue_prefix),
        format!("{}.batches.dlq", deployment.queue_prefix),
    ];
    let node = &node;
    import_through(
        deployment,
        &[("AMQP_URL", url.as_str())],
        |api| async move {
            node.wait_queues_registered(&queues).await;
            node.crash();
            wait_readyz(&api, 503, Duration::from_secs(30)).await;
            node.restart();
        },
    )
    .await;
}

/// The service is given the three nodes; every process's first connection goes to the first
/// one, which also declares the quorum queue (so it leads it). That node is killed with
/// SIGKILL mid-import and stays down: the queue's other two members elect a leader, every
/// connection moves to them, and the import finishes exactly as without the fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_node_in_use_of_a_three_node_rabbitmq_cluster_killed_mid_import_loses_nothing() {
    let first = RabbitNode::start(&node_name("a"));
    let second = RabbitNode::start(&node_name("b"));
    let third = RabbitNode::start(&node_name("c"));
    second.join(&first);
    third.join(&first);
    let nodes = format!("{},{},{}", first.url(), second.url(), third.url());
    let deployment = Deployment::new().await;
    import_through(deployment, &[("AMQP_URL", nodes.as_str())], |_| async {
        first.crash();
    })
    .await;
    drop((second, third));
}
