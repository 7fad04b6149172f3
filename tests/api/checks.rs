//! What the tests of several features read from an import: the codes on a row result, counters
//! that add up, and the contacts table, to show that nothing changed.

use crate::app::TestApp;
use serde_json::Value;

/// The codes of a row result's `errors` or `warnings` (`list`).
pub fn codes(row: &Value, list: &str) -> Vec<String> {
    row[list]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every row of a final import is counted once: created + updated + skipped + failed.
pub fn assert_counters_add_up(status: &Value) {
    let n = |k: &str| status[k].as_i64().unwrap_or(-1);
    assert_eq!(
        n("created") + n("updated") + n("skipped") + n("failed"),
        n("processedRows"),
        "{status}"
    );
    assert_eq!(n("processedRows"), n("totalRows"), "{status}");
}

/// The contacts table as text, to show that nothing changed.
pub async fn contacts_snapshot(app: &TestApp) -> (i64, String) {
    sqlx::query_as(
        "SELECT count(*), coalesce(md5(string_agg(c::text, ',' ORDER BY c.id)), '') FROM contacts c",
    )
    .fetch_one(&app.pool)
    .await
    .expect("contacts snapshot")
}

/// `s` percent-encoded for a query string (every byte but the unreserved ones).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
