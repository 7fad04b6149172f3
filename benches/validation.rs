//! Micro-benchmark of row validation (issue #5), on contacts from `shared/bench/gen_contacts.py`.
//!
//! - `phone/rlibphonenumber/*`: the project's `normalize_phone`, and the same parse, is-valid and
//!   E.164 format done with direct `rlibphonenumber` calls.
//! - `phone/phonenumber/*`: the same calls with the `phonenumber` crate, once per row (the
//!   worker's pattern) and once as three phases over all numbers (parse all, validate all, format
//!   all), the two ways DESIGN.md compares.
//! - `contact/validate_contact`: the worker's full row validation.
//! - `contact/intake/*`: what the JSON intake does per contact before it stores a request (its
//!   depth check, both ways, the identifying part and its custom attribute names).
//!
//! Per-row benchmarks take one row per iteration, cycling through the rows in order, so their
//! time is per row. The `*/phases` benchmarks take all rows per iteration: divide by the row
//! count (or read the throughput) for the time per row.
//!
//! `cargo bench --bench validation`; `VALIDATION_BENCH_ROWS` sets the row count (default 20000).
//! Needs `python3` and `../shared/bench/gen_contacts.py` beside the crate.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::path::Path;
use std::process::Command;

use contact_import::validate::{
    FieldKind, Identifier, MAX_JSON_DEPTH, Rules, ValidContact, dedupe_key, dedupe_keys,
    identifying_part, intake_part, json_depth, nests_within, normalize_phone, validate_contact,
};
use criterion::{Criterion, SamplingMode, Throughput};
use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat, Region};
use serde_json::Value;

const DEFAULT_ROWS: usize = 20_000;

/// The generated JSON has no `defaultRegion` (requests carry `dedupeOn` only), so phones are
/// parsed without one, as the worker does for such an import.
const DEFAULT_REGION: Option<&str> = None;

