//! contact-import: asynchronous bulk contact import.
//!
//! The path of an import is visible in the modules: `api` (HTTP, auth, problem+json) →
//! `intake` (store the import and its batches, the outbox) → `broker` (topology, relay,
//! consumer) → `worker` (one transaction per batch) → `validate` (pure) → `store` (SQL).
//! `startup` wires them into the processes of the command line (`cli`).

pub mod api;
pub mod broker;
pub mod callback;
pub mod cli;
pub mod client;
pub mod import;
pub mod intake;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod validate;
pub mod worker;
