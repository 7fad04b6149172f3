//! End-to-end throughput and intake latency, side by side in one run, against what PostgreSQL
//! itself can do on the same machine:
//!
//! 1. reference: `COPY` of the rows into a fixed table that does not move with our schema: the
//!    columns of a contact, its primary key and the phone, email and external-id unique indexes
//!    only (the cost of storing contacts at all);
//!    ceiling: `COPY` of the rows, with the search words the workers compute, into a table with
//!    the same indexes as `contacts` (what our own schema costs);
//!    indexes: the same COPY once per index of `contacts`, with every index but that one (each
//!    index's own cost);
//! 2. naive: one `INSERT … ON CONFLICT` per row, in transactions of the batch size;
//!    capacity: the worker's own `INSERT` of new contacts (`store::contacts::insert_new`) alone,
//!    one batch per transaction, from W connections at once, for each W: what PostgreSQL
//!    itself writes into our schema the way the workers write, with no intake, validation,
//!    look-up, results or broker around it (the most any W-worker import could reach);
//! 3. ours: the generated contacts posted as 3000-contact requests to `contact-import run
//!    --workers W` (release build), from the first request to the last row's result, for each W;
//! 4. ours again on the same contacts with their city changed (every row that applies is an
//!    update that writes);
//! 5. ours on the same rows as one CSV file; prefilled: ours (JSON, W=2) with `--prefill`
//!    contacts stored by SQL before;
//! 6. fairness: while tenant A's CSV import of the rows runs, how long tenant B's 3000 contacts
//!    take to reach their final status;
//! 7. intake latency of `POST /api/v1/contacts` at 1, 4 and 16 concurrent clients, and of
//!    `GET /api/v1/imports/{id}` under that load.
//!
//! `cargo bench --bench pipeline -- --rows 200000` (see `--help`). Needs PostgreSQL and RabbitMQ
//! (`deploy/services.sh`) and `../shared/bench/gen_contacts.py`. Every phase gets a database and
//! queue prefix of its own, removed afterwards.

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::Parser;
use contact_import::broker::Topology;
use contact_import::store;
use contact_import::validate::{self, FieldKind, Identifier, Patch, Rules, ValidContact};
use serde_json::Value;
use sqlx::{Connection, PgPool};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const BIN: &str = env!("CARGO_BIN_EXE_contact-import");
/// Rows a transaction in the `capacity` and `naive` phases: the service's default `BATCH_SIZE`.
const BATCH_SIZE: usize = 1000;