fn main() {
    let rows = match std::env::var("VALIDATION_BENCH_ROWS") {
        Ok(n) => n
            .parse()
            .unwrap_or_else(|_| fail(&format!("VALIDATION_BENCH_ROWS={n:?} is not a row count"))),
        Err(_) => DEFAULT_ROWS,
    };
    let contacts = generate_contacts(rows);
    let phones: Vec<String> = contacts
        .iter()
        .map(|c| {
            c.get("phone")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    let regions = Regions::new(DEFAULT_REGION);
    let fields = tenant_fields();
    let rules = Rules {
        dedupe_on: Identifier::Phone,
        default_region: DEFAULT_REGION,
        fields: &fields,
        today: time::macros::date!(2026 - 11 - 23),
        date_format: Default::default(),
    };
    report_acceptance(&phones, &regions);
    report_contacts(&contacts, &rules);

    let mut c = Criterion::default().configure_from_args();
    bench_phones(&mut c, &phones, &regions);
    bench_contacts(&mut c, &contacts, &rules);
    c.final_summary();
}

fn fail(message: &str) -> ! {
    eprintln!("validation bench: {message}");
    std::process::exit(1);
}

/// Runs the project's generator (`json N`) and returns its contacts, in order.
fn generate_contacts(rows: usize) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/gen_contacts.py");
    if !script.is_file() {
        fail(&format!(
            "the contact generator {} is missing (it lives in shared/, beside the crate)",
            script.display()
        ));
    }
    let output = Command::new("python3")
        .arg(&script)
        .args(["json", &rows.to_string()])
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run python3 {}: {e}", script.display())));
    if !output.status.success() {
        fail(&format!(
            "python3 {} json {rows} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8(output.stdout)
        .unwrap_or_else(|e| fail(&format!("the generator wrote invalid UTF-8: {e}")));
    let mut contacts = Vec::with_capacity(rows);
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let mut request: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| fail(&format!("the generator wrote invalid JSON: {e}")));
        match request.get_mut("contacts").map(Value::take) {
            Some(Value::Array(batch)) => contacts.extend(batch),
            _ => fail("a generated request has no \"contacts\" array"),
        }
    }
    if contacts.len() != rows {
        fail(&format!(
            "the generator gave {} contacts, expected {rows}",
            contacts.len()
        ));
    }
    contacts
}

/// The custom fields the generator's rows carry, defined as `bench/csv_import.sh` defines them.
fn tenant_fields() -> HashMap<String, FieldKind> {
    let plans = ["free", "standard", "premium", "trial"].map(str::to_owned);
    HashMap::from([
        ("plan".to_owned(), FieldKind::Enum(plans.to_vec())),
        ("account_balance".to_owned(), FieldKind::Number),
    ])
}

/// The default region in each library's type.
struct Regions {
    rlib: Option<Region>,
    pn: Option<phonenumber::country::Id>,
}

impl Regions {
    fn new(code: Option<&str>) -> Self {
        let Some(code) = code else {
            return Self {
                rlib: None,
                pn: None,
            };
        };
        let unknown = format!("region {code:?} is unknown");
        Self {
            rlib: Some(Region::from_code(code).unwrap_or_else(|_| fail(&unknown))),
            pn: Some(code.parse().unwrap_or_else(|_| fail(&unknown))),
        }
    }
}

/// The input as `normalize_phone` hands it to the library: trimmed, with "00" read as '+'.
/// Both libraries ignore the punctuation people write between digits themselves.
fn prepare(raw: &str) -> Cow<'_, str> {
    let raw = raw.trim();
    match raw.strip_prefix("00") {
        Some(rest) => Cow::Owned(format!("+{rest}")),
        None => Cow::Borrowed(raw),
    }
}

/// `normalize_phone`'s second reading: digits written without their '+'.
fn needs_plus(number: &str) -> bool {
    !number.starts_with('+')
}

/// Parse, is-valid and E.164 format of one number with `rlibphonenumber`, then the same for
/// "+number" when the number has no '+' and was not valid (as `normalize_phone` does).
fn rlib_e164(raw: &str, region: Option<Region>) -> Option<String> {
    let util = &*PHONE_NUMBER_UTIL;
    let number = prepare(raw);
    let read = |text: &str, region| {
        util.parse(text, region)
            .ok()
            .filter(|n| util.is_valid_number(n))
            .map(|n| util.format(&n, PhoneNumberFormat::E164).into_owned())
    };
    read(&number, region).or_else(|| {
        needs_plus(&number)
            .then(|| read(&format!("+{number}"), None))
            .flatten()
    })
}

/// [`rlib_e164`] with the `phonenumber` crate: the worker's per-row pattern.
fn pn_e164(raw: &str, region: Option<phonenumber::country::Id>) -> Option<String> {
    let number = prepare(raw);
    let read = |text: &str, region| {
        phonenumber::parse(region, text)
            .ok()
            .filter(phonenumber::is_valid)
            .map(|n| n.format().mode(phonenumber::Mode::E164).to_string())
    };
    read(&number, region).or_else(|| {
        needs_plus(&number)
            .then(|| read(&format!("+{number}"), None))
            .flatten()
    })
}

/// The same calls as [`pn_e164`] over all numbers, grouped by phase: parse all, validate all,
/// parse and validate again the numbers that need a '+', then format all valid ones.
fn pn_e164_phases(
    raws: &[String],
    region: Option<phonenumber::country::Id>,
) -> Vec<Option<String>> {
    let inputs: Vec<Cow<'_, str>> = raws.iter().map(|raw| prepare(raw)).collect();
    let mut numbers: Vec<Option<phonenumber::PhoneNumber>> = inputs
        .iter()
        .map(|text| phonenumber::parse(region, text).ok())
        .collect();
    let mut valid: Vec<bool> = numbers
        .iter()
        .map(|n| n.as_ref().is_some_and(phonenumber::is_valid))
        .collect();
    let retry: Vec<usize> = (0..inputs.len())
        .filter(|&i| !valid[i] && needs_plus(&inputs[i]))
        .collect();
    let again: Vec<Option<phonenumber::PhoneNumber>> = retry
        .iter()
        .map(|&i| phonenumber::parse(None, format!("+{}", inputs[i])).ok())
        .collect();
    for (i, number) in retry.into_iter().zip(again) {
        if number.as_ref().is_some_and(phonenumber::is_valid) {
            numbers[i] = number;
            valid[i] = true;
        }
    }
    numbers
        .iter()
        .zip(valid)
        .map(|(n, ok)| {
            n.as_ref()
                .filter(|_| ok)
                .map(|n| n.format().mode(phonenumber::Mode::E164).to_string())
        })
        .collect()
}

/// [`pn_e164_phases`] with `rlibphonenumber`.
fn rlib_e164_phases(raws: &[String], region: Option<Region>) -> Vec<Option<String>> {
    let util = &*PHONE_NUMBER_UTIL;
    let inputs: Vec<Cow<'_, str>> = raws.iter().map(|raw| prepare(raw)).collect();
    let mut numbers: Vec<Option<rlibphonenumber::PhoneNumber>> = inputs
        .iter()
        .map(|text| util.parse(text, region).ok())
        .collect();
    let mut valid: Vec<bool> = numbers
        .iter()
        .map(|n| n.as_ref().is_some_and(|n| util.is_valid_number(n)))
        .collect();
    let retry: Vec<usize> = (0..inputs.len())
        .filter(|&i| !valid[i] && needs_plus(&inputs[i]))
        .collect();
    let again: Vec<Option<rlibphonenumber::PhoneNumber>> = retry
        .iter()
        .map(|&i| util.parse(format!("+{}", inputs[i]), None).ok())
        .collect();
    for (i, number) in retry.into_iter().zip(again) {
        if number.as_ref().is_some_and(|n| util.is_valid_number(n)) {
            numbers[i] = number;
            valid[i] = true;
        }
    }
    numbers
        .iter()
        .zip(valid)
        .map(|(n, ok)| {
            n.as_ref()
                .filter(|_| ok)
                .map(|n| util.format(n, PhoneNumberFormat::E164).into_owned())
        })
        .collect()
}

/// How many phones each way accepts, and where they differ; outside any timing.
fn report_acceptance(phones: &[String], regions: &Regions) {
    let project: Vec<Option<String>> = phones
        .iter()
        .map(|p| normalize_phone(p, DEFAULT_REGION).ok().map(String::from))
        .collect();
    let rlib: Vec<Option<String>> = phones.iter().map(|p| rlib_e164(p, regions.rlib)).collect();
    let pn: Vec<Option<String>> = phones.iter().map(|p| pn_e164(p, regions.pn)).collect();
    assert_eq!(rlib_e164_phases(phones, regions.rlib), rlib, "rlib phases");
    assert_eq!(pn_e164_phases(phones, regions.pn), pn, "phonenumber phases");

    let accepted = |v: &[Option<String>]| v.iter().filter(|p| p.is_some()).count();
    let n = phones.len();
    println!("phones: {n} (default region: {DEFAULT_REGION:?})");
    println!(
        "  accepted by normalize_phone (project):  {}",
        accepted(&project)
    );
    println!(
        "  accepted by rlibphonenumber (direct):   {}",
        accepted(&rlib)
    );
    println!(
        "  accepted by phonenumber:                {}",
        accepted(&pn)
    );
    let differ = |a: &[Option<String>], b: &[Option<String>]| {
        let mut only_a = Vec::new();
        let mut only_b = Vec::new();
        let mut other_e164 = Vec::new();
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            match (x, y) {
                (Some(_), None) => only_a.push(i),
                (None, Some(_)) => only_b.push(i),
                (Some(x), Some(y)) if x != y => other_e164.push(i),
                _ => {}
            }
        }
        (only_a, only_b, other_e164)
    };
    let examples = |rows: &[usize]| {
        let shown: Vec<&str> = rows.iter().take(5).map(|&i| phones[i].as_str()).collect();
        format!("{} {shown:?}", rows.len())
    };
    let (only_project, only_direct, other) = differ(&project, &rlib);
    println!(
        "  normalize_phone vs direct rlibphonenumber: only project {}, only direct {}, other E.164 {}",
        examples(&only_project),
        examples(&only_direct),
        examples(&other)
    );
    let (only_rlib, only_pn, other) = differ(&rlib, &pn);
    println!(
        "  rlibphonenumber vs phonenumber: disagree on {} phones",
        only_rlib.len() + only_pn.len() + other.len()
    );
    println!("    only rlibphonenumber accepts: {}", examples(&only_rlib));
    println!("    only phonenumber accepts:     {}", examples(&only_pn));
    println!("    both accept, other E.164:     {}", examples(&other));
}

