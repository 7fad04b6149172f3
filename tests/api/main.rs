//! The integration tests of the service, one module per feature, in one binary (one link
//! step). Each test spawns the real service in-process on a fresh database and queue prefix
//! (`app`) and talks to it through the one test client (`common::Client`, with the requests of
//! `requests`). The slow fault suite, with real child processes, is `tests/faults.rs`.

#[path = "../common/mod.rs"]
mod common;

mod app;
mod checks;
mod consent;
mod requests;
mod webdriver;

mod batches;
mod bulk_upsert;
mod contact_export;
mod contacts;
mod contract;
mod dry_runs;
mod encodings;
mod erasure;
mod events_callbacks;
mod exports;
mod file_limits;
mod files;
mod groups_tags;
mod intake;
mod limits;
mod operations;
mod retention;
mod rows;
mod single;
mod uploads;
mod xlsx;