#[derive(Parser, Debug)]
#[command(about = "contact-import end-to-end benchmark")]
struct Args {
    /// Contacts to generate and import.
    #[arg(long, default_value_t = 200_000)]
    rows: usize,
    /// Worker counts for the end-to-end JSON runs.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4])]
    workers: Vec<usize>,
    /// Workers for the CSV run and the latency run.
    #[arg(long, default_value_t = 2)]
    csv_workers: usize,
    /// Workers running during the latency measurement; 0 runs `serve` alone (intake only).
    #[arg(long, default_value_t = 2)]
    latency_workers: usize,
    /// Concurrent clients posting the requests of an end-to-end run.
    #[arg(long, default_value_t = 4)]
    post_clients: usize,
    /// Concurrency levels of the intake latency measurement.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16])]
    clients: Vec<usize>,
    /// Requests per concurrency level of the latency measurement.
    #[arg(long, default_value_t = 96)]
    latency_requests: usize,
    /// Requests per kind of query of the contact search measurement.
    #[arg(long, default_value_t = 100)]
    search_requests: usize,
    /// Phases to skip: reference, ceiling, indexes, naive, capacity, json, reimport, csv,
    /// prefilled, fairness, latency, search.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Contacts stored by SQL before the `prefilled` phase imports the rows (W=2 JSON).
    #[arg(long, default_value_t = 10_000_000)]
    prefill: usize,
    /// Keep the databases (named bench_<pid>_<phase>) for inspection.
    #[arg(long)]
    keep: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let env = Env {
        keep: args.keep,
        ..Env::from_env()
    };
    let skip = |phase: &str| args.skip.iter().any(|s| s == phase);
    let data = Dataset::load(args.rows)?;
    println!(
        "contact-import pipeline benchmark: {} rows ({} requests of up to 3000), {} cores",
        args.rows,
        data.requests.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut report = Report::default();

    if ["reference", "ceiling", "indexes", "naive", "capacity"]
        .iter()
        .any(|phase| !skip(phase))
    {
        let rows = data.valid_unique_rows()?;
        println!(
            "reference, ceiling and naive write the {} rows that are valid and unique",
            rows.len()
        );
        let db = Database::create(&env, "base").await?;
        let pool = db.pool().await?;
        if !skip("reference") {
            reference_table(&pool, "reference_contacts").await?;
            let rate = copy_into(&pool, "reference_contacts", &rows, Words::Without).await?;
            report.add(
                "reference: COPY, identifier indexes only",
                rows.len(),
                rate,
                None,
            );
        }
        if !skip("ceiling") {
            like_contacts(&pool, "ceiling_contacts").await?;
            let rate = copy_into(&pool, "ceiling_contacts", &rows, Words::With).await?;
            report.add(
                "ceiling: COPY, the schema of contacts",
                rows.len(),
                rate,
                None,
            );
        }
        if !skip("indexes") {
            for (index, rate) in index_costs(&pool, &rows).await? {
                report.add(
                    &format!("indexes: COPY without {index}"),
                    rows.len(),
                    rate,
                    None,
                );
            }
        }
        if !skip("naive") {
            let rate = naive_inserts(&pool, &rows).await?;
            report.add(
                "naive: INSERT … ON CONFLICT per row",
                rows.len(),
                rate,
                None,
            );
        }
        if !skip("capacity") {
            for &workers in &args.workers {
                let rate = capacity(&pool, &rows, workers).await?;
                report.add(
                    &format!("capacity: the workers' INSERT alone, W={workers}"),
                    rows.len(),
                    rate,
                    None,
                );
            }
        }
        pool.close().await;
        db.drop_now().await;
    }

    for &workers in &args.workers {
        if skip("json") {
            break;
        }
        let service = Service::start(&env, &format!("json{workers}"), workers).await?;
        let result = async {
            let key = service.tenant("bench").await?;
            let seconds = post_all(&service, &key, &data.requests, args.post_clients).await?;
            report.add_ours(
                &format!("ours: JSON, W={workers}"),
                &service,
                args.rows,
                seconds,
            )?;
            if !skip("reimport") {
                let seconds = post_all(&service, &key, &data.changed, args.post_clients).await?;
                report.add_ours(
                    &format!("ours: JSON re-import (every city changed), W={workers}"),
                    &service,
                    args.rows,
                    seconds,
                )?;
            }
            anyhow::Ok(())
        }
        .await;
        service.stop().await;
        result?;
    }

    if !skip("csv") {
        let workers = args.csv_workers;
        let service = Service::start(&env, "csv", workers).await?;
        let result = async {
            let key = service.tenant("bench").await?;
            let seconds = upload_csv(&service, &key, &data.csv).await?;
            report.add_ours(
                &format!("ours: CSV, W={workers}"),
                &service,
                args.rows,
                seconds,
            )
        }
        .await;
        service.stop().await;
        result?;
    }

    if !skip("prefilled") {
        let service = Service::start(&env, "prefilled", 2).await?;
        let result = async {
            let key = service.tenant("bench").await?;
            prefill(&service, args.prefill).await?;
            let seconds = post_all(&service, &key, &data.requests, args.post_clients).await?;
            report.add_ours(
                &format!("ours: JSON, W=2, {} contacts stored before", args.prefill),
                &service,
                args.rows,
                seconds,
            )
        }
        .await;
        service.stop().await;
        result?;
    }

    if !skip("fairness") {
        let service = Service::start(&env, "fairness", args.csv_workers).await?;
        let result = fairness(&service, &data.csv, &data.requests[0]).await;
        service.stop().await;
        report.fairness = Some(result?);
    }

    if !skip("latency") {
        let service = Service::start(&env, "latency", args.latency_workers).await?;
        let result = async {
            let key = service.tenant("bench").await?;
            for &clients in &args.clients {
                let line = intake_latency(
                    &service,
                    &key,
                    &data.requests,
                    clients,
                    args.latency_requests,
                )
                .await?;
                report.latency.push(line);
            }
            anyhow::Ok(())
        }
        .await;
        service.stop().await;
        result?;
    }

    if !skip("search") {
        let service = Service::start(&env, "search", args.csv_workers).await?;
        let result = search_latency(&service, &data, args.search_requests).await;
        service.stop().await;
        report.search = result?;
    }

    println!("\n{}", report.markdown(args.rows));
    Ok(())
}

/// Where the services are.
struct Env {
    admin_url: String,
    amqp_url: String,
    run_id: String,
    keep: bool,
    /// What follows `CREATE DATABASE name` for every database the benchmark makes
    /// (`BENCH_DATABASE_OPTIONS`), e.g. `TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE
    /// 'en-US'` to measure on a database whose default collation is a language's.
    database_options: String,
}

impl Env {
    fn from_env() -> Env {
        Env {
            admin_url: std::env::var("ADMIN_DATABASE_URL")
                .or_else(|_| std::env::var("DATABASE_URL"))
                .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into()),
            amqp_url: std::env::var("AMQP_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
            run_id: format!("bench_{}", std::process::id()),
            keep: false,
            database_options: std::env::var("BENCH_DATABASE_OPTIONS").unwrap_or_default(),
        }
    }
}

/// The generated data: request bodies, the same rows as CSV, and the contacts themselves.
struct Dataset {
    requests: Vec<axum::body::Bytes>,
    /// The same requests with every contact's city changed: each matched row is a real update.
    changed: Vec<axum::body::Bytes>,
    csv: PathBuf,
    contacts: Vec<Value>,
}

impl Dataset {
    fn load(rows: usize) -> Result<Dataset> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let script = root.join("../shared/bench/gen_contacts.py");
        ensure!(
            script.exists(),
            "{} is missing: the benchmark's data comes from it",
            script.display()
        );
        let dir = root.join("bench/data");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let jsonl = generate(&script, &dir, "json", rows, "jsonl")?;
        let csv = generate(&script, &dir, "csv", rows, "csv")?;
        let text = std::fs::read_to_string(&jsonl)?;
        let mut requests = Vec::new();
        let mut changed = Vec::new();
        let mut contacts = Vec::with_capacity(rows);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut body: Value = serde_json::from_str(line).context("a generated request")?;
            if let Some(list) = body.get_mut("contacts").and_then(Value::as_array_mut) {
                contacts.extend(list.iter().cloned());
                for contact in list.iter_mut().filter_map(Value::as_object_mut) {
                    contact.insert("city".into(), Value::from("Re-imported"));
                }
            }
            requests.push(axum::body::Bytes::copy_from_slice(line.as_bytes()));
            changed.push(axum::body::Bytes::from(serde_json::to_vec(&body)?));
        }
        ensure!(
            contacts.len() == rows,
            "generated {} contacts, not {rows}",
            contacts.len()
        );
        Ok(Dataset {
            requests,
            changed,
            csv,
            contacts,
        })
    }

    /// The rows the service would write, normalised as it does, first occurrence of each
    /// identifier only: what COPY and the naive loop write.
    fn valid_unique_rows(&self) -> Result<Vec<ValidContact>> {
        let fields = bench_fields()?;
        let rules = Rules {
            dedupe_on: Identifier::Phone,
            default_region: None,
            fields: &fields,
            today: time::OffsetDateTime::now_utc().date(),
            date_format: Default::default(),
        };
        let mut seen = HashSet::new();
        let mut rows = Vec::new();
        for raw in &self.contacts {
            let Ok(c) = validate::validate_contact(raw, &rules) else {
                continue;
            };
            let keys = [
                c.phone.as_set().map(|p| format!("p{}", p.as_str())),
                c.email.as_set().map(|e| format!("e{}", e.as_str())),
                c.external_id.as_set().map(|x| format!("x{}", x.as_str())),
            ];
            if keys.iter().flatten().any(|k| seen.contains(k)) {
                continue;
            }
            seen.extend(keys.into_iter().flatten());
            rows.push(c);
        }
        Ok(rows)
    }
}

