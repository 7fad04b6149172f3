//! contact-import: asynchronous bulk contact import.
//!
//! # Layout
//!
//! The path of one import, in the order it crosses the modules:
//!
//! - `api`: HTTP only — routes, authentication, problem+json, OpenAPI. Hands a request to
//!   the intake and answers 202 once it is stored.
//! - `intake`: a request (JSON body, CSV or xlsx file) becomes a stored import: options and
//!   request-level checks, then the import, its batches and its duplicate rows in one
//!   transaction. Its errors are `IntakeError`, which `api` maps to HTTP.
//! - `store`: every SQL statement, by table or concern, and the states of imports, batches,
//!   rows and callbacks (`store::states`). The batches table is the outbox.
//! - `tasks`: the background loops `startup` spawns — the relay that publishes stored batches
//!   fairly, the consumers that run them, the dead-letter consumer, maintenance, callbacks.
//! - `broker`: RabbitMQ plumbing — topology, connections with timeouts, the supervisor that
//!   reconnects with back-off, health, queue depths.
//! - `worker`: one transaction per batch — lock it, validate its rows, plan (pure), write
//!   contacts, results and counters, mark it done; `BatchOutcome` decides ack or nack.
//! - `validate`: pure — a raw row becomes a `ValidContact` or its row errors.
//!
//! Beside the path: `import` (what an import asks for: mode and options), `callback` (the
//! rules of completion callbacks), `client` (the `import` command), `cli`, `settings`,
//! `telemetry`, and `startup`, which wires the parts into the processes `run`, `serve`, `work`.
//!
//! Layers import downwards only: `api` → `intake` → `store`; `tasks` → `broker`, `worker`,
//! `store`; `worker` → `validate`, `store`. `store` knows no HTTP and no broker, and
//! `validate` knows nothing but its input.

// Public: what the binary, the integration tests and the benchmarks use. The rest is the
// crate's own.
pub mod broker;
pub mod callback;
pub mod cli;
pub mod import;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod validate;
pub mod worker;

mod api;
mod client;
mod intake;
mod tasks;

#[cfg(test)]
mod props;
