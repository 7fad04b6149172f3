//! Erasure: `DELETE /api/v1/contacts/{id}?erase=true` leaves no copy of the contact anywhere
//! the service stored it — checked on a `pg_dump` of the whole database — while its imports
//! keep their counters and show its rows as `erased`.

use crate::app::spawn_with;
use crate::common::{database_name, phone, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn an_erased_contact_is_absent_from_a_dump_of_the_database() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let (zeb, keep) = (phone(4242), phone(4343));
    let first = app
        .import_and_wait(
            &key,
            &json!({"contacts": [
                {"phone": zeb, "email": "zebulon.erasable@example.org", "firstName": "Zebulonerasable", "externalId": "crm-erasable-1"},
                {"phone": keep, "firstName": "Keepme"},
            ], "groupNames": ["Fair"], "eventKeyForNewContacts": "newContact"}),
        )
        .await;
    assert_eq!(first["created"], 2, "{first}");
    // A file that updates the contact, and a failed row whose message quotes its email.
    let national = zeb.trim_start_matches("+212");
    let file = format!(
        "phone,city,email\n0{national},Xanaduerasable,\n{zeb},,quintessa@@erasable\n{keep},Rabat,\n"
    );
    let csv = app.import_csv(&key, "?defaultRegion=MA", file).await;
    let second = app.wait_finished(&key, &csv).await;
    assert_eq!(
        (second["updated"].as_i64(), second["failed"].as_i64()),
        (Some(1), Some(2)),
        "the two rows of the contact are duplicates: {second}"
    );
    let dry = app
        .import_and_wait(&key, &json!({"contacts": [{"externalId": "crm-erasable-1", "occupation": "Erasable job"}], "dedupeOn": "externalId", "dryRun": true}))
        .await;
    let zebulon = app
        .contact_by(&key, &format!("phone={}", zeb.replace('+', "%2B")))
        .await
        .unwrap();
    let id = zebulon["id"].as_str().unwrap().to_owned();

    let answer = app
        .send(
            &key,
            reqwest::Method::DELETE,
            &format!("/api/v1/contacts/{id}?erase=true"),
        )
        .await;
    assert_eq!(answer.status(), 204);
    assert_eq!(
        app.get(&key, &format!("/api/v1/contacts/{id}"))
            .await
            .status(),
        404
    );
    let again = app
        .send(
            &key,
            reqwest::Method::DELETE,
            &format!("/api/v1/contacts/{id}?erase=true"),
        )
        .await;
    assert_eq!(again.status(), 404);

    let output = std::process::Command::new("pg_dump")
        .args(["--data-only", "--no-owner", &app.settings.database_url])
        .output()
        .expect("pg_dump runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dump = String::from_utf8_lossy(&output.stdout).to_lowercase();
    assert!(
        dump.len() > 1000,
        "a dump of {}",
        database_name(&app.settings)
    );
    for secret in [
        "zebulonerasable",
        "zebulon.erasable@example.org",
        "crm-erasable-1",
        "xanaduerasable",
        "quintessa@@erasable",
        "erasable job",
        national,
        id.as_str(),
    ] {
        assert!(!dump.contains(secret), "{secret} is still in the dump");
        assert!(
            !dump.contains(&hex(secret)),
            "{secret} is still in the dump, in a bytea"
        );
    }
    assert!(
        dump.contains("keepme") || dump.contains(&hex("keepme")),
        "the other contact stays"
    );

    // The imports keep their counters; the contact's rows are erased, the others as they were.
    let status = app.get_json(&key, &format!("/api/v1/imports/{csv}")).await;
    assert_eq!(
        (status["updated"].as_i64(), status["failed"].as_i64()),
        (Some(1), Some(2))
    );
    let rows = app.all_rows(&key, &csv, "").await;
    let statuses: Vec<&str> = rows.iter().filter_map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, ["erased", "erased", "updated"]);
    assert_eq!(rows[0]["errors"], json!([]));
    let rows = app
        .all_rows(&key, dry["asyncSessionId"].as_str().unwrap(), "")
        .await;
    assert_eq!(rows[0]["status"], "erased");
    let results = app
        .get_text(&key, &format!("/api/v1/imports/{csv}/results.csv"))
        .await;
    assert_eq!(results.lines().nth(1), Some(",,,erased,"), "{results}");
    let groups: Value = app.get_json(&key, "/api/v1/groups").await;
    assert_eq!(groups["data"][0]["members"], 1, "{groups}");
    let listed = app.get_json(&key, "/api/v1/contacts").await;
    assert_eq!(listed["meta"]["total"], 1);
    app.finish().await;
}