/// Runs the generator once per size and kind; the files stay in `bench/data` (git-ignored).
fn generate(script: &Path, dir: &Path, kind: &str, rows: usize, ext: &str) -> Result<PathBuf> {
    let path = dir.join(format!("contacts-{rows}.{ext}"));
    if path.metadata().is_ok_and(|m| m.len() > 0) {
        return Ok(path);
    }
    println!("generating {}", path.display());
    let partial = path.with_extension(format!("{ext}.partial"));
    let out = std::fs::File::create(&partial)?;
    let status = Command::new("python3")
        .arg(script)
        .arg(kind)
        .arg(rows.to_string())
        .stdout(out)
        .status()
        .context("run python3 gen_contacts.py")?;
    ensure!(
        status.success(),
        "gen_contacts.py {kind} {rows} failed: {status}"
    );
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// The two custom fields the generated data carries.
fn bench_fields() -> Result<HashMap<String, FieldKind>> {
    let plans = serde_json::json!(["free", "standard", "premium", "trial"]);
    Ok(HashMap::from([
        (
            "plan".to_owned(),
            FieldKind::parse("enum", Some(&plans)).map_err(|e| anyhow!(e))?,
        ),
        (
            "account_balance".to_owned(),
            FieldKind::parse("number", None).map_err(|e| anyhow!(e))?,
        ),
    ]))
}

const FIELD_DEFINITIONS: [&str; 2] = [
    r#"{"name":"plan","type":"enum","options":["free","standard","premium","trial"]}"#,
    r#"{"name":"account_balance","type":"number"}"#,
];

/// A database of the run's own, with the service's schema.
struct Database {
    name: String,
    url: String,
    admin_url: String,
    keep: bool,
}

impl Database {
    async fn create(env: &Env, label: &str) -> Result<Database> {
        let name = format!("{}_{label}", env.run_id);
        let admin = store::connect(&env.admin_url, 1).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} {}",
            env.database_options
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
        let url = match env.admin_url.rfind('/') {
            Some(i) => format!("{}/{name}", &env.admin_url[..i]),
            None => bail!("ADMIN_DATABASE_URL has no database part"),
        };
        let pool = store::connect(&url, 1).await?;
        store::migrate(&pool).await?;
        pool.close().await;
        Ok(Database {
            name,
            url,
            admin_url: env.admin_url.clone(),
            keep: env.keep,
        })
    }

    async fn pool(&self) -> Result<PgPool> {
        Ok(store::connect(&self.url, 2).await?)
    }

    async fn drop_now(&self) {
        if self.keep {
            println!("kept database {}", self.name);
            return;
        }
        if let Ok(admin) = store::connect(&self.admin_url, 1).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&admin)
            .await;
            admin.close().await;
        }
    }
}

const COLUMNS: &str = "id, tenant_id, external_id, phone, email, first_name, last_name, \
    full_name, occupation, preferred_channel, gender, birthday, address, city, state, zip, \
    custom_attributes";

/// One contact as the strings of `COLUMNS` after the two ids (`None` is NULL).
fn columns(c: &ValidContact) -> [Option<String>; 15] {
    fn text(p: &Patch<String>) -> Option<String> {
        p.as_set().cloned()
    }
    let attributes: serde_json::Map<String, Value> = c
        .custom_attributes
        .iter()
        .filter_map(|(k, v)| v.as_set().map(|v| (k.clone(), v.clone())))
        .collect();
    [
        c.external_id.as_set().map(|x| x.as_str().to_owned()),
        c.phone.as_set().map(|x| x.as_str().to_owned()),
        c.email.as_set().map(|x| x.as_str().to_owned()),
        text(&c.first_name),
        text(&c.last_name),
        text(&c.full_name),
        text(&c.occupation),
        text(&c.preferred_channel),
        c.gender.as_set().map(|g| g.as_str().to_owned()),
        c.birthday.as_set().map(|d| d.to_string()),
        text(&c.address),
        text(&c.city),
        text(&c.state),
        text(&c.zip),
        Some(Value::Object(attributes).to_string()),
    ]
}

/// A tenant row for the copies' and the naive table's rows.
async fn bench_tenant(pool: &PgPool) -> Result<uuid::Uuid> {
    let id = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO tenants (id, name, signing_secret) VALUES ($1, $2, 'x')")
        .bind(id)
        .bind(format!("bench-{id}"))
        .execute(pool)
        .await?;
    Ok(id)
}

/// A copy of `contacts`: same columns, defaults, checks and indexes (it has no foreign key).
async fn like_contacts(pool: &PgPool, table: &str) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {table} (LIKE contacts INCLUDING ALL)"
    )))
    .execute(pool)
    .await?;
    Ok(())
}

/// The fixed reference: a contact's columns as they were when the benchmark was written, with
/// the primary key and the three identifiers' unique indexes and nothing else. Written out here,
/// not derived from `contacts`, so that it stays the same whatever our schema becomes.
async fn reference_table(pool: &PgPool, table: &str) -> Result<()> {
    for statement in [
        format!(
            "CREATE TABLE {table} (
                 id uuid PRIMARY KEY,
                 tenant_id uuid NOT NULL,
                 external_id text, phone text, email text, first_name text, last_name text,
                 full_name text, occupation text, preferred_channel text, gender text,
                 birthday date, address text, city text, state text, zip text,
                 custom_attributes jsonb NOT NULL DEFAULT '{{}}',
                 created_at timestamptz NOT NULL DEFAULT now(),
                 updated_at timestamptz NOT NULL DEFAULT now(),
                 deleted_at timestamptz)"
        ),
        format!("CREATE UNIQUE INDEX ON {table} (tenant_id, phone)"),
        format!("CREATE UNIQUE INDEX ON {table} (tenant_id, email)"),
        format!("CREATE UNIQUE INDEX ON {table} (tenant_id, external_id)"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Each index's own cost: for every index of `contacts` but the primary key, COPY of the rows
/// into a copy of `contacts` with every other index. Returns (index, rows/s).
async fn index_costs(pool: &PgPool, rows: &[ValidContact]) -> Result<Vec<(String, f64)>> {
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes
         WHERE schemaname = current_schema() AND tablename = 'contacts'
           AND indexname <> 'contacts_pkey' ORDER BY indexname",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for (n, (left_out, _)) in indexes.iter().enumerate() {
        let table = format!("without_{n}");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {table} (LIKE contacts INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                 PRIMARY KEY (id))"
        )))
        .execute(pool)
        .await?;
        for (name, definition) in &indexes {
            if name == left_out {
                continue;
            }
            // "CREATE [UNIQUE] INDEX name ON schema.contacts USING …": the same on the copy.
            let (head, rest) = definition
                .split_once(" ON ")
                .ok_or_else(|| anyhow!("index definition {definition}"))?;
            let rest = rest
                .split_once(' ')
                .map(|(_, r)| r)
                .ok_or_else(|| anyhow!("index definition {definition}"))?;
            let unique = if head.contains("UNIQUE") {
                "UNIQUE "
            } else {
                ""
            };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE {unique}INDEX ON {table} {rest}"
            )))
            .execute(pool)
            .await?;
        }
        let rate = copy_into(pool, &table, rows, Words::With).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
            .execute(pool)
            .await?;
        out.push((left_out.clone(), rate));
    }
    Ok(out)
}

