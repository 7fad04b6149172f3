//! Consent per channel: set by both intakes, kept as an opt-out against any import that would
//! turn it back (listmonk's users lost unsubscribes to "overwrite" imports), shown on the
//! contact and filtered on.

use crate::app::spawn_with;
use crate::checks::codes;
use crate::common::{phone, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};

/// An opt-out survives an import with `overwrite: true`, by JSON or by file, with the warning
/// `consent_kept` on the row (whose other fields apply); only `allowResubscribe` opts the
/// contact back in. The contact shows its consent with its time and source, and
/// `?consent.sms=` lists by it.
#[tokio::test]
async fn an_opt_out_survives_an_overwriting_import_unless_resubscribing_is_allowed() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let by_phone = |n: usize| format!("phone={}", phone(n).replace('+', "%2B"));
    let first = app
        .import_and_wait(
            &key,
            &json!({"contacts": [
                {"phone": phone(1), "firstName": "Ana", "consent": {"sms": {"status": "optedOut", "at": "2026-01-05T10:00:00Z", "source": "shop"}, "email": "optedIn"}},
                {"phone": phone(2), "firstName": "Ben", "consent": {"sms": "yes"}, "status": "passive"},
            ]}),
        )
        .await;
    assert_eq!(first["created"], 2, "{first}");
    let ana = app.contact_by(&key, &by_phone(1)).await.unwrap();
    assert_eq!(
        ana["consent"]["sms"],
        json!({"status": "optedOut", "updatedAt": "2026-01-05T10:00:00Z", "source": "shop"})
    );
    assert_eq!(ana["consent"]["email"]["status"], "optedIn");
    assert_eq!(
        ana["consent"]["email"]["source"],
        format!("import:{}", first["asyncSessionId"].as_str().unwrap())
    );
    assert_eq!(
        ana.get("consent").and_then(|c| c.get("call")),
        None,
        "a channel never set is absent"
    );
    assert_eq!(
        (ana["status"].as_str(), ana["emailStatus"].as_str()),
        (Some("active"), Some("active"))
    );
    let ben = app.contact_by(&key, &by_phone(2)).await.unwrap();
    assert_eq!(ben["status"], "passive");

    // A file that says everybody opted in, overwriting: Ana stays opted out.
    let file = format!(
        "phone,firstName,consent.sms\n{},Ana-Maria,subscribed\n{},Ben,1\n",
        phone(1),
        phone(2)
    );
    let id = app.import_csv(&key, "", file.clone()).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["updated"], 2, "{status}");
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(codes(&rows[0], "warnings"), ["consent_kept"], "{}", rows[0]);
    assert_eq!(rows[0]["warnings"][0]["field"], "consent.sms");
    assert_eq!(codes(&rows[1], "warnings"), Vec::<String>::new());
    let ana = app.contact_by(&key, &by_phone(1)).await.unwrap();
    assert_eq!(ana["firstName"], "Ana-Maria", "the rest of the row applies");
    assert_eq!(ana["consent"]["sms"]["status"], "optedOut");
    assert_eq!(ana["consent"]["sms"]["source"], "shop");

    let opted_out = app
        .get_json(&key, "/api/v1/contacts?consent.sms=optedOut")
        .await;
    assert_eq!(opted_out["meta"]["total"], 1, "{opted_out}");
    assert_eq!(opted_out["data"][0]["firstName"], "Ana-Maria");
    let unset = app
        .get_json(&key, "/api/v1/contacts?consent.call=unset")
        .await;
    assert_eq!(unset["meta"]["total"], 2, "{unset}");
    let bad = app.get(&key, "/api/v1/contacts?consent.sms=perhaps").await;
    assert_eq!(bad.status(), 422);

    // JSON with overwrite and no allowResubscribe: kept again; with it: opted in.
    let again = app
        .import_and_wait(
            &key,
            &json!({"contacts": [{"phone": phone(1), "consent": {"sms": "optedIn"}}]}),
        )
        .await;
    let rows = app
        .all_rows(&key, again["asyncSessionId"].as_str().unwrap(), "")
        .await;
    assert_eq!(codes(&rows[0], "warnings"), ["consent_kept"]);
    let id = app.import_csv(&key, "?allowResubscribe=true", file).await;
    app.wait_finished(&key, &id).await;
    let ana = app.contact_by(&key, &by_phone(1)).await.unwrap();
    assert_eq!(ana["consent"]["sms"]["status"], "optedIn");
    assert_eq!(ana["consent"]["sms"]["source"], format!("import:{id}"));
    app.finish().await;
}

/// A consent the row cannot read fails that row only, with a pointer to the channel.
#[tokio::test]
async fn an_unreadable_consent_fails_its_row_only() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let status = app
        .import_and_wait(
            &key,
            &json!({"contacts": [
                {"phone": phone(1), "consent": {"sms": "perhaps"}},
                {"phone": phone(2), "consent": {"fax": "yes"}},
                {"phone": phone(3), "emailStatus": "gone"},
                {"phone": phone(4), "consent": {"whatsapp": false}},
            ]}),
        )
        .await;
    assert_eq!(
        (status["created"].as_i64(), status["failed"].as_i64()),
        (Some(1), Some(3)),
        "{status}"
    );
    let rows = app
        .all_rows(&key, status["asyncSessionId"].as_str().unwrap(), "")
        .await;
    let fields: Vec<Value> = rows[..3]
        .iter()
        .map(|r| r["errors"][0]["field"].clone())
        .collect();
    assert_eq!(
        fields,
        [json!("consent.sms"), json!("consent"), json!("emailStatus")]
    );
    app.finish().await;
}
