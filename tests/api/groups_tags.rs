//! Tags and groups: what an import adds and removes, with `overwrite` and the request's own
//! lists, the member counts after every import, delete and restore, and the lists they filter.

use crate::app::{TestApp, spawn_app};
use crate::common::{contacts, phone};
use serde_json::{Value, json};

/// Tags: a contact's own `tags` replace its set with `overwrite` and are only added without;
/// the request's `tags` are added and `tagsRemove` removed; a CSV import tags its contacts with
/// its own tag unless `importTag` is false; `?tag=` lists the contacts with one.
#[tokio::test]
async fn tags_follow_overwrite_and_the_request_and_filter_the_list() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let tags_of = |c: Option<Value>| -> Vec<String> {
        c.and_then(|c| {
            c["tags"].as_array().map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
    };
    let mut rows = contacts(0, 3);
    rows[0]["tags"] = json!(["vip", " vip ", "quote\"back\\slash"]);
    rows[1]["tags"] = json!(["x"]);
    let status = app
        .import_and_wait(&key, &json!({"contacts": rows, "tags": ["2026"]}))
        .await;
    assert_eq!(status["created"], 3, "{status}");
    let c0 = "phone=%2B212600000000";
    let c1 = "phone=%2B212600000001";
    let c2 = "phone=%2B212600000002";
    assert_eq!(
        tags_of(app.contact_by(&key, c0).await),
        ["vip", "quote\"back\\slash", "2026"]
    );
    assert_eq!(tags_of(app.contact_by(&key, c1).await), ["x", "2026"]);
    assert_eq!(tags_of(app.contact_by(&key, c2).await), ["2026"]);

    // overwrite (the default): a contact's own tags replace its set; tagsRemove removes.
    let status = app
        .import_and_wait(
            &key,
            &json!({"tagsRemove": ["2026"], "contacts": [
                {"phone": phone(0), "tags": ["new"]}, {"phone": phone(1)}]}),
        )
        .await;
    assert_eq!(status["updated"], 2, "{status}");
    assert_eq!(tags_of(app.contact_by(&key, c0).await), ["new"]);
    assert_eq!(tags_of(app.contact_by(&key, c1).await), ["x"]);

    // overwrite false only ever adds: own tags are added, null clears nothing.
    app.import_and_wait(
        &key,
        &json!({"overwrite": false, "contacts": [
            {"phone": phone(0), "tags": null}, {"phone": phone(1), "tags": ["y", "x"]}]}),
    )
    .await;
    assert_eq!(tags_of(app.contact_by(&key, c0).await), ["new"]);
    assert_eq!(tags_of(app.contact_by(&key, c1).await), ["x", "y"]);

    let listed = app.get_json(&key, "/api/v1/contacts?tag=x").await;
    assert_eq!(listed["meta"]["total"], 1, "{listed}");
    assert_eq!(listed["data"][0]["phone"], phone(1));
    let none = app.get_json(&key, "/api/v1/contacts?tag=nobody").await;
    assert_eq!(none["meta"]["total"], 0);

    // A bad tag fails its row; a bad request-level tag is a 422 that points at it.
    let id = app
        .import(
            &key,
            &json!({"contacts": [{"phone": phone(5), "tags": ["ok", 7]}]}),
        )
        .await;
    app.wait_finished(&key, &id).await;
    let row = &app.all_rows(&key, &id, "").await[0];
    assert_eq!(row["errors"][0]["field"], "tags", "{row}");
    let refused = app
        .post_contacts(
            &key,
            &json!({"contacts": contacts(6, 1), "tags": ["ok", ""]}),
        )
        .await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/tags/1", "{problem}");

    // A CSV import tags what it applies with its own tag, and with the request's.
    let csv = format!("phone\n{}\n", phone(10));
    let response = app.upload_csv(&key, "?tags=from-csv,2026", csv).await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["asyncSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_finished(&key, &id).await;
    let today = time::OffsetDateTime::now_utc().date();
    let own = format!(
        "import-{:04}{:02}{:02}-{}",
        today.year(),
        u8::from(today.month()),
        today.day(),
        &id[..8]
    );
    assert_eq!(
        tags_of(app.contact_by(&key, "phone=%2B212600000010").await),
        ["from-csv", "2026", own.as_str()]
    );
    let listed = app
        .get_json(&key, &format!("/api/v1/contacts?tag={own}"))
        .await;
    assert_eq!(listed["meta"]["total"], 1, "{listed}");
    let csv = format!("phone\n{}\n", phone(11));
    let response = app.upload_csv(&key, "?importTag=false", csv).await;
    let id = response.json::<Value>().await.unwrap()["asyncSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_finished(&key, &id).await;
    assert!(tags_of(app.contact_by(&key, "phone=%2B212600000011").await).is_empty());
    app.finish().await;
}

/// The tenant's groups by name and member count, from `GET /api/v1/groups`.
async fn group_counts(app: &TestApp, key: &str) -> std::collections::BTreeMap<String, i64> {
    let groups = app.get_json(key, "/api/v1/groups").await;
    groups["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or_default().to_owned(),
                g["members"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

/// Groups: created on first use, joined and left by applied contacts, with member counts (live
/// contacts) right after every import, delete and restore, before and after the counts are
/// folded; `?group=` lists the members; a dry run creates nothing.
#[tokio::test]
async fn group_members_and_counts_follow_imports_deletes_and_restores() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let counts = |pairs: &[(&str, i64)]| {
        pairs
            .iter()
            .map(|(n, c)| ((*n).to_owned(), *c))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    app.import_and_wait(
        &key,
        &json!({"groupNames": ["Customers", "VIP"], "contacts": contacts(0, 5)}),
    )
    .await;
    assert_eq!(
        group_counts(&app, &key).await,
        counts(&[("Customers", 5), ("VIP", 5)])
    );
    let c0 = app.contact_by(&key, "phone=%2B212600000000").await.unwrap();
    assert_eq!(c0["groups"], json!(["Customers", "VIP"]));

    // 3 and 4 are updated, 5 and 6 created: all join Customers and leave VIP.
    app.import_and_wait(
        &key,
        &json!({"groupNames": ["Customers"], "groupNamesExclude": ["VIP"], "contacts": contacts(3, 4)}),
    )
    .await;
    assert_eq!(
        group_counts(&app, &key).await,
        counts(&[("Customers", 7), ("VIP", 3)])
    );
    let vip = app.get_json(&key, "/api/v1/contacts?group=VIP").await;
    assert_eq!(vip["meta"]["total"], 3, "{vip}");

    // A deleted contact is no member; restored, it is one again.
    let path = format!("/api/v1/contacts/{}", c0["id"].as_str().unwrap());
    assert_eq!(
        app.send(&key, reqwest::Method::DELETE, &path)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.send(&key, reqwest::Method::DELETE, &path)
            .await
            .status(),
        200
    );
    assert_eq!(
        group_counts(&app, &key).await,
        counts(&[("Customers", 6), ("VIP", 2)]),
        "deleting twice counts once"
    );
    let vip = app.get_json(&key, "/api/v1/contacts?group=VIP").await;
    assert_eq!(vip["meta"]["total"], 2, "{vip}");
    // Restored by an import (restoreDeleted), which also adds it to a new group.
    app.import_and_wait(
        &key,
        &json!({"restoreDeleted": true, "groupNames": ["Back"], "contacts": [{"phone": phone(0)}]}),
    )
    .await;
    assert_eq!(
        group_counts(&app, &key).await,
        counts(&[("Back", 1), ("Customers", 7), ("VIP", 3)])
    );
    // A skipped row (deleted contact, no restore) joins nothing; the group exists, empty.
    let c1 = app.contact_by(&key, "phone=%2B212600000001").await.unwrap();
    let path = format!("/api/v1/contacts/{}", c1["id"].as_str().unwrap());
    assert_eq!(
        app.send(&key, reqwest::Method::DELETE, &path)
            .await
            .status(),
        200
    );
    app.import_and_wait(
        &key,
        &json!({"groupNames": ["Late"], "contacts": [{"phone": phone(1)}]}),
    )
    .await;
    let restored = app
        .send(&key, reqwest::Method::POST, &format!("{path}/restore"))
        .await;
    assert_eq!(restored.status(), 200);
    let expected = counts(&[("Back", 1), ("Customers", 7), ("Late", 0), ("VIP", 3)]);
    assert_eq!(group_counts(&app, &key).await, expected);

    // A dry run creates no group and joins nothing.
    app.import_and_wait(
        &key,
        &json!({"dryRun": true, "groupNames": ["Dry", "VIP"], "contacts": contacts(20, 3)}),
    )
    .await;
    assert_eq!(group_counts(&app, &key).await, expected);

    // A CSV import takes the same options.
    let csv = format!("phone\n{}\n{}\n", phone(30), phone(31));
    let response = app
        .upload_csv(&key, "?groupNames=From%20CSV,VIP", csv)
        .await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["asyncSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_finished(&key, &id).await;
    let expected = counts(&[
        ("Back", 1),
        ("Customers", 7),
        ("From CSV", 2),
        ("Late", 0),
        ("VIP", 5),
    ]);
    assert_eq!(group_counts(&app, &key).await, expected);

    // The counts are the same once the deltas are folded (the service folds every second).
    contact_import::store::groups::fold_counts(&app.pool)
        .await
        .expect("fold");
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM group_member_deltas")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(group_counts(&app, &key).await, expected);
    let (live_members,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM contact_groups cg JOIN contacts c ON c.id = cg.contact_id
         WHERE c.deleted_at IS NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(live_members, expected.values().sum::<i64>());

    let other = app.tenant("other").await;
    assert!(group_counts(&app, &other).await.is_empty());
    let none = app.get_json(&other, "/api/v1/contacts?group=VIP").await;
    assert_eq!(none["meta"]["total"], 0);
    app.finish().await;
}