/// Stores `count` contacts for the service's tenant by SQL (a million a statement), with names,
/// a phone, an email and a city, none of them among the generated rows, then analyses.
async fn prefill(service: &Service, count: usize) -> Result<()> {
    let pool = service.db.pool().await?;
    let tenant: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants LIMIT 1")
        .fetch_one(&pool)
        .await?;
    let started = Instant::now();
    let chunk = 1_000_000usize;
    for from in (0..count).step_by(chunk) {
        let to = (from + chunk).min(count);
        sqlx::query(
            "INSERT INTO contacts (id, tenant_id, phone, email, first_name, last_name, city,
                 created_at, search_words)
             SELECT gen_random_uuid(), $1, phone, email, first_name, last_name,
                    'City ' || (i % 300), now() - make_interval(secs => $2 - i),
                    array_to_tsvector(ARRAY[lower(first_name), lower(last_name), email,
                        'prefill.example', substr(phone, 2), substr(phone, 3),
                        '~' || reverse(substr(phone, 2))])
             FROM generate_series($3::int8, $4::int8 - 1) AS i,
                  LATERAL (SELECT '+1999' || lpad(i::text, 10, '0') AS phone,
                      'stored' || i || '@prefill.example' AS email,
                      (ARRAY['Anna', 'Omar', 'Lena', 'Youssef', 'Maria', 'Ivan'])[1 + i % 6] AS first_name,
                      (ARRAY['Novak', 'Haddad', 'Silva', 'Kowalski', 'Dubois'])[1 + i % 5] || (i % 997) AS last_name) AS v",
        )
        .bind(tenant)
        .bind(count as f64)
        .bind(from as i64)
        .bind(to as i64)
        .execute(&pool)
        .await?;
        println!(
            "prefill: {to} contacts stored ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    sqlx::query("INSERT INTO contact_count_deltas (tenant_id, live, total) VALUES ($1, $2, $2)")
        .bind(tenant)
        .bind(count as i64)
        .execute(&pool)
        .await?;
    sqlx::query("ANALYZE contacts").execute(&pool).await?;
    pool.close().await;
    Ok(())
}

/// Whether a COPY writes each contact's search words, as the workers do (a table shaped like
/// `contacts` has their index), or not (the fixed reference has no such column).
#[derive(Clone, Copy, PartialEq)]
enum Words {
    With,
    Without,
}

/// A contact's search words as the workers store them, in `tsvector`'s text form.
fn words_text(c: &ValidContact) -> String {
    fn text(p: &Patch<String>) -> Option<&str> {
        p.as_set().map(String::as_str)
    }
    let words = validate::search::words(
        [text(&c.first_name), text(&c.last_name), text(&c.full_name)],
        c.email.as_set().map(|x| x.as_str()),
        c.phone.as_set().map(|x| x.as_str()),
    );
    let mut out = String::new();
    for word in words {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push('\'');
        out.push_str(&word.replace('\\', "\\\\").replace('\'', "''"));
        out.push('\'');
    }
    out
}

/// The physical limit: COPY in CSV format into `table`, sent in 1 MiB chunks, one transaction.
async fn copy_into(pool: &PgPool, table: &str, rows: &[ValidContact], words: Words) -> Result<f64> {
    let tenant = bench_tenant(pool).await?;
    let mut chunks = Vec::new();
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::with_capacity(1 << 20));
    for c in rows {
        let mut record = vec![uuid::Uuid::now_v7().to_string(), tenant.to_string()];
        record.extend(columns(c).into_iter().map(Option::unwrap_or_default));
        if words == Words::With {
            record.push(words_text(c));
        }
        writer.write_record(&record)?;
        if writer.get_ref().len() >= 1 << 20 {
            chunks.push(std::mem::replace(
                &mut writer,
                csv::WriterBuilder::new().from_writer(Vec::with_capacity(1 << 20)),
            ));
        }
    }
    chunks.push(writer);
    let chunks: Vec<Vec<u8>> = chunks
        .into_iter()
        .map(|w| w.into_inner().map_err(|e| anyhow!("csv: {e}")))
        .collect::<Result<_>>()?;

    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    // An empty field is NULL in CSV; a contact without words has the empty tsvector.
    let (words_column, words_option) = if words == Words::With {
        (", search_words", ", FORCE_NOT_NULL (search_words)")
    } else {
        ("", "")
    };
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY {table} ({COLUMNS}{words_column}) FROM STDIN (FORMAT csv{words_option})"
        ))
        .await?;
    for chunk in &chunks {
        copy.send(chunk.as_slice()).await?;
    }
    let copied = copy.finish().await?;
    tx.commit().await?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(copied as usize == rows.len(), "COPY wrote {copied} rows");
    println!("{table}: COPY {copied} rows in {seconds:.2} s");
    Ok(rows.len() as f64 / seconds)
}

