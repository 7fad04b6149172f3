//! Every SQL statement of the service, by table or concern, and the state machines of
//! imports, batches, rows and callbacks (`states`). Every query that touches tenant data
//! filters on `tenant_id`; the few that read across tenants (the relay, operators' counts,
//! maintenance) say so. Statements are plain `sqlx::query`, covered by the integration tests.
//! Nothing here knows HTTP or the broker: callers above map `sqlx::Error` to their own errors.

pub mod batches;
pub mod callbacks;
pub mod contacts;
pub mod erasure;
pub mod events;
pub mod fields;
pub mod groups;
pub mod imports;
pub mod limits;
pub mod maintenance;
pub mod ops;
pub mod outbox;
pub mod packed;
pub mod row_results;
pub mod states;
pub mod tenants;

pub use states::{BatchState, CallbackState, ImportState, RowStatus, Source};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// Opens the pool lazily-checked: the first connection is tried at once so that a bad URL
/// fails start-up with a clear message.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    // Custom plans only: a generic plan cached while `contacts` was nearly empty (a sequential
    // scan) stays in use as the table grows, and turned a 12 ms batch look-up into 17 s.
    pool_options(max_connections)
        .connect_with(connect_options(url)?.options([("plan_cache_mode", "force_custom_plan")]))
        .await
}

/// Opens a pool for statements that are each one probe of a key (a status poll, the rate
/// limit's draw, storing a JSON import): its connections plan generically with sequential
/// scans off, as `begin_by_key`'s transactions do, so such a statement is planned once per
/// connection instead of for every call (a status poll planned four times longer than it
/// ran). Connections open when first needed. Never for lists, searches or counts.
pub fn connect_by_key(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    Ok(
        pool_options(max_connections).connect_lazy_with(connect_options(url)?.options([
            ("plan_cache_mode", "force_generic_plan"),
            ("enable_seqscan", "off"),
        ])),
    )
}

fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    Ok(PgConnectOptions::from_str(url)?
        .application_name("contact-import")
        // JIT compiles a plan for seconds' worth of rows; every statement here reads or writes
        // a page or a batch (measured: 12 ms of JIT on a 50 ms page).
        .options([("jit", "off")]))
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // sqlx tests a connection with a round trip when it goes back to the pool, and by
        // default again when it is taken out: a status poll would wait for the database twice.
        // Only a connection that sat idle long enough for the server to have gone meanwhile
        // is tested on the way out.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Opens a transaction whose every statement is a look-up by key (a batch applied by a worker,
/// a relay's pass), in one round trip, with two settings that hold until it ends:
///
/// - `enable_seqscan = off`: while `contacts` grows, its statistics lag and the planner prices
///   1,500 index probes above a sequential scan of the tenant (measured at 100k rows: 26 ms
///   scanning against 5 ms probing, per batch); the relay reads only the unpublished and
///   in-flight batches, which partial indexes hold however many batches are done.
/// - `plan_cache_mode = force_generic_plan`: the session plans each statement for its values
///   (`connect`), and the dozen statements of a batch and the relay's few were planned anew
///   each time, their 1,000-element arrays copied into each plan: a relay's look-up planned
///   three times longer than it ran, a batch's reads about as long as they ran. With
///   sequential scans off each has one good plan whatever its values, an index's probe.
///   (`connect_by_key` sets the same two for a whole pool.)
pub async fn begin_by_key(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin_with(
        "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL plan_cache_mode = force_generic_plan",
    )
    .await
}

/// How long a pooled connection may sit idle and still be handed out untested.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// Applies the embedded migrations in `migrations/`.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}

/// True for errors that a retry of the same transaction may cure: deadlocks, serialisation
/// failures, unique violations from a concurrent insert, lost connections.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some(
                "40001"
                    | "40P01"
                    | "23505"
                    | "55P03"
                    | "57P01"
                    | "57P02"
                    | "57P03"
                    | "08000"
                    | "08003"
                    | "08006"
            )
        ),
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}
