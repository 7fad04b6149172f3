//! Files as people's tools write them: dates in the order a country writes them (and
//! birthdays without a year), the column names of the common contact exports, phones' vCard
//! files, and a dry run committed without sending its file again.

use crate::app::spawn_with;
use crate::checks::{codes, urlencode};
use crate::common::{phone, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};

/// `phone=…` for `contact_by`.
fn by_phone(n: usize) -> String {
    format!("phone={}", phone(n).replace('+', "%2B"))
}

/// A French file's `DD/MM/YYYY` birthdays and date fields are read in that order with
/// `dateFormat`, ISO dates still pass, and a birthday without a year (Mailchimp's `07/21`)
/// is left out with the warning `partial_date` while the rest of its row is applied.
#[tokio::test]
async fn dates_are_read_in_the_date_format_and_a_missing_year_leaves_the_field_unset() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let answer = app
        .request(reqwest::Method::POST, "/api/v1/fields")
        .bearer_auth(&key)
        .json(&json!({"name": "signed_up", "type": "date"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let file = format!(
        "phone;firstName;birthday;signed_up\n\
         {};Léa;21/03/1987;02/01/2020\n\
         {};Noé;1990-12-31;\n\
         {};Inès;21/07;15/06/2021\n\
         {};Jules;31/02/1990;\n",
        phone(1),
        phone(2),
        phone(3),
        phone(4)
    );
    let id = app
        .import_csv(&key, "?dateFormat=DD%2FMM%2FYYYY", file)
        .await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(
        (status["created"].as_i64(), status["failed"].as_i64()),
        (Some(3), Some(1)),
        "{status}"
    );
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(codes(&rows[2], "warnings"), ["partial_date"], "{}", rows[2]);
    assert_eq!(rows[2]["warnings"][0]["field"], "birthday");
    assert_eq!(codes(&rows[3], "errors"), ["invalid_date"], "{}", rows[3]);
    assert_eq!(codes(&rows[0], "warnings"), Vec::<String>::new());

    let lea = app.contact_by(&key, &by_phone(1)).await.unwrap();
    assert_eq!(lea["birthday"], "1987-03-21");
    assert_eq!(lea["customAttributes"]["signed_up"], "2020-01-02");
    let noe = app.contact_by(&key, &by_phone(2)).await.unwrap();
    assert_eq!(noe["birthday"], "1990-12-31");
    let ines = app.contact_by(&key, &by_phone(3)).await.unwrap();
    assert_eq!(ines["firstName"], "Inès");
    assert_eq!(ines["birthday"], Value::Null);
    assert_eq!(ines["customAttributes"]["signed_up"], "2021-06-15");

    // Without a dateFormat, `21/03/1987` is not a date; an unknown format is a 422.
    let file = format!("phone,birthday\n{},21/03/1987\n", phone(5));
    let id = app.import_csv(&key, "", file.clone()).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["failed"], 1, "{status}");
    let refused = app
        .upload_csv(
            &key,
            &format!("?dateFormat={}", urlencode("DD-MM-YY")),
            file,
        )
        .await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/dateFormat", "{problem}");
    app.finish().await;
}

/// A file reviewed by a dry run is applied by committing it, without sending it again: the
/// commit's rows get the outcomes the dry run said they would, row by row; the two imports
/// name each other; a second commit, the commit of an import that is not a dry run, and the
/// commit of a dry run whose rows are purged are refused.
#[tokio::test]
async fn a_committed_dry_run_applies_the_very_rows_it_reviewed_once() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let mut file = String::from("phone,firstName,email\n");
    for n in 0..1200 {
        file.push_str(&format!("{},P{n},p{n}@example.com\n", phone(n)));
    }
    file.push_str("not a phone,Bad,bad@example.com\n");
    file.push_str(&format!("{},Twice,t@example.com\n", phone(7)));
    let dry = app.import_csv(&key, "?dryRun=true", file).await;
    let reviewed = app.wait_finished(&key, &dry).await;
    assert_eq!(reviewed["dryRun"], true);
    assert_eq!(app.contact_by(&key, &by_phone(1)).await, None);

    let commit = |id: String| {
        app.request(
            reqwest::Method::POST,
            &format!("/api/v1/imports/{id}/commit"),
        )
        .bearer_auth(&key)
        .send()
    };
    let answer = commit(dry.clone()).await.unwrap();
    assert_eq!(answer.status(), 202);
    let accepted: Value = answer.json().await.unwrap();
    let applied = accepted["asyncSessionId"].as_str().unwrap().to_owned();
    assert_eq!(accepted["totalRows"], 1202);
    let status = app.wait_finished(&key, &applied).await;
    assert_eq!(status["reviewedIn"], dry.as_str(), "{status}");
    assert_eq!(status["dryRun"], false);
    for counter in ["totalRows", "created", "updated", "skipped", "failed"] {
        assert_eq!(status[counter], reviewed[counter], "{counter}: {status}");
    }
    let dry_status = app.get_json(&key, &format!("/api/v1/imports/{dry}")).await;
    assert_eq!(dry_status["committedAs"], applied.as_str());
    let strip = |rows: Vec<Value>| -> Vec<Value> {
        rows.into_iter()
            .map(|mut r| {
                r["contactId"] = Value::Null;
                r
            })
            .collect()
    };
    let (dry_rows, applied_rows) = (
        app.all_rows(&key, &dry, "").await,
        app.all_rows(&key, &applied, "").await,
    );
    assert_eq!(applied_rows.len(), 1202);
    assert_eq!(strip(dry_rows), strip(applied_rows.clone()));
    assert_eq!(codes(&applied_rows[7], "errors"), ["duplicate_in_file"]);
    let p1 = app.contact_by(&key, &by_phone(1)).await.expect("applied");
    assert_eq!(p1["firstName"], "P1");
    // The file's own tag names the import that applied it.
    let tag = format!("import-{}", &applied.replace('-', "")[..8]);
    let tags: Vec<&str> = p1["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tags.iter().any(|t| t.ends_with(&tag[7..])), "{tags:?}");
    let results = app
        .get(&key, &format!("/api/v1/imports/{applied}/results.csv"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        results.starts_with("phone,firstName,email,import_status"),
        "{results}"
    );

    // Once only; an applied import is no dry run; an unknown id is 404.
    for (id, expected) in [
        (dry.clone(), 409),
        (applied.clone(), 409),
        (uuid::Uuid::now_v7().to_string(), 404),
    ] {
        let answer = commit(id.clone()).await.unwrap();
        assert_eq!(answer.status(), expected, "{id}");
        assert_eq!(answer.headers()["content-type"], "application/problem+json");
    }

    // A dry run whose rows the retention period deleted: 410.
    let json_dry = app
        .import(
            &key,
            &json!({"contacts": [{"phone": phone(5000)}], "dryRun": true}),
        )
        .await;
    app.wait_finished(&key, &json_dry).await;
    sqlx::query("UPDATE imports SET finished_at = now() - interval '31 days' WHERE id = $1")
        .bind(json_dry.parse::<uuid::Uuid>().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let retention = std::time::Duration::from_secs(30 * 86_400);
    contact_import::store::maintenance::purge_expired(&app.pool, retention)
        .await
        .unwrap();
    assert_eq!(commit(json_dry).await.unwrap().status(), 410);
    app.finish().await;
}