/// What a first implementation would do: one upsert statement per row.
async fn naive_inserts(pool: &PgPool, rows: &[ValidContact]) -> Result<f64> {
    like_contacts(pool, "naive_contacts").await?;
    let tenant = bench_tenant(pool).await?;
    let sql = format!(
        "INSERT INTO naive_contacts ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::date, $13, $14, $15, $16, $17::jsonb)
         ON CONFLICT (tenant_id, phone) WHERE phone IS NOT NULL DO UPDATE SET
             external_id = EXCLUDED.external_id, email = EXCLUDED.email,
             first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
             full_name = EXCLUDED.full_name, occupation = EXCLUDED.occupation,
             preferred_channel = EXCLUDED.preferred_channel, gender = EXCLUDED.gender,
             birthday = EXCLUDED.birthday, address = EXCLUDED.address, city = EXCLUDED.city,
             state = EXCLUDED.state, zip = EXCLUDED.zip,
             custom_attributes = EXCLUDED.custom_attributes, updated_at = now()"
    );
    let mut conn: sqlx::pool::PoolConnection<sqlx::Postgres> = pool.acquire().await?;
    let started = Instant::now();
    for chunk in rows.chunks(BATCH_SIZE) {
        let mut tx = conn.begin().await?;
        for c in chunk {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(uuid::Uuid::now_v7())
                .bind(tenant);
            for value in columns(c) {
                query = query.bind(value);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("naive: {} upserts in {seconds:.2} s", rows.len());
    Ok(rows.len() as f64 / seconds)
}

/// The rows written into `contacts` by the workers' own statement, `BATCH_SIZE` rows per
/// transaction, from `workers` connections taking the next batch as they finish one; rows/s.
/// The table is emptied first, so every run starts where an import into an empty table does.
async fn capacity(pool: &PgPool, rows: &[ValidContact], workers: usize) -> Result<f64> {
    sqlx::query("TRUNCATE contacts CASCADE")
        .execute(pool)
        .await?;
    let tenant = bench_tenant(pool).await?;
    let batches: Vec<Vec<store::contacts::StoredContact>> = rows
        .chunks(BATCH_SIZE)
        .map(|chunk| {
            chunk
                .iter()
                .map(|row| {
                    let mut stored = store::contacts::StoredContact::empty(uuid::Uuid::now_v7());
                    contact_import::worker::plan::apply(&mut stored, row, true);
                    stored
                })
                .collect()
        })
        .collect();
    let next = AtomicUsize::new(0);
    let write = |_| async {
        let mut conn = pool.acquire().await?;
        let mut written = 0;
        loop {
            let Some(batch) = batches.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return anyhow::Ok(written);
            };
            let mut tx = conn.begin().await?;
            written += store::contacts::insert_new(&mut tx, tenant, batch).await?;
            tx.commit().await?;
        }
    };
    let started = Instant::now();
    let written: u64 = futures_util::future::try_join_all((0..workers.max(1)).map(write))
        .await?
        .into_iter()
        .sum();
    let seconds = started.elapsed().as_secs_f64();
    ensure!(
        written as usize == rows.len(),
        "capacity wrote {written} of {} rows",
        rows.len()
    );
    println!("capacity, W={workers}: {written} rows in {seconds:.2} s");
    Ok(rows.len() as f64 / seconds)
}

/// `contact-import run` (or `serve` for no workers) as a child process with a database and queue prefix of its own.
struct Service {
    child: std::sync::Mutex<Option<Child>>,
    pid: u32,
    addr: SocketAddr,
    db: Database,
    queue_prefix: String,
    amqp_url: String,
    http: reqwest::Client,
}

impl Service {
    async fn start(env: &Env, label: &str, workers: usize) -> Result<Service> {
        let db = Database::create(env, label).await?;
        let queue_prefix = format!("{}_{label}", env.run_id);
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        // The service's log, for a failed run: target/bench-logs/ (git-ignored).
        let logs = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-logs");
        std::fs::create_dir_all(&logs)?;
        let log = logs.join(format!("{queue_prefix}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(BIN)
            .arg(if workers == 0 { "serve" } else { "run" })
            .env("DATABASE_URL", &db.url)
            .env("AMQP_URL", &env.amqp_url)
            .env("LISTEN_ADDR", addr.to_string())
            .env("QUEUE_PREFIX", &queue_prefix)
            .env("WORKERS", workers.to_string())
            .env("SHUTDOWN_GRACE_SECS", "5")
            // BENCH_SERVICE_LOG: the service's RUST_LOG, e.g. `warn,sqlx::query=debug` for
            // every statement's time (in target/bench-logs/).
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("NO_COLOR", "1")
            .env("RATE_LIMIT_RPS", "100000")
            .env("RATE_LIMIT_BURST", "100000")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("start contact-import run")?;
        let service = Service {
            pid: child.id(),
            child: std::sync::Mutex::new(Some(child)),
            addr,
            db,
            queue_prefix,
            amqp_url: env.amqp_url.clone(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()?,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = service
                .http
                .get(service.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            if Instant::now() > deadline {
                service.stop().await;
                bail!(
                    "the service did not become ready in 60 s; log in {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(service)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A tenant made by `contact-import tenant create`, with the data's custom fields.
    async fn tenant(&self, name: &str) -> Result<String> {
        let output = Command::new(BIN)
            .args(["tenant", "create", name])
            .env("DATABASE_URL", &self.db.url)
            .env("RUST_LOG", "warn")
            .output()?;
        ensure!(output.status.success(), "tenant create failed");
        let key = String::from_utf8(output.stdout)?
            .lines()
            .last()
            .context("tenant create printed no key")?
            .trim()
            .to_owned();
        for field in FIELD_DEFINITIONS {
            let response = self
                .http
                .post(self.url("/api/v1/fields"))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(field)
                .send()
                .await?;
            ensure!(
                response.status().is_success(),
                "defining a field: {}",
                response.status()
            );
        }
        Ok(key)
    }

    /// Peak resident set size of the service so far (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    async fn status(&self, key: &str, id: &str) -> Result<Value> {
        let response = self
            .http
            .get(self.url(&format!("/api/v1/imports/{id}")))
            .bearer_auth(key)
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "status of {id}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// Waits for an import's final status, polling every 100 ms.
    async fn wait_final(&self, key: &str, id: &str) -> Result<Value> {
        loop {
            let status = self.status(key, id).await?;
            match status["status"].as_str() {
                Some("completed" | "completedWithErrors" | "failed" | "cancelled") => {
                    return Ok(status);
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// SIGTERM, a few seconds' grace, then SIGKILL; then the database and queues go.
    async fn stop(&self) {
        let child = self.child.lock().ok().and_then(|mut c| c.take());
        if let Some(mut child) = child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Topology::new(&self.queue_prefix)
            .delete(&self.amqp_url)
            .await;
        self.db.drop_now().await;
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.child.lock()
            && let Some(child) = guard.as_mut()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Posts every request from `clients` concurrent clients, then waits for every import's final
/// status. Returns the seconds from the first request to the last final status.
async fn post_all(
    service: &Service,
    key: &str,
    requests: &[axum::body::Bytes],
    clients: usize,
) -> Result<f64> {
    let next = AtomicUsize::new(0);
    let ids = Mutex::new(vec![String::new(); requests.len()]);
    let started = Instant::now();
    let post = |_| async {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(body) = requests.get(i) else {
                return anyhow::Ok(());
            };
            let id = post_contacts(service, key, body.clone()).await?;
            ids.lock().await[i] = id;
        }
    };
    futures_util::future::try_join_all((0..clients.max(1)).map(post)).await?;
    let ids = ids.into_inner();
    let mut totals = Counts::default();
    for id in &ids {
        let status = service.wait_final(key, id).await?;
        totals.add(&status);
    }
    let seconds = started.elapsed().as_secs_f64();
    totals.print(seconds);
    totals.check()?;
    Ok(seconds)
}

/// One `POST /api/v1/contacts`; returns the asyncSessionId.
async fn post_contacts(service: &Service, key: &str, body: axum::body::Bytes) -> Result<String> {
    accepted(service, key, "/api/v1/contacts", "application/json", body).await
}

/// Uploads the whole CSV file as one `text/csv` body; returns the import's id once stored.
async fn start_csv(service: &Service, key: &str, path: &Path) -> Result<String> {
    let body = tokio::task::block_in_place(|| std::fs::read(path))?;
    accepted(
        service,
        key,
        "/api/v1/imports?dedupeOn=phone",
        "text/csv",
        body,
    )
    .await
}

/// POSTs an import; expects 202 and returns its asyncSessionId.
async fn accepted(
    service: &Service,
    key: &str,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Result<String> {
    let response = service
        .http
        .post(service.url(path))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    ensure!(status.as_u16() == 202, "POST {path}: {status} {answer}");
    answer["asyncSessionId"]
        .as_str()
        .map(str::to_owned)
        .context("no asyncSessionId")
}

/// The CSV file end to end; returns the seconds from the upload's first byte to the final status.
async fn upload_csv(service: &Service, key: &str, path: &Path) -> Result<f64> {
    let started = Instant::now();
    let id = start_csv(service, key, path).await?;
    let stored = started.elapsed().as_secs_f64();
    let final_status = service.wait_final(key, &id).await?;
    let seconds = started.elapsed().as_secs_f64();
    let mut totals = Counts::default();
    totals.add(&final_status);
    println!("csv: upload and store {stored:.1} s");
    totals.print(seconds);
    totals.check()?;
    Ok(seconds)
}

/// Tenant A's whole CSV file is stored and being worked on; then tenant B posts 3000 contacts.
/// Returns B's seconds from its request to its final status, and A's rows processed by then.
async fn fairness(
    service: &Service,
    path: &Path,
    request: &axum::body::Bytes,
) -> Result<(f64, i64, i64)> {
    let a = service.tenant("tenant-a").await?;
    let b = service.tenant("tenant-b").await?;
    let a_id = start_csv(service, &a, path).await?;
    // Until A's batches are being applied, so that B arrives behind them.
    loop {
        let status = service.status(&a, &a_id).await?;
        if status["processedRows"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let b_id = post_contacts(service, &b, request.clone()).await?;
    let b_status = service.wait_final(&b, &b_id).await?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(
        b_status["processedRows"] == b_status["totalRows"],
        "tenant B's import ended unfinished: {b_status}"
    );
    let a_status = service.status(&a, &a_id).await?;
    let (processed, total) = (
        a_status["processedRows"].as_i64().unwrap_or(0),
        a_status["totalRows"].as_i64().unwrap_or(0),
    );
    println!(
        "fairness: tenant B's 3000 contacts final after {seconds:.2} s; tenant A had processed {processed} of {total} rows"
    );
    Ok((seconds, processed, total))
}

#[derive(Default)]
struct Counts {
    imports: usize,
    total: i64,
    processed: i64,
    created: i64,
    updated: i64,
    skipped: i64,
    failed: i64,
}

impl Counts {
    fn add(&mut self, status: &Value) {
        let n = |name: &str| status[name].as_i64().unwrap_or(0);
        self.imports += 1;
        self.total += n("totalRows");
        self.processed += n("processedRows");
        self.created += n("created");
        self.updated += n("updated");
        self.skipped += n("skipped");
        self.failed += n("failed");
    }

    /// A run that processed every row, and failed no more than the data's share of bad and
    /// duplicate rows (about 10 %): a broken build must not pass for a fast one.
    fn check(&self) -> Result<()> {
        ensure!(
            self.processed == self.total,
            "only {} of {} rows were processed",
            self.processed,
            self.total
        );
        ensure!(
            self.failed * 100 <= self.total * 15,
            "{} of {} rows failed: more than the generated data's bad and duplicate rows",
            self.failed,
            self.total
        );
        Ok(())
    }

    fn print(&self, seconds: f64) {
        println!(
            "  {} imports, {}/{} rows in {seconds:.1} s: {} created, {} updated, {} skipped, {} failed",
            self.imports,
            self.processed,
            self.total,
            self.created,
            self.updated,
            self.skipped,
            self.failed
        );
    }
}

struct Latency {
    clients: usize,
    posts: Vec<Duration>,
    statuses: Vec<Duration>,
}

/// `requests` POSTs from `clients` concurrent clients, while one more client reads the newest
/// import's status back to back with a 10 ms pause.
async fn intake_latency(
    service: &Service,
    key: &str,
    bodies: &[axum::body::Bytes],
    clients: usize,
    requests: usize,
) -> Result<Latency> {
    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let newest: Mutex<Option<String>> = Mutex::new(None);
    let posts = Mutex::new(Vec::with_capacity(requests));
    let post = |_| async {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= requests {
                return anyhow::Ok(());
            }
            let body = bodies[i % bodies.len()].clone();
            let started = Instant::now();
            let id = post_contacts(service, key, body).await?;
            posts.lock().await.push(started.elapsed());
            *newest.lock().await = Some(id);
        }
    };
    let poll = async {
        let mut statuses = Vec::new();
        while !done.load(Ordering::Relaxed) {
            let id = newest.lock().await.clone();
            if let Some(id) = id {
                let started = Instant::now();
                service.status(key, &id).await?;
                statuses.push(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        anyhow::Ok(statuses)
    };
    let posting = async {
        let result = futures_util::future::try_join_all((0..clients).map(post)).await;
        done.store(true, Ordering::Relaxed);
        result
    };
    let (posted, statuses) = tokio::join!(posting, poll);
    posted?;
    let line = Latency {
        clients,
        posts: posts.into_inner(),
        statuses: statuses?,
    };
    println!(
        "latency, {clients} clients: POST p50 {} p99 {} ({} requests); GET status p50 {} p99 {} ({} requests)",
        ms(percentile(&line.posts, 50.0)),
        ms(percentile(&line.posts, 99.0)),
        line.posts.len(),
        ms(percentile(&line.statuses, 50.0)),
        ms(percentile(&line.statuses, 99.0)),
        line.statuses.len()
    );
    Ok(line)
}

/// Loads the data's CSV into a fresh service (one tenant), then times `GET /api/v1/contacts`
/// one request at a time, `requests` of each kind with different terms taken from the data,
/// and prints the plans PostgreSQL chose for a search and a sort.
async fn search_latency(
    service: &Service,
    data: &Dataset,
    requests: usize,
) -> Result<Vec<(String, Vec<Duration>)>> {
    let key = service.tenant("bench").await?;
    let id = start_csv(service, &key, &data.csv).await?;
    let status = service.wait_final(&key, &id).await?;
    let stored = status["created"].as_i64().unwrap_or(0);
    println!("search: {stored} contacts stored");
    // The service analyses the tables after a big import by itself, within a second; do it
    // here as well, so that no measurement runs on stale statistics.
    let pool = service.db.pool().await?;
    sqlx::query("ANALYZE contacts").execute(&pool).await?;
    // Deep pages skip their offset in an index-only scan, which needs the visibility map the
    // service's maintenance sets by vacuuming once the import is over: wait for it.
    let waited = Instant::now();
    loop {
        let unvacuumed: i64 = sqlx::query_scalar(
            "SELECT n_ins_since_vacuum + n_dead_tup FROM pg_stat_user_tables WHERE relname = 'contacts'",
        )
        .fetch_one(&pool)
        .await?;
        if unvacuumed < 1000 {
            break;
        }
        ensure!(
            waited.elapsed() < Duration::from_secs(600),
            "the service did not vacuum contacts within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "search: contacts vacuumed by the service {:.1} s after the import",
        waited.elapsed().as_secs_f64()
    );
    pool.close().await;
    let text = |c: &Value, k: &str| c[k].as_str().map(str::to_owned);
    let step = (data.contacts.len() / requests.max(1)).max(1);
    let sample: Vec<&Value> = data.contacts.iter().step_by(step).take(requests).collect();
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let pages = (stored / 100).max(1);
    // The sampled phones' digits, of those long enough to cut a part out of.
    let phone_digits: Vec<String> = sample
        .iter()
        .filter_map(|c| text(c, "phone"))
        .map(|p| p.chars().filter(char::is_ascii_digit).collect::<String>())
        .filter(|d| d.len() >= 9)
        .collect();
    let mut kinds: Vec<(String, Vec<String>)> = vec![
        (
            "search: a last name".into(),
            sample
                .iter()
                .filter_map(|c| text(c, "lastName"))
                .map(|v| format!("search={}", encode(&v)))
                .collect(),
        ),
        (
            "search: 6 digits of a phone".into(),
            phone_digits
                .iter()
                .map(|d| format!("search={}", &d[d.len() - 7..d.len() - 1]))
                .collect(),
        ),
        (
            "search: an email".into(),
            sample
                .iter()
                .filter_map(|c| text(c, "email"))
                .map(|v| format!("search={}", encode(&v.to_lowercase())))
                .collect(),
        ),
        (
            "search: a first name and the start of a last name".into(),
            sample
                .iter()
                .filter_map(|c| Some((text(c, "firstName")?, text(c, "lastName")?)))
                .map(|(f, l)| {
                    let start: String = l.chars().take(3).collect();
                    format!("search={}%20{}", encode(&f), encode(&start))
                })
                .collect(),
        ),
        (
            "search: 3 letters (tens of thousands match)".into(),
            sample
                .iter()
                .filter_map(|c| text(c, "firstName"))
                .map(|f| format!("search={}", encode(&f.chars().take(3).collect::<String>())))
                .collect(),
        ),
        (
            "search: the last 4 digits of a phone".into(),
            phone_digits
                .iter()
                .map(|d| format!("search={}", &d[d.len() - 4..]))
                .collect(),
        ),
        (
            "exact look-up: ?email=".into(),
            sample
                .iter()
                .filter_map(|c| text(c, "email"))
                .map(|v| format!("email={}", encode(&v)))
                .collect(),
        ),
    ];
    for (sort, order) in [
        ("createdAt", "desc"),
        ("lastName", "asc"),
        ("email", "asc"),
        ("firstName", "desc"),
    ] {
        let pages: Vec<String> = (0..requests as i64)
            .map(|i| {
                // First pages mostly, some deep ones: page 1, 2, ... and every tenth far in.
                let page = if i % 10 == 9 {
                    (i * 37) % pages + 1
                } else {
                    i % 5 + 1
                };
                format!("sort={sort}&order={order}&page={page}")
            })
            .collect();
        kinds.push((
            format!("sort={sort}&order={order}, page= 1-5 and deep (OFFSET)"),
            pages,
        ));
        kinds.push((
            format!("sort={sort}&order={order}, after= a cursor anywhere"),
            deep_cursors(service, sort, order == "asc", requests).await?,
        ));
    }
    let mut out = Vec::new();
    for (kind, queries) in kinds {
        let mut samples = Vec::with_capacity(queries.len());
        for query in &queries {
            let started = Instant::now();
            let response = service
                .http
                .get(service.url(&format!("/api/v1/contacts?{query}")))
                .bearer_auth(&key)
                .send()
                .await?;
            ensure!(
                response.status().is_success(),
                "{query}: {}",
                response.status()
            );
            response.bytes().await?;
            samples.push(started.elapsed());
        }
        println!(
            "{kind}: p50 {} p99 {} ({} requests)",
            ms(percentile(&samples, 50.0)),
            ms(percentile(&samples, 99.0)),
            samples.len()
        );
        out.push((kind, samples));
    }
    explain_pages(service, sample.first().and_then(|c| text(c, "lastName"))).await?;
    Ok(out)
}

/// `after=` queries of `requests` cursors spread evenly over the whole list sorted by `sort`
/// (API name), as a client following `nextCursor` would reach them.
async fn deep_cursors(
    service: &Service,
    sort: &str,
    ascending: bool,
    requests: usize,
) -> Result<Vec<String>> {
    use contact_import::store::contacts::{Cursor, SortKey};
    let key = SortKey::parse(sort).ok_or_else(|| anyhow!("sort {sort}"))?;
    let column = match key {
        SortKey::FirstName => "first_name",
        SortKey::LastName => "last_name",
        SortKey::Phone => "phone",
        SortKey::Email => "email",
        SortKey::CreatedAt => "created_at",
    };
    let direction = if ascending { "ASC" } else { "DESC" };
    let pool = service.db.pool().await?;
    // Every contact's place, read once (a few MB for a million), then sampled.
    let places: Vec<(Option<String>, uuid::Uuid, time::OffsetDateTime)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {column}::text, id, created_at FROM contacts WHERE deleted_at IS NULL
             ORDER BY contacts.{column} {direction}, contacts.id {direction}"
        )))
        .fetch_all(&pool)
        .await?;
    pool.close().await;
    let step = (places.len() / requests.max(1)).max(1);
    Ok(places
        .iter()
        .step_by(step)
        .take(requests)
        .map(|(value, id, created_at)| {
            let value = if key == SortKey::CreatedAt {
                created_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok()
            } else {
                value.clone()
            };
            let cursor = Cursor {
                sort: key,
                ascending,
                value,
                id: *id,
            };
            format!("after={}", cursor.encode())
        })
        .collect())
}

/// Prints EXPLAIN ANALYZE of the statements a search and a sorted page run.
async fn explain_pages(service: &Service, last_name: Option<String>) -> Result<()> {
    use contact_import::store::contacts::{SortKey, page_sql};
    let pool = service.db.pool().await?;
    let tenant: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants LIMIT 1")
        .fetch_one(&pool)
        .await?;
    let term = last_name.unwrap_or_else(|| "benali".into());
    let cases = [
        (
            "search",
            SortKey::CreatedAt,
            false,
            contact_import::validate::search::query(&term),
            0i64,
        ),
        (
            "sort=lastName&order=asc, page 50",
            SortKey::LastName,
            true,
            None,
            4900,
        ),
    ];
    for (label, sort, ascending, search, offset) in cases {
        let select = page_sql(None, sort, ascending);
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, BUFFERS) {select}"
        )))
        .bind(tenant)
        .bind(None::<String>)
        .bind(false)
        .bind(None::<Vec<String>>)
        .bind(offset)
        .bind(100i64)
        .bind(None::<String>)
        .bind(search)
        .bind(None::<String>)
        .bind(None::<String>)
        .fetch_all(&pool)
        .await?;
        println!("\nplan, {label}:\n{}", plan.join("\n"));
    }
    // A numbered page halfway down the list, the deepest one reads (from the nearer end).
    let listed: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&pool)
        .await?;
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, BUFFERS) {}",
        contact_import::store::contacts::offset_ids_sql(SortKey::LastName, true)
    )))
    .bind(tenant)
    .bind(false)
    .bind(listed / 2)
    .bind(101i64)
    .fetch_all(&pool)
    .await?;
    println!(
        "\nplan, sort=lastName&order=asc, the ids of page {} (of {}):\n{}",
        listed / 200,
        listed / 100,
        plan.join("\n")
    );
    pool.close().await;
    Ok(())
}

/// Nearest-rank percentile.
fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[derive(Default)]
struct Report {
    throughput: Vec<(String, usize, f64, Option<f64>)>,
    latency: Vec<Latency>,
    /// Tenant B's seconds behind tenant A's import, and A's rows processed of its total then.
    fairness: Option<(f64, i64, i64)>,
    /// `GET /api/v1/contacts` latency by kind of query: (kind, samples).
    search: Vec<(String, Vec<Duration>)>,
}

impl Report {
    fn add(&mut self, name: &str, rows: usize, rate: f64, rss: Option<f64>) {
        println!("{name}: {rate:.0} rows/s");
        self.throughput.push((name.to_owned(), rows, rate, rss));
    }

    fn add_ours(&mut self, name: &str, service: &Service, rows: usize, seconds: f64) -> Result<()> {
        self.add(name, rows, rows as f64 / seconds, service.peak_rss_mib());
        Ok(())
    }

    fn rate(&self, prefix: &str) -> Option<f64> {
        self.throughput
            .iter()
            .find(|(name, ..)| name.starts_with(prefix))
            .map(|(_, _, rate, _)| *rate)
    }

    fn markdown(&self, rows: usize) -> String {
        let reference = self.rate("reference");
        let ceiling = self.rate("ceiling");
        let naive = self.rate("naive");
        let ratio = |rate: f64, base: Option<f64>| {
            base.map_or("–".into(), |b| format!("{:.2}", rate / b))
        };
        let mut out = format!(
            "| {rows} rows | rows written | rows/s | ÷ reference | ÷ COPY (our schema) | ÷ naive | service peak RSS |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        );
        for (name, written, rate, rss) in &self.throughput {
            let _ = writeln!(
                out,
                "| {name} | {written} | {rate:.0} | {} | {} | {} | {} |",
                ratio(*rate, reference),
                ratio(*rate, ceiling),
                ratio(*rate, naive),
                rss.map_or("–".into(), |m| format!("{m:.0} MiB"))
            );
        }
        if let Some((seconds, processed, total)) = self.fairness {
            let _ = writeln!(
                out,
                "\nTenant B's 3000 contacts, posted while tenant A's {total}-row CSV import runs: final after {seconds:.2} s (A: {processed} of {total} rows processed by then)."
            );
        }
        if !self.search.is_empty() {
            out.push_str(
                "\n| GET /api/v1/contacts, 1 client | p50 | p99 | requests |\n| --- | --- | --- | --- |\n",
            );
            for (kind, samples) in &self.search {
                let _ = writeln!(
                    out,
                    "| {kind} | {} | {} | {} |",
                    ms(percentile(samples, 50.0)),
                    ms(percentile(samples, 99.0)),
                    samples.len()
                );
            }
        }
        if !self.latency.is_empty() {
            out.push_str(
                "\n| concurrent clients | POST 3000 contacts p50 | p99 | requests | GET status p50 | p99 | requests |\n| --- | --- | --- | --- | --- | --- | --- |\n",
            );
            for l in &self.latency {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    l.clients,
                    ms(percentile(&l.posts, 50.0)),
                    ms(percentile(&l.posts, 99.0)),
                    l.posts.len(),
                    ms(percentile(&l.statuses, 50.0)),
                    ms(percentile(&l.statuses, 99.0)),
                    l.statuses.len()
                );
            }
        }
        out
    }
}