/// How many generated contacts `validate_contact` accepts; outside any timing.
fn report_contacts(contacts: &[Value], rules: &Rules) {
    let results: Vec<Result<ValidContact, _>> = contacts
        .iter()
        .map(|c| validate_contact(c, rules))
        .collect();
    let valid = results.iter().filter(|r| r.is_ok()).count();
    let mut codes: HashMap<&str, usize> = HashMap::new();
    for issues in results.iter().filter_map(|r| r.as_ref().err()) {
        for issue in issues {
            *codes.entry(issue.code.as_str()).or_default() += 1;
        }
    }
    let mut codes: Vec<_> = codes.into_iter().collect();
    codes.sort();
    println!(
        "contacts: {}, valid {valid}, row errors by code {codes:?}",
        contacts.len()
    );
}

/// Benchmarks `one` on one row per iteration, taking the rows in order, round and round.
fn per_row<T, R>(b: &mut criterion::Bencher<'_>, rows: &[T], mut one: impl FnMut(&T) -> R) {
    let mut i = 0;
    b.iter(|| {
        let row = &rows[i];
        i = if i + 1 == rows.len() { 0 } else { i + 1 };
        one(black_box(row))
    });
}

fn bench_phones(c: &mut Criterion, phones: &[String], regions: &Regions) {
    let mut group = c.benchmark_group("phone");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rlibphonenumber/normalize_phone", |b| {
        per_row(b, phones, |p| normalize_phone(p, DEFAULT_REGION))
    });
    group.bench_function("rlibphonenumber/direct", |b| {
        per_row(b, phones, |p| rlib_e164(p, regions.rlib))
    });
    group.bench_function("phonenumber/per_row", |b| {
        per_row(b, phones, |p| pn_e164(p, regions.pn))
    });

    // All rows per iteration: few, long iterations.
    group.throughput(Throughput::Elements(phones.len() as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_function("rlibphonenumber/phases", |b| {
        b.iter(|| rlib_e164_phases(black_box(phones), regions.rlib))
    });
    group.bench_function("phonenumber/phases", |b| {
        b.iter(|| pn_e164_phases(black_box(phones), regions.pn))
    });
    group.finish();
}

fn bench_contacts(c: &mut Criterion, contacts: &[Value], rules: &Rules) {
    let mut group = c.benchmark_group("contact");
    group.throughput(Throughput::Elements(1));
    group.bench_function("validate_contact", |b| {
        per_row(b, contacts, |contact| validate_contact(contact, rules))
    });
    // What the JSON intake does per contact before it stores a request.
    let texts: Vec<String> = contacts.iter().map(Value::to_string).collect();
    let known: HashSet<String> = rules.fields.keys().cloned().collect();
    // Its identifier and the names of its custom attributes, in one pass.
    group.bench_function("intake/intake_part", |b| {
        per_row(b, &texts, |text| intake_part(text, rules.dedupe_on, &known))
    });
    // Every identifier, as the erasure reads a stored row.
    group.bench_function("intake/identifying_part", |b| {
        per_row(b, &texts, |text| identifying_part(text))
    });
    let parts: Vec<Value> = texts
        .iter()
        .map(|text| intake_part(text, rules.dedupe_on, &known).identifying)
        .collect();
    // A request's worth of identifying parts: every phone normalised, or only those whose
    // last four digits another row's phone ends with too (`dedupe_keys`).
    let request = &parts[..parts.len().min(3000)];
    group.throughput(Throughput::Elements(request.len() as u64));
    group.bench_function("intake/request/dedupe_key_each", |b| {
        b.iter(|| {
            request
                .iter()
                .filter_map(|p| dedupe_key(p, rules.dedupe_on, rules.default_region))
                .count()
        })
    });
    group.bench_function("intake/request/dedupe_keys", |b| {
        b.iter(|| dedupe_keys(request, rules.dedupe_on, rules.default_region).len())
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("intake/json_depth", |b| {
        per_row(b, &texts, |text| json_depth(text) <= MAX_JSON_DEPTH)
    });
    group.bench_function("intake/nests_within", |b| {
        per_row(b, &texts, |text| nests_within(text, MAX_JSON_DEPTH))
    });
    group.bench_function("intake/intake_part+dedupe_key", |b| {
        per_row(b, &texts, |text| {
            dedupe_key(
                &intake_part(text, rules.dedupe_on, &known).identifying,
                rules.dedupe_on,
                rules.default_region,
            )
        })
    });
    group.finish();
}
