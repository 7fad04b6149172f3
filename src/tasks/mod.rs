//! The background loops that `startup` spawns, each until shutdown:
//! - `relay`: publishes stored batches (fairly between tenants, `fair`) and events;
//! - `consumer`: the workers' consumers, which run each batch (`worker`) and ack or nack it;
//! - `dead_letters`: records the batches the broker dead-lettered;
//! - `maintenance`: statistics, retention, abandoned uploads, count folds;
//! - `callbacks`: completion callback delivery.
//!
//! Every loop that talks to the broker runs under `broker::supervise`, which rebuilds its
//! session with back-off after any failure.

pub mod callbacks;
pub mod consumer;
pub mod dead_letters;
pub mod fair;
pub mod maintenance;
pub mod relay;
